"""``toolkit.safe``: usual values and derivatives away from the singular points, documented finite ones at them.

Oracles, none of them the code under test:

* closed forms of each value, gradient and Hessian, evaluated in NumPy's
  ``longdouble`` (64-bit mantissa on x86; float64 elsewhere, with a wider
  float64 tolerance), compared to a few ulps at singular (signed zeros),
  ordinary and extreme points (1e-30 ... 3e38 in float32, 1e-300 ... 1.7e308 in
  float64), under ``jax.jit`` + ``jax.vmap`` with ``jax.grad``, ``jax.jvp`` and
  ``jax.hessian``; grad of grad for ``pow``'s mixed entries; eagerly at the
  singular points;
* the subgradients each docstring promises at the singular points;
* NumPy for values and ``tk.check_grad`` (float64 central differences) for
  derivatives of array arguments, broadcasting and ``norm``'s axes;
* float64 (to half-precision tolerances) for float16 and bfloat16.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toolkit as tk
from toolkit import safe

RNG = np.random.default_rng(0)
POSITIVE = jnp.array([0.5, 2.0, 9.0])
SIGNED = jnp.array([-1.5, 0.7, 2.5])
OTHER = jnp.array([1.2, -0.4, 0.9])

L = np.longdouble
WIDE = np.finfo(L).eps < np.finfo(np.float64).eps  # longdouble more precise than float64 here
nan, inf = L("nan"), L("inf")


# --- closed forms: (value, gradient, Hessian) in longdouble, with the documented conventions ------------


def o_sqrt(x):
    zero = x == 0
    with np.errstate(all="ignore"):
        r = np.sqrt(x)
        g, h = 1 / (2 * r), -1 / (4 * x * r)
    return np.where(zero, 0, r), [np.where(zero, 0, g)], [[np.where(zero, 0, h)]]


def o_cbrt(x):
    v = np.cbrt(x)
    zero = x == 0
    with np.errstate(all="ignore"):
        g, h = 1 / (3 * v * v), -2 / (9 * v**5)
    return np.where(zero, 0, v), [np.where(zero, 0, g)], [[np.where(zero, 0, h)]]


def o_hypot(x, y):
    r = np.hypot(x, y)
    origin = r == 0
    with np.errstate(all="ignore"):
        r3 = r**3
        g = [x / r, y / r]
        h = [[y * y / r3, -x * y / r3], [-x * y / r3, x * x / r3]]
    clean = lambda a: np.where(origin, 0, a)
    return r, [clean(a) for a in g], [[clean(a) for a in row] for row in h]


def o_norm(*v):
    r = np.sqrt(sum(a * a for a in v))
    zero = r == 0
    with np.errstate(all="ignore"):
        u = [a / r for a in v]
        h = [[((i == j) - u[i] * u[j]) / r for j in range(len(v))] for i in range(len(v))]
    clean = lambda a: np.where(zero, 0, a)
    return r, [clean(a) for a in u], [[clean(a) for a in row] for row in h]


def o_atan2(y, x):
    origin = (x == 0) & (y == 0)
    r2 = x * x + y * y
    with np.errstate(all="ignore"):
        r4 = r2 * r2
        g = [x / r2, -y / r2]
        h = [[-2 * x * y / r4, (y * y - x * x) / r4], [(y * y - x * x) / r4, 2 * x * y / r4]]
    clean = lambda a: np.where(origin, 0, a)
    return clean(np.arctan2(y, x)), [clean(a) for a in g], [[clean(a) for a in row] for row in h]


def o_div(x, y):
    both = (x == 0) & (y == 0)
    with np.errstate(all="ignore"):
        g = [1 / y, -x / (y * y)]
        h = [[0 * y, -1 / (y * y)], [-1 / (y * y), 2 * x / (y * y * y)]]
        clean = lambda a: np.where(both, 0, a)
        return clean(x / y), [clean(a) for a in g], [[clean(a) for a in row] for row in h]


def o_pow(x, p, signed=False, dtype=np.float64):
    """x ** p (or sign(x) |x| ** p) and its derivatives; at x = 0 the documented ones (pow's docstring)."""
    with np.errstate(all="ignore"):
        m = np.abs(x) if signed else x
        s = np.sign(x) if signed else 1
        base = np.where(m < 0, nan, m)  # fractional powers of negative numbers: NaN
        integer = p == np.round(p)
        power = lambda e: np.where(integer & (m < 0), m**e, base**e)
        v = s * power(p)
        lg = np.log(np.where(m < 0, nan, m))  # d/dp of a negative base: NaN (not defined for nearby p)
        gx = p * power(p - 1)
        gp = v * lg
        hxx = s * p * (p - 1) * power(p - 2)
        # p = 0 (pow's docstring): 0 * |x| ** -2 is NaN where |x| ** -2 overflows, as for jnp.power
        hxx = np.where((p == 0) & (np.abs(power(p - 2)) >= L(np.finfo(dtype).max)), nan, hxx)
        hxp = power(p - 1) * (1 + p * lg)
        hpp = v * lg * lg
    zero = (x == 0) & (p >= 0)
    at = lambda a, b: np.where(zero, b, a)
    curvature = np.where(p == 2, 2, np.where((1 < p) & (p < 2), inf, 0))
    v0 = 0 if signed else np.where(p == 0, 1, 0)
    return (
        at(v, v0),
        [at(gx, np.where(p == 1, 1, 0)), at(gp, 0)],
        [[at(hxx, curvature), at(hxp, 0)], [at(hxp, 0), at(hpp, 0)]],
    )


def o_pow_signed(x, p):
    return o_pow(x, p, signed=True)


# --- comparing float32/float64 results with a longdouble oracle ---------------------------------------


def assert_matches(got, want, dtype, ulps, what, points, scale=None, unrepresentable=None):
    """``got`` is ``want`` rounded to ``dtype``, to ``ulps`` ulps (of ``scale`` if given); ``inf`` and ``NaN`` exactly.

    Values below a few times the smallest normal number may come back as 0 (XLA flushes subnormals).
    Where ``unrepresentable`` (a derivative at that point, this or another, is NaN or beyond the
    float range: forward mode multiplies it by the zero tangents of the other directions, 0 * inf =
    NaN, and second derivatives there come from overflowing intermediates), a result may also be
    inf or NaN, but never a wrong finite number. A value within 1% of overflow is refused: the point is ill posed.
    """
    info = np.finfo(dtype)
    got = np.asarray(got, dtype=np.float64).astype(L)
    want = np.broadcast_to(np.asarray(want, dtype=L), got.shape)
    finite = np.isfinite(want)
    big = L(info.max)
    assert not np.any(finite & (np.abs(want) > big / L(1.01)) & (np.abs(want) < big * L(1.01))), what
    with np.errstate(invalid="ignore"):
        expected = np.where(finite & (np.abs(want) >= big), np.sign(want) * inf, want)
        size = np.abs(expected) if scale is None else np.maximum(np.abs(expected), scale)
        tolerance = ulps * L(info.eps) * size + 8 * L(info.smallest_normal)
        ok = np.where(
            np.isfinite(expected),
            np.abs(got - expected) <= tolerance,
            (got == expected) | (np.isnan(got) & np.isnan(expected)),
        )
        if unrepresentable is not None:
            ok |= unrepresentable & ~np.isfinite(got)
    bad = np.nonzero(~ok)[0]
    assert bad.size == 0, f"{what} ({np.dtype(dtype).name}): " + "; ".join(
        f"at {points[k]}: got {float(got[k])!r}, want {float(expected[k])!r}" for k in bad[:6]
    )


def _beyond(values, dtype):
    """Where a longdouble value is not a finite ``dtype`` number: NaN, infinite or beyond the range."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(values) | (np.abs(values) >= L(np.finfo(dtype).max))


def _tolerance(dtype, ulps):
    return ulps + (0 if WIDE or np.dtype(dtype) != np.float64 else 2)


def transforms(f, n):
    """Value, gradient, unit-tangent push-forwards and Hessian of a scalar ``f`` of ``n`` scalars, jitted, vmapped."""
    argnums = tuple(range(n))

    def at(*args):
        value = f(*args)
        grads = jax.grad(f, argnums=argnums)(*args)
        jvps = [
            jax.jvp(f, args, tuple(jnp.ones_like(a) if i == j else jnp.zeros_like(a) for j, a in enumerate(args)))[1]
            for i in argnums
        ]
        return value, grads, jvps, jax.hessian(f, argnums=argnums)(*args)

    return jax.jit(jax.vmap(at))


def check_against_oracle(f, oracle, points, dtype, ulps=(2, 4, 8), conditioning=None):
    """Every transform of ``f`` at ``points`` against the closed forms; ``ulps``: values, first, second derivatives.

    Second derivatives are compared normwise (to ``ulps`` of the largest entry of the point's Hessian):
    an entry such as ``y**2 / r**3 = (1 - (x/r)**2) / r`` is a difference of terms that size.
    ``conditioning(*points)`` widens the derivative tolerances where the inputs' rounding is amplified.
    """
    columns = [
        np.array(c, dtype=np.float64).astype(dtype) for c in zip(*points, strict=True)
    ]  # the points as dtype rounds
    rounded = [tuple(float(c[k]) for c in columns) for k in range(len(points))]
    exact = [c.astype(L) for c in columns]
    want_value, want_grad, want_hessian = oracle(*exact)
    n = len(columns)
    value, grads, jvps, hessian = transforms(f, n)(*(jnp.asarray(c) for c in columns))
    assert value.dtype == dtype and all(g.dtype == dtype for g in grads)
    v_ulps, d1_ulps, d2_ulps = (_tolerance(dtype, u) for u in ulps)
    widen = np.ones(len(points), dtype=L) if conditioning is None else conditioning(*exact)
    beyond_grad = [_beyond(g, dtype) for g in want_grad]
    with np.errstate(invalid="ignore"):
        entries = np.stack([np.broadcast_to(h, (len(points),)) for row in want_hessian for h in row])
        hessian_scale = np.max(np.where(np.isfinite(entries), np.abs(entries), 0), axis=0)
    beyond_hessian = np.any(np.stack([_beyond(h, dtype) for h in entries]), axis=0)
    assert_matches(value, want_value, dtype, v_ulps, "value", rounded)
    for i, want in enumerate(want_grad):
        others = np.any([beyond_grad[k] for k in range(n) if k != i], axis=0) if n > 1 else None
        assert_matches(grads[i], want, dtype, d1_ulps * widen, f"jax.grad, argument {i}", rounded)
        assert_matches(jvps[i], want, dtype, d1_ulps * widen, f"jax.jvp, argument {i}", rounded, unrepresentable=others)
        for j, want2 in enumerate(want_hessian[i]):
            tolerance = d2_ulps * widen
            assert_matches(
                hessian[i][j], want2, dtype, tolerance, f"jax.hessian[{i}][{j}]", rounded, hessian_scale, beyond_hessian
            )


def magnitudes(dtype):
    """Ordinary magnitudes, tiny ones and huge ones (the last of each close to the dtype's limits)."""
    if np.dtype(dtype) == np.float32:
        return [0.3, 2.0, 9.0, 1e-3, 1e4], [1e-30, 2e-38], [1e30, 3e38]
    return [0.3, 2.0, 9.0, 1e-3, 1e4], [1e-300, 3e-308], [1e300, 1.7e308]


def signed_grid(dtype):
    ordinary, tiny, huge = magnitudes(dtype)
    values = ordinary + tiny + huge
    return [0.0, -0.0] + values + [-v for v in values]


def pair_grid(dtype):
    ordinary, tiny, huge = magnitudes(dtype)
    values = [0.0, -0.0, 0.3, -2.0, 9.0, tiny[0], -huge[0]]
    pairs = list(itertools.product(values, repeat=2))
    return pairs + [(huge[0], huge[0]), (tiny[0], tiny[0]), (tiny[1], -tiny[1]), (huge[1], huge[1] / 10)]


FLOATS = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]


@pytest.fixture(autouse=True)
def _x64_for_float64(request):
    """Tests parametrised with ``dtype=np.float64`` run with 64-bit types enabled."""
    dtype = request.node.callspec.params.get("dtype") if hasattr(request.node, "callspec") else None
    with jax.enable_x64(dtype is np.float64):
        yield


@pytest.mark.parametrize("dtype", FLOATS)
def test_sqrt_against_closed_forms(dtype):
    points = [(abs(v),) for v in signed_grid(dtype)] + [(-0.0,), (-2.0,)]  # sqrt(-2): NaN, as jnp.sqrt
    check_against_oracle(safe.sqrt, o_sqrt, points, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_cbrt_against_closed_forms(dtype):
    check_against_oracle(safe.cbrt, o_cbrt, [(v,) for v in signed_grid(dtype)], dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_hypot_against_closed_forms(dtype):
    check_against_oracle(safe.hypot, o_hypot, pair_grid(dtype), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_atan2_against_closed_forms(dtype):
    check_against_oracle(safe.atan2, o_atan2, pair_grid(dtype), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_div_against_closed_forms(dtype):
    points = [(x, y) for x, y in pair_grid(dtype) if y != 0 or x == 0]  # x / 0 for x != 0: below
    check_against_oracle(safe.div, o_div, points, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_norm_against_closed_forms(dtype):
    # norm is sqrt(sum(x**2)) and keeps to its documented range: 1e-18 ... 1e18 (float32), 1e-150 ... 1e150 (float64)
    small, large = (1e-18, 1e18) if np.dtype(dtype) == np.float32 else (1e-150, 1e150)
    vectors = [(0.0, 0.0, 0.0), (-0.0, 0.0, -0.0), (3.0, 4.0, 0.0), (-1.5, 0.7, 2.5), (0.0, -2.0, 0.0)]
    vectors += [(small, 0.0, 2 * small), (large, -large, 0.5 * large), (large, 1.0, 0.0), (small, -small, small)]
    check_against_oracle(lambda a, b, c: safe.norm(jnp.stack([a, b, c])), o_norm, vectors, dtype)


@pytest.mark.parametrize("signed", [False, True], ids=["pow", "pow-signed"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_pow_against_closed_forms(dtype, signed):
    ordinary, tiny, huge = magnitudes(dtype)
    xs = [0.0, -0.0, 0.5, 2.0, 9.0, -2.0, -0.5, tiny[0], huge[0]]
    ps = [0.0, 0.3, 0.5, 1.0, 1.5, 2.0, 2.4, 3.0, -1.5, -2.0, 1 / 3]
    points = [(x, p) for x, p in itertools.product(xs, ps) if not (x == 0 and p < 0)]  # 0 ** -p: below
    if np.dtype(dtype) == np.float32:  # keep clear of float32's overflow threshold
        points = [(x, p) for x, p in points if abs(x) != huge[0] or p in (0.0, 0.3, 0.5, 1.0, 1 / 3, -1.5, -2.0)]
    f = (lambda x, p: safe.pow(x, p, signed=True)) if signed else safe.pow
    oracle = lambda x, p: o_pow(x, p, signed=signed, dtype=dtype)
    # The slope p * x ** (p - 1) rounds p - 1, an error that x ** (p - 1) amplifies by |log x|.
    conditioning = lambda x, p: 1 + np.abs(np.log(np.where(x == 0, 1, np.abs(x))))
    check_against_oracle(f, oracle, points, dtype, conditioning=conditioning)


def _grad_of_grad(f, i, j):
    return jax.grad(lambda *a: jax.grad(f, argnums=i)(*a), argnums=j)


@pytest.mark.parametrize("signed", [False, True], ids=["pow", "pow-signed"])
def test_pow_second_derivatives_by_grad_of_grad(signed):
    """Reverse over reverse: the documented curvature at 0, and mixed entries that agree both ways round.

    At x = 0 both mixed entries are the documented 0 (reverse mode has no dense zero tangent to
    multiply an infinite curvature by); elsewhere x ** (p - 1) * (1 + p * log|x|), also at p = 1,
    where the rule used to give 1 one way round and the true value the other.
    """
    f = lambda x, p: safe.pow(x, p, signed=signed)
    second = jax.jit(jax.vmap(lambda x, p: [_grad_of_grad(f, i, j)(x, p) for i in (0, 1) for j in (0, 1)]))
    ps = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 1.0, 1.0, 2.4, 1.0, 1.0])
    xs = np.array([0.0] * 6 + [0.5, 2.0, 3.0] + ([-0.5, -2.0] if signed else [0.7, 9.0]))
    xx, xp, px, pp = (
        np.asarray(h, np.float64) for h in second(jnp.asarray(xs, jnp.float32), jnp.asarray(ps, jnp.float32))
    )
    at_zero = xs == 0
    np.testing.assert_array_equal(xx[at_zero], [0.0, 0.0, 0.0, np.inf, 2.0, 0.0])
    np.testing.assert_array_equal(np.stack([xp, px, pp])[:, at_zero], 0.0)
    a = np.abs(xs[~at_zero])
    p = ps[~at_zero]
    np.testing.assert_allclose(xp[~at_zero], a ** (p - 1) * (1 + p * np.log(a)), rtol=2e-6)
    np.testing.assert_allclose(px[~at_zero], xp[~at_zero], rtol=2e-6)


# --- eagerly, at the singular points: the documented values and subgradients ---------------------------


def test_singular_points_eagerly():
    zeros = [0.0, -0.0]
    for x in zeros:
        for f in (safe.sqrt, safe.cbrt):
            assert (float(f(x)), float(jax.grad(f)(x))) == (0.0, 0.0)
        assert float(jax.jvp(safe.sqrt, (x,), (1.0,))[1]) == 0.0
    for x, y in itertools.product(zeros, zeros):
        for f in (safe.hypot, safe.atan2, safe.div):
            value = f(x, y)
            assert float(value) == 0.0 and not np.signbit(value), f  # +0, not IEEE's ±0 or ±π or NaN
            assert [float(g) for g in jax.grad(f, argnums=(0, 1))(x, y)] == [0.0, 0.0], f
    assert float(safe.norm(jnp.zeros(3))) == 0.0
    np.testing.assert_array_equal(jax.grad(safe.norm)(jnp.zeros(3)), np.zeros(3))
    for p, (value, slope) in {0.0: (1.0, 0.0), 0.5: (0.0, 0.0), 1.0: (0.0, 1.0), 2.0: (0.0, 0.0)}.items():
        for x in zeros:
            assert (float(safe.pow(x, p)), [float(g) for g in jax.grad(safe.pow, argnums=(0, 1))(x, p)]) == (
                value,
                [slope, 0.0],
            )
            assert float(jax.grad(safe.pow)(x, p, signed=True)) == slope


def test_what_they_replace_is_not_finite_there():
    assert float(jax.grad(jnp.sqrt)(0.0)) == np.inf
    assert float(jax.grad(jnp.cbrt)(0.0)) == np.inf
    assert np.isnan(jax.grad(lambda v: jnp.linalg.norm(v))(jnp.zeros(3))).all()
    assert np.isnan(jax.grad(jnp.arctan2, argnums=(0, 1))(0.0, 0.0)).all()
    assert float(jax.grad(lambda x: x**0.5)(0.0)) == np.inf


def test_grad_of_grad_at_zero():  # jax.hessian at every singular point: the closed-form tests above
    for f in (safe.sqrt, safe.cbrt):
        assert float(jax.grad(jax.grad(f))(0.0)) == 0.0


def test_subnormal_inputs_act_as_zero():
    """XLA on CPU flushes subnormals to 0; the masks are computed there too, so a subnormal gets 0's conventions."""
    x = np.float32(1e-40)
    if float(jnp.asarray(x) * 1) != 0:  # a platform that keeps subnormals: they are ordinary numbers there
        x = np.float32(0.0)
    assert (float(safe.cbrt(-x)), float(jax.grad(safe.cbrt)(-x))) == (0.0, 0.0)  # jnp.cbrt(-1e-40) is -5.6e-16
    for f in (safe.hypot, safe.atan2, safe.div):
        assert [float(f(x, -x))] + [float(g) for g in jax.grad(f, argnums=(0, 1))(x, -x)] == [0.0, 0.0, 0.0], f
    assert float(safe.pow(-x, 1.5)) == 0.0


def test_outside_the_domain_is_nan_not_clipped():
    assert np.isnan(safe.sqrt(-1.0)) and np.isnan(jax.grad(safe.sqrt)(-1.0))
    assert np.isnan(safe.pow(-8.0, 0.5))  # NaN as jnp.power: no silent sign flip
    assert np.isnan(jax.grad(safe.pow)(-8.0, 0.5))
    assert np.isnan(jax.grad(safe.pow, argnums=1)(-2.0, 3.0))  # x ** p undefined for p near 3


def test_division_by_zero_and_zero_to_negative_powers_stay_infinite():
    assert [float(safe.div(x, y)) for x, y in [(1.0, 0.0), (-1.0, 0.0), (1.0, -0.0)]] == [np.inf, -np.inf, -np.inf]
    assert float(safe.pow(0.0, -1.5)) == np.inf
    assert float(jax.grad(safe.pow)(0.0, -1.5)) == -np.inf


def test_atan2_range_and_signed_zeros():
    assert float(safe.atan2(0.0, -2.0)) == pytest.approx(np.pi)
    assert float(safe.atan2(-0.0, -2.0)) == pytest.approx(-np.pi)  # IEEE: -0 below the negative x axis
    assert {float(safe.atan2(y, x)) for y in (0.0, -0.0) for x in (0.0, -0.0)} == {0.0}


# --- values against NumPy, derivatives of array arguments against finite differences --------------------


def test_values_match_numpy():
    x = RNG.uniform(-3, 3, (4, 5)).astype(np.float32)
    y = RNG.uniform(-3, 3, (4, 5)).astype(np.float32)
    a = np.abs(x)
    ours = jax.jit(
        lambda x, y, a: [
            safe.sqrt(a),
            safe.hypot(x, y),
            safe.norm(x),
            safe.norm(x, axis=0, keepdims=True),
            safe.norm(x, axis=(0, 1)),
            safe.atan2(y, x),
            safe.cbrt(x),
            safe.pow(a, 2.4),
            safe.pow(x, 1 / 2.4, signed=True),
            safe.pow(x, 3),
            safe.div(x, y),
        ]
    )(x, y, a)
    numpy = [
        np.sqrt(a),
        np.hypot(x, y),
        np.linalg.norm(x, axis=-1),
        np.linalg.norm(x, axis=0, keepdims=True),
        np.linalg.norm(x),
        np.arctan2(y, x),
        np.cbrt(x),
        np.power(a, 2.4),
        np.sign(x) * np.abs(x) ** (1 / 2.4),
        np.power(x, 3),
        x / y,
    ]
    for got, want in zip(ours, numpy, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


_LAYOUT = {"positive": (3,), "signed": (3,), "other": (3,), "powers": (3,), "matrix": (2, 3)}


def _all_of_them(flat):
    """Every function on array arguments, broadcasting included, as one vector (one finite-difference check)."""
    sizes = np.cumsum([0] + [int(np.prod(shape)) for shape in _LAYOUT.values()])
    a = {
        name: flat[start:stop].reshape(shape)
        for (name, shape), start, stop in zip(_LAYOUT.items(), sizes[:-1], sizes[1:], strict=True)
    }
    m = a["matrix"]
    outputs = [
        safe.sqrt(a["positive"]),
        safe.cbrt(a["signed"]),
        safe.hypot(m, a["other"]),  # (2, 3) with (3,)
        safe.norm(m),
        safe.norm(m, 0, True),
        safe.norm(m, axis=(0, 1)),
        safe.atan2(a["other"], m),
        safe.pow(a["positive"], a["powers"]),
        safe.pow(a["signed"], 1 / 3, signed=True),
        safe.pow(a["signed"], 3),  # a negative base with an integer power
        safe.div(m, a["other"]),
    ]
    return jnp.concatenate([jnp.ravel(o) for o in outputs])


def test_derivatives_match_finite_differences():
    flat = jnp.concatenate(
        [POSITIVE, SIGNED, OTHER, jnp.array([0.5, 2.4, -1.5]), jnp.array([0.3, -2.0, 1.5, 1.0, 2.0, -0.5])]
    )
    tk.check_grad(jax.jit(_all_of_them), flat, forward=False, vmap=False)  # forward mode, vmap: above


def test_broadcasting_sums_cotangents_back_to_each_argument():
    x = jnp.array([[0.3, -2.0, 1.5], [1.0, 2.0, -0.5]])
    y = jnp.array([2.0, 4.0, -1.0])

    @jax.jit
    def grads(x, y):
        return [jax.grad(lambda a, b: jnp.sum(f(a, b)), argnums=(0, 1))(x, y) for f in (safe.atan2, safe.div)]

    (atan2_dy, atan2_dx), (div_dx, div_dy) = grads(x, y)  # atan2(y, x): here x is the (2, 3) argument
    assert atan2_dy.shape == (2, 3) and atan2_dx.shape == (3,) and div_dy.shape == (3,)
    np.testing.assert_allclose(atan2_dx, -np.sum(x / (x**2 + y**2), 0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(div_dx, np.broadcast_to(1 / y, (2, 3)), rtol=1e-6)
    np.testing.assert_allclose(div_dy, -np.sum(x, 0) / y**2, rtol=1e-6)


# --- half precision: float64's answer to a half-precision tolerance -------------------------------------

HALF_CASES = [
    (safe.sqrt, o_sqrt, [(0.0,), (0.3,), (2.0,), (9.0,)]),
    (safe.cbrt, o_cbrt, [(0.0,), (-0.3,), (2.0,), (-9.0,)]),
    (safe.hypot, o_hypot, [(0.0, 0.0), (3.0, 4.0), (-1.5, 0.7), (0.0, -2.0)]),
    (lambda a, b: safe.norm(jnp.stack([a, b])), o_norm, [(0.0, 0.0), (3.0, 4.0), (-1.5, 0.7), (0.0, -2.0)]),
    (safe.atan2, o_atan2, [(0.0, 0.0), (3.0, 4.0), (-1.5, 0.7), (0.5, -2.0)]),
    (safe.pow, o_pow, [(0.0, 0.5), (0.0, 2.0), (2.0, 2.4), (0.5, 0.5)]),
    (lambda x, p: safe.pow(x, p, signed=True), o_pow_signed, [(0.0, 0.5), (-2.0, 2.4), (-0.5, 1 / 3), (2.0, 1.0)]),
    (safe.div, o_div, [(0.0, 0.0), (1.0, 4.0), (-1.5, 0.7), (2.0, -0.5)]),
]


@pytest.mark.parametrize(("dtype", "rtol"), [(jnp.float16, 4e-3), (jnp.bfloat16, 3e-2)], ids=["float16", "bfloat16"])
def test_half_precision_gives_float64s_answer(dtype, rtol):
    columns = [[jnp.asarray(np.array(c), dtype) for c in zip(*points, strict=True)] for _, _, points in HALF_CASES]

    def everything(columns):
        out = []
        for (f, _, _), cs in zip(HALF_CASES, columns, strict=True):
            out.append((jax.vmap(f)(*cs), jax.vmap(jax.grad(f, argnums=tuple(range(len(cs)))))(*cs)))
        return out

    for (_, oracle, points), cs, (value, grads) in zip(HALF_CASES, columns, jax.jit(everything)(columns), strict=True):
        assert value.dtype == dtype and all(g.dtype == dtype for g in grads)
        want_value, want_grads, _ = oracle(*(np.asarray(c.astype(jnp.float32)).astype(L) for c in cs))
        for got, want in [(value, want_value)] + list(zip(grads, want_grads, strict=True)):
            np.testing.assert_allclose(
                np.asarray(got, np.float64), want.astype(np.float64), rtol=rtol, atol=rtol, err_msg=str(points)
            )


# --- dtypes: JAX's promotion, weak types and cotangents in each argument's dtype ------------------------


def _kind(f, *args):
    out = jax.eval_shape(f, *args)
    return out.dtype, out.weak_type


def test_mixing_with_python_and_numpy_scalars_promotes_as_jax():
    a16 = jnp.array([0.5, 2.0], jnp.float16)
    a32 = jnp.array([0.5, 2.0], jnp.float32)
    bf = jnp.array([0.5, 2.0], jnp.bfloat16)
    pairs = [(safe.hypot, jnp.hypot), (safe.atan2, jnp.arctan2), (safe.div, jnp.divide), (safe.pow, jnp.power)]
    mixes = [(a16, 2.0), (2.0, a16), (bf, np.float16(2.0)), (a32, np.float32(2.0)), (2.0, 3.0), (a32, 2)]
    for (ours, theirs), (a, b) in itertools.product(pairs, mixes):
        assert _kind(ours, a, b) == _kind(theirs, a, b), (ours, a, b)
    for ours, theirs in [(safe.sqrt, jnp.sqrt), (safe.cbrt, jnp.cbrt), (safe.norm, jnp.linalg.norm)]:
        for a in [a16, bf, jnp.array([3, 4]), np.float32(2.0), 2.0]:
            if ours is not safe.norm or np.ndim(a):
                assert _kind(ours, a) == _kind(theirs, a), (ours, a)
    with jax.enable_x64(True):
        for (ours, theirs), (a, b) in itertools.product(
            pairs[:2], [(a32, np.float64(2.0)), (np.float64(2.0), a16), (2.0, 3.0)]
        ):
            assert _kind(ours, a, b) == _kind(theirs, a, b), (ours, a, b)
        for ours, theirs in [(safe.sqrt, jnp.sqrt), (safe.cbrt, jnp.cbrt)]:
            for a in [2.0, np.float64(2.0), np.float32(2.0)]:
                assert _kind(ours, a) == _kind(theirs, a), (ours, a)
    assert float(safe.norm(jnp.array([30000, 40000]))) == 50000.0  # integers converted before squaring


def test_cotangents_have_each_arguments_dtype():
    a16 = jnp.array([0.5, 2.0], jnp.float16)
    for f in (safe.hypot, safe.atan2, safe.div, safe.pow):
        g16, g32 = jax.eval_shape(
            jax.grad(lambda a, b: jnp.sum(f(a, b)).astype(jnp.float32), argnums=(0, 1)), a16, jnp.float32(1.5)
        )
        assert (g16.dtype, g32.dtype) == (jnp.float16, jnp.float32), f


# --- in the hot loops the colour module runs ------------------------------------------------------------


def test_jit_vmap_gradients_with_singular_points_in_the_batch():
    a = jnp.array([0.0, 3.0, 0.0, -1.0])
    b = jnp.array([0.0, 4.0, 2.0, 0.0])

    def loss(a, b):
        return safe.hypot(a, b) + safe.atan2(b, a) + safe.sqrt(safe.hypot(a, b)) + safe.div(a, safe.hypot(a, b))

    grads = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1))))(a, b)
    assert all(np.all(np.isfinite(g)) for g in grads)
    r = np.hypot(3.0, 4.0)
    expected_da = 3 / r - 4 / r**2 + 0.5 * r**-0.5 * 3 / r + (1 / r - 3 * 3 / r**3)
    assert float(grads[0][1]) == pytest.approx(expected_da, rel=1e-5)


_hypot_grad = jax.jit(jax.vmap(jax.grad(safe.hypot, argnums=(0, 1))))
_finite = st.floats(-1e3, 1e3, width=32, allow_subnormal=False) | st.just(0.0)  # XLA flushes subnormals to 0


@settings(max_examples=25)
@given(st.lists(st.tuples(_finite, _finite), min_size=8, max_size=8))
def test_hypot_gradient_is_a_unit_vector_or_zero(points):
    x, y = (jnp.array(c, dtype=jnp.float32) for c in zip(*points, strict=True))
    gx, gy = _hypot_grad(x, y)
    length = np.hypot(gx, gy)
    at_origin = (np.asarray(x) == 0) & (np.asarray(y) == 0)
    np.testing.assert_array_equal(length[at_origin], 0.0)
    np.testing.assert_allclose(length[~at_origin], 1.0, rtol=1e-6)

"""``toolkit.safe``: usual values and derivatives away from the singular points, documented finite ones at them.

Oracles: NumPy for values, ``tk.check_adjoint`` (central differences in float64)
for derivatives away from the singular points, and the subgradients each
docstring promises at them.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jax
import jax.numpy as jnp

import toolkit as tk
from toolkit import safe

RNG = np.random.default_rng(0)
POSITIVE = jnp.array([0.5, 2.0, 9.0])
SIGNED = jnp.array([-1.5, 0.7, 2.5])
OTHER = jnp.array([1.2, -0.4, 0.9])


def second_derivative(f):
    return jax.jit(jax.grad(jax.grad(f)))


def hessian(f, **kwargs):
    return jax.jit(jax.hessian(f, **kwargs))


def jacfwd(f, **kwargs):
    return jax.jit(jax.jacfwd(f, **kwargs))


# --- values: the same as NumPy ----------------------------------------------------------


def test_values_match_numpy():
    x = RNG.uniform(-3, 3, (4, 5)).astype(np.float32)
    y = RNG.uniform(-3, 3, (4, 5)).astype(np.float32)
    a = np.abs(x)
    close = dict(rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(safe.sqrt(a), np.sqrt(a), **close)
    np.testing.assert_allclose(safe.hypot(x, y), np.hypot(x, y), **close)
    np.testing.assert_allclose(safe.norm(x), np.linalg.norm(x, axis=-1), **close)
    np.testing.assert_allclose(safe.norm(x, axis=0, keepdims=True), np.linalg.norm(x, axis=0, keepdims=True), **close)
    np.testing.assert_allclose(safe.atan2(y, x), np.arctan2(y, x), **close)
    np.testing.assert_allclose(safe.cbrt(x), np.cbrt(x), **close)
    np.testing.assert_allclose(safe.pow(a, 2.4), np.power(a, 2.4), **close)
    np.testing.assert_allclose(safe.pow(x, 1 / 2.4, signed=True), np.sign(x) * np.abs(x) ** (1 / 2.4), **close)
    np.testing.assert_allclose(safe.pow(x, 3), np.power(x, 3), **close)
    np.testing.assert_allclose(safe.div(x, y), x / y, **close)


# --- derivatives away from the singular points: float64 finite differences ----------------


@pytest.mark.parametrize(
    ("f", "args", "kwargs"),
    [
        (safe.sqrt, (POSITIVE,), {}),
        (safe.hypot, (SIGNED, OTHER), {}),
        (safe.norm, (jnp.stack([SIGNED, OTHER]),), {}),
        (safe.norm, (jnp.stack([SIGNED, OTHER]), 0, True), {}),
        (safe.atan2, (OTHER, SIGNED), {}),
        (safe.cbrt, (SIGNED,), {}),
        (safe.pow, (POSITIVE, 1 / 2.4), {}),
        (safe.pow, (POSITIVE, jnp.array([0.5, 2.4, -1.5])), {}),
        (safe.pow, (SIGNED, 1 / 3), {"signed": True}),
        (safe.pow, (SIGNED, 3), {}),  # a negative base with an integer power
        (safe.div, (SIGNED, OTHER), {}),
    ],
    ids=["sqrt", "hypot", "norm", "norm-axis0", "atan2", "cbrt", "pow", "pow-array-p", "pow-signed", "pow-int", "div"],
)
def test_derivatives_match_finite_differences(f, args, kwargs):
    tk.check_adjoint(f, *args, forward=True, **kwargs)


def test_broadcasting_sums_cotangents_back_to_each_argument():
    x = jnp.array([[0.3, -2.0, 1.5], [1.0, 2.0, -0.5]])
    tk.check_adjoint(safe.hypot, x, OTHER)
    tk.check_adjoint(safe.pow, jnp.abs(x) + 0.1, jnp.array([0.5, 2.4, 1.0]))
    dx, dy = jax.grad(lambda x, y: jnp.sum(safe.atan2(y, x)), argnums=(0, 1))(x, 1.0)
    assert dx.shape == (2, 3) and dy.shape == ()
    np.testing.assert_allclose(dy, np.sum(x / (x**2 + 1)), rtol=1e-6)


# --- at the singular points: the documented, finite values --------------------------------


def test_sqrt_at_zero():
    assert float(jax.grad(safe.sqrt)(0.0)) == 0.0
    assert float(jax.jvp(safe.sqrt, (0.0,), (1.0,))[1]) == 0.0
    assert float(second_derivative(safe.sqrt)(0.0)) == 0.0
    assert float(hessian(safe.sqrt)(0.0)) == 0.0
    assert float(jax.grad(jnp.sqrt)(0.0)) == np.inf  # what it replaces


def test_hypot_and_norm_at_the_origin():
    assert [float(g) for g in jax.grad(safe.hypot, argnums=(0, 1))(0.0, 0.0)] == [0.0, 0.0]
    assert [float(g) for g in jacfwd(safe.hypot, argnums=(0, 1))(0.0, 0.0)] == [0.0, 0.0]
    assert np.all(np.isfinite(hessian(safe.hypot)(0.0, 0.0)))
    np.testing.assert_array_equal(jax.grad(safe.norm)(jnp.zeros(3)), jnp.zeros(3))
    np.testing.assert_array_equal(jacfwd(safe.norm)(jnp.zeros(3)), jnp.zeros(3))
    np.testing.assert_array_equal(hessian(safe.norm)(jnp.zeros(3)), jnp.zeros((3, 3)))
    assert np.isnan(jax.grad(lambda v: jnp.linalg.norm(v))(jnp.zeros(3))).all()  # what it replaces


def test_atan2_at_the_origin():
    zeros = [0.0, -0.0]
    assert {float(safe.atan2(y, x)) for y in zeros for x in zeros} == {0.0}
    assert [abs(float(g)) for g in jax.grad(safe.atan2, argnums=(0, 1))(0.0, 0.0)] == [0.0, 0.0]
    assert [abs(float(g)) for g in jacfwd(safe.atan2, argnums=(0, 1))(0.0, 0.0)] == [0.0, 0.0]
    assert np.all(np.isfinite(hessian(safe.atan2, argnums=(0, 1))(0.0, 0.0)))


def test_cbrt_at_zero_and_for_negative_numbers():
    assert float(jax.grad(safe.cbrt)(0.0)) == 0.0
    assert float(jax.jvp(safe.cbrt, (0.0,), (1.0,))[1]) == 0.0
    assert float(second_derivative(safe.cbrt)(0.0)) == 0.0
    assert float(safe.cbrt(-8.0)) == -2.0
    assert float(jax.grad(safe.cbrt)(-8.0)) == pytest.approx(1 / 12, rel=1e-6)


@pytest.mark.parametrize(
    ("p", "slope", "curvature"), [(0.0, 0.0, 0.0), (0.5, 0.0, 0.0), (1.0, 1.0, 0.0), (2.0, 0.0, 2.0), (3.0, 0.0, 0.0)]
)
def test_pow_at_zero(p, slope, curvature):
    assert float(jax.grad(safe.pow)(0.0, p)) == slope
    assert float(jax.jvp(lambda x: safe.pow(x, p), (0.0,), (1.0,))[1]) == slope
    assert float(second_derivative(lambda x: safe.pow(x, p))(0.0)) == curvature
    assert float(jax.grad(safe.pow, argnums=1)(0.0, p)) == 0.0
    assert float(safe.pow(0.0, p)) == (1.0 if p == 0 else 0.0)


def test_pow_with_negative_bases():
    assert np.isnan(safe.pow(-8.0, 0.5))  # NaN as jnp.power: no silent sign flip
    assert float(safe.pow(-8.0, 1 / 3, signed=True)) == pytest.approx(-2.0, rel=1e-6)
    assert float(jax.grad(safe.pow)(-8.0, 1 / 3, signed=True)) == pytest.approx(1 / 12, rel=1e-6)
    assert float(jax.grad(safe.pow)(0.0, 1 / 3, signed=True)) == 0.0
    assert float(safe.pow(-2.0, 3.0)) == -8.0
    assert float(jax.grad(safe.pow)(-2.0, 3.0)) == 12.0


def test_div_at_zero_over_zero():
    assert float(safe.div(0.0, 0.0)) == 0.0
    assert [abs(float(g)) for g in jax.grad(safe.div, argnums=(0, 1))(0.0, 0.0)] == [0.0, 0.0]
    assert [abs(float(g)) for g in jacfwd(safe.div, argnums=(0, 1))(0.0, 0.0)] == [0.0, 0.0]
    assert np.all(np.isfinite(hessian(safe.div, argnums=(0, 1))(0.0, 0.0)))
    assert float(safe.div(1.0, 0.0)) == np.inf  # a true division by zero stays one


def test_outside_the_domain_is_nan_not_clipped():
    assert np.isnan(safe.sqrt(-1.0)) and np.isnan(jax.grad(safe.sqrt)(-1.0))
    assert np.isnan(jax.grad(safe.pow)(-8.0, 0.5))


# --- in the hot loops the colour module runs ------------------------------------------


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
    x, y = (jnp.array(c, dtype=jnp.float32) for c in zip(*points))
    gx, gy = _hypot_grad(x, y)
    length = np.hypot(gx, gy)
    at_origin = (np.asarray(x) == 0) & (np.asarray(y) == 0)
    np.testing.assert_array_equal(length[at_origin], 0.0)
    np.testing.assert_allclose(length[~at_origin], 1.0, rtol=1e-6)

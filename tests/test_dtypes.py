"""Every dtype JAX offers gives a right answer in its dtype: the core functions, over the whole matrix.

{float16, bfloat16, float32, float64} × {x64 off, on} × {mixed with a Python float, with a NumPy scalar}.
Oracles: the dtype is whatever JAX's own promotion gives for the same plain computation (``jax.grad``
of the function written without toolkit), and the values are the float64 analytic derivatives,
compared to a tolerance fitting the dtype. (Colour functions: tests/colour/test_dtypes.py; the safe
primitives: tests/test_safe.py.)
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk

pytestmark = pytest.mark.filterwarnings(
    "ignore:Explicitly requested dtype float64"
)  # float64 without x64 is float32, as JAX says

DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64]
TOLERANCE = {"float16": 1e-2, "bfloat16": 5e-2, "float32": 1e-5, "float64": 1e-12}
MIXES = {"python-float": lambda v: float(v), "numpy-scalar": lambda v: np.float64(v)}
MATRIX = list(itertools.product(DTYPES, [False, True], MIXES))
IDS = [f"{d.__name__}-{'x64' if x64 else 'x32'}-{mix}" for d, x64, mix in MATRIX]
X = np.array([0.5, -1.25, 2.0])


@pytest.fixture(params=MATRIX, ids=IDS)
def case(request):
    dtype, x64, mix = request.param
    with jax.enable_x64(x64):
        yield jnp.asarray(X, dtype), MIXES[mix](1.5)


def close(got, expected, like, x):
    """``got`` has ``like``'s dtype and matches the float64 ``expected`` to the tolerance of the least precise dtype.

    ``x`` is the case's array input: a float32 gradient computed from float16 values is as precise as float16.
    """
    assert jnp.asarray(got).dtype == jnp.asarray(like).dtype, (jnp.asarray(got).dtype, jnp.asarray(like).dtype)
    got = np.asarray(jnp.asarray(got, jnp.float32) if jnp.asarray(got).dtype == jnp.bfloat16 else got, np.float64)
    assert np.all(np.isfinite(got))
    tolerance = max(TOLERANCE[jnp.dtype(jnp.asarray(like).dtype).name], TOLERANCE[jnp.dtype(x.dtype).name])
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


def f(x, c):
    return jnp.sum(jnp.sin(x) * c) + c * jnp.sum(x * x)


def df(x, c):  # the analytic gradient, in float64
    return np.cos(X) * float(c) + 2 * float(c) * X, np.sum(np.sin(X)) + np.sum(X * X)


def test_gradient_withgradient_and_pullback(case):
    x, c = case
    jax_dx, jax_dc = jax.grad(f, argnums=(0, 1))(x, c)  # JAX's dtypes are the oracle for ours
    dx, dc = tk.gradient(f, x, c)
    close(dx, df(x, c)[0], jax_dx, x)
    close(dc, df(x, c)[1], jax_dc, x)
    value, (dx, _) = tk.withgradient(f, x, c)
    close(value, np.sum(np.sin(X)) * 1.5 + 1.5 * np.sum(X * X), f(x, c), x)
    close(dx, df(x, c)[0], jax_dx, x)
    out, back = tk.pullback(lambda x: jnp.sin(x) * c, x)
    (dx,) = back(jnp.ones_like(out))
    close(dx, np.cos(X) * 1.5, jax.grad(lambda x: jnp.sum(jnp.sin(x) * c))(x), x)


def test_jacobian_and_hessian(case):
    x, c = case
    (j,) = tk.jacobian(lambda x: jnp.sin(x) * c, x)
    close(j, np.diag(np.cos(X) * 1.5), jax.jacrev(lambda x: jnp.sin(x) * c)(x), x)
    h = tk.hessian(lambda x: f(x, c), x)
    close(h, np.diag(-np.sin(X) * 1.5 + 3.0), jax.hessian(lambda x: f(x, c))(x), x)


@tk.adjoint
def scale(x, *, factor):
    return x * factor, lambda Δ: (Δ * factor, {"factor": jnp.sum(Δ * x)})


@tk.adjoint
def root(x):
    y = jnp.sqrt(x)
    return y, lambda Δ: (Δ / (2 * y),)


def test_adjoint_rules_take_weakly_typed_and_numpy_scalar_arguments(case):
    """The README's keyword rule: a Python-float ``factor`` takes any floating cotangent, as JAX promotes."""
    x, c = case
    plain = lambda x, factor: jnp.sum(x * factor)  # noqa: E731
    jax_dx, jax_dc = jax.grad(plain, argnums=(0, 1))(x, c)
    dx = jax.grad(lambda x: jnp.sum(scale(x, factor=c)))(x)
    dc = jax.grad(lambda c: jnp.sum(scale(x, factor=c)))(c)
    close(dx, np.full(3, 1.5), jax_dx, x)
    close(dc, np.sum(X), jax_dc, x)
    y = jnp.abs(x) + c
    close(
        jax.grad(lambda y: jnp.sum(root(y)))(y),
        0.5 / np.sqrt(np.abs(X) + 1.5),
        jax.grad(lambda y: jnp.sum(jnp.sqrt(y)))(y),
        x,
    )


def test_tree_maths_and_losses(case):
    x, c = case
    tree = {"x": x, "c": c}
    close(tk.tree.sum(tree), np.sum(X) + 1.5, jnp.sum(x) + c, x)
    close(tk.tree.dot(tree, tree), np.sum(X * X) + 2.25, jnp.sum(x * x) + c * c, x)
    close(tk.tree.norm(tree), np.sqrt(np.sum(X * X) + 2.25), jnp.sqrt(jnp.sum(x * x) + c * c), x)
    close(tk.mse(x, c), np.mean((X - 1.5) ** 2), jnp.mean((x - c) ** 2), x)
    close(tk.mae(x, x * c), np.mean(np.abs(X - X * 1.5)), jnp.mean(jnp.abs(x - x * c)), x)


@pytest.mark.parametrize("rule", ["Descent", "Momentum", "Nesterov", "Adam"])
def test_optimiser_steps_keep_the_parameters_dtype(case, rule):
    x, c = case
    opt = getattr(tk, rule)(0.125)
    params, state = tk.update(opt, tk.setup(opt, x), x, jnp.asarray(2 * X, x.dtype) * c)
    g = 2 * X * 1.5
    expected = {
        "Descent": X - 0.125 * g,
        "Momentum": X - 0.125 * g,
        "Nesterov": X - (1 + 0.9) * 0.125 * g,
        "Adam": X - 0.125 * g / (np.abs(g) + 1e-8),  # the first Adam step: m̂ = g, ŝ = g²
    }[rule]
    close(params, expected, x, x)


def test_optimise_runs_in_the_parameters_dtype(case):
    x, c = case
    target = jnp.asarray([1.0, -2.0, 0.5], x.dtype)
    result = tk.optimise(lambda p: tk.mse(p * c, target * c), x, tk.Descent(0.2), steps=60)
    p, t = X.copy(), np.array([1.0, -2.0, 0.5])
    for _ in range(60):  # Descent by hand in float64: the gradient of mean((c p - c t)²) is 2c²(p - t)/3
        p = p - 0.2 * 2 * 1.5**2 * (p - t) / 3
    close(result.params, p, x, x)
    assert result.losses.dtype == jnp.asarray(tk.mse(x * c, target * c)).dtype

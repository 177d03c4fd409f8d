"""``@tk.adjoint``: rules are used, the forward runs once, arguments sort themselves, every transform works.

Oracles: analytic derivatives, finite differences in float64, JAX's own AD of
the same maths, and rules whose gradient deliberately differs from the primal's
true derivative (so that a passing test proves JAX used the rule).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from toolkit.adjoints import forward_mode_problem


@tk.adjoint
def sqrt(x):
    y = jnp.sqrt(x)
    return y, lambda Δ: (Δ / (2 * y),)


@tk.adjoint
def straight_through_floor(x):
    """Gradient 1 where jnp.floor's is 0: proves that JAX uses the rule."""
    return jnp.floor(x), lambda Δ: (Δ,)


@tk.adjoint
def weighted(x, w):
    return x * w, lambda Δ: (Δ * w, Δ * x)


@tk.adjoint
def clip_gradient(x):
    """A non-linear pullback: reverse mode only."""
    return x * 1.0, lambda Δ: (jnp.clip(Δ, -1.0, 1.0),)


@tk.struct
class GG:
    a: jax.Array
    b: jax.Array


@tk.adjoint
def gg_energy(g, scale):
    value = scale * jnp.sum(g.a * g.a) + jnp.sum(g.b)
    return value, lambda Δ: (GG(2 * scale * Δ * g.a, Δ * jnp.ones_like(g.b)), Δ * jnp.sum(g.a * g.a))


X = jnp.array([1.0, 4.0, 9.0])


def central_difference(f, x, h=1e-6):
    """Float64 central differences of a scalar or vector function of a vector (columns per input element)."""
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e.flat[j] = h
        columns.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    return np.stack(columns, axis=-1)


def count_primitive(jaxpr, name):
    """Number of equations calling primitive ``name``, sub-jaxprs included."""
    total = 0
    for eqn in jaxpr.eqns:
        total += eqn.primitive.name == name
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else [param]:
                inner = getattr(sub, "jaxpr", None)
                if inner is not None and hasattr(inner, "eqns"):
                    total += count_primitive(inner, name)
                elif hasattr(sub, "eqns"):
                    total += count_primitive(sub, name)
    return total


# --- behaves like the primal; JAX uses the rule -------------------------------------


def test_value_is_the_primal():
    assert float(sqrt(4.0)) == 2.0
    np.testing.assert_array_equal(sqrt(X), jnp.sqrt(X))
    np.testing.assert_array_equal(straight_through_floor(jnp.array([1.5, -0.5])), [1.0, -1.0])


def test_reverse_mode_uses_the_rule():
    np.testing.assert_allclose(jax.grad(lambda x: jnp.sum(sqrt(x)))(X), 0.5 / jnp.sqrt(X), rtol=1e-6)
    np.testing.assert_array_equal(jax.grad(lambda x: jnp.sum(straight_through_floor(x)))(X + 0.5), jnp.ones(3))
    assert float(jax.grad(lambda x: jnp.sum(jnp.floor(x)))(1.5)) == 0.0  # what JAX alone would say


def test_the_decorated_function_keeps_its_name_and_docstring():
    assert straight_through_floor.__name__ == "straight_through_floor"
    assert "proves that JAX uses the rule" in straight_through_floor.__doc__


# --- the forward runs once -------------------------------------------------------------


def counting_sqrt(counter):
    @tk.adjoint
    def root(x):
        jax.debug.callback(lambda: counter.append(1))
        y = jnp.sqrt(x)
        return y, lambda Δ: (Δ / (2 * y),)

    return root


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_forward_runs_once_per_gradient(compiled):
    counter = []
    root = counting_sqrt(counter)
    grad = jax.grad(lambda x: jnp.sum(root(x)))
    grad = jax.jit(grad) if compiled else grad
    jax.block_until_ready(grad(X))
    assert len(counter) == 1
    counter.clear()
    jax.block_until_ready(jax.value_and_grad(lambda x: jnp.sum(root(x)))(X))
    assert len(counter) == 1


def test_the_backward_pass_does_not_recompute_the_primal():
    jaxpr = jax.make_jaxpr(jax.grad(lambda x: jnp.sum(sqrt(x))))(X).jaxpr
    assert count_primitive(jaxpr, "sqrt") == 1
    jaxpr = jax.make_jaxpr(jax.jit(jax.value_and_grad(lambda x: jnp.sum(sqrt(x)))))(X).jaxpr
    assert count_primitive(jaxpr, "sqrt") == 1


def test_non_linear_rule_also_runs_its_forward_once():
    counter = []

    @tk.adjoint
    def clipped_sqrt(x):
        jax.debug.callback(lambda: counter.append(1))
        y = jnp.sqrt(x)
        return y, lambda Δ: (jnp.clip(Δ / (2 * y), -1.0, 1.0),)

    grad = jax.jit(jax.grad(lambda x: jnp.sum(clipped_sqrt(x))))
    np.testing.assert_allclose(grad(jnp.array([0.01, 4.0])), [1.0, 0.25])
    assert len(counter) == 1
    jaxpr = jax.make_jaxpr(jax.grad(lambda x: jnp.sum(clipped_sqrt(x))))(X).jaxpr
    assert count_primitive(jaxpr, "sqrt") == 1


# --- arguments are sorted from the signature ----------------------------------------


def test_non_differentiable_arguments_pass_through_untouched():
    seen = {}

    @tk.adjoint
    def mixed(x, n, label, f, nothing, flag, mask):
        seen.update(n=n, label=label, f=f, nothing=nothing, flag=flag, mask_dtype=jnp.result_type(mask))
        y = f(x) * n
        return y, lambda Δ: (Δ * n * jnp.cos(x) * mask, None, None, None, None, None, None)

    mask = jnp.array([1, 0, 1])
    grads = tk.gradient(lambda x: jnp.sum(mixed(x, 3, "three", jnp.sin, None, True, mask)), X)
    assert seen["n"] == 3 and type(seen["n"]) is int
    assert seen["label"] == "three" and seen["f"] is jnp.sin and seen["nothing"] is None and seen["flag"] is True
    assert jnp.issubdtype(seen["mask_dtype"], jnp.integer)
    np.testing.assert_allclose(grads[0], 3 * jnp.cos(X) * mask, rtol=1e-6)
    all_grads = tk.gradient(lambda x, n, m: jnp.sum(mixed(x, n, "s", jnp.sin, None, False, m)), X, 3, mask)
    assert all_grads[1] is None and all_grads[2] is None


def test_integer_arrays_are_traced_values_under_jit():
    @tk.adjoint
    def power(x, n):
        return x**n, lambda Δ: (Δ * n * x ** (n - 1), None)

    grad = jax.jit(jax.grad(power))
    assert float(grad(2.0, jnp.array(3))) == 12.0
    assert float(grad(2.0, jnp.array(2))) == 4.0  # same compilation, new integer value


def test_arguments_passed_by_keyword_are_sorted_by_the_signature():
    (dx, dw) = tk.gradient(lambda x, w: jnp.sum(weighted(w=w, x=x)), X, 2 * X)
    np.testing.assert_allclose(dx, 2 * X)
    np.testing.assert_allclose(dw, X)


def test_defaults_and_varargs_each_get_a_cotangent():
    @tk.adjoint
    def total(x, *more, scale=2.0):
        value = scale * (x + sum(more))
        return value, lambda Δ: (Δ * scale, *(Δ * scale for _ in more), {"scale": Δ * (x + sum(more))})

    grads = jax.grad(lambda a, b, c: total(a, b, c), argnums=(0, 1, 2))(1.0, 2.0, 3.0)
    assert [float(g) for g in grads] == [2.0, 2.0, 2.0]
    assert float(jax.grad(lambda s: total(1.0, 2.0, scale=s))(5.0)) == 3.0


def test_keyword_only_float_arguments_get_cotangents_from_a_trailing_dict():
    @tk.adjoint
    def scale(x, *, factor):
        return x * factor, lambda Δ: (Δ * factor, {"factor": jnp.sum(Δ * x)})

    dx, dfactor = jax.grad(lambda x, f: jnp.sum(scale(x, factor=f)), argnums=(0, 1))(X, 3.0)
    np.testing.assert_allclose(dx, 3 * jnp.ones(3))
    assert float(dfactor) == float(jnp.sum(X))


def test_none_for_a_float_argument_means_zero():
    @tk.adjoint
    def first(x, y):
        return x + 0 * y, lambda Δ: (Δ, None)

    dx, dy = jax.grad(lambda x, y: jnp.sum(first(x, y)), argnums=(0, 1))(X, X)
    np.testing.assert_array_equal(dx, jnp.ones(3))
    np.testing.assert_array_equal(dy, jnp.zeros(3))


def test_struct_arguments_get_struct_cotangents():
    g = GG(jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
    dg, dscale = tk.gradient(gg_energy, g, 3.0)
    assert isinstance(dg, GG)
    np.testing.assert_allclose(dg.a, 6 * g.a)
    np.testing.assert_allclose(dg.b, jnp.ones(2))
    assert float(dscale) == 5.0


# --- transformations -------------------------------------------------------------------


def test_jit_vmap_and_scan():
    expected = 0.5 / jnp.sqrt(X)
    np.testing.assert_allclose(jax.jit(jax.vmap(jax.grad(sqrt)))(X), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(lambda x: jnp.sum(sqrt(x))))(X[:, None])[:, 0], expected, rtol=1e-6)

    def scanned(x):
        total, _ = jax.lax.scan(lambda carry, xi: (carry + sqrt(xi) * carry, None), 1.0, x)
        return total

    def scanned_plain(x):
        total, _ = jax.lax.scan(lambda carry, xi: (carry + jnp.sqrt(xi) * carry, None), 1.0, x)
        return total

    assert float(scanned(X)) == float(scanned_plain(X))
    np.testing.assert_allclose(jax.jit(jax.grad(scanned))(X), jax.grad(scanned_plain)(X), rtol=1e-6)


def test_struct_rule_under_jit_and_vmap():
    g = GG(jnp.ones((4, 2)), jnp.ones((4, 2)))
    grads = jax.jit(jax.vmap(lambda g: tk.gradient(gg_energy, g, 2.0)[0]))(g)
    assert isinstance(grads, GG)
    np.testing.assert_allclose(grads.a, 4 * jnp.ones((4, 2)))


def test_grad_of_grad_and_forward_over_reverse(x64):
    x = jnp.array(4.0)
    exact_second = -0.25 * x**-1.5
    assert float(jax.grad(jax.grad(sqrt))(x)) == pytest.approx(float(exact_second), rel=1e-12)
    assert float(jax.jacfwd(jax.grad(sqrt))(x)) == pytest.approx(float(exact_second), rel=1e-12)
    third = jax.grad(jax.grad(jax.grad(sqrt)))(x)
    assert float(third) == pytest.approx(0.375 * 4.0**-2.5, rel=1e-12)


def test_forward_mode_hessian_and_grad_of_grad_agree_with_finite_differences(x64):
    x = jnp.array([1.0, 4.0, 9.0])
    w = jnp.array([0.5, -2.0, 3.0])

    def plain(v):
        return v[:3] * v[3:]

    v = np.concatenate([x, w])
    fd_jacobian = central_difference(plain, v)
    primal, tangent = jax.jvp(weighted, (x, w), (jnp.ones(3), jnp.zeros(3)))
    np.testing.assert_allclose(tangent, fd_jacobian[:, :3] @ np.ones(3), rtol=1e-8)
    jacobian = jax.jit(jax.jacfwd(lambda v: weighted(v[:3], v[3:])))(v)
    np.testing.assert_allclose(jacobian, fd_jacobian, rtol=1e-8, atol=1e-10)

    def energy(v):
        return jnp.sum(sqrt(v) * v)

    fd_hessian = central_difference(lambda v: central_difference(lambda u: np.sum(np.sqrt(u) * u), v, 1e-4), x, 1e-4)
    np.testing.assert_allclose(jax.hessian(energy)(x), fd_hessian, rtol=1e-5, atol=1e-6)  # eager
    np.testing.assert_allclose(jax.jit(jax.jacfwd(jax.jacfwd(energy)))(x), fd_hessian, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda x: tk.hessian(energy, x))(x), fd_hessian, rtol=1e-5, atol=1e-6)
    grad_of_grad = jax.jit(jax.jacrev(jax.grad(energy)))(x)
    np.testing.assert_allclose(grad_of_grad, fd_hessian, rtol=1e-5, atol=1e-6)


def test_pytree_values_get_pytree_cotangents_in_both_modes():
    @tk.adjoint
    def polar(x, y):
        r, t = jnp.hypot(x, y), jnp.arctan2(y, x)
        return {"r": r, "t": t}, lambda Δ: (Δ["r"] * x / r - Δ["t"] * y / r**2, Δ["r"] * y / r + Δ["t"] * x / r**2)

    def plain(v):
        return {"r": jnp.hypot(v[0], v[1]), "t": jnp.arctan2(v[1], v[0])}

    v = jnp.array([3.0, 4.0])
    expected = jax.jacrev(plain)(v)  # JAX's own AD of the same maths
    for jacobian in (jax.jacrev, jax.jacfwd):
        got = jax.jit(jacobian(lambda v: polar(v[0], v[1])))(v)
        for key in ("r", "t"):
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-6)


# --- non-linear pullbacks: reverse mode only ----------------------------------------


def test_non_linear_pullback_works_in_reverse_mode():
    grad = jax.grad(lambda x: jnp.sum(5 * clip_gradient(x)))
    np.testing.assert_array_equal(grad(X), jnp.ones(3))
    np.testing.assert_array_equal(jax.jit(jax.vmap(jax.grad(lambda x: 5 * clip_gradient(x))))(X), jnp.ones(3))
    assert float(jax.jacrev(jax.jacrev(lambda x: clip_gradient(x**2)))(3.0)) == 2.0  # reverse over reverse
    assert float(jax.grad(jax.grad(lambda x: clip_gradient(x**2)))(0.25)) == 2.0


def test_nested_reverse_mode_sees_a_non_linear_rule():
    """The inner value, differentiated again by an outer grad, comes through the rule: clip(5) * 2x, not 5 * 2x."""
    outer = jax.grad(lambda x: jax.value_and_grad(lambda y: 5 * clip_gradient(y**2))(x)[0])
    assert float(outer(3.0)) == 6.0  # the plain derivative of 5 y² would be 30
    assert float(outer(3.0)) == float(jax.grad(lambda y: 5 * clip_gradient(y**2))(3.0))


@pytest.mark.parametrize(
    "forward",
    [
        lambda f: jax.jvp(f, (1.0,), (1.0,)),
        lambda f: jax.jit(lambda x: jax.jvp(f, (x,), (1.0,)))(1.0),
        lambda f: jax.jacfwd(f)(X),
    ],
    ids=["jvp", "jit(jvp)", "jacfwd"],
)
def test_forward_mode_of_a_non_linear_pullback_is_refused_and_explained(forward):
    with pytest.raises(TypeError, match="forward-mode"):
        forward(clip_gradient)
    problem = forward_mode_problem(clip_gradient, 1.0)
    assert "'min'" in problem  # what in the pullback could not be transposed


# --- errors name the rule and the argument ------------------------------------------


def rule_error(rule, *args):
    """The error a malformed rule raises when it is first used (a plain call, no AD)."""
    with pytest.raises((TypeError, ValueError)) as error:
        rule(*args)
    return str(error.value)


def test_error_pullback_returns_a_non_tuple():
    @tk.adjoint
    def bare(x):
        return x * 2, lambda Δ: Δ * 2

    message = rule_error(bare, X)
    assert "bare" in message and "tuple" in message and "(x)" in message and "right:" in message


def test_error_pullback_returns_the_wrong_count():
    @tk.adjoint
    def two(x, y):
        return x * y, lambda Δ: (Δ * y,)

    message = rule_error(two, X, X)
    assert "two" in message and "a tuple of 1" in message and "expected 2" in message and "x, y" in message


def test_error_cotangent_with_the_wrong_structure():
    @tk.adjoint
    def as_dict(g):
        return jnp.sum(g.a), lambda Δ: ({"a": Δ * jnp.ones_like(g.a), "b": None},)

    message = rule_error(as_dict, GG(X, X))
    assert "as_dict" in message and "argument `g`" in message and "GG" in message and "expected" in message


def test_error_cotangent_with_the_wrong_shape_names_the_leaf():
    @tk.adjoint
    def short(g):
        return jnp.sum(g.a), lambda Δ: (GG(Δ * jnp.ones(2), None),)

    message = rule_error(short, GG(X, X))
    assert "short" in message and "`g.a`" in message and "(2,)" in message and "f32[3]" in message


def test_cotangents_are_cast_to_their_arguments_dtype_as_jax_promotion_gives():
    """As JAX's own AD of ``x * np.float32(2)`` for a float16 ``x``: the cotangent comes back in float16."""
    half = jnp.array([1.0, 2.0], jnp.float16)

    @tk.adjoint
    def promoted(x):
        factor = np.float32(2.0)
        return x * factor, lambda Δ: (Δ * factor,)  # Δ is float32 here, x float16

    got = jax.grad(lambda x: jnp.sum(promoted(x)))(half)
    expected = jax.grad(lambda x: jnp.sum(x * np.float32(2.0)))(half)
    assert got.dtype == expected.dtype == jnp.float16
    np.testing.assert_array_equal(got, expected)

    @tk.adjoint
    def as_half(x):
        return x * 2, lambda Δ: ((2 * Δ).astype(jnp.float16),)

    got = jax.grad(lambda x: jnp.sum(as_half(x)))(X)
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(got, [2.0, 2.0, 2.0])


def test_error_cotangent_with_a_dtype_that_cannot_be_cast():
    @tk.adjoint
    def as_complex(x):
        return x * 2, lambda Δ: (Δ * (1 + 1j),)

    message = rule_error(as_complex, X)
    assert "as_complex" in message and "`x`" in message and "c64[3]" in message and "must be real" in message


def test_error_cotangent_that_does_not_depend_on_delta_names_the_leaf():
    @tk.adjoint
    def forgot(x):  # the seed's rule without its Δ: transposing would silently give 0
        y = jnp.sqrt(x)
        return y, lambda Δ: (1 / (2 * y),)

    message = rule_error(forgot, X)
    assert (
        "forgot" in message and "`x` does not depend on Δ" in message and "right: lambda Δ: (Δ / (2 * y),)" in message
    )

    @tk.adjoint
    def forgot_a_field(g, *, k):
        return jnp.sum(g.a * g.b) * k, lambda Δ: (GG(Δ * g.b * k, g.a * k), {"k": None})

    message = rule_error(lambda g: forgot_a_field(g, k=2.0), GG(X, X))
    assert "forgot_a_field" in message and "`g.b` does not depend on Δ" in message

    @tk.adjoint
    def affine(x):  # acts as its linear part: the transpose drops the constant
        return 3 * x, lambda Δ: (3 * Δ + 1.0,)

    assert float(jax.grad(affine)(2.0)) == 3.0 and float(jax.jvp(affine, (2.0,), (1.0,))[1]) == 3.0

    @tk.adjoint
    def zeros_are_fine(x, s):
        return x * s, lambda Δ: (Δ * s, jnp.zeros_like(s) * 0.0)

    assert float(jax.grad(zeros_are_fine)(1.0, 3.0)) == 3.0


def test_error_missing_keyword_cotangents():
    @tk.adjoint
    def scale(x, *, factor):
        return x * factor, lambda Δ: (Δ * factor,)

    message = rule_error(lambda x: scale(x, factor=2.0), X)
    assert "scale" in message and "factor" in message and "dict" in message


def test_error_rule_that_does_not_return_a_pair():
    @tk.adjoint
    def value_only(x):
        return jnp.sqrt(x)

    message = rule_error(value_only, X)
    assert "value_only" in message and "(value, pullback)" in message


def test_error_rule_closing_over_an_outer_tracer():
    def outer(c):
        @tk.adjoint
        def captures(x):
            return x * c, lambda Δ: (Δ * c,)

        return captures(2.0)

    with pytest.raises(TypeError) as error:
        jax.grad(outer)(3.0)
    assert "captures" in str(error.value) and "closes over" in str(error.value)
    with pytest.raises(TypeError, match="captures.*closes over"):
        jax.jacfwd(outer)(3.0)
    assert float(jax.jit(outer)(3.0)) == 6.0  # capturing a jit value (not differentiated) is fine
    np.testing.assert_array_equal(jax.vmap(outer)(jnp.arange(3.0)), [0.0, 2.0, 4.0])  # and a vmap value


def test_error_wrong_call_names_the_rule():
    message = rule_error(lambda: weighted(X))
    assert "weighted" in message and "'w'" in message


def test_errors_are_also_raised_under_transformations():
    @tk.adjoint
    def bare(x):
        return x * 2, lambda Δ: Δ * 2

    with pytest.raises(TypeError, match="bare"):
        jax.jit(jax.grad(lambda x: jnp.sum(bare(x))))(X)

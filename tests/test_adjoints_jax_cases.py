"""JAX's own custom-derivative test cases, ported to ``@tk.adjoint``.

Source: ``tests/custom_api_test.py`` in jax-ml/jax, classes ``CustomJVPTest`` and
``CustomVJPTest``. Each test names the JAX case it comes from. Inputs, expected
numbers and the transformations applied are JAX's; the rules are rewritten in
tk's form, a function returning ``(value, pullback)``:

* a ``custom_jvp`` rule whose tangent map is linear becomes an adjoint whose
  pullback is the transpose of that tangent map;
* a ``custom_vjp`` pair ``(fwd, bwd)`` becomes ``value, res = fwd(x); return
  value, lambda Δ: bwd(res, Δ)``;
* ``nondiff_argnums``/``nondiff_argnames`` disappear: callables, ints, strings and
  integer arrays are recognised from their values and passed through.

Where tk's documented contract differs from JAX's (a rule is traced, so it cannot
branch on values with Python ``if``; a pullback returns a tuple linear in Δ;
values are floating point; a rule must not close over a value an outer
``jax.grad``/``jax.jvp`` differentiates) the test says so and checks tk's
documented behaviour, usually an error that names the rule.

Some tests add an oracle JAX's test does not have: the same maths written with
``jax.custom_jvp``/``jax.custom_vjp``, so that higher-order derivatives are held
to JAX's semantics rather than only to self-consistency.
"""

import concurrent.futures
import functools

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import toolkit as tk
from toolkit.adjoints import forward_mode_problem

FLOAT0 = jax.dtypes.float0


def assert_close(actual, expected, *, check_dtypes=True, rtol=1e-6, atol=1e-6):
    """Like JAX's ``assertAllClose``: same tree structure, leaves close, and (optionally) the same dtypes."""
    actual_leaves, actual_tree = jax.tree.flatten(actual)
    expected_leaves, expected_tree = jax.tree.flatten(expected)
    assert actual_tree == expected_tree, f"tree structures differ:\n  {actual_tree}\n  {expected_tree}"
    for a, e in zip(actual_leaves, expected_leaves):
        # Python scalars take JAX's default dtypes, as in JAX's assertAllClose
        a_dtype = jnp.asarray(a).dtype if isinstance(a, (bool, int, float)) else np.asarray(a).dtype
        e_dtype = jnp.asarray(e).dtype if isinstance(e, (bool, int, float)) else np.asarray(e).dtype
        if a_dtype == FLOAT0 or e_dtype == FLOAT0:
            assert a_dtype == e_dtype == FLOAT0 and np.shape(a) == np.shape(e), f"{a!r} vs {e!r}"
            continue
        if check_dtypes:
            assert a_dtype == e_dtype, f"dtype {a_dtype} != {e_dtype}"
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


def float0_zero(shape=()):
    return np.zeros(shape, dtype=FLOAT0)


# --- rules shared by several ported tests -----------------------------------------------


@tk.adjoint
def sin_2cos(x):
    """sin whose derivative the rule says is 2 cos x (JAX's f in test_basic, test_jit, test_remat, ...)."""
    return jnp.sin(x), lambda Δ: (2 * jnp.cos(x) * Δ,)


@tk.adjoint
def scalar_sin_2cos(x):
    """The same rule, asserting that vmap hands the rule and its pullback unbatched scalars (JAX's test_vmap)."""
    assert jnp.ndim(x) == 0

    def pullback(Δ):
        assert jnp.ndim(Δ) == 0
        return (2 * jnp.cos(x) * Δ,)

    return jnp.sin(x), pullback


@jax.custom_jvp
def sin_2cos_jvp_reference(x):
    return jnp.sin(x)


sin_2cos_jvp_reference.defjvp(
    lambda primals, tangents: (sin_2cos_jvp_reference(primals[0]), 2 * jnp.cos(primals[0]) * tangents[0])
)


@jax.custom_vjp
def sin_2cos_vjp_reference(x):
    return jnp.sin(x)


sin_2cos_vjp_reference.defvjp(lambda x: (sin_2cos_vjp_reference(x), jnp.cos(x)), lambda cos_x, g: (2 * cos_x * g,))


@tk.adjoint
def cos2x_grad3(x):
    """JAX's test_invariance rule: value cos(2x)/2, derivative 3 (not the true -sin 2x)."""
    return jnp.cos(2 * x) / 2.0, lambda Δ: (3 * Δ,)


@tk.adjoint
def triple_grad2(x):
    """JAX's test_initial_style rule (custom_jvp): value 3x, derivative 2."""
    assert jnp.ndim(x) == 0
    return 3 * x, lambda Δ: (2 * Δ,)


def scan_once(f):
    def foo(x):
        out, _ = lax.scan(lambda c, _: (f(c), None), x, None, length=1)
        return out

    return foo


def expect_forward_mode_error(rule, rule_name, call, *args):
    """Forward mode of a rule with a non-linear pullback: a TypeError, either tk's (naming the rule) or
    JAX's own "can't apply forward-mode autodiff (jvp) to a custom_vjp function" (both are documented
    by tk at some point); ``tk.adjoints.forward_mode_problem`` then says why."""
    with pytest.raises(TypeError) as error:
        call()
    message = str(error.value)
    assert rule_name in message or "can't apply forward-mode autodiff (jvp) to a custom_vjp function" in message, (
        message
    )
    assert forward_mode_problem(rule, *args)


def expect_rule_error(error_type, rule_name, call, *fragments):
    """``call()`` raises ``error_type`` with a message naming ``rule_name`` and holding ``fragments``."""
    with pytest.raises(error_type) as error:
        call()
    message = str(error.value)
    assert rule_name in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# =========================================================================================
# CustomJVPTest
# =========================================================================================


def test_jvp_basic():
    # CustomJVPTest.test_basic
    x = 3.0
    assert_close(sin_2cos(x), jnp.sin(x))
    assert_close(jax.jvp(sin_2cos, (x,), (1.0,)), (jnp.sin(x), 2 * jnp.cos(x)))
    assert_close(jax.grad(sin_2cos)(x), 2 * jnp.cos(x))
    # the same rule through the other entry points tk promises for a linear pullback
    assert_close(jax.vjp(sin_2cos, x)[1](1.0), (2 * jnp.cos(x),))
    assert_close(jax.jacfwd(sin_2cos)(x), 2 * jnp.cos(x))
    assert_close(jax.hessian(sin_2cos)(x), -2 * jnp.sin(x))


def test_jvp_invariance():
    # CustomJVPTest.test_invariance: a function defined by a jvp of f has f's rule too
    def f2(x):
        y, _ = jax.jvp(cos2x_grad3, (x,), (x,))
        return y

    def f3(x):
        y, _ = jax.jvp(f2, (x,), (x,))
        return y

    x = 1.0
    expected = (jnp.cos(2.0) / 2, 3.0)
    assert_close(jax.jvp(cos2x_grad3, (x,), (x,)), expected, check_dtypes=False)
    assert_close(jax.jvp(f2, (x,), (x,)), expected, check_dtypes=False)
    assert_close(jax.jvp(f3, (x,), (x,)), expected, check_dtypes=False)


@tk.adjoint
def where_branch(x):
    positive = x > 0
    value = jnp.where(positive, jnp.sin(x), jnp.cos(x))
    return value, lambda Δ: (jnp.where(positive, 2 * Δ, 3 * Δ),)


@tk.adjoint
def static_branch(x, branch):
    """Python control flow on a static (string) argument, which tk passes through untraced."""
    if branch == "sin":
        return jnp.sin(x), lambda Δ: (2 * Δ, None)
    return jnp.cos(x), lambda Δ: (3 * Δ, None)


def test_jvp_python_control_flow():
    # CustomJVPTest.test_python_control_flow. A tk rule is traced (module docstring), so a branch
    # on x's value is a jnp.where; a Python `if` works on a static argument.
    x = 2.0
    assert_close(where_branch(x), jnp.sin(x))
    assert_close(where_branch(-x), jnp.cos(-x))
    assert_close(jax.jvp(where_branch, (x,), (1.0,)), (jnp.sin(x), 2.0), check_dtypes=False)
    assert_close(jax.jvp(where_branch, (-x,), (1.0,)), (jnp.cos(-x), 3.0), check_dtypes=False)
    assert_close(jax.grad(where_branch)(x), 2.0, check_dtypes=False)
    assert_close(jax.grad(where_branch)(-x), 3.0, check_dtypes=False)

    assert_close(static_branch(x, "sin"), jnp.sin(x))
    assert_close(static_branch(-x, "cos"), jnp.cos(-x))
    assert_close(jax.jvp(lambda x: static_branch(x, "sin"), (x,), (1.0,)), (jnp.sin(x), 2.0), check_dtypes=False)
    assert_close(jax.jvp(lambda x: static_branch(x, "cos"), (-x,), (1.0,)), (jnp.cos(-x), 3.0), check_dtypes=False)
    assert_close(jax.grad(static_branch)(x, "sin"), 2.0, check_dtypes=False)
    assert_close(jax.grad(static_branch)(-x, "cos"), 3.0, check_dtypes=False)
    assert_close(jax.jit(jax.grad(static_branch), static_argnums=1)(-x, "cos"), 3.0, check_dtypes=False)


def test_python_if_on_a_traced_value_is_a_tracer_error():
    # CustomJVPTest/CustomVJPTest.test_python_control_flow, literally: JAX calls such a rule with a
    # concrete x; tk traces every rule (documented), so `if x > 0` cannot be evaluated.
    @tk.adjoint
    def python_if(x):
        if x > 0:
            return jnp.sin(x), lambda Δ: (2 * Δ,)
        return jnp.cos(x), lambda Δ: (3 * Δ,)

    with pytest.raises(jax.errors.ConcretizationTypeError):
        python_if(2.0)


def test_jvp_vmap():
    # CustomJVPTest.test_vmap
    f = scalar_sin_2cos
    x = jnp.arange(3.0)
    xx = jnp.arange(6.0).reshape(2, 3)

    assert_close(jax.vmap(f)(x), jnp.sin(x))
    assert_close(jax.vmap(jax.vmap(f))(xx), jnp.sin(xx))

    assert_close(jax.vmap(lambda x: jax.jvp(f, (x,), (x,)))(x), (jnp.sin(x), 2 * jnp.cos(x) * x))
    assert_close(jax.vmap(jax.vmap(lambda x: jax.jvp(f, (x,), (x,))))(xx), (jnp.sin(xx), 2 * jnp.cos(xx) * xx))

    assert_close(jax.jvp(jax.vmap(f), (x,), (x,)), (jnp.sin(x), 2 * jnp.cos(x) * x))
    assert_close(jax.jvp(jax.vmap(jax.vmap(f)), (xx,), (xx,)), (jnp.sin(xx), 2 * jnp.cos(xx) * xx))

    assert_close(jax.vmap(lambda x: jax.jvp(jax.vmap(f), (x,), (x,)))(xx), (jnp.sin(xx), 2 * jnp.cos(xx) * xx))


def test_jvp_jit():
    # CustomJVPTest.test_jit
    f = sin_2cos
    x = 3.0
    assert_close(jax.jit(f)(x), jnp.sin(x))
    assert_close(jax.jit(jax.jit(f))(x), jnp.sin(x))
    assert_close(jax.jit(lambda x: jax.jvp(f, (x,), (x,)))(x), (jnp.sin(x), 2 * jnp.cos(x) * x), check_dtypes=False)
    assert_close(jax.jvp(jax.jit(f), (x,), (x,)), (jnp.sin(x), 2 * jnp.cos(x) * x), check_dtypes=False)


@tk.adjoint
def dict_sin(x):
    """A dict in, a dict out (JAX's test_pytrees)."""
    cos_a = jnp.cos(x["a"])
    return {"b": jnp.sin(x["a"])}, lambda Δ: ({"a": 2 * cos_a * Δ["b"]},)


@tk.struct
class InA:
    a: jax.Array


@tk.struct
class OutB:
    b: jax.Array


@tk.adjoint
def struct_sin(x):
    """dict_sin with tk structs in place of the dicts."""
    cos_a = jnp.cos(x.a)
    return OutB(jnp.sin(x.a)), lambda Δ: (InA(2 * cos_a * Δ.b),)


def test_jvp_pytrees():
    # CustomJVPTest.test_pytrees (and the same with @tk.struct values)
    x = {"a": 3.0}
    assert_close(dict_sin(x)["b"], jnp.sin(x["a"]))
    assert_close(
        jax.jvp(dict_sin, (x,), (x,)),
        ({"b": jnp.sin(x["a"])}, {"b": 2 * jnp.cos(x["a"]) * x["a"]}),
        check_dtypes=False,
    )
    s = InA(jnp.array(3.0))
    primal, tangent = jax.jvp(struct_sin, (s,), (s,))
    assert isinstance(primal, OutB) and isinstance(tangent, OutB)
    assert_close((primal.b, tangent.b), (jnp.sin(3.0), 2 * jnp.cos(3.0) * 3.0))


def test_jvp_kwargs():
    # CustomJVPTest.test_kwargs (jax issue 1938): the rule's tangent is c's tangent alone
    @tk.adjoint
    def my_fun(x, y, c=1.0):
        return c * (x + y), lambda Δ: (None, None, Δ)

    f = lambda x, y: jnp.square(my_fun(x, y, c=2.0)).sum()
    assert_close(f(10.0, 5.0), 900.0)
    assert_close(jax.jvp(f, (10.0, 5.0), (1.0, 1.0)), (900.0, 0.0))  # c is a constant: no tangent
    assert_close(jax.jvp(lambda c: my_fun(10.0, 5.0, c=c), (2.0,), (1.0,)), (30.0, 1.0))


def test_jvp_initial_style():
    # CustomJVPTest.test_initial_style: the rule inside lax.scan
    foo = scan_once(triple_grad2)
    assert_close(jax.grad(foo)(3.0), 2.0, check_dtypes=False)
    assert_close(jax.grad(jax.jit(foo))(3.0), 2.0, check_dtypes=False)
    assert_close(jax.jit(jax.grad(foo))(3.0), 2.0, check_dtypes=False)
    assert_close(jax.grad(jax.grad(foo))(3.0), 0.0, check_dtypes=False)
    assert_close(jax.grad(jax.grad(jax.jit(foo)))(3.0), 0.0, check_dtypes=False)
    assert_close(jax.grad(jax.jit(jax.grad(foo)))(3.0), 0.0, check_dtypes=False)
    assert_close(jax.jit(jax.grad(jax.grad(foo)))(3.0), 0.0, check_dtypes=False)


def test_jvp_initial_style_while_fori_and_cond():
    # CustomJVPTest.test_initial_style, with the scan replaced by the other control-flow primitives
    def in_while(x):
        return lax.while_loop(lambda c: c[0] < 1, lambda c: (c[0] + 1, triple_grad2(c[1])), (0, x))[1]

    def in_fori(x):  # static trip count: lowered to a scan, so reverse mode works
        return lax.fori_loop(0, 1, lambda i, c: triple_grad2(c), x)

    def in_cond(x):
        return lax.cond(x > 0, triple_grad2, lambda x: x, x)

    assert_close(in_while(3.0), 9.0, check_dtypes=False)
    assert_close(jax.jvp(in_while, (3.0,), (1.0,)), (9.0, 2.0), check_dtypes=False)
    assert_close(jax.jit(lambda x: jax.jvp(in_while, (x,), (1.0,)))(3.0), (9.0, 2.0), check_dtypes=False)
    assert_close(jax.grad(in_fori)(3.0), 2.0, check_dtypes=False)
    assert_close(jax.jit(jax.grad(in_fori))(3.0), 2.0, check_dtypes=False)
    assert_close(jax.grad(in_cond)(3.0), 2.0, check_dtypes=False)
    assert_close(jax.grad(in_cond)(-3.0), 1.0, check_dtypes=False)
    assert_close(jax.jit(jax.vmap(jax.grad(in_cond)))(jnp.array([3.0, -3.0])), jnp.array([2.0, 1.0]))
    assert_close(jax.jvp(in_cond, (3.0,), (1.0,)), (9.0, 2.0), check_dtypes=False)


def test_jvp_initial_style_vmap():
    # CustomJVPTest.test_initial_style_vmap
    foo = scan_once(triple_grad2)
    ones = jnp.ones(3)
    assert_close(jax.vmap(foo)(ones), 3.0 * ones, check_dtypes=False)
    assert_close(jax.vmap(jax.jit(foo))(ones), 3.0 * ones, check_dtypes=False)
    assert_close(jax.jit(jax.vmap(foo))(ones), 3.0 * ones, check_dtypes=False)
    assert_close(jax.grad(lambda x: jax.vmap(foo)(x).sum())(ones), 2.0 * ones, check_dtypes=False)
    assert_close(jax.grad(lambda x: jax.vmap(jax.jit(foo))(x).sum())(ones), 2.0 * ones, check_dtypes=False)
    assert_close(jax.grad(lambda x: jax.jit(jax.vmap(foo))(x).sum())(ones), 2.0 * ones, check_dtypes=False)
    assert_close(jax.grad(jax.jit(lambda x: jax.vmap(foo)(x).sum()))(ones), 2.0 * ones, check_dtypes=False)
    assert_close(jax.jit(jax.grad(lambda x: jax.vmap(foo)(x).sum()))(ones), 2.0 * ones, check_dtypes=False)


def test_initial_style_vmap_with_collective():
    # CustomJVPTest.test_initial_style_vmap_with_collective and
    # CustomVJPTest.test_initial_style_vmap_with_collective (the rule called directly rather than
    # through make_jaxpr/core.eval_jaxpr, which are JAX internals)
    @tk.adjoint
    def summed(x):
        return lax.psum(x, "foo"), lambda Δ: (Δ,)

    out = jax.vmap(lambda _, x: summed(x), axis_name="foo", in_axes=(0, None), out_axes=None)(jnp.arange(4.0), 2.0)
    assert_close(out, 8.0)


def test_jvp_closed_over_tracers_error_message():
    # CustomJVPTest.test_closed_over_tracers_error_message: JAX raises UnexpectedTracerError; tk's
    # documented error is a TypeError that names the rule.
    def f(x):
        @tk.adjoint
        def captures_x(y):
            return x + y, lambda Δ: (Δ,)

        return captures_x(1.0)

    expect_rule_error(TypeError, "captures_x", lambda: jax.jvp(f, (3.0,), (1.0,)), "closes over")
    expect_rule_error(TypeError, "captures_x", lambda: jax.grad(f)(3.0), "closes over")


@tk.adjoint
def app_3(f, x):
    """JAX's `app` with nondiff_argnums=(0,): the callable passes through, x's derivative is 3."""
    return f(x), lambda Δ: (None, 3 * Δ)


def test_jvp_nondiff_argnums():
    # CustomJVPTest.test_nondiff_argnums: the callable is recognised from its value
    assert_close(app_3(lambda x: 2 * x, 1.0), 2.0, check_dtypes=False)
    assert_close(jax.jvp(lambda x: app_3(lambda y: 2 * y, x), (1.0,), (1.0,)), (2.0, 3.0), check_dtypes=False)
    assert_close(jax.grad(lambda x: app_3(lambda y: 2 * y, x))(1.0), 3.0, check_dtypes=False)
    # JAX also calls app(f, 1) with an int: in tk an int passes through and the value 2 is an int,
    # which a rule may not return (documented); the error names the rule.
    expect_rule_error(TypeError, "app_3", lambda: app_3(lambda x: 2 * x, 1), "floating-point")


def test_jvp_nondiff_argnames():
    # CustomJVPTest.test_nondiff_argnames: the callable passed by name
    assert_close(app_3(f=lambda x: 2 * x, x=1.0), 2.0, check_dtypes=False)
    assert_close(jax.jvp(lambda x: app_3(f=lambda y: 2 * y, x=x), (1.0,), (1.0,)), (2.0, 3.0), check_dtypes=False)


@tk.adjoint
def times_grad5(x, y):
    """JAX's f(x, y) = x * y with x in nondiff_argnums and y's derivative 5: in tk x is an ordinary
    argument whose cotangent is None, as JAX's comment in test_nondiff_arg_jit_tracer recommends."""
    return x * y, lambda Δ: (None, 5 * Δ)


def test_jvp_nondiff_arg_jit_tracer():
    # CustomJVPTest.test_nondiff_arg_jit_tracer (skipped in JAX, "behavior no longer supported";
    # tk's way of writing it, a float argument with a None cotangent, works)
    g = jax.jit(times_grad5)
    assert_close(jax.jvp(lambda y: g(2.0, y), (3.0,), (1.0,)), (6.0, 5.0), check_dtypes=False)


def test_jvp_nondiff_arg_vmap_tracer():
    # CustomJVPTest.test_nondiff_arg_vmap_tracer
    g = jax.vmap(times_grad5)
    ans = jax.jvp(lambda y: g(jnp.array([2.0]), y), (jnp.array([3.0]),), (jnp.array([1.0]),))
    assert_close(ans, (jnp.array([6.0]), jnp.array([5.0])), check_dtypes=False)


def test_jvp_nondiff_arg_hiding_jvp_tracer():
    # CustomJVPTest.test_nondiff_arg_hiding_jvp_tracer: a pass-through callable that captures the
    # value jvp differentiates; JAX raises UnexpectedTracerError, tk a TypeError naming the rule.
    def f(x):
        @tk.adjoint
        def apply_h(h, x):
            return h(x), lambda Δ: (None, 2.0 * Δ)

        h = lambda y: x + y
        return apply_h(h, x)

    expect_rule_error(TypeError, "apply_h", lambda: jax.jvp(f, (2.0,), (1.0,)), "closes over")


def test_missing_rule_error_message():
    # CustomJVPTest.test_missing_jvp_rule_error_message and CustomVJPTest.test_missing_vjp_rule_error:
    # tk's analogue of a function without a derivative rule is a rule that returns only its value.
    @tk.adjoint
    def foo(x):
        return x**2

    for call in (lambda: foo(2.0), lambda: jax.jvp(foo, (2.0,), (1.0,)), lambda: jax.grad(foo)(2.0)):
        expect_rule_error(TypeError, "foo", call, "(value, pullback)")


def test_jvp_rule_inconsistent_pytree_structures_error_message():
    # CustomJVPTest.test_jvp_rule_inconsistent_pytree_structures_error_message: the derivative's
    # container does not match. In tk the rule is checked on its first call (documented), so even
    # the plain call f(2.) raises.
    @tk.adjoint
    def f(x):
        return (x**2,), lambda Δ: ([2 * x * Δ[0], x],)

    expect_rule_error(TypeError, "f", lambda: f(2.0), "`x`")
    expect_rule_error(TypeError, "f", lambda: jax.jvp(f, (2.0,), (1.0,)), "`x`")


def test_primal_tangent_aval_disagreement_error_message():
    # CustomJVPTest.test_primal_tangent_aval_disagreement_error_message: a derivative of shape (1,)
    # for a scalar
    @tk.adjoint
    def f(x):
        return x**2, lambda Δ: (jnp.reshape(2 * x * Δ, (1,)),)

    expect_rule_error(ValueError, "f", lambda: jax.jvp(f, (jnp.float32(2.0),), (jnp.float32(1.0),)), "(1,)", "f32[]")


def test_jvp_rule_doesnt_return_pair_error_message():
    # CustomJVPTest.test_jvp_rule_doesnt_return_pair_error_message: here the rule returns its
    # derivative (the pullback) without the value
    @tk.adjoint
    def f(x):
        return lambda Δ: (2 * x * Δ,)

    expect_rule_error(TypeError, "f", lambda: jax.jvp(f, (2.0,), (1.0,)), "(value, pullback)")
    expect_rule_error(TypeError, "f", lambda: f(2.0), "(value, pullback)")


@tk.adjoint
def expit(x):
    ans = 1 / (1 + lax.exp(-x))
    return ans, lambda Δ: (Δ * ans * (1 - ans),)


def test_multiple_rule_invocations():
    # CustomJVPTest.test_multiple_rule_invocations; the rule is exact, so JAX's own AD of
    # jax.nn.sigmoid is the oracle
    def make_foo(sigmoid):
        def scanned(c, _):
            return [sigmoid(c[0])] + [c[i - 1] + c[i] for i in range(1, len(c))], None

        def foo(x):
            zero = jnp.zeros_like(x)
            c, _ = lax.scan(scanned, [x, zero, zero, zero, zero], None, length=10)
            return c[-1]

        return foo

    foo, reference = make_foo(expit), make_foo(jax.nn.sigmoid)
    assert_close(foo(3.0), reference(3.0), rtol=1e-5)
    assert_close(jax.grad(foo)(3.0), jax.grad(reference)(3.0), rtol=1e-5)
    x = jnp.arange(3.0)
    assert_close(
        jax.grad(lambda x: jax.vmap(foo)(x).sum())(x), jax.grad(lambda x: jax.vmap(reference)(x).sum())(x), rtol=1e-5
    )


def test_hard_stuff2():
    # CustomJVPTest.test_hard_stuff2: a constant NumPy value, an identity derivative
    @tk.adjoint
    def f(x):
        return np.zeros(x.shape, x.dtype), lambda Δ: (Δ,)

    x = jnp.arange(3.0)
    assert_close(jax.jit(jax.vmap(f))(x), jnp.zeros(3))
    assert_close(jax.jit(jax.vmap(jax.grad(f)))(x), jnp.ones(3))
    assert_close(jax.jit(jax.grad(lambda x: jax.vmap(f)(x).sum()))(x), jnp.ones(3))
    assert_close(jax.grad(lambda x: jax.vmap(f)(x).sum())(x), jnp.ones(3))
    assert_close(jax.jvp(jax.vmap(f), (x,), (jnp.ones(3),)), (jnp.zeros(3), jnp.ones(3)))


def test_hard_stuff3():
    # CustomJVPTest.test_hard_stuff3: relu (derivative 0 at 0, as jax.nn.relu's) inside a scan
    @tk.adjoint
    def relu(x):
        return jnp.maximum(x, 0), lambda Δ: (jnp.where(x > 0, Δ, jnp.zeros_like(Δ)),)

    def make_f(relu):
        def scanned(c, _):
            return [relu(c[0])] + [c[i - 1] + c[i] for i in range(1, len(c))], None

        def f(x):
            zero = jnp.zeros_like(x)
            c, _ = lax.scan(scanned, [x, zero, zero, zero, zero], None, length=10)
            return c[-1]

        return f

    f, reference = make_f(relu), make_f(jax.nn.relu)
    x = jnp.arange(3.0)
    assert_close(jax.jit(jax.vmap(f))(x), jax.vmap(reference)(x))
    assert_close(jax.jit(jax.vmap(jax.grad(f)))(x), jax.vmap(jax.grad(reference))(x))
    assert_close(
        jax.jit(jax.grad(lambda x: jax.vmap(f)(x).sum()))(x), jax.grad(lambda x: jax.vmap(reference)(x).sum())(x)
    )
    assert_close(jax.grad(lambda x: jax.vmap(f)(x).sum())(x), jax.grad(lambda x: jax.vmap(reference)(x).sum())(x))
    assert_close(
        jax.jvp(jax.jit(jax.vmap(f)), (x,), (jnp.ones(3),)), jax.jvp(jax.vmap(reference), (x,), (jnp.ones(3),))
    )


def test_eval_shape():
    # CustomJVPTest.test_eval_shape
    out = jax.eval_shape(expit, jnp.ones((2, 3)))
    assert out.shape == (2, 3) and out.dtype == jnp.float32
    grads = jax.eval_shape(jax.grad(lambda x: expit(x).sum()), jnp.ones((2, 3)))
    assert grads.shape == (2, 3) and grads.dtype == jnp.float32


def test_jaxpr_zeros():
    # CustomJVPTest.test_jaxpr_zeros (jax issue 2657): a matrix argument that carries no tangent
    @tk.adjoint
    def matvec(A, b):
        return A @ b, lambda Δ: (jnp.outer(Δ, b), A.T @ Δ)

    def experiment(theta):
        def step(q, _):
            z = matvec(jnp.eye(3), jnp.ones(3) * theta)
            q += z[0]
            return q, q

        q, _ = lax.scan(step, 0.0, None, 4)
        return q

    assert_close(jax.grad(experiment)(1.0), 4.0, check_dtypes=False)


def test_linear_in_scan():
    # CustomJVPTest.test_linear_in_scan, with the rule's tangent -x_dot written out
    @tk.adjoint
    def negate(x):
        return -x, lambda Δ: (-Δ,)

    assert_close(jax.grad(scan_once(negate))(3.0), -1.0, check_dtypes=False)


def test_pullback_may_call_its_own_rule():
    # CustomJVPTest.test_linear_in_scan and CustomJVPTest.test_custom_jvp_transpose_vjp3, literally:
    # JAX's rules call the decorated function itself on the tangent (f(x_dot), div(x_dot, y)).
    @tk.adjoint
    def negate(x):
        return -x, lambda Δ: (negate(Δ),)

    assert_close(jax.grad(scan_once(negate))(3.0), -1.0, check_dtypes=False)

    @tk.adjoint
    def div(x, y):
        return x / y, lambda Δ: (div(Δ, y), None)  # y's derivative deliberately ignored, as in JAX

    _, f_vjp = jax.vjp(lambda x: div(x, 2.0), 1.0)
    assert_close(f_vjp(1.0), (0.5,), check_dtypes=False)


def test_custom_jvps_first_rule_is_none():
    # CustomJVPTest.test_custom_jvps_first_rule_is_none (jax issue 3389): defjvps(None, ...) is a
    # None cotangent for x
    @tk.adjoint
    def f(x, y):
        return x**2 * y, lambda Δ: (None, 2 * x * y * Δ)

    assert_close(jax.grad(f, 1)(2.0, 3.0), 12.0, check_dtypes=False)
    assert_close(jax.grad(f, 0)(2.0, 3.0), 0.0, check_dtypes=False)


def test_concurrent_initial_style():
    # CustomJVPTest.test_concurrent_initial_style (jax issue 3843), with a tk sigmoid in the scan
    @tk.adjoint
    def sigmoid(x):
        s = jax.nn.sigmoid(x)
        return s, lambda Δ: (Δ * s * (1 - s),)

    def unroll(param, sequence):
        def scan_f(prev_state, inputs):
            return prev_state, sigmoid(param * inputs)

        return jnp.sum(lax.scan(scan_f, None, sequence)[1])

    def run():
        return jax.grad(unroll)(jnp.array(1.0), jnp.array([1.0]))

    expected = run()
    assert_close(expected, jax.grad(lambda p: jnp.sum(jax.nn.sigmoid(p * jnp.array([1.0]))))(jnp.array(1.0)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = [future.result() for future in [pool.submit(run) for _ in range(2)]]
    for ans in results:
        assert_close(ans, expected)


def test_nondiff_argnums_vmap_tracer():
    # CustomJVPTest.test_nondiff_argnums_vmap_tracer (jax issue 3964): a static shape and a PRNG key
    # pass through; the (dummy) derivative samples * dparam transposes to sum(Δ * samples)
    @tk.adjoint
    def sample(shape, param, seed):
        samples = jax.random.uniform(key=seed, shape=shape, minval=param)
        return samples, lambda Δ: (None, jnp.sum(Δ * samples), None)

    out = jax.vmap(lambda seed: sample((2, 3), 1.0, seed))(jax.random.split(jax.random.key(1), 10))
    assert out.shape == (10, 2, 3)
    primal, tangent = jax.jvp(lambda x: sample((2, 3), x, jax.random.key(1)), (1.0,), (1.0,))
    assert primal.shape == (2, 3)
    assert_close(tangent, primal)


def test_fun_with_nested_calls_2():
    # CustomJVPTest.test_fun_with_nested_calls_2: rules made on the fly, closing over jit values,
    # nested in each other. JAX's tangent is the sum of the tangents, so each argument gets Δ.
    def call(f, *args):
        rule = tk.adjoint(lambda *a: (f(*a), lambda Δ: tuple(Δ for _ in a)))
        return rule(*args)

    def fun_with_nested_calls_2(x):
        def bar(y):
            def baz(w):
                q = call(lambda x: y, x)
                q = q + call(lambda: y)
                q = q + call(lambda y: w + y, y)
                q = call(lambda w: call(jnp.sin, x) * y, 1.0) + q
                return q

            return jax.jit(baz)(x)

        return call(bar, x)

    assert_close(jax.jit(fun_with_nested_calls_2)(3.0), fun_with_nested_calls_2(3.0))
    assert_close(fun_with_nested_calls_2(3.0), 3 * jnp.sin(3.0) + 12.0, check_dtypes=False)
    assert jax.vmap(fun_with_nested_calls_2)(jnp.arange(3.0)).shape == (3,)


def test_closure_with_vmap():
    # CustomJVPTest.test_closure_with_vmap (jax issue 3822): the rule closes over a vmapped key
    alpha = np.float32(2.0)

    def make_gamma(seed):
        @tk.adjoint
        def gamma(alpha):
            draw = jax.random.gamma(seed, alpha, shape=[])
            return draw, lambda Δ: (lax.random_gamma_grad(alpha, draw) * Δ,)

        return gamma

    seeds = jax.random.split(jax.random.key(1), 3)
    draws = jax.vmap(lambda seed: make_gamma(seed)(alpha))(seeds)  # JAX's check: doesn't crash
    assert draws.shape == (3,)

    def grads(seed):  # the rule against JAX's own gamma derivative (jit only to keep the test fast)
        return jax.grad(make_gamma(seed))(alpha), jax.grad(lambda a: jax.random.gamma(seed, a, shape=[]))(alpha)

    ours, reference = jax.jit(jax.vmap(grads))(seeds)
    assert_close(ours, reference, rtol=1e-5)


def test_jvp_closure_with_vmap2():
    # CustomJVPTest.test_closure_with_vmap2 (jax issue 8783): the rule closes over a vmap tracer,
    # its argument is the value jvp differentiates
    def h(z):
        def f(x):
            @tk.adjoint
            def g(y):
                return x * y, lambda Δ: (x * Δ,)

            return g(z)

        return jax.vmap(f)(jnp.arange(3.0, dtype="float32"))

    primals, tangents = jax.jvp(h, (jnp.float32(1.0),), (jnp.float32(2.0),))
    assert_close(primals, jnp.arange(3.0, dtype="float32"))
    assert_close(tangents, 2 * jnp.arange(3.0, dtype="float32"))


def test_jvp_float0():
    # CustomJVPTest.test_float0: an int argument takes a float0 tangent. A tk value must be floating
    # point, so the int is not returned (JAX's f returns (x, y)); the rule's x derivative is 2.
    @tk.adjoint
    def f(x, n):
        return x * 1.0, lambda Δ: (2 * Δ, None)

    assert_close(jax.jvp(f, (2.0, 3), (np.ones(()), float0_zero())), (2.0, 2.0), check_dtypes=False)

    @tk.adjoint
    def returns_the_int(x, n):
        return (x, n), lambda Δ: (Δ[0], None)

    expect_rule_error(TypeError, "returns_the_int", lambda: returns_the_int(2.0, 3), "floating-point")


def test_jvp_float0_initial_style():
    # CustomJVPTest.test_float0_initial_style: the int rides in the scan carry beside the rule
    @tk.adjoint
    def f(x, n):
        return x * 1.0, lambda Δ: (2 * Δ, None)

    def foo(x, y):
        out, _ = lax.scan(lambda c, _: ((f(*c), c[1]), None), (x, y), None, length=1)
        return out

    primals, tangents = jax.jvp(foo, (2.0, 3), (np.ones(()), float0_zero()))
    assert_close(primals, (2.0, 3), check_dtypes=False)
    assert_close(tangents, (2.0, float0_zero()), check_dtypes=False)


def test_remat():
    # CustomJVPTest.test_remat and CustomVJPTest.test_remat (the same rule)
    f = sin_2cos
    g = jax.remat(lambda x: f(f(x)))
    assert_close(g(2.0), np.sin(np.sin(2.0)), check_dtypes=False)
    expected = 4.0 * jax.grad(lambda x: jnp.sin(jnp.sin(x)))(2.0)
    assert_close(jax.grad(g)(2.0), expected, check_dtypes=False)


def test_remat_higher_order():
    # CustomJVPTest.test_remat_higher_order and CustomVJPTest.test_remat_higher_order
    def g(x):
        return sin_2cos(sin_2cos(x))

    for remat in (jax.checkpoint, jax.remat):
        assert_close(jax.grad(jax.grad(remat(g)))(2.0), jax.grad(jax.grad(g))(2.0), check_dtypes=False)
        assert_close(jax.grad(remat(jax.grad(g)))(2.0), jax.grad(jax.grad(g))(2.0), check_dtypes=False)
        assert_close(
            jax.grad(jax.grad(jax.grad(remat(g))))(2.0), jax.grad(jax.grad(jax.grad(g)))(2.0), check_dtypes=False
        )


@pytest.mark.parametrize(
    "reference", [sin_2cos_jvp_reference, sin_2cos_vjp_reference], ids=["custom_jvp", "custom_vjp"]
)
def test_remat_higher_order_matches_jax(reference):
    # CustomJVPTest.test_remat_higher_order / CustomVJPTest.test_remat_higher_order, held to JAX's
    # numbers: the same rule written with jax.custom_jvp / jax.custom_vjp. In JAX the rule's value
    # is differentiated with the rule (2 cos) at every order, not with sin's true derivative.
    def g(x):
        return sin_2cos(sin_2cos(x))

    def g_ref(x):
        return reference(reference(x))

    assert_close(jax.grad(g)(2.0), jax.grad(g_ref)(2.0), rtol=1e-5)
    assert_close(jax.grad(jax.grad(jax.checkpoint(g)))(2.0), jax.grad(jax.grad(g_ref))(2.0), rtol=1e-5)
    assert_close(jax.grad(jax.checkpoint(jax.grad(g)))(2.0), jax.grad(jax.grad(g_ref))(2.0), rtol=1e-5)
    assert_close(
        jax.grad(jax.grad(jax.grad(jax.checkpoint(g))))(2.0), jax.grad(jax.grad(jax.grad(g_ref)))(2.0), rtol=1e-5
    )


def test_jvp_initial_style_vmap_2():
    # CustomJVPTest.test_initial_style_vmap_2: the rule closes over an array constant
    y = jnp.arange(1.0, 4.0)

    @tk.adjoint
    def f(x):
        assert jnp.ndim(x) == 0
        return 3 * x * jnp.sum(y), lambda Δ: (2 * Δ,)

    foo = scan_once(f)
    ones = jnp.ones(3)
    assert_close(jax.grad(lambda x: jax.vmap(foo)(x).sum())(ones), 2.0 * ones, check_dtypes=False)
    assert_close(jax.grad(lambda x: jax.vmap(jax.jit(foo))(x).sum())(ones), 2.0 * ones, check_dtypes=False)
    assert_close(jax.grad(lambda x: jax.jit(jax.vmap(foo))(x).sum())(ones), 2.0 * ones, check_dtypes=False)
    assert_close(jax.grad(jax.jit(lambda x: jax.vmap(foo)(x).sum()))(ones), 2.0 * ones, check_dtypes=False)
    assert_close(jax.jit(jax.grad(lambda x: jax.vmap(foo)(x).sum()))(ones), 2.0 * ones, check_dtypes=False)


def test_custom_jvp_vmap_broadcasting_interaction():
    # CustomJVPTest.test_custom_jvp_vmap_broadcasting_interaction (jax issue 6452), with logaddexp as a
    # tk rule: one argument batched, the other not, under vmap inside grad
    @tk.adjoint
    def logaddexp(a, b):
        out = jnp.logaddexp(a, b)
        return out, lambda Δ: (Δ * jnp.exp(a - out), Δ * jnp.exp(b - out))

    def make_f(logaddexp):
        def f2(y, z):
            return logaddexp(z, jnp.sum(y) + z)

        def f1(y, z):
            return jnp.sum(jax.vmap(lambda _y: f2(_y, z))(y))

        y = jnp.ones((3, 2))
        return lambda z: f1(y, z)

    val, g = jax.value_and_grad(make_f(logaddexp))(0.1)
    assert val.shape == () and g.shape == ()
    assert_close((val, g), jax.value_and_grad(make_f(jnp.logaddexp))(0.1), rtol=1e-5)


def test_custom_jvp_vmap_broadcasting_interaction_2():
    # CustomJVPTest.test_custom_jvp_vmap_broadcasting_interaction_2 (jax issue 5849): Python control
    # flow on the (static) shape of a traced argument; JAX's tangent dR + transform(dbox, R)
    @tk.adjoint
    def transform(box, R):
        if jnp.ndim(box) == 0 or jnp.size(box) == 1:
            return R * box, lambda Δ: (jnp.sum(Δ * R).reshape(jnp.shape(box)), Δ)
        if jnp.ndim(box) == 2:
            return jnp.einsum("ij,j->i", box, R), lambda Δ: (jnp.outer(Δ, R), Δ)
        raise ValueError()

    def make_energy(transform):
        def displacement_fn(Ra, Rb, **kwargs):
            return transform(kwargs.get("box", 1.0), Ra - Rb)

        R = jax.random.uniform(jax.random.key(0), (250, 2))

        def energy_fn(box):
            d = functools.partial(displacement_fn, box=box)
            d = jax.vmap(jax.vmap(d, (None, 0)), (0, None))
            return jnp.sum(d(R, R) ** 2)

        return energy_fn

    g = jax.grad(make_energy(transform))(1.0)
    assert g.shape == ()
    # at box = 1 the rule's box derivative (R) is the true one, so plain AD is the oracle
    assert_close(g, jax.grad(make_energy(lambda box, R: R * box))(1.0), rtol=1e-4)


def test_custom_jvp_implicit_broadcasting():
    # CustomJVPTest.test_custom_jvp_implicit_broadcasting (jax issue 6357): projection onto the
    # simplex; its Jacobian diag(s) - s s^T / |s| is symmetric, so the pullback is the same map
    @tk.adjoint
    def projection_unit_simplex(x):
        u = jnp.sort(x)[::-1]
        cssv = jnp.cumsum(u) - 1.0
        ind = jnp.arange(x.shape[0], dtype=x.dtype) + 1
        idx = jnp.count_nonzero(u - cssv / ind > 0)
        threshold = cssv[idx - 1] / idx.astype(x.dtype)
        out = jax.nn.relu(x - threshold)
        supp = (out > 0).astype(x.dtype)
        card = jnp.count_nonzero(supp).astype(x.dtype)
        return out, lambda Δ: (supp * Δ - (jnp.dot(supp, Δ) / card) * supp,)

    rng = np.random.RandomState(0)
    x = rng.rand(5).astype(np.float32)
    p = projection_unit_simplex(x)
    support = (p > 0).astype(jnp.float32)
    cardinality = jnp.count_nonzero(support).astype(support.dtype)
    J_true = jnp.diag(support) - jnp.outer(support, support) / cardinality
    assert_close(jax.jacfwd(projection_unit_simplex)(x), J_true)
    assert_close(jax.jacrev(projection_unit_simplex)(x), J_true)

    proj = jax.vmap(projection_unit_simplex)

    @jax.jit  # staged only to keep the test fast: eager dispatch of the sort/cumsum is slow
    def fun(X):
        return jnp.sum(proj(X) ** 2)

    X = rng.rand(4, 5).astype(np.float32)
    U = rng.rand(4, 5)
    U = (U / np.sqrt(np.sum(U**2))).astype(np.float32)
    eps = 1e-3
    dir_deriv_num = (fun(X + eps * U) - fun(X - eps * U)) / (2 * eps)
    dir_deriv = jnp.vdot(jax.grad(fun)(X), U)
    assert_close(dir_deriv, dir_deriv_num, atol=1e-3, rtol=1e-3)


def test_vmap_inside_defjvp():
    # CustomJVPTest.test_vmap_inside_defjvp (jax issue 3201): vmap inside the rule's derivative.
    # The tangent map is linear in mat's tangent; tk's pullback is its transpose (also a vmap), and
    # a jax.custom_jvp with JAX's tangent map is the oracle.
    mat = jax.random.normal(jax.random.key(47), (2, 3))

    def buffers(mat, aux):
        """One (rows, cols) buffer per element of mat, built with a vmap."""
        rows, cols = mat.shape
        size = rows * cols
        bd_mat = jnp.tile(mat.reshape(1, 1, rows, cols), reps=(rows, cols)).reshape(size, rows, cols)
        bd_rowsum = jnp.tile(jnp.sum(mat, axis=1, keepdims=True), reps=(1, rows))
        bd_colsum = jnp.tile(jnp.sum(mat, axis=0, keepdims=True), reps=(cols, 1))

        def one(mx):
            buf = 0
            for i in range(2):
                buf = buf + jnp.matmul(mx, bd_colsum) / jnp.power(aux, i)
            return jnp.matmul(bd_rowsum, buf)

        return jax.vmap(one)(bd_mat)  # (size, rows, cols)

    def value(mat):
        rows, cols = mat.shape
        return jnp.ones((rows, 1)) / cols

    def tangent(mat, aux, vec):
        rows, cols = mat.shape
        bd_buf = jax.vmap(lambda buf, v: buf * v[None, :])(buffers(mat, aux), vec.reshape(rows * cols, 1))
        return jnp.mean(jnp.sum(bd_buf / aux, axis=0), axis=1, keepdims=True)

    @tk.adjoint
    def f(mat, aux):
        rows, cols = mat.shape
        bufs = buffers(mat, aux)

        def pullback(Δ):
            per_element = jax.vmap(lambda buf: jnp.sum(Δ * buf))(bufs) / (cols * aux)
            return per_element.reshape(rows, cols), None

        return value(mat), pullback

    @jax.custom_jvp
    def f_ref(mat, aux):
        return value(mat)

    f_ref.defjvp(lambda primals, tangents: (f_ref(*primals), tangent(primals[0], primals[1], tangents[0])))

    loss = lambda f: jax.grad(lambda mat, aux: jnp.sum(f(mat, aux)))(mat, 0.5)
    assert_close(loss(f), loss(f_ref), rtol=1e-5, atol=1e-5)


def test_custom_jvp_unbroadcasting():
    # CustomJVPTest.test_custom_jvp_unbroadcasting (jax issue 3056): a scalar broadcast against an
    # array; tk's pullback sums over the broadcast dimension itself
    a = jnp.array([1.0, 1.0])

    @tk.adjoint
    def f(x):
        return a * x, lambda Δ: (jnp.sum(a * Δ),)

    assert jax.grad(lambda x: jnp.sum(f(x)))(jnp.array(1.0)).shape == ()

    @tk.adjoint
    def unsummed(x):  # JAX's tangent a * dx, transposed without the sum: tk's documented error
        return a * x, lambda Δ: (a * Δ,)

    expect_rule_error(ValueError, "unsummed", lambda: jax.grad(lambda x: jnp.sum(unsummed(x)))(jnp.array(1.0)), "(2,)")


def pack_vmap(fun):
    """Run ``fun`` under vmap on a batch of one (JAX's _vmap helper in the symbolic-zero tests)."""

    def run(*args):
        args = jax.tree.map(lambda x: lax.broadcast(x, (1,)), args)
        return jax.tree.map(lambda x: x[0], jax.vmap(fun)(*args))

    return run


@pytest.mark.parametrize(
    "maybe_jit, maybe_vmap",
    [(True, True), (True, False), (False, True), (False, False)],
    ids=["jit_vmap", "jit", "vmap", "plain"],
)
def test_symbolic_zero_custom_jvp(maybe_jit, maybe_vmap):
    # CustomJVPTest.test_symbolic_zero_custom_jvp. JAX's tangent rule is affine (static_scalar + 90,
    # t + 91), which a tk pullback cannot express; here the true linear rule, with the same
    # constant "static" inputs that carry no tangent.
    @tk.adjoint
    def f(static_scalar, static_array, dyn_scalar, dyn_array):
        out = (static_scalar + dyn_scalar, static_array + dyn_array)
        return out, lambda Δ: (Δ[0], Δ[1], Δ[0], Δ[1])

    def g(dyn_scalar, dyn_array):
        f_ = pack_vmap(f) if maybe_vmap else f
        return f_(1.0, jnp.array([2.0, 3.0]), dyn_scalar, dyn_array)

    def run(primal_ins, tangent_ins):
        return jax.jvp(g, primal_ins, tangent_ins)

    run = jax.jit(run) if maybe_jit else run
    primal_outs, tangent_outs = run((4.0, jnp.array([5.0, 6.0])), (7.0, jnp.array([8.0, 9.0])))
    assert_close(primal_outs, (5.0, jnp.array([7.0, 9.0])))
    assert_close(tangent_outs, (7.0, jnp.array([8.0, 9.0])))


def test_symbolic_zero_custom_jvp_vmap_output():
    # CustomJVPTest.test_symbolic_zero_custom_jvp_vmap_output: the tangent is y's alone
    @tk.adjoint
    def f(x, y):
        return x * y, lambda Δ: (None, Δ)

    ones = jnp.ones(3)
    assert_close(jax.grad(lambda x, y: jax.vmap(f)(x, y).sum())(ones, ones), jnp.zeros(3))
    assert_close(jax.grad(lambda x, y: jax.vmap(f)(x, y).sum(), 1)(ones, ones), jnp.ones(3))


@pytest.mark.parametrize("origin", ["jvp", "vjp"])
def test_symbolic_zeros_memoization_caching(origin):
    # CustomJVPTest.test_symbolic_zeros_memoization_caching (tangent y_dot) and
    # CustomVJPTest.test_symbolic_zeros_memoization_caching (cotangents (z_bar, None))
    if origin == "jvp":
        f = tk.adjoint(lambda x, y: (x * y, lambda Δ: (None, Δ)))
        expected_both, expected_x = 1.0, 0.0
    else:
        f = tk.adjoint(lambda x, y: (x * y, lambda Δ: (Δ, None)))
        expected_both, expected_x = 1.0, 1.0

    f_ = jax.extend.core.jaxpr_as_fun(jax.make_jaxpr(f)(2.0, 3.0))
    _, lin = jax.linearize(f_, 2.0, 3.0)
    assert_close(lin(1.0, 1.0), [expected_both], check_dtypes=False)
    _, lin = jax.linearize(lambda x: f_(x, 3.0), 2.0)
    assert_close(lin(1.0), [expected_x], check_dtypes=False)


def test_symbolic_zeros_under_jit():
    # CustomJVPTest.test_symbolic_zeros_under_jit (jax issue 14833): JAX's tangent tx + ty
    @tk.adjoint
    def f(x, y):
        return x * y, lambda Δ: (Δ, Δ)

    assert_close(jax.jacfwd(jax.jit(f))(0.1, 0.2), 1.0, check_dtypes=False)
    assert_close(jax.jacfwd(jax.jit(f), argnums=(0, 1))(0.1, 0.2), (1.0, 1.0), check_dtypes=False)


def test_custom_jvp_functools_partial():
    # CustomJVPTest.test_custom_jvp_functools_partial: a rule that is a functools.partial binding a
    # float; the pullback is jax.vjp's. The signature read from the partial makes `a` keyword-only,
    # so its cotangent goes in the trailing dict (documented).
    def rule(x, y, a):
        value, back = jax.vjp(lambda x, y: x + y * a, x, y)
        return value, lambda Δ: (*back(Δ), {"a": None})

    fn = tk.adjoint(functools.partial(rule, a=0.1))
    assert_close(jax.grad(lambda args: fn(*args))((1.0, 2.0)), (1.0, 0.1))

    def rule_without_the_dict(x, y, a):
        value, back = jax.vjp(lambda x, y: x + y * a, x, y)
        return value, back

    bare = tk.adjoint(functools.partial(rule_without_the_dict, a=0.1))
    expect_rule_error(
        TypeError, "rule_without_the_dict", lambda: jax.grad(lambda args: bare(*args))((1.0, 2.0)), "dict"
    )


def test_jvp_run_rules_more_than_once():
    # CustomJVPTest.test_run_rules_more_than_once (jax issue 16614)
    @tk.adjoint
    def f(x, y):
        return x * 1.0, lambda Δ: (Δ, None)

    def body(x_y, _):
        x, y = x_y
        return (f(x, y), x), None

    @jax.grad
    def g(x):
        (out, _), _ = lax.scan(body, (x, 1.0), xs=None, length=2)
        return out

    assert_close(g(1.0), 1.0, check_dtypes=False)


@tk.adjoint
def sin_and_shifted_cos(x, y):
    """JAX's test_dce function: (sin x, x + cos y) with derivative (2 cos x dx, 1.5 dx - 0.5 sin y dy)."""
    cos_x, sin_y = jnp.cos(x), jnp.sin(y)
    return (jnp.sin(x), x + jnp.cos(y)), lambda Δ: (2.0 * cos_x * Δ[0] + 1.5 * Δ[1], -0.5 * sin_y * Δ[1])


def test_jvp_dce():
    # CustomJVPTest.test_dce: the numerical part (each output alone), without pe.dce_jaxpr
    x, y = 0.1, -1.3
    f0 = lambda x, y: sin_and_shifted_cos(x, y)[0]
    f1 = lambda x, y: sin_and_shifted_cos(x, y)[1]
    assert_close(jax.jvp(f0, (x, y), (1.0, 0.0)), (f0(x, y), 2.0 * jnp.cos(x)))
    assert_close(jax.jvp(f0, (x, y), (0.0, 1.0)), (f0(x, y), 0.0))
    assert_close(jax.jvp(f1, (x, y), (1.0, 0.0)), (f1(x, y), 1.5))
    assert_close(jax.jvp(f1, (x, y), (0.0, 1.0)), (f1(x, y), -0.5 * jnp.sin(y)))
    assert_close(jax.jit(lambda x, y: jax.jvp(f0, (x, y), (1.0, 0.0)))(x, y), (f0(x, y), 2.0 * jnp.cos(x)))


def test_dce_symbolic_zeros():
    # CustomJVPTest.test_dce_symbolic_zeros (jax issue 31448): a tuple argument with a constant leaf
    @tk.adjoint
    def f(x):
        return x, lambda Δ: (Δ,)

    @jax.jacfwd
    @jax.jacrev
    def f_wrapped(x):
        return jax.jit(f)((x, 3.0))

    assert_close(f_wrapped(jnp.zeros(2)), (jnp.zeros((2, 2, 2)), jnp.zeros((2, 2))), check_dtypes=False)


def test_resolve_kwargs_error_message():
    # CustomJVPTest.test_resolve_kwargs_error_message and CustomVJPTest.test_resolve_kwargs_error_message
    @tk.adjoint
    def f(x, y, *, z=None):
        cos_x, sin_y = jnp.cos(x), jnp.sin(y)
        return (jnp.sin(x), x + jnp.cos(y)), lambda Δ: (cos_x * Δ[0] + Δ[1], -sin_y * Δ[1], {"z": None})

    expect_rule_error(TypeError, "f", lambda: f(0.5), "missing a required argument: 'y'")
    # JAX cannot resolve keyword-only z; tk takes its cotangent from the trailing dict (documented)
    assert_close(f(0.5, 0.1, z=1.0), (jnp.sin(0.5), 0.5 + jnp.cos(0.1)))
    grads = jax.grad(lambda x, y, z: f(x, y, z=z)[1], argnums=(0, 1, 2))(0.5, 0.1, 1.0)
    assert_close(grads, (1.0, -jnp.sin(0.1), 0.0))


def test_symbolic_zero_custom_jvp_vmap_doesnt_instantiate():
    # CustomJVPTest.test_symbolic_zero_custom_jvp_vmap_doesnt_instantiate
    @tk.adjoint
    def f(x, y):
        return y, lambda Δ: (None, Δ)

    def g(x):
        return f(x, f(x, 1.0))

    assert_close(jax.jvp(jax.vmap(g), (jnp.ones(3),), (jnp.ones(3),)), (jnp.ones(3), jnp.zeros(3)))


def test_symbolic_zero_under_vmap_of_jit():
    # CustomJVPTest.test_symbolic_zero_under_vmap_of_jit (jax issue 28144): a zero derivative
    @tk.adjoint
    def f(x):
        return x + 1, lambda Δ: (None,)

    x = jnp.arange(3.0)
    assert_close(jax.jvp(jax.vmap(jax.jit(f)), (x,), (x,)), (x + 1, jnp.zeros(3)))


def test_custom_jvp_transpose_vjp3():
    # CustomJVPTest.test_custom_jvp_transpose_vjp3, with the rule's div(x_dot, y) written as Δ / y
    # (the literal self-call is in test_pullback_may_call_its_own_rule)
    @tk.adjoint
    def div(x, y):
        return x / y, lambda Δ: (Δ / y, None)

    _, f_vjp = jax.vjp(lambda x: div(x, 2.0), 1.0)
    assert_close(f_vjp(1.0), (0.5,), check_dtypes=False)


def test_ensure_compile_time_eval():
    # CustomJVPTest.test_ensure_compile_time_eval, without JAX's `assert x == 0.` inside the rule:
    # tk traces every rule abstractly (documented), so a rule never sees a concrete value.
    @tk.adjoint
    def f(x):
        return x, lambda Δ: (Δ,)

    @jax.jit
    def g():
        with jax.ensure_compile_time_eval():
            return f(0.0)

    assert_close(g(), 0.0, check_dtypes=False)


# =========================================================================================
# CustomVJPTest
# =========================================================================================


def vjp_rule(fwd, bwd):
    """A custom_vjp (fwd, bwd) pair as a tk rule: ``value, res = fwd(x); return value, bwd(res, ·)``."""

    def rule(*args):
        value, residuals = fwd(*args)
        return value, lambda Δ: bwd(residuals, Δ)

    return rule


def test_vjp_basic():
    # CustomVJPTest.test_basic
    @tk.adjoint
    def f(x):
        return vjp_rule(lambda x: (jnp.sin(x), jnp.cos(x)), lambda cos_x, g: (2 * cos_x * g,))(x)

    x = 3.0
    assert_close(f(x), jnp.sin(x))
    assert_close(jax.grad(f)(x), 2 * jnp.cos(x))
    assert_close(jax.value_and_grad(f)(x), (jnp.sin(x), 2 * jnp.cos(x)))


def test_vjp_invariance():
    # CustomVJPTest.test_invariance: a function defined by value_and_grad of f has f's rule too
    def f2(x):
        y, _ = jax.value_and_grad(cos2x_grad3)(x)
        return y

    def f3(x):
        y, _ = jax.value_and_grad(f2)(x)
        return y

    x = 1.0
    assert_close(cos2x_grad3(x), f2(x), check_dtypes=False)
    assert_close(cos2x_grad3(x), f3(x), check_dtypes=False)
    assert_close(jax.grad(cos2x_grad3)(x), 3.0, check_dtypes=False)
    assert_close(jax.grad(f2)(x), 3.0, check_dtypes=False)
    assert_close(jax.grad(f3)(x), 3.0, check_dtypes=False)
    assert_close(jax.grad(lambda x: jax.value_and_grad(cos2x_grad3)(x)[0])(x), 3.0, check_dtypes=False)
    assert_close(jax.jit(jax.grad(f2))(x), 3.0, check_dtypes=False)


def test_vjp_python_control_flow():
    # CustomVJPTest.test_python_control_flow (see test_jvp_python_control_flow for the translation)
    x = 2.0
    assert_close(where_branch(x), jnp.sin(x))
    assert_close(where_branch(-x), jnp.cos(-x))
    assert_close(jax.value_and_grad(where_branch)(x), (jnp.sin(x), 2.0), check_dtypes=False)
    assert_close(jax.value_and_grad(where_branch)(-x), (jnp.cos(-x), 3.0), check_dtypes=False)
    assert_close(jax.value_and_grad(static_branch)(x, "sin"), (jnp.sin(x), 2.0), check_dtypes=False)
    assert_close(jax.value_and_grad(static_branch)(-x, "cos"), (jnp.cos(-x), 3.0), check_dtypes=False)


def test_vjp_python_control_flow_bwd():
    # CustomVJPTest.test_python_control_flow_bwd: lax.cond in the value, the branch in the pullback
    # a lax.cond on a residual predicate (still linear in Δ)
    @tk.adjoint
    def f(x):
        value = lax.cond(x > 0, jnp.sin, jnp.cos, x)
        return value, lambda Δ: (lax.cond(x > 0, lambda d: 2 * d, lambda d: 3 * d, Δ),)

    x = 2.0
    assert_close(f(x), jnp.sin(x))
    assert_close(f(-x), jnp.cos(-x))
    assert_close(jax.value_and_grad(f)(x), (jnp.sin(x), 2.0), check_dtypes=False)
    assert_close(jax.value_and_grad(f)(-x), (jnp.cos(-x), 3.0), check_dtypes=False)
    assert_close(jax.jvp(f, (x,), (1.0,)), (jnp.sin(x), 2.0), check_dtypes=False)


def test_vjp_vmap():
    # CustomVJPTest.test_vmap
    f = scalar_sin_2cos
    x = jnp.arange(3.0)
    xx = jnp.arange(6.0).reshape(2, 3)

    assert_close(jax.vmap(f)(x), jnp.sin(x))
    assert_close(jax.vmap(jax.vmap(f))(xx), jnp.sin(xx))

    assert_close(jax.vmap(jax.grad(f))(x), 2 * jnp.cos(x))
    assert_close(jax.vmap(jax.value_and_grad(f))(x), (jnp.sin(x), 2 * jnp.cos(x)))
    assert_close(jax.vmap(jax.vmap(jax.grad(f)))(xx), 2 * jnp.cos(xx))
    assert_close(jax.vmap(jax.vmap(jax.value_and_grad(f)))(xx), (jnp.sin(xx), 2 * jnp.cos(xx)))

    assert_close(jax.grad(lambda x: jax.vmap(f)(x).sum())(x), 2 * jnp.cos(x))
    assert_close(jax.grad(lambda x: jax.vmap(jax.vmap(f))(x).sum())(xx), 2 * jnp.cos(xx))

    assert_close(jax.vmap(jax.grad(lambda x: jax.vmap(f)(x).sum()))(xx), 2 * jnp.cos(xx))


def test_vjp_jit():
    # CustomVJPTest.test_jit
    f = sin_2cos
    x = 3.0
    assert_close(jax.jit(f)(x), jnp.sin(x))
    assert_close(jax.jit(jax.jit(f))(x), jnp.sin(x))
    assert_close(jax.jit(jax.grad(f))(x), 2 * jnp.cos(x), check_dtypes=False)
    assert_close(jax.grad(jax.jit(f))(x), 2 * jnp.cos(x), check_dtypes=False)


def test_vjp_pytrees():
    # CustomVJPTest.test_pytrees: dict residuals (and the struct version of the rule)
    @tk.adjoint
    def f(x):
        fwd = lambda x: ({"b": jnp.sin(x["a"])}, {"r": jnp.cos(x["a"])})
        bwd = lambda res, g: ({"a": 2 * res["r"] * g["b"]},)
        return vjp_rule(fwd, bwd)(x)

    x = {"a": 3.0}
    assert_close(f(x)["b"], jnp.sin(x["a"]))
    assert_close(jax.grad(lambda x: f(x)["b"])(x), {"a": 2 * jnp.cos(x["a"])})
    grads = jax.grad(lambda s: struct_sin(s).b)(InA(jnp.array(3.0)))
    assert isinstance(grads, InA)
    assert_close(grads.a, 2 * jnp.cos(3.0))


@tk.adjoint
def clipped_sin_2cos(x):
    """sin_2cos with a non-linear pullback (Δ clipped): reverse mode only."""
    return jnp.sin(x), lambda Δ: (2 * jnp.cos(x) * jnp.clip(Δ, -1.0, 1.0),)


def test_vjp_jvp_error():
    # CustomVJPTest.test_jvp_error. JAX's bwd 2 cos(x) g is linear in g, so tk's rule supports
    # forward mode; with a non-linear pullback forward mode is a TypeError, as in JAX.
    assert_close(jax.jvp(sin_2cos, (3.0,), (1.0,)), (jnp.sin(3.0), 2 * jnp.cos(3.0)))
    x = jnp.arange(3.0)
    assert_close(jax.jvp(jax.vmap(sin_2cos), (x,), (jnp.ones(3),)), (jnp.sin(x), 2 * jnp.cos(x)))
    assert_close(jax.jvp(jax.jit(sin_2cos), (3.0,), (1.0,)), (jnp.sin(3.0), 2 * jnp.cos(3.0)))

    assert_close(jax.grad(clipped_sin_2cos)(3.0), 2 * jnp.cos(3.0))
    f = clipped_sin_2cos
    expect_forward_mode_error(f, "clipped_sin_2cos", lambda: jax.jvp(f, (3.0,), (1.0,)), 3.0)
    expect_forward_mode_error(f, "clipped_sin_2cos", lambda: jax.jvp(jax.vmap(f), (x,), (jnp.ones(3),)), 3.0)
    expect_forward_mode_error(f, "clipped_sin_2cos", lambda: jax.jvp(jax.jit(f), (3.0,), (1.0,)), 3.0)


def test_vjp_kwargs():
    # CustomVJPTest.test_kwargs (jax issue 1938): bwd (g, g, g)
    @tk.adjoint
    def my_fun(x, y, c=1.0):
        return c * (x + y), lambda Δ: (Δ, Δ, Δ)

    f = lambda x, y: jnp.square(my_fun(x, y, c=2.0)).sum()
    assert_close(f(10.0, 5.0), 900.0)
    assert_close(jax.grad(f, argnums=(0, 1))(10.0, 5.0), (60.0, 60.0))
    assert_close(jax.grad(lambda c: jnp.square(my_fun(10.0, 5.0, c=c)))(2.0), 60.0)

    @tk.adjoint
    def keyword_only(x, y, *, c=1.0):
        return c * (x + y), lambda Δ: (Δ, Δ, {"c": Δ})

    g = lambda x, y, c: jnp.square(keyword_only(x, y, c=c)).sum()
    assert_close(jax.grad(g, argnums=(0, 1, 2))(10.0, 5.0, 2.0), (60.0, 60.0, 60.0))


def test_vjp_initial_style():
    # CustomVJPTest.test_initial_style
    foo = scan_once(sin_2cos)
    assert_close(jax.grad(foo)(3.0), 2.0 * jnp.cos(3.0), check_dtypes=False)
    assert_close(jax.grad(jax.grad(foo))(3.0), -2.0 * jnp.sin(3.0))


def test_vjp_initial_style_vmap():
    # CustomVJPTest.test_initial_style_vmap: value 3x, residual cos x, bwd 2 cos(x) g
    @tk.adjoint
    def f(x):
        assert jnp.ndim(x) == 0
        return vjp_rule(lambda x: (3 * x, jnp.cos(x)), lambda cos_x, g: (2 * cos_x * g,))(x)

    foo = scan_once(f)
    x = jnp.arange(3.0)
    assert_close(jax.vmap(foo)(x), 3.0 * x, check_dtypes=False)
    assert_close(jax.grad(lambda x: jax.vmap(foo)(x).sum())(x), 2.0 * jnp.cos(x), check_dtypes=False)


@tk.adjoint
def app_cos(f, x):
    """JAX's custom_vjp `app` with nondiff_argnums=(0,): x's derivative is cos x."""
    return f(x), lambda Δ: (None, jnp.cos(x) * Δ)


def test_vjp_nondiff_argnums():
    # CustomVJPTest.test_nondiff_argnums (JAX's app(f, 1) with an int: see test_jvp_nondiff_argnums)
    assert_close(app_cos(lambda x: 2 * x, 1.0), 2.0, check_dtypes=False)
    assert_close(
        jax.value_and_grad(lambda x: app_cos(lambda y: 2 * y, x))(1.0), (2.0, jnp.cos(1.0)), check_dtypes=False
    )


def test_vjp_nondiff_argnames():
    # CustomVJPTest.test_nondiff_argnames
    assert_close(app_cos(f=lambda x: 2 * x, x=1.0), 2.0, check_dtypes=False)
    ans = jax.value_and_grad(lambda x: app_cos(f=lambda y: 2 * y, x=x))(1.0)
    assert_close(ans, (2.0, jnp.cos(1.0)), check_dtypes=False)


def test_vjp_nondiff_argnums_argnames():
    # CustomVJPTest.test_nondiff_argnums_argnames: two callables, one by position, one by name
    @tk.adjoint
    def app(f, g, x):
        return f(x) + g(x), lambda Δ: (None, None, jnp.cos(x) * Δ)

    f = lambda x: 2 * x
    g = lambda x: 2 * x
    assert_close(app(f, g, 1.0), 4.0, check_dtypes=False)
    assert_close(jax.value_and_grad(lambda x: app(f, g=g, x=x))(1.0), (4.0, jnp.cos(1.0)), check_dtypes=False)


def outer_times(x):
    """JAX's `outer`: a rule for y ↦ x * y that closes over x, with derivative cos y."""

    @tk.adjoint
    def times_x(y):
        return x * y, lambda Δ: (jnp.cos(y) * Δ,)

    return times_x


def test_vjp_closed_over_jit_tracer():
    # CustomVJPTest.test_closed_over_jit_tracer (skipped in JAX, "behavior no longer supported").
    # A rule may close over a value jax.jit traces when the differentiation happens inside that jit;
    # differentiating the jitted function from outside fails, as for jax.custom_jvp (documented).
    g = jax.jit(lambda x, y: outer_times(x)(y))
    assert_close(g(2, 3.0), 6.0, check_dtypes=False)
    inside = jax.jit(jax.grad(lambda x, y: outer_times(x)(y), 1))
    assert_close(inside(2.0, 3.0), jnp.cos(3.0), check_dtypes=False)
    with pytest.raises(TypeError):
        jax.grad(g, 1)(2.0, 3.0)


def test_vjp_closed_over_vmap_tracer():
    # CustomVJPTest.test_closed_over_vmap_tracer
    g = jax.vmap(lambda x: outer_times(x)(3.0))
    assert_close(g(np.arange(3.0)), np.arange(3.0) * 3, check_dtypes=False)


def test_vjp_closed_over_tracer3():
    # CustomVJPTest.test_closed_over_tracer3: the vmap tracer is a residual of the pullback
    def outer(x):
        @tk.adjoint
        def times_x(y):
            return x * y, lambda Δ: (jnp.cos(y) * Δ * x,)

        return jax.grad(times_x)

    g = jax.vmap(lambda x: outer(x)(3.0))
    assert_close(g(np.arange(3.0)), np.cos(3.0) * np.arange(3.0), check_dtypes=False)


def test_vjp_nondiff_arg_tracer_error():
    # CustomVJPTest.test_nondiff_arg_tracer_error: in JAX a jit tracer in nondiff_argnums is an
    # UnexpectedTracerError. tk has no nondiff_argnums: an int (traced by jit) passes through and a
    # float is an ordinary argument with a None cotangent, so both calls work.
    @tk.adjoint
    def f(x, y):
        return x * y, lambda Δ: (None, jnp.cos(y) * Δ)

    g = jax.jit(f)
    assert_close(g(2, 3.0), 6.0, check_dtypes=False)
    assert_close(jax.grad(g, 1)(2.0, 3.0), jnp.cos(3.0), check_dtypes=False)
    assert_close(jax.grad(g, 1)(2, 3.0), jnp.cos(3.0), check_dtypes=False)


def test_vjp_rule_inconsistent_pytree_structures_error():
    # CustomVJPTest.test_vjp_rule_inconsistent_pytree_structures_error: two cotangents for one argument
    @tk.adjoint
    def f(x):
        return x * 1.0, lambda Δ: (Δ, Δ)

    expect_rule_error(TypeError, "f", lambda: jax.grad(f)(2.0), "expected 1")


def test_vjp_bwd_returns_non_tuple_error():
    # CustomVJPTest.test_vjp_bwd_returns_non_tuple_error
    @tk.adjoint
    def f(x):
        return x * 1.0, lambda Δ: 2.0 * Δ

    expect_rule_error(TypeError, "f", lambda: jax.grad(f)(3.0), "tuple")


def test_clip_gradient():
    # CustomVJPTest.test_clip_gradient (jax issue 2784): a non-linear pullback whose bounds are
    # float arguments (hi depends on x) with None cotangents
    @tk.adjoint
    def _clip_gradient(lo, hi, x):
        return x * 1.0, lambda Δ: (None, None, jnp.clip(Δ, lo, hi))

    def clip_gradient(x):
        return _clip_gradient(-0.1, x + 0.1, x)

    assert_close(jax.grad(clip_gradient)(0.1), jnp.array(0.2))
    assert_close(jax.jit(jax.grad(clip_gradient))(0.1), jnp.array(0.2))
    call = lambda: jax.jvp(clip_gradient, (0.1,), (1.0,))
    expect_forward_mode_error(_clip_gradient, "_clip_gradient", call, -0.1, 0.2, 0.1)


def test_nestable_vjp():
    # CustomVJPTest.test_nestable_vjp (jax issue 3667): jax.vjp's function is the pullback
    def f(x):
        return x**2

    @tk.adjoint
    def g(x):
        return jax.vjp(f, x)

    _, g_vjp = jax.vjp(g, 1.0)
    assert_close(g_vjp(1.0), (jnp.array(2.0),), check_dtypes=False)

    @jax.jit
    def z(x):
        _, g_vjp = jax.vjp(g, x)
        return g_vjp

    assert_close(z(1.0)(3.0), (jnp.array(6.0),), check_dtypes=False)


def test_vjp_initial_style_vmap_2():
    # CustomVJPTest.test_initial_style_vmap_2 (jax issue 4173): grad of vmap of the rule inside scan
    x = jnp.ones((10, 3))

    @tk.adjoint
    def custom_fun(x):
        return vjp_rule(lambda x: (x.sum(), (jnp.ones_like(x),)), lambda res, g: (g * res[0],))(x)

    def train_fun(x):
        return jax.grad(lambda x: jax.vmap(custom_fun)(x).sum())(x)

    _, grads = lax.scan(lambda carry, _: (carry, train_fun(carry)), x, jnp.arange(4))
    assert_close(grads, jnp.ones((4, 10, 3)))


def test_vjp_initial_style_vmap_3():
    # CustomVJPTest.test_initial_style_vmap_3: the value closes over an array constant
    y = jnp.arange(1.0, 4.0)

    @tk.adjoint
    def f(x):
        assert jnp.ndim(x) == 0
        return vjp_rule(lambda x: (3 * x * jnp.sum(y), jnp.cos(x)), lambda cos_x, g: (2 * cos_x * g,))(x)

    foo = scan_once(f)
    x = jnp.arange(3.0)
    assert_close(jax.vmap(foo)(x), 3.0 * x * 6, check_dtypes=False)
    assert_close(jax.grad(lambda x: jax.vmap(foo)(x).sum())(x), 2.0 * jnp.cos(x), check_dtypes=False)


@pytest.mark.parametrize("where", ["bwd", "fwd"])
def test_pullback_closes_over_an_outer_value(where):
    # CustomVJPTest.test_bwd_closes_over_tracer ("bwd": cos y computed in the pullback) and
    # CustomVJPTest.test_fwd_closes_over_tracer ("fwd": computed by the rule's forward)
    def f(y):
        @tk.adjoint
        def two_sin(x):
            if where == "fwd":
                scale = 2.0 * jnp.cos(y)
                return 2.0 * jnp.sin(x), lambda Δ: (scale * Δ,)
            return 2.0 * jnp.sin(x), lambda Δ: (2.0 * jnp.cos(y) * Δ,)

        return jax.grad(two_sin)(1.0)

    x = jnp.arange(3.0)
    assert_close(jax.jit(f)(2.0), 2.0 * jnp.cos(2.0))
    assert_close(jax.vmap(f)(x), 2.0 * jnp.cos(x))
    assert_close(jax.jit(jax.vmap(f))(x), 2.0 * jnp.cos(x))
    assert_close(jax.vmap(jax.jit(f))(x), 2.0 * jnp.cos(x))
    # JAX differentiates the captured y: -2 sin 4. tk's docstring makes capturing a value that an
    # outer grad differentiates an error naming the rule; either is acceptable, a different number is not.
    try:
        ans = jax.grad(f)(4.0)
    except TypeError as error:
        assert "two_sin" in str(error) and "closes over" in str(error)
    else:
        assert_close(ans, -2.0 * jnp.sin(4.0))


def test_vjp_float0():
    # CustomVJPTest.test_float0: grad with allow_int gives a float0 zero for the int argument
    @tk.adjoint
    def f(x, _):
        return x * 1.0, lambda Δ: (2.0 * Δ, None)

    ans = jax.grad(f, allow_int=True, argnums=(0, 1))(2.0, 3)
    assert_close(ans, (2.0, float0_zero()), check_dtypes=False)


def test_vjp_float0_initial_style():
    # CustomVJPTest.test_float0_initial_style: a (float, int) tuple argument inside a scan
    @tk.adjoint
    def f(x):
        return x[0] * 1.0, lambda Δ: ((2.0 * Δ, None),)

    def foo(x, y):
        out, _ = lax.scan(lambda c, _: ((f(c), c[1]), None), (x, y), None, length=1)
        return out[0]

    ans = jax.grad(foo, allow_int=True, argnums=(0, 1))(2.0, 3)
    assert_close(ans, (2.0, float0_zero()), check_dtypes=False)


def test_bwd_nones():
    # CustomVJPTest.test_bwd_nones
    @tk.adjoint
    def f(x, y):
        return x * jnp.sin(y), lambda Δ: (None, 2 * jnp.cos(y) * Δ)

    assert_close(jax.grad(lambda x: f(x, x))(3.0), 2 * jnp.cos(3.0), check_dtypes=False)


def test_bwd_nones_vmap():
    # CustomVJPTest.test_bwd_nones_vmap
    @tk.adjoint
    def f(x, y):
        return x * jnp.sin(y), lambda Δ: (None, 2 * jnp.cos(y) * Δ)

    x = jnp.arange(3.0)
    assert_close(jax.grad(lambda x: jax.vmap(f)(x, x).sum())(x), 2 * jnp.cos(x), check_dtypes=False)


def test_bwd_nones_pytree():
    # CustomVJPTest.test_bwd_nones_pytree: None for a whole tuple argument
    @tk.adjoint
    def f(xs, y):
        x1, x2 = xs
        return x1 * x2 * jnp.sin(y), lambda Δ: (None, 2 * jnp.cos(y) * Δ)

    assert_close(jax.grad(lambda x: f((x, x), x))(3.0), 2 * jnp.cos(3.0), check_dtypes=False)


def test_custom_vjp_closure_4521():
    # CustomVJPTest.test_custom_vjp_closure_4521 (jax issue 4521): a rule with no output, under vmap
    # with out_axes=None, inside vjp inside scan
    @tk.adjoint
    def g(x, y):
        return None, lambda Δ: (None, None)

    def f(xs, y):
        jax.vmap(g, in_axes=(0, None), out_axes=None)(xs, y)

    def scan_body(xs, _):
        _, vjp_f = jax.vjp(f, xs, jnp.zeros(1))
        vjp_f(None)
        return xs, None

    out, _ = lax.scan(scan_body, jnp.ones(5), None, 100)
    assert_close(out, jnp.ones(5))


def test_float0_bwd_none():
    # CustomVJPTest.test_float0_bwd_none: an integer array argument
    @tk.adjoint
    def f(i, x):
        return jnp.sin(x), lambda Δ: (None, 2 * jnp.cos(x) * Δ)

    assert_close(jax.grad(f, 1)(jnp.array([1, 2]), 3.0), 2 * jnp.cos(3.0), check_dtypes=False)


def test_custom_gradient():
    # CustomVJPTest.test_custom_gradient: jax.custom_gradient is tk's own form
    @tk.adjoint
    def f(x):
        return x**2, lambda g: (g * x,)

    assert_close(f(3.0), 9.0, check_dtypes=False)
    assert_close(jax.grad(f)(3.0), 3.0, check_dtypes=False)
    assert_close(jax.grad(jax.grad(f))(3.0), 1.0, check_dtypes=False)


def test_custom_gradient_2():
    # CustomVJPTest.test_custom_gradient_2. JAX's vjp (y, x) ignores g; a tk pullback is linear in Δ,
    # so it is written (g * y, g * x), and the literal form is tk's documented error naming the argument.
    @tk.adjoint
    def f(x, y):
        return x * y, lambda g: (g * y, g * x)

    assert_close(f(3.0, 4.0), 12.0, check_dtypes=False)
    assert_close(jax.grad(f, argnums=(0, 1))(3.0, 4.0), (4.0, 3.0), check_dtypes=False)

    @tk.adjoint
    def ignores_g(x, y):
        return x * y, lambda g: (y, x)

    expect_rule_error(
        TypeError, "ignores_g", lambda: jax.grad(ignores_g, argnums=(0, 1))(3.0, 4.0), "does not depend on Δ"
    )


def test_custom_gradient_3():
    # CustomVJPTest.test_custom_gradient_3: an integer array call, and a pullback scaled by Δ
    @tk.adjoint
    def f(x):
        return jnp.sum(jnp.sin(x)), lambda g: (g * jnp.cos(x) * jnp.arange(3.0, 6.0),)

    assert_close(f(jnp.arange(3)), jnp.sum(jnp.sin(jnp.arange(3.0))), check_dtypes=False)
    expected = jax.grad(lambda x: jnp.sum(jnp.sin(x)))(jnp.arange(3.0)) * jnp.arange(3.0, 6.0)
    assert_close(jax.grad(f)(jnp.arange(3.0)), expected, check_dtypes=False)


def test_custom_gradient_can_return_singleton_value_in_vjp():
    # CustomVJPTest.test_custom_gradient_can_return_singleton_value_in_vjp: JAX accepts a bare
    # cotangent; tk's pullback returns a tuple (documented), and says so naming the rule.
    @tk.adjoint
    def f(x):
        return x**2, lambda g: g * x

    expect_rule_error(TypeError, "f", lambda: jax.grad(f)(3.0), "tuple")
    expect_rule_error(TypeError, "f", lambda: f(3.0), "tuple")


@tk.adjoint
def _cos_after(fn, x, *args):
    """JAX's test_closure_convert rule: fn passes through, x gets 17 x, each extra argument 42 a (times Δ)."""
    return jnp.cos(fn(x, *args)), lambda Δ: (None, 17.0 * x * Δ, *(42.0 * a * Δ for a in args))


def cos_after(fn, x):
    converted_fn, aux_args = jax.closure_convert(fn, x)
    assert len(aux_args) <= 1
    return _cos_after(converted_fn, x, *aux_args)


def test_closure_convert():
    # CustomVJPTest.test_closure_convert: jax.closure_convert turns the captured c into an argument,
    # which is what tk asks for (pass captured values as arguments)
    def dist(c, x):
        return jnp.sum((x - c) ** 2.0)

    def solve(c, x):
        return cos_after(lambda x: dist(c, x), x)

    c, x = 2.0 * jnp.ones(2), jnp.ones(2)
    assert_close(solve(c, x), jnp.cos(dist(c, x)), check_dtypes=False)
    g_c, g_x = jax.grad(solve, argnums=(0, 1))(c, x)
    assert_close(g_c, 42.0 * c, check_dtypes=False)
    assert_close(g_x, 17.0 * x, check_dtypes=False)


def test_closure_convert_mixed_consts():
    # CustomVJPTest.test_closure_convert_mixed_consts (jax issue 6415): s is captured but not differentiated
    def dist(c, s, x):
        return jnp.sum(s * (x - c) ** 2.0)

    def solve(c, s, x):
        return cos_after(lambda x: dist(c, s, x), x)

    c, s, x = 2.0 * jnp.ones(2), 3.0 * jnp.ones(2), jnp.ones(2)
    assert_close(solve(c, s, x), jnp.cos(dist(c, s, x)), check_dtypes=False)
    g_c, g_x = jax.grad(solve, argnums=(0, 2))(c, s, x)
    assert_close(g_c, 42.0 * c, check_dtypes=False)
    assert_close(g_x, 17.0 * x, check_dtypes=False)


def test_float0_cotangents_automatically_handled():
    # CustomVJPTest.test_float0_cotangents_automatically_handled: JAX's bwd gives (0., 1), an int
    # cotangent for the int argument; tk ignores an entry for a non-differentiable argument.
    @tk.adjoint
    def f(x, y):
        return x * 1.0, lambda Δ: (None, 1)

    ans = jax.jit(lambda y: jax.vjp(f, 0.0, y)[1](1.0))(1)
    assert_close(ans, (0.0, float0_zero()), check_dtypes=False)


def test_custom_vjp_scan_batching_edge_case(x64):
    # CustomVJPTest.test_custom_vjp_scan_batching_edge_case (jax issue 5832); check_grads in float64
    @tk.adjoint
    def mul(x, coeff):
        return x * coeff, lambda g: (g * coeff, (x * g).sum())

    def scan_over_mul(x, coeff):
        y, _ = lax.scan(lambda x, t: (mul(x, coeff), None), x, jnp.arange(3))
        return y

    key1, key2 = jax.random.split(jax.random.key(0), 2)
    x_batch = jax.random.normal(key1, (3, 2))
    covector_batch = jax.random.normal(key2, (3, 2))
    coeff = jnp.array(1.0, dtype=x_batch.dtype)

    batched = jax.vmap(scan_over_mul, in_axes=(0, None), out_axes=0)
    _, vjp_fun = jax.vjp(batched, x_batch, coeff)
    ct_x, ct_coeff = vjp_fun(covector_batch)
    assert_close((ct_x, ct_coeff), (covector_batch, 3.0 * jnp.sum(x_batch * covector_batch)))
    check_grads(batched, (x_batch, coeff), order=2, modes=["rev"])


def test_vjp_closure_with_vmap2():
    # CustomVJPTest.test_closure_with_vmap2 (jax issue 8783)
    def h(z):
        def f(x):
            @tk.adjoint
            def g(y):
                return vjp_rule(lambda y: (x * y, (x, x * y, y)), lambda res, w_bar: (res[0] * w_bar,))(y)

            return g(z)

        return jax.vmap(f)(jnp.arange(3.0, dtype="float32")).sum()

    check_grads(h, (jnp.float32(3.14),), order=1, modes=["rev"])
    assert_close(jax.grad(h)(jnp.float32(3.14)), jnp.float32(3.0))


def test_pytrees_not_required_to_contain_nones():
    # CustomVJPTest.test_pytrees_not_required_to_contain_nones: a pytree node whose unflatten rejects
    # None children must still work as an argument
    class A(list):
        pass

    def unflatten(_, children):
        assert children[0] is not None
        return A(children)

    jax.tree_util.register_pytree_node(A, lambda x: (x, None), unflatten)

    @tk.adjoint
    def f(x):
        return x[0] * 1.0, lambda g: (A([g]),)

    grads = jax.grad(f)(A([1.0]))
    assert isinstance(grads, A)
    assert_close(grads[0], 1.0, check_dtypes=False)


def test_vmap_vjp_called_twice():
    # CustomVJPTest.test_vmap_vjp_called_twice (jax PR 14728)
    @tk.adjoint
    def f(x):
        return x, lambda y_bar: (y_bar,)

    _, f_vjp = jax.vjp(jax.vmap(f), jnp.array([3.0]))
    assert_close(f_vjp(jnp.array([3.0])), (jnp.array([3.0]),))
    assert_close(f_vjp(jnp.array([3.0])), (jnp.array([3.0]),))


def test_symbolic_zero_custom_vjp_basic():
    # CustomVJPTest.test_symbolic_zero_custom_vjp_basic, without the CustomVJPPrimal/SymbolicZero
    # type checks (a tk pullback gets dense Δ): bwd (x1, x1, x2) for outputs (x, x)
    @tk.adjoint
    def f(x, y, z):
        return (x * 1.0, x * 1.0), lambda g: (g[0], g[0], g[1])

    x, y, z = 4.0, 5.0, 6.0
    i = np.array(7, np.int32)
    h = jax.jit(f)
    assert_close(jax.jacrev(h)(x, y, z), (1.0, 0.0), check_dtypes=False)
    assert_close(jax.jacrev(lambda x: h(x, y, z))(x), (1.0, 0.0), check_dtypes=False)
    jac = jax.jacrev(h, argnums=(0, 1, 2), allow_int=True)(x, i, i)
    int_zero = np.zeros((), np.int32)  # what jax.jacrev gives for an int argument under allow_int
    assert_close(jac, ((1.0, int_zero, int_zero), (0.0, int_zero, int_zero)), check_dtypes=False)

    _, vjp = jax.vjp(lambda *xs: f(*xs)[0], x, y, z)
    _, _, gz = vjp(x)
    assert_close(gz, 0.0, check_dtypes=False)
    _, vjp = jax.vjp(lambda *xs: f(*xs)[1], x, y, z)
    gx, gy, _ = vjp(x)
    assert_close((gx, gy), (0.0, 0.0), check_dtypes=False)
    _, vjp = jax.vjp(lambda x: f(x, y, z)[1], x)
    assert_close(vjp(x), (0.0,), check_dtypes=False)


def test_symbolic_zero_custom_vjp_bwd_shape_error():
    # CustomVJPTest.test_symbolic_zero_custom_vjp_bwd_shape_error: swapped cotangents
    @tk.adjoint
    def f(x, y, z):
        return (x, y, z), lambda gs: (gs[1], gs[0], gs[2])

    call = lambda: jax.grad(lambda x, y, z: f(x, y, z)[2].sum())(jnp.ones(1), jnp.ones(2), jnp.ones(3))
    expect_rule_error(ValueError, "f", call, "`x`", "(2,)")


@pytest.mark.parametrize(
    "maybe_jit, maybe_vmap",
    [(True, True), (True, False), (False, True), (False, False)],
    ids=["jit_vmap", "jit", "vmap", "plain"],
)
def test_symbolic_zero_custom_vjp(maybe_jit, maybe_vmap):
    # CustomVJPTest.test_symbolic_zero_custom_vjp. JAX's bwd is affine (+90 ... +93, and the
    # residual static_scalar + 90), which a tk pullback cannot express; here the true linear rule.
    @tk.adjoint
    def f(static_scalar, static_array, dyn_scalar, dyn_array):
        outs = (static_scalar, static_array, static_scalar + dyn_scalar, static_array + dyn_array)
        return outs, lambda g: (g[0] + g[2], g[1] + g[3], g[2], g[3])

    def g(dyn_scalar, dyn_array):
        f_ = pack_vmap(f) if maybe_vmap else f
        return f_(1.0, jnp.array([2.0, 3.0]), dyn_scalar, dyn_array)[1:]

    def run(primal_ins, cotangent_outs):
        primal_outs, vjp = jax.vjp(g, *primal_ins)
        return primal_outs, vjp(cotangent_outs)

    run = jax.jit(run) if maybe_jit else run
    primal_ins = (4.0, jnp.array([5.0, 6.0]))
    cotangent_outs = (jnp.array([10.0, 11.0]), 7.0, jnp.array([8.0, 9.0]))
    primal_outs, cotangent_ins = run(primal_ins, cotangent_outs)
    assert_close(primal_outs, (jnp.array([2.0, 3.0]), 5.0, jnp.array([7.0, 9.0])))
    assert_close(cotangent_ins, (7.0, jnp.array([8.0, 9.0])))


def test_symbolic_zero_custom_vjp_vmap_output():
    # CustomVJPTest.test_symbolic_zero_custom_vjp_vmap_output
    @tk.adjoint
    def f(x, y):
        return (x, y), lambda g: g

    ones = jnp.ones(3)
    assert_close(jax.grad(lambda x, y: jax.vmap(f)(x, y)[0].sum())(ones, ones), jnp.ones(3))


def test_symbolic_zero_custom_vjp_custom_pytree():
    # CustomVJPTest.test_symbolic_zero_custom_vjp_custom_pytree: a registered class with aux data
    @jax.tree_util.register_pytree_node_class
    class Box:
        def __init__(self, strict, val):
            self.strict, self.x = strict, val

        def tree_flatten(self):
            return [self.x], self.strict

        @classmethod
        def tree_unflatten(cls, strict, xs):
            return cls(strict, xs[0])

    x, y = Box(False, jnp.array(72.0)), jnp.array(73.0)

    @tk.adjoint
    def f(box, y):
        return box.x * y, lambda g: (Box(box.strict, y * g), box.x * g)

    grad_box = jax.grad(f, argnums=0)(x, y)
    assert isinstance(grad_box, Box) and grad_box.strict is False
    assert_close(grad_box.x, 73.0)
    assert_close(jax.grad(f, argnums=1)(x, y), 72.0)


def test_vjp_run_rules_more_than_once():
    # CustomVJPTest.test_run_rules_more_than_once (jax issue 16614)
    @tk.adjoint
    def f(x, y):
        return x + y, lambda ct: (ct, ct)

    def body(x_y, _):
        x, y = x_y
        return (f(x, y), x), None

    @jax.grad
    def g(x):
        (out, _), _ = lax.scan(body, (x, 1.0), xs=None, length=2)
        return out

    assert_close(g(1.0), 2.0, check_dtypes=False)


def test_symbolic_zeros_remat():
    # CustomVJPTest.test_symbolic_zeros_remat
    @tk.adjoint
    def f(x):
        return x, lambda g: (g,)

    foo = jax.remat(lambda x: f(f(x)))
    assert_close(jax.grad(foo)(3.0), 1.0, check_dtypes=False)


def test_nones_representing_zeros_in_subtrees_returned_by_bwd():
    # CustomVJPTest.test_nones_representing_zeros_in_subtrees_returned_by_bwd (jax issue 8356)
    @tk.adjoint
    def f(x):
        return x[0], lambda z_bar: ((z_bar, (None, None)),)

    assert_close(jax.grad(f)((1.0, (2.0, 3.0))), (1.0, (0.0, 0.0)), check_dtypes=False)


def test_pytree_nones_returned_by_bwd():
    # CustomVJPTest.test_pytree_nones_returned_by_bwd: the argument itself holds a None
    @tk.adjoint
    def f(x):
        return x[0], lambda z_bar: ((z_bar, (None, None)),)

    assert_close(jax.grad(f)((1.0, (2.0, None))), (1.0, (0.0, None)), check_dtypes=False)


def test_bwd_rule_shape_mismatch():
    # CustomVJPTest.test_bwd_rule_shape_mismatch
    @tk.adjoint
    def foo(x, y):
        return x * 1.0, lambda g: (jnp.zeros(3), jnp.zeros(3))

    call = lambda: jax.grad(lambda x, y: foo(x, y * y).sum(), 1)(jnp.ones(3), jnp.ones(4))
    expect_rule_error(ValueError, "foo", call, "`y`", "(3,)")


def test_bwd_rule_can_produce_list_or_tuple():
    # CustomVJPTest.test_bwd_rule_can_produce_list_or_tuple: JAX accepts a list; tk's pullback returns
    # a tuple (documented) and a list is an error naming the rule.
    @tk.adjoint
    def as_tuple(x, y):
        return x * y, lambda g: (g * y, x * g)

    assert_close(jax.grad(as_tuple, argnums=(0, 1))(1.0, 2.0), (2.0, 1.0), check_dtypes=False)

    @tk.adjoint
    def as_list(x, y):
        return x * y, lambda g: [g * y, x * g]

    expect_rule_error(TypeError, "as_list", lambda: jax.grad(as_list)(1.0, 2.0), "tuple")


def test_remat_multiple_args():
    # CustomVJPTest.test_optimize_remat_multiple_args, without the custom_vjp-only optimize_remat flag:
    # a two-argument rule under jax.remat matches JAX's AD of the same maths
    def f_(x, y):
        return jnp.sin(x) * y

    @tk.adjoint
    def f(x, y):
        cos_x, sin_x = jnp.cos(x), jnp.sin(x)
        return f_(x, y), lambda g: (cos_x * g * y, sin_x * g)

    x, y = 3.2, 1.0
    assert_close(jax.grad(f)(x, y), jax.grad(f_)(x, y))
    assert_close(jax.grad(jax.remat(f), argnums=(0, 1))(x, y), jax.grad(f_, argnums=(0, 1))(x, y))


def test_vjp_dce():
    # CustomVJPTest.test_dce: the numerical part (each output alone), without pe.dce_jaxpr
    x, y = 0.1, -1.3
    f0 = lambda x, y: sin_and_shifted_cos(x, y)[0]
    f1 = lambda x, y: sin_and_shifted_cos(x, y)[1]
    assert_close(jax.grad(f0, argnums=(0, 1))(x, y), (2.0 * jnp.cos(x), 0.0))
    assert_close(jax.grad(f1, argnums=(0, 1))(x, y), (1.5, -0.5 * jnp.sin(y)))
    assert_close(jax.jit(jax.grad(f1, argnums=(0, 1)))(x, y), (1.5, -0.5 * jnp.sin(y)))


# --- dtypes ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dtypes_of_values_and_derivatives(dtype, x64):
    # In the spirit of JAX's dtype checks (assertAllClose checks dtypes; test_closure_with_vmap2 and
    # test_primal_tangent_aval_disagreement_error_message use float32 explicitly): value, gradient
    # and tangent keep the argument's dtype.
    x = jnp.asarray(3.0, dtype=dtype)
    assert sin_2cos(x).dtype == x.dtype
    assert jax.grad(sin_2cos)(x).dtype == x.dtype
    primal, tangent = jax.jvp(sin_2cos, (x,), (jnp.ones_like(x),))
    assert primal.dtype == tangent.dtype == x.dtype
    assert jax.jit(jax.vmap(jax.grad(sin_2cos)))(jnp.stack([x, x])).dtype == x.dtype
    tol = {"float16": 1e-2, "bfloat16": 2e-2}.get(dtype, 1e-6)
    np.testing.assert_allclose(float(jax.grad(sin_2cos)(x)), 2 * np.cos(3.0), rtol=tol, atol=tol)

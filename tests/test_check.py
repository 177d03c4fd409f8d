"""``tk.check_adjoint`` / ``tk.check_grad``: pass right rules, catch wrong ones, and say where.

The wrong rules here are wrong on purpose and in known places, so each test can
assert that the report points at the argument, leaf and element that are wrong.
"""

import pytest

import jax
import jax.numpy as jnp

import toolkit as tk

X = jnp.array([1.0, 4.0, 9.0])


@tk.struct
class GG:
    a: jax.Array
    b: jax.Array


@tk.adjoint
def sqrt(x):
    y = jnp.sqrt(x)
    return y, lambda Δ: (Δ / (2 * y),)


@tk.adjoint
def sqrt_wrong(x):  # the seed's rule with a 3 where the 2 belongs
    y = jnp.sqrt(x)
    return y, lambda Δ: (Δ / (3 * y),)


def energy_rule_with(wrong_b=1.0, wrong_element=None):
    """A struct/array/keyword rule; ``wrong_b`` and ``wrong_element`` plant mistakes."""

    @tk.adjoint
    def energy(g, w, *, scale):
        def pullback(Δ):
            da = Δ * w
            if wrong_element is not None:
                da = da.at[wrong_element].multiply(1.5)
            return GG(da, Δ * scale * wrong_b), Δ * g.a, {"scale": Δ * g.b}

        return jnp.sum(g.a * w) + g.b * scale, pullback

    return energy


energy_rule = energy_rule_with()
G = GG(jnp.array([1.0, 2.0, 3.0]), jnp.array(2.0))


def failure(check, *args, **kwargs):
    with pytest.raises(AssertionError) as error:
        check(*args, **kwargs)
    return str(error.value)


# --- right rules pass -------------------------------------------------------------------


def test_a_right_rule_passes():
    assert tk.check_adjoint(sqrt, X) is None


def test_structs_arrays_and_keyword_arguments_pass():
    tk.check_adjoint(energy_rule, G, jnp.array([0.5, -1.0, 2.0]), scale=1.5)


def test_check_grad_on_ordinary_functions():
    tk.check_grad(lambda x, y: jnp.sin(x) * y, X, 2.0)
    tk.check_grad(lambda d: {"u": d["a"] ** 2, "v": jnp.cos(d["b"])}, {"a": X, "b": -X})


# --- wrong rules are caught, and located ------------------------------------------------


def test_catches_the_seed_rule_with_a_wrong_constant():
    report = failure(tk.check_adjoint, sqrt_wrong, X)
    assert "sqrt_wrong" in report and "reverse mode (jax.vjp)" in report and "forward mode (jax.jvp)" in report
    assert "under jax.jit" in report and "under jax.vmap" in report and "(second point)" in report
    assert "x: FAIL" in report and "max rel err 3.33e-01" in report  # 1/3 vs 1/2: off by a third


def test_report_names_the_wrong_struct_field_and_spares_the_right_ones():
    rule = energy_rule_with(wrong_b=2.0)
    report = failure(tk.check_adjoint, rule, G, jnp.array([0.5, -1.0, 2.0]), scale=1.5)
    lines = report.splitlines()
    assert any(line.strip().startswith("g.b: FAIL") for line in lines)
    for leaf in ("g.a", "w", "scale"):
        assert any(line.strip().startswith(f"{leaf}: ok") for line in lines)
    assert any(line.strip().startswith("tangent on g.b -> output: FAIL") for line in lines)


def test_report_points_at_the_worst_element():
    rule = energy_rule_with(wrong_element=2)
    report = failure(tk.check_adjoint, rule, G, jnp.array([0.5, -1.0, 2.0]), scale=1.5)
    first = next(line for line in report.splitlines() if line.strip().startswith("g.a:"))
    assert "FAIL" in first and "worst at g.a[2]" in first


def test_catches_a_wrong_custom_vjp_in_an_ordinary_function():
    @jax.custom_vjp
    def double(x):
        return 2 * x

    double.defvjp(lambda x: (2 * x, None), lambda _, Δ: (3 * Δ,))
    report = failure(tk.check_grad, double, X)
    assert "x: FAIL" in report and "reverse mode" in report
    assert "forward mode: not checked, f supports reverse mode only" in report  # custom_vjp has none


def test_catches_a_nan_gradient():
    @tk.adjoint
    def nan_rule(x):
        return x * 1.0, lambda Δ: (Δ * jnp.nan,)

    assert "got nan" in failure(tk.check_adjoint, nan_rule, X)


# --- options ----------------------------------------------------------------------------


def test_tolerances_are_parameters():
    @tk.adjoint
    def slightly_off(x):
        return 2 * x, lambda Δ: (2 * Δ * (1 + 1e-4),)

    fast = dict(forward=False, jit=False, vmap=False)
    assert "1e-05 * |expected|" in failure(tk.check_adjoint, slightly_off, X, **fast)
    tk.check_adjoint(slightly_off, X, rtol=1e-3, **fast)
    tk.check_adjoint(slightly_off, X, rtol=0.0, atol=1e-3, **fast)


def test_forward_mode_is_checked_where_the_rule_has_one():
    @tk.adjoint
    def clipped(x):
        return 2 * x, lambda Δ: (jnp.clip(2 * Δ, -100.0, 100.0),)

    tk.check_adjoint(clipped, X)  # reverse mode only: the pullback is not linear in Δ
    with pytest.raises(AssertionError, match="no forward mode"):
        tk.check_adjoint(clipped, X, forward=True)


def test_modes_can_be_switched_off():
    report = failure(tk.check_adjoint, sqrt_wrong, X, forward=False, jit=False, vmap=False)
    assert "1 of 1 checks" in report and "forward" not in report and "jit" not in report


def test_the_checker_works_in_float64_and_restores_float32():
    tk.check_grad(lambda x: jnp.exp(x) * 1e-3, X + 20, rtol=1e-8, atol=0.0, jit=False, vmap=False)  # float32 could not
    assert jnp.ones(1).dtype == jnp.float32


# --- misuse -----------------------------------------------------------------------------


def test_check_adjoint_wants_an_adjoint():
    with pytest.raises(TypeError, match="tk.check_grad"):
        tk.check_adjoint(jnp.sin, X)


def test_functions_that_leave_float64_are_refused():
    with pytest.raises(TypeError, match="float32"):
        tk.check_grad(lambda x: (x * 2).astype(jnp.float32), X)


def test_nothing_to_check():
    with pytest.raises(TypeError, match="nothing to check"):
        tk.check_grad(lambda n: n * 1.0, 3)


@pytest.mark.parametrize(
    ("option", "value"), [("atol", -1e-6), ("rtol", -1.0), ("step", 0.0), ("step", float("nan"))]
)
def test_bad_options_are_named(option, value):
    with pytest.raises(ValueError, match=rf"tk.check_grad\(sin\): {option} must be"):
        tk.check_grad(jnp.sin, X, **{option: value})


def test_empty_inputs_and_outputs_are_named():
    with pytest.raises(TypeError, match="nothing to check"):
        tk.check_grad(lambda x: jnp.sum(x) + 1.0, jnp.ones(0))
    with pytest.raises(TypeError, match="nothing to check"):
        tk.check_grad(lambda x: (), X)

"""``tk.check_adjoint`` / ``tk.check_grad``: pass right rules, catch wrong ones, and say where.

The wrong rules here are wrong on purpose and in known places, so each test can
assert that the report points at the argument, leaf and element that are wrong.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


ROW = re.compile(
    r"^  (?P<label>.+?): (?P<verdict>FAIL|ok), max abs err (?P<abs>\S+), max rel err (?P<rel>\S+), "
    r"worst at (?P<worst>.+?): got (?P<got>\S+), expected (?P<expected>[^\s(]+)"
)


def rows(report, mode):
    """The report's rows under the heading ``mode:``, by label: verdict, worst element, got and expected."""
    lines = report.splitlines()
    start = lines.index(f"{mode}:") + 1
    found = {}
    for line in lines[start:]:
        match = ROW.match(line)
        if match is None:
            break
        row = match.groupdict()
        row.update({k: float(row[k]) for k in ("abs", "rel", "got", "expected")})
        found[row["label"]] = row
    return found


def element(worst):
    """``x[2]`` -> 2, ``g.a[0]`` -> 0, ``y`` -> None."""
    index = re.search(r"\[(\d+)\]$", worst)
    return None if index is None else int(index.group(1))


@tk.adjoint
def root_sum(x, y):
    """Σ √x + 3y, with the right pullback (Δ / 2√x, 3Δ)."""
    r = jnp.sqrt(x)
    return jnp.sum(r) + 3 * y, lambda Δ: (Δ / (2 * r), 3 * Δ)


@tk.adjoint
def root_sum_wrong(x, y):
    """The same with a 3 where the 2 belongs, in x's cotangent only."""
    r = jnp.sqrt(x)
    return jnp.sum(r) + 3 * y, lambda Δ: (Δ / (3 * r), 3 * Δ)


@jax.custom_jvp
def scaled_identity(x, c):
    """x, with the derivative c (a planted mistake for c != 1, in forward and reverse mode alike)."""
    return x


scaled_identity.defjvp(lambda primals, tangents: (primals[0], primals[1] * tangents[0]))


# --- right rules pass -------------------------------------------------------------------


def test_a_right_rule_passes_and_the_same_rule_a_third_off_fails_with_the_analytic_expectation():
    y = 2.0
    tk.check_adjoint(root_sum, X, y)  # the right rule: no error
    report = failure(tk.check_adjoint, root_sum_wrong, X, y, jit=False, vmap=False)
    reverse = rows(report, "reverse mode (jax.vjp)")
    assert reverse["x"]["verdict"] == "FAIL" and reverse["y"]["verdict"] == "ok"
    # The output is a scalar, so the random cotangent u is one number: y's expected entry is 3u, and the
    # expected entry of x[i] is u / (2√x[i]), largest at the smallest x, which the report names as the worst.
    u = reverse["y"]["expected"] / 3
    assert reverse["x"]["worst"] == "x[0]"
    assert reverse["x"]["expected"] == pytest.approx(u / (2 * np.sqrt(1.0)), rel=1e-6)
    assert reverse["x"]["got"] == pytest.approx(u / (3 * np.sqrt(1.0)), rel=1e-6)
    assert reverse["x"]["rel"] == pytest.approx(1 / 3, rel=1e-2)
    forward = rows(report, "forward mode (jax.jvp)")
    assert (
        forward["tangent on x -> output"]["verdict"] == "FAIL" and forward["tangent on y -> output"]["verdict"] == "ok"
    )
    assert forward["tangent on x -> output"]["got"] / forward["tangent on x -> output"]["expected"] == pytest.approx(
        2 / 3, rel=1e-6
    )


def test_structs_arrays_and_keyword_arguments_pass_and_a_wrong_field_is_reported_with_its_expectation():
    w = jnp.array([0.5, -1.0, 2.0])
    tk.check_adjoint(energy_rule, G, w, scale=1.5)  # the right rule: no error
    report = failure(tk.check_adjoint, energy_rule_with(wrong_b=2.0), G, w, scale=1.5, jit=False, vmap=False)
    reverse = rows(report, "reverse mode (jax.vjp)")
    assert {label: row["verdict"] for label, row in reverse.items()} == {
        "g.a": "ok",
        "g.b": "FAIL",
        "w": "ok",
        "scale": "ok",
    }
    # energy = Σ g.a·w + g.b·scale: ∂/∂g.a = w, ∂/∂g.b = scale, ∂/∂w = g.a, ∂/∂scale = g.b, each times u.
    u = reverse["g.b"]["expected"] / 1.5
    assert reverse["g.b"]["got"] == pytest.approx(2 * u * 1.5, rel=1e-6)
    analytic = {"g.a": np.asarray(w), "w": np.asarray(G.a), "scale": np.asarray(G.b)}
    for label, derivative in analytic.items():
        i = element(reverse[label]["worst"])
        assert reverse[label]["expected"] == pytest.approx(u * (derivative if i is None else derivative[i]), rel=1e-6)


def test_check_grad_on_ordinary_functions_passes_and_a_planted_derivative_fails():
    tk.check_grad(lambda x, y: jnp.sin(x) * y, X, 2.0)
    tk.check_grad(lambda d: {"u": d["a"] ** 2, "v": jnp.cos(d["b"])}, {"a": X, "b": -X})
    # the same functions with the derivative of one input off by a factor 1.5
    eager = dict(jit=False, vmap=False)
    report = failure(tk.check_grad, lambda x, y: jnp.sin(x) * scaled_identity(y, 1.5), X, 2.0, **eager)
    reverse = rows(report, "reverse mode (jax.vjp)")
    assert reverse["x"]["verdict"] == "ok" and reverse["y"]["verdict"] == "FAIL"
    assert reverse["y"]["got"] / reverse["y"]["expected"] == pytest.approx(1.5, rel=1e-6)
    planted = lambda d: {"u": d["a"] ** 2, "v": jnp.cos(scaled_identity(d["b"], 1.5))}  # noqa: E731
    report = failure(tk.check_grad, planted, {"a": X, "b": -X}, **eager)
    reverse = rows(report, "reverse mode (jax.vjp)")
    assert reverse["d['a']"]["verdict"] == "ok" and reverse["d['b']"]["verdict"] == "FAIL"
    assert reverse["d['b']"]["got"] / reverse["d['b']"]["expected"] == pytest.approx(1.5, rel=1e-6)
    forward = rows(report, "forward mode (jax.jvp)")
    assert forward["tangent on d['a'] -> output['u']"]["verdict"] == "ok"
    assert forward["tangent on d['b'] -> output['v']"]["verdict"] == "FAIL"


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


def test_a_relative_error_just_inside_rtol_passes_and_just_outside_fails():
    @tk.adjoint
    def off_by_1e_4(x):  # every element of the cotangent is 1e-4 too large, relatively
        return 2 * x, lambda Δ: (2 * Δ * (1 + 1e-4),)

    fast = dict(forward=False, jit=False, vmap=False, atol=0.0)
    tk.check_adjoint(off_by_1e_4, X, rtol=1.05e-4, **fast)
    report = failure(tk.check_adjoint, off_by_1e_4, X, rtol=0.95e-4, **fast)
    assert rows(report, "reverse mode (jax.vjp)")["x"]["rel"] == pytest.approx(1e-4, rel=1e-2)


def test_an_absolute_error_just_inside_atol_passes_and_just_outside_fails():
    @tk.adjoint
    def off_by_1e_4(x):
        return 2 * x, lambda Δ: (2 * Δ * (1 + 1e-4),)

    fast = dict(forward=False, jit=False, vmap=False, rtol=0.0)
    # the largest absolute error, |2u|·1e-4 at the largest |u|, as the report gives it (3 digits)
    largest = rows(failure(tk.check_adjoint, off_by_1e_4, X, atol=0.0, **fast), "reverse mode (jax.vjp)")["x"]["abs"]
    tk.check_adjoint(off_by_1e_4, X, atol=1.05 * largest, **fast)
    failure(tk.check_adjoint, off_by_1e_4, X, atol=0.95 * largest, **fast)
    # atol and rtol add up: a little over half the error allowed by each passes, together; a little under fails
    modes = dict(forward=False, jit=False, vmap=False)
    tk.check_adjoint(off_by_1e_4, X, atol=0.55 * largest, rtol=0.55e-4, **modes)
    failure(tk.check_adjoint, off_by_1e_4, X, atol=0.45 * largest, rtol=0.45e-4, **modes)


def test_forward_mode_is_checked_where_the_rule_has_one():
    @tk.adjoint
    def clipped(x):
        return 2 * x, lambda Δ: (jnp.clip(2 * Δ, -100.0, 100.0),)

    @tk.adjoint
    def clipped_wrong(x):
        return 2 * x, lambda Δ: (jnp.clip(3 * Δ, -100.0, 100.0),)

    tk.check_adjoint(clipped, X)  # reverse mode only: the pullback is not linear in Δ
    report = failure(tk.check_adjoint, clipped_wrong, X)
    assert "3 of 3 checks" in report and "forward mode" not in report  # eager, jit and vmap reverse modes only
    assert rows(report, "reverse mode (jax.vjp)")["x"]["got"] / rows(report, "reverse mode (jax.vjp)")["x"][
        "expected"
    ] == pytest.approx(1.5, rel=1e-6)
    with pytest.raises(AssertionError, match="no forward mode"):
        tk.check_adjoint(clipped, X, forward=True)


def test_modes_can_be_switched_off():
    report = failure(tk.check_adjoint, sqrt_wrong, X, forward=False, jit=False, vmap=False)
    assert "1 of 1 checks" in report and "forward" not in report and "jit" not in report


def test_the_checker_works_in_float64_and_restores_float32():
    fast = dict(rtol=1e-8, atol=0.0, jit=False, vmap=False)
    tk.check_grad(lambda x: jnp.exp(x) * 1e-3, X + 20, **fast)
    # a derivative off by 1e-7, relatively (below float32's resolution), is caught: the check runs in float64
    report = failure(tk.check_grad, lambda x: jnp.exp(scaled_identity(x, 1 + 1e-7)) * 1e-3, X + 20, **fast)
    assert rows(report, "reverse mode (jax.vjp)")["x"]["rel"] == pytest.approx(1e-7, rel=2e-2)
    tk.check_grad(lambda x: jnp.exp(scaled_identity(x, 1 + 1e-7)) * 1e-3, X + 20, **dict(fast, rtol=2e-7))
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


@pytest.mark.parametrize(("option", "value"), [("atol", -1e-6), ("rtol", -1.0), ("step", 0.0), ("step", float("nan"))])
def test_bad_options_are_named(option, value):
    with pytest.raises(ValueError, match=rf"tk.check_grad\(sin\): {option} must be"):
        tk.check_grad(jnp.sin, X, **{option: value})


def test_empty_inputs_and_outputs_are_named():
    with pytest.raises(TypeError, match="nothing to check"):
        tk.check_grad(lambda x: jnp.sum(x) + 1.0, jnp.ones(0))
    with pytest.raises(TypeError, match="nothing to check"):
        tk.check_grad(lambda x: (), X)

"""Colour-difference gradients: finite everywhere, equal to float64 finite differences where the metric is
differentiable, and the documented subgradients elsewhere (ΔE = 0, grey colours, the 180° seam).

Compilation dominates the cost, so almost every test goes through ``evaluate``: one compiled function per
input space and dtype that returns every metric's values and gradients for up to SIZE pairs (smaller
batches are padded). Finite differences are values at shifted points, so they go through it too.
"""

import functools

import colour as colour_science
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toolkit as tk
from toolkit.colour import METRIC_INPUTS, ciede2000, rgb_to_lab, rgb_to_xyz
from toolkit.colour import METRICS as ALL_METRICS
from toolkit.colour._chroma import _cone, chroma

# The metrics on CIE L*a*b* defined for every finite Lab colour. DIN99 (NaN for L* <= -63.3) and the metrics
# on ICtCp and J'a'b' get the same sweeps through colordiff in test_metrics.py.
METRICS = {name: f for name, f in ALL_METRICS.items() if METRIC_INPUTS[name] == "Lab" and name != "DIN99"}
NAMES = list(METRICS)
SIZE = 2 * 7 * 11**3  # pairs per evaluation: the RGB-grid sweep, both argument orders
BATCH = 32  # pairs per finite-difference check (with 24 shifted copies each)


# --- one compiled evaluation of every metric ---------------------------------------------------------


@functools.cache
def _compiled(space):
    convert = (lambda x: x) if space is None else functools.partial(rgb_to_lab, reference_white=space)

    def every_metric(x1, x2):
        results = {}
        for name, f in METRICS.items():
            values, back = jax.vjp(lambda a, b: f(convert(a), convert(b)), x1, x2)
            results[name] = (values, *back(jnp.ones_like(values)))
        return results

    return jax.jit(every_metric)


def evaluate(x1, x2, space=None):
    """{metric: (ΔE, gradient w.r.t. x1, gradient w.r.t. x2)} for pairs of Lab colours (space None) or of
    sRGB colours through rgb_to_lab(reference_white=space), in the dtype of x1 (float32 or float64)."""
    dtype = np.asarray(x1).dtype
    n = len(x1)
    assert n <= SIZE
    padded = [np.resize(np.asarray(x, dtype), (SIZE, 3)) for x in (x1, x2)]  # repeats whole rows
    with jax.enable_x64(dtype == np.float64):
        results = _compiled(space)(*padded)
        return {name: tuple(np.asarray(v)[:n] for v in values) for name, values in results.items()}


# --- oracles and helpers ----------------------------------------------------------------------------


def polar(L, C, h_degrees):
    h = np.radians(h_degrees)
    return np.stack([L, C * np.cos(h), C * np.sin(h)], axis=-1)


def primed(lab1, lab2):
    """CIEDE2000's C1', C2', h1', h2' in float64 NumPy."""
    C = (np.hypot(lab1[..., 1], lab1[..., 2]) + np.hypot(lab2[..., 1], lab2[..., 2])) / 2
    G = 0.5 * (1 - np.sqrt(C**7 / (C**7 + 25.0**7)))
    chromas = [np.hypot((1 + G) * lab[..., 1], lab[..., 2]) for lab in (lab1, lab2)]
    hues = [np.degrees(np.arctan2(lab[..., 2], (1 + G) * lab[..., 1])) % 360 for lab in (lab1, lab2)]
    return chromas, hues


def near(angle, points, margin):
    return np.any([np.abs((angle - p + 180) % 360 - 180) < margin for p in points], axis=0)


def differentiable(lab1, lab2, margin=0.5):
    """Pairs away from every non-differentiable point of every metric (with room for the finite differences).

    ΔE = 0; a grey colour (C' > 1 keeps the hue-direction curvature, ~1/C, tame); CIEDE2000's 180° seam and
    the wrap of its mean hue at 0°/360° (where its rotation term jumps by 3e-4 degrees); CMC's branch points
    (reference hue 55°, 164°, 282°, 345°, reference L* = 16); HyAB's and HyCH's |ΔL*| at ΔL* = 0, and their
    chromatic distance (√(Δa*² + Δb*²), √(ΔC*² + ΔH*²)) where the two colours' a*, b* coincide.
    """
    (C1, C2), (h1, h2) = primed(lab1, lab2)
    d = np.abs(h1 - h2)
    mean = np.where(d <= 180, (h1 + h2) / 2, (h1 + h2 + 360) / 2 % 360)
    hue1 = np.degrees(np.arctan2(lab1[..., 2], lab1[..., 1])) % 360
    return (
        (np.minimum(C1, C2) > 1)
        & (np.linalg.norm(lab1 - lab2, axis=-1) > 0.1)
        & (np.abs(d - 180) > margin)
        & ~near(mean, [0], margin)
        & ~near(hue1, [55, 164, 282, 345], margin)
        & (np.abs(lab1[..., 0] - 16) > 0.01)
        & (np.abs(lab1[..., 0] - lab2[..., 0]) > 0.01)
        & (np.linalg.norm(lab1[..., 1:] - lab2[..., 1:], axis=-1) > 0.01)
    )


def near_conversion_kinks(rgb, margin=1e-3):
    """RGB near the sRGB curve's junction (|x| = 0.04045) or with X/Xn, Y/Yn or Z/Zn near CIE L*'s (24/116)^3."""
    with jax.enable_x64(True):
        ratios = np.asarray(rgb_to_xyz(rgb)) / np.asarray(rgb_to_xyz(np.ones(3)))
    return (np.abs(np.abs(rgb) - 0.04045) < margin).any(-1) | (np.abs(ratios - (24 / 116) ** 3) < margin).any(-1)


def assert_matches_differences(x1, x2, keep, space=None, rtol=1e-6):
    """Every metric's gradient (float64) against 5-point central differences, on the pairs where ``keep``."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    n = len(x1)
    step = 1e-4 if space is None else 1e-6
    x = np.concatenate([x1, x2], axis=-1)
    shifts = np.array([2, 1, -1, -2])[:, None, None, None] * np.eye(6)[None, :, None, :] * step  # (4, 6, 1, 6)
    points = np.concatenate([x[None], (x + shifts).reshape(-1, n, 6)]).reshape(-1, 6)
    results = evaluate(points[:, :3], points[:, 3:], space)
    for name, (values, g1, g2) in results.items():
        gradient = np.concatenate([g1[:n], g2[:n]], axis=-1)
        plus2, plus, minus, minus2 = values[n:].reshape(4, 6, n)
        differences = ((8 * (plus - minus) - (plus2 - minus2)) / (12 * step)).T
        error = np.max(np.abs(gradient - differences), axis=-1)
        bad = keep & ~(error <= rtol * np.max(np.abs(differences), axis=-1) + 1e-9)
        assert not bad.any(), (
            f"{name}: {bad.sum()} of {keep.sum()} pairs disagree with finite differences; first: "
            f"{x1[bad][0]}, {x2[bad][0]}: gradient {gradient[bad][0]} vs {differences[bad][0]}"
        )


def assert_all_finite(results, where):
    for name, (_, g1, g2) in results.items():
        for argument, g in (("first", g1), ("second", g2)):
            finite = np.isfinite(g).all(axis=-1)
            assert finite.all(), (
                f"{name}, {argument} argument, {where}: non-finite gradient at pairs {np.flatnonzero(~finite)[:5]}"
            )


# --- the chroma rule -----------------------------------------------------------------------------------


def test_chroma_rule_matches_finite_differences_off_the_grey_axis():
    a, b = jnp.array([3.0, -0.5, 1e-3, 40.0]), jnp.array([4.0, 2.0, -2e-3, -30.0])
    scale = jnp.array([1.0, 1.3, 1.5, 1.01])
    toward_a, toward_b = jnp.array([1.0, 0.0, -2.0, 5.0]), jnp.array([0.0, 1.0, 1.0, 5.0])
    tk.check_adjoint(_cone, a, b, scale, toward_a, toward_b, rtol=1e-6, atol=1e-9)
    # and against the gradient of hypot(s·a, b) derived by hand: (s²·a, b, s·a²) / C, nothing into `toward`
    with jax.enable_x64(True):
        x = [np.asarray(v, np.float64) for v in (a, b, toward_a, toward_b, scale)]
        got = jax.vmap(jax.grad(chroma, argnums=(0, 1, 2, 3, 4)))(*x)
    a, b, _, _, s = x
    C = np.hypot(s * a, b)
    np.testing.assert_allclose(got, [s * s * a / C, b / C, 0 * C, 0 * C, s * a * a / C], rtol=1e-12, atol=1e-15)


def test_chroma_rule_on_the_grey_axis_points_toward_the_other_colour():
    grad = jax.jit(jax.grad(chroma, argnums=(0, 1, 2, 3, 4)))
    with jax.enable_x64(True):
        # the slope of hypot(1.5 a, b) along u = (0.6, -0.8) is hypot(0.9, 0.8); the gradient is slope * u
        da, db, dta, dtb, ds = grad(0.0, 0.0, 3.0, -4.0, 1.5)
        slope = np.hypot(0.9, 0.8)
        np.testing.assert_allclose([da, db], [0.6 * slope, -0.8 * slope], rtol=1e-15)
        assert (dta, dtb, ds) == (0, 0, 0)
        one_sided = chroma(0.6e-7, -0.8e-7, 0.0, 0.0, 1.5) / 1e-7
        assert float(da * 0.6 - db * 0.8) == pytest.approx(float(one_sided), rel=1e-12)
        assert [float(g) for g in grad(0.0, 0.0, 0.0, 0.0, 1.5)] == [0.0] * 5  # both grey: no direction
        assert float(chroma(0.0, 0.0, 3.0, -4.0, 1.5)) == 0.0


# --- finite everywhere -----------------------------------------------------------------------------------

TARGETS = {
    "white": [1.0, 1.0, 1.0],
    "black": [0.0, 0.0, 0.0],
    "mid grey": [0.5, 0.5, 0.5],
    "red": [1.0, 0.0, 0.0],
    "green": [0.0, 1.0, 0.0],
    "blue": [0.0, 0.0, 1.0],
}


def sweep_pairs(dtype=np.float32):
    """The 11x11x11 RGB grid against each target and against itself, in both argument orders."""
    values = np.linspace(0, 1, 11)
    grid = np.stack(np.meshgrid(values, values, values, indexing="ij"), axis=-1).reshape(-1, 3)
    others = [np.broadcast_to(np.array(t), grid.shape) for t in TARGETS.values()] + [grid]
    first = np.concatenate([grid] * len(others) + others)
    second = np.concatenate(others + [grid] * len(others))
    return first.astype(dtype), second.astype(dtype)


@pytest.mark.parametrize("space", [None, "illuminant", "space"], ids=["Lab", "RGB", "RGB-own-white"])
def test_sweep_of_the_rgb_grid_has_finite_gradients_for_every_metric_and_argument(space):
    rgb1, rgb2 = sweep_pairs()
    x1, x2 = (rgb1, rgb2) if space else (np.asarray(rgb_to_lab(rgb1)), np.asarray(rgb_to_lab(rgb2)))
    assert_all_finite(evaluate(x1, x2, space), f"sweep ({space or 'Lab'})")


def test_sweep_agrees_with_finite_differences_where_differentiable():
    rgb1, rgb2 = sweep_pairs(np.float64)
    with jax.enable_x64(True):
        lab1, lab2 = np.asarray(rgb_to_lab(rgb1)), np.asarray(rgb_to_lab(rgb2))
    keep = differentiable(lab1, lab2) & ~near_conversion_kinks(rgb1) & ~near_conversion_kinks(rgb2)
    chosen = np.random.default_rng(0).choice(np.flatnonzero(keep), 2 * BATCH, replace=False)
    for part in np.split(chosen, 2):
        assert_matches_differences(lab1[part], lab2[part], np.ones(BATCH, bool))
        assert_matches_differences(rgb1[part], rgb2[part], np.ones(BATCH, bool), space="illuminant")


special = st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 1e-40, 1e-7, -1e-7, 100.0, 1e6])
lab_values = st.one_of(special, st.floats(-300, 300, width=32))


@settings(max_examples=30)
@given(
    st.lists(st.tuples(*[lab_values] * 6), min_size=BATCH, max_size=BATCH),
    st.sampled_from(["copy", "negate", "grey", "none"]),
)
def test_gradients_are_finite_for_any_lab_pair(pairs, twist):
    x = np.array(pairs, np.float32)
    x1, x2 = x[:, :3], x[:, 3:]
    if twist == "copy":
        x2 = x1.copy()
    elif twist == "negate":  # exactly opposite hues: CIEDE2000's seam
        x2 = np.concatenate([x2[:, :1], -x1[:, 1:]], axis=-1)
    elif twist == "grey":
        x1[:, 1:] = 0
    assert_all_finite(evaluate(x1, x2), "Lab")


@settings(max_examples=30)
@given(st.lists(st.tuples(*[st.floats(-0.5, 1.5, width=32)] * 6), min_size=BATCH, max_size=BATCH), st.booleans())
def test_gradients_are_finite_for_any_rgb_pair_in_and_out_of_gamut(pairs, greys):
    x = np.array(pairs, np.float32)
    x1, x2 = x[:, :3], x[:, 3:]
    if greys:
        x1 = np.repeat(x1[:, :1], 3, axis=1)
    assert_all_finite(evaluate(x1, x2, "space"), "RGB")
    assert_all_finite(evaluate(x1, x2, "illuminant"), "RGB")


# --- equal to finite differences where differentiable ---------------------------------------------------

lab_colours = st.tuples(st.floats(0, 100), st.floats(1.5, 150), st.floats(0, 360, exclude_max=True))


@settings(max_examples=20)
@given(st.lists(st.tuples(lab_colours, lab_colours), min_size=BATCH, max_size=BATCH))
def test_lab_gradients_equal_finite_differences(pairs):
    x = np.array(pairs, np.float64)  # (pair, colour, (L, C, h))
    lab1, lab2 = polar(*x[:, 0].T), polar(*x[:, 1].T)
    assert_matches_differences(lab1, lab2, differentiable(lab1, lab2))


@settings(max_examples=20)
@given(st.lists(st.tuples(*[st.floats(-0.2, 1.2)] * 6), min_size=BATCH, max_size=BATCH))
def test_rgb_gradients_equal_finite_differences(pairs):
    x = np.array(pairs, np.float64)
    rgb1, rgb2 = x[:, :3], x[:, 3:]
    with jax.enable_x64(True):
        lab1, lab2 = np.asarray(rgb_to_lab(rgb1)), np.asarray(rgb_to_lab(rgb2))
    keep = differentiable(lab1, lab2) & ~near_conversion_kinks(rgb1) & ~near_conversion_kinks(rgb2)
    assert_matches_differences(rgb1, rgb2, keep, space="illuminant")


def test_check_grad_on_ciede2000_reverse_and_forward_mode():
    lab1 = jnp.array([[50.0, 20.0, -30.0], [70.0, -40.0, 10.0], [30.0, 5.0, 60.0]])
    lab2 = jnp.array([[55.0, 25.0, -20.0], [60.0, -35.0, 25.0], [35.0, -10.0, 50.0]])
    tk.check_grad(ciede2000, lab1, lab2, rtol=1e-6, atol=1e-9, forward=True, jit=False, vmap=False)


# --- the documented subgradients ------------------------------------------------------------------------


def test_gradient_is_zero_where_the_colours_are_equal():
    lab = np.array(
        [[50.0, 20.0, -30.0], [50.0, 0.0, 0.0], [0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [40.0, -1e-3, 2e-3]], np.float32
    )
    for name, (values, g1, g2) in evaluate(lab, lab).items():
        assert np.all(values == 0) and np.all(g1 == 0) and np.all(g2 == 0), name


def test_two_greys_have_no_chroma_gradient():
    greys = np.array([[50.0, 0.0, 0.0], [0.0, 0.0, 0.0], [100.0, 0.0, 0.0]], np.float32)
    others = np.array([[60.0, 0.0, 0.0], [100.0, 0.0, 0.0], [100.0, 0.0, 0.0]], np.float32)
    for name, (_, g1, g2) in evaluate(greys, others).items():
        assert np.all(g1[:, 1:] == 0) and np.all(g2[:, 1:] == 0), name


def test_at_a_grey_colour_the_gradient_is_a_descent_direction_along_the_targets_hue():
    # Greys at L* 0, 50, 100 against chromatic targets all round the hue circle, in both argument orders.
    hues, chromas, lightness = np.arange(0, 360, 7.5), [0.5, 10.0, 60.0], [0.0, 50.0, 100.0]
    h, C, L = (v.ravel() for v in np.meshgrid(hues, chromas, lightness, indexing="ij"))
    target = polar(np.full_like(h, 45.0), C, h)
    grey = np.stack([L, 0 * L, 0 * L], axis=-1)
    m = len(grey)
    u = np.concatenate([0 * L[:, None], target[:, 1:] / C[:, None]], axis=-1)  # the target's hue direction
    at_grey = evaluate(np.concatenate([target, grey]), np.concatenate([grey, target]))
    for name, (before, g1, g2) in at_grey.items():
        for order, grey_first in (("target, grey", False), ("grey, target", True)):
            rows = slice(m, 2 * m) if grey_first else slice(0, m)
            gradient, before_here = (g1 if grey_first else g2)[rows], before[rows]
            norm = np.linalg.norm(gradient, axis=-1)
            cross = gradient[:, 1] * target[:, 2] - gradient[:, 2] * target[:, 1]
            assert np.all(np.abs(cross) <= 1e-9 * norm * C), (
                f"{name} ({order}): the (a*, b*) gradient is along the target's"
            )
            along = np.sum(gradient * u, axis=-1)
            assert np.all(along < 0), f"{name} ({order}): moving toward the target's hue reduces ΔE"

            # ΔE one-sided along u (second order: (-3 f(0) + 4 f(h) - f(2h)) / 2h), and after steps against the gradient
            h_step, steps = 1e-5, np.array([1e-9, 1e-6, 1e-3, 1e-1])
            moved = [grey + h_step * u, grey + 2 * h_step * u] + [grey - s * gradient / norm[:, None] for s in steps]
            moved = np.concatenate(moved)
            others = np.tile(target, (len(moved) // m, 1))
            values = evaluate(*((moved, others) if grey_first else (others, moved)))[name][0].reshape(-1, m)
            slope = (-3 * before_here + 4 * values[0] - values[1]) / (2 * h_step)
            np.testing.assert_allclose(
                along, slope, rtol=1e-6, atol=1e-9, err_msg=f"{name} ({order}): one-sided derivative"
            )
            assert np.all(values[2:] < before_here), (
                f"{name} ({order}): every step against the gradient, 1e-9 to 0.1, reduces ΔE"
            )


def rgb_descent_values_and_gradients(y, target):
    """ΔE and its gradient with respect to y (RGB, Lab relative to sRGB's white) for y of shape
    (metric, order, pair, 3): order 0 is metric(target, y), order 1 is metric(y, target)."""
    K, _, m, _ = y.shape
    fixed = np.broadcast_to(target, (K, m, 3))
    x1 = np.stack([fixed, y[:, 1]], axis=1).reshape(-1, 3)
    x2 = np.stack([y[:, 0], fixed], axis=1).reshape(-1, 3)
    results = evaluate(x1, x2, "space")
    values = np.stack([results[name][0].reshape(K, 2, m)[k] for k, name in enumerate(NAMES)])
    gradients = np.stack(
        [
            np.stack([results[name][2].reshape(K, 2, m, 3)[k, 0], results[name][1].reshape(K, 2, m, 3)[k, 1]])
            for k, name in enumerate(NAMES)
        ]
    )
    return values, gradients


def test_descent_in_rgb_from_exact_greys_leaves_the_grey_axis_and_makes_progress():
    # In RGB the step is J·Jᵀ·g in Lab, turned off the target's hue by up to ~50°. From a grey, ΔE grows to
    # first order in directions far enough from the target's hue, so the first step does not always reduce it
    # (measured: CIEDE2000 toward blue, CMC from white toward red, CIE94 from black toward blue), but it always
    # leaves the grey axis, and from there on the gradient is the ordinary one. (In RGB even a zero (a*, b*)
    # subgradient would leave the grey axis, as the lightness gradient pulled back through J has chroma, in
    # some hue: the Lab test above is the one that pins the subgradient down.)
    greys = np.array([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])
    targets = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 1.0], [1.0, 1.0, 0], [1.0, 0, 1.0]])
    start, target = (
        np.asarray(v, np.float32).reshape(-1, 3) for v in np.broadcast_arrays(greys[:, None], targets[None])
    )
    own_white = functools.partial(rgb_to_lab, reference_white="space")
    assert np.all(np.asarray(own_white(start))[:, 1:] == 0), "the starts are exactly grey"
    y = np.tile(start, (len(NAMES), 2, 1, 1))  # every metric and argument order moves its own copy
    history = []
    for _ in range(20):
        values, gradients = rgb_descent_values_and_gradients(y, target)
        history.append(values)
        y = y - 0.001 * gradients
        if len(history) == 1:
            moved = np.asarray(own_white(y))[..., 1:]
            assert np.all(np.linalg.norm(moved, axis=-1) > 1e-3), "the first step leaves the grey axis"
    history.append(rgb_descent_values_and_gradients(y, target)[0])
    assert np.all(history[-1] < history[0] - 1), "20 steps make progress"
    assert (
        history[1][0, 0, 0] < history[0][0, 0, 0]
    )  # the seed's case, CIEDE2000 from white toward red: the first step descends


def test_gradient_on_the_seam_is_the_limit_from_inside_and_symmetric():
    rng = np.random.default_rng(8)
    n = 50
    lab1 = polar(rng.uniform(20, 80, n), rng.uniform(5, 100, n), rng.uniform(0, 360, n))
    lab2 = np.stack([rng.uniform(20, 80, n), -lab1[:, 1], -lab1[:, 2]], axis=-1)  # exactly opposite
    (_, _), (h1, h2) = primed(lab1, lab2)
    turn = np.radians(-np.sign(h2 - h1) * 1e-6)  # toward |h2 - h1| < 180
    inside = np.stack(
        [
            lab2[:, 0],
            np.cos(turn) * lab2[:, 1] - np.sin(turn) * lab2[:, 2],
            np.sin(turn) * lab2[:, 1] + np.cos(turn) * lab2[:, 2],
        ],
        axis=-1,
    )
    _, g1, g2 = evaluate(np.concatenate([lab1, lab1, lab2]), np.concatenate([lab2, inside, lab1]))["CIEDE2000"]
    for on_seam, near_seam in ((g1[:n], g1[n : 2 * n]), (g2[:n], g2[n : 2 * n])):
        assert np.isfinite(on_seam).all()
        np.testing.assert_allclose(on_seam, near_seam, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        g1[2 * n :], g2[:n], rtol=1e-12, atol=1e-15
    )  # swapping the arguments swaps the gradients
    np.testing.assert_allclose(g2[2 * n :], g1[:n], rtol=1e-12, atol=1e-15)


# toolkit's metric, colour-science's method name for it (same defaults: CMC 2:1, CIE94 and CIEDE2000 not textiles)
COLOUR_SCIENCE = {"CIEDE2000": "CIE 2000", "CIE94": "CIE 1994", "CMC": "CMC", "CIE76": "CIE 1976", "HyAB": "HyAB"}
COLOUR_SCIENCE["HyCH"] = "HyCH"


def colour_science_gradients(method, lab1, lab2, step=1e-4):
    """5-point central differences (float64) of colour-science's delta_E with respect to both colours: (n, 6)."""
    x = np.concatenate([lab1, lab2], axis=-1)
    shifts = np.array([2, 1, -1, -2])[:, None, None, None] * np.eye(6)[None, :, None, :] * step  # (4, 6, 1, 6)
    points = x + shifts  # (4, 6, n, 6)
    plus2, plus, minus, minus2 = colour_science.delta_E(points[..., :3], points[..., 3:], method=method)
    return ((8 * (plus - minus) - (plus2 - minus2)) / (12 * step)).T


def differentiable_pairs(seed, n):
    """n random Lab pairs away from every metric's non-differentiable points."""
    rng = np.random.default_rng(seed)
    m = 8 * n
    lab1, lab2 = (polar(rng.uniform(0, 100, m), rng.uniform(2, 100, m), rng.uniform(0, 360, m)) for _ in "12")
    keep = np.flatnonzero(differentiable(lab1, lab2, margin=1.0))
    assert len(keep) >= n
    return lab1[keep[:n]], lab2[keep[:n]]


def assert_close_to(expected, g1, g2, where, rtol):
    gradient = np.concatenate([np.asarray(g1, np.float64), np.asarray(g2, np.float64)], axis=-1)
    error = np.max(np.abs(gradient - expected), axis=-1)
    bad = ~(error <= rtol * np.max(np.abs(expected), axis=-1) + 1e-9)
    assert not bad.any(), f"{where}: pairs {np.flatnonzero(bad)} differ: {gradient[bad][0]} vs {expected[bad][0]}"


@pytest.mark.parametrize("name", NAMES)
def test_gradients_compose_with_jit_vmap_and_grad(name, x64):
    # Oracle: central differences of colour-science's delta_E (float64), at pairs where the metric is differentiable
    # (measured agreement: 6e-10 of the gradient's size in float64).
    f = METRICS[name]
    lab1, lab2 = differentiable_pairs(9, 6)
    expected = colour_science_gradients(COLOUR_SCIENCE[name], lab1, lab2)
    assert np.all(np.max(np.abs(expected), axis=-1) > 0.01)
    # grad of jit, called eagerly, on the whole batch (the ΔE of different pairs do not interact, so the gradient
    # of their sum holds every pair's gradient).
    total = jax.grad(lambda a, b: jnp.sum(jax.jit(f)(a, b)), argnums=(0, 1))
    assert_close_to(expected, *total(lab1, lab2), f"{name}: eager grad(jit), of the sum", rtol=1e-8)
    grad = jax.grad(f, argnums=(0, 1))
    jitted = jax.jit(grad)
    pairs = [np.stack(g) for g in zip(*[jitted(lab1[i], lab2[i]) for i in range(len(lab1))], strict=True)]
    assert_close_to(expected, *pairs, f"{name}: jit(grad), pair by pair", rtol=1e-8)
    assert_close_to(expected, *jax.jit(jax.vmap(grad))(lab1, lab2), f"{name}: jit(vmap(grad))", rtol=1e-8)
    with jax.enable_x64(False):  # and in float32, to float32 accuracy (measured: 7e-7)
        g32 = jax.jit(jax.vmap(grad))(lab1.astype(np.float32), lab2.astype(np.float32))
        assert all(g.dtype == np.float32 for g in g32)
        assert_close_to(expected, *g32, f"{name}: jit(vmap(grad)), float32", rtol=1e-5)

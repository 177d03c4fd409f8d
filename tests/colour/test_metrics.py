"""The metrics added for colour-science's whole ``delta_E``: DIN99, HyAB, HyCH, ITP, CAM02-/CAM16-LCD/SCD/UCS.

Against colour-science (float64, 1e-9) on random inputs, with their conversions (CIECAM02, CAM16, the J'a'b'
spaces, DIN99, PQ and ICtCp) and published values; ``colordiff`` with every name colour-science takes; finite
gradients on the sweeps CIEDE2000 gets (the sRGB grid against greys, black, white and primaries and against
itself, identical colours, out of gamut), equal to finite differences where the metrics are differentiable,
and the documented subgradients. The full comparison on 10^4 inputs per metric is
``python tests/colour/full_metric_check.py`` (run by hand, not collected: its figures are in the commit message).

Compilation dominates, so every metric's values and gradients through ``colordiff`` come from one compiled
function of a fixed size (``evaluate``), as in test_difference_gradients.py.
"""

import functools

import colour as colour_science
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit.colour as C
from toolkit.colour import METRIC_INPUTS, METRICS, RGB, colordiff

NEW = ["DIN99", "HyAB", "HyCH", "ITP", "CAM02-LCD", "CAM02-SCD", "CAM02-UCS", "CAM16-LCD", "CAM16-SCD", "CAM16-UCS"]
SIZE = 2 * 7 * 6**3  # pairs per evaluation: a 6x6x6 sRGB grid against 7 others, both argument orders
D65 = colour_science.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]


def cs_inputs(name, rgb):
    """What colour-science's delta_E takes for ``name``, from sRGB (float64), as colordiff converts it."""
    xyz = colour_science.RGB_to_XYZ(rgb, "sRGB", D65, apply_cctf_decoding=True)
    if METRIC_INPUTS[name] == "Lab":
        return colour_science.XYZ_to_Lab(xyz, D65)
    if name == "ITP":
        return colour_science.XYZ_to_ICtCp(xyz * 100)
    return getattr(colour_science, "XYZ_to_" + name.replace("-", ""))(xyz)


def cs_delta_e(name, a, b, **settings):
    method = {"CIEDE2000": "CIE 2000", "CIE94": "CIE 1994", "CIE76": "CIE 1976"}.get(name, name)
    with np.errstate(all="ignore"):
        return colour_science.delta_E(a, b, method=method, **settings)


def random_rgb(seed, n, low=0.02, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, (2, n, 3))


# --- values against colour-science -------------------------------------------------------------------


def test_appearance_models_match_colour_science(x64):
    rng = np.random.default_rng(1)
    xyz = rng.uniform(0.5, 100, (300, 3))
    white = rng.uniform([90, 100, 80], [100, 100, 110], (300, 3))
    L_A, Y_b = rng.uniform(1, 1000, 300), rng.uniform(5, 40, 300)
    for ours, theirs, name in (
        (C.xyz_to_ciecam02, colour_science.XYZ_to_CIECAM02, "CIECAM02"),
        (C.xyz_to_cam16, colour_science.XYZ_to_CAM16, "CAM16"),
    ):
        for surround, discount in (("Average", False), ("Dim", True), ("Dark", False)):
            cs_surround = colour_science.VIEWING_CONDITIONS_CIECAM02[surround]
            got = ours(xyz, white, L_A, Y_b, surround, discount_illuminant=discount)
            with np.errstate(all="ignore"):
                want = theirs(xyz, white, L_A, Y_b, cs_surround, discount_illuminant=discount)
            for field in "JChsQMH":
                np.testing.assert_allclose(
                    np.asarray(getattr(got, field)), getattr(want, field), rtol=1e-11, atol=1e-9, err_msg=name + field
                )


def test_uniform_spaces_din99_and_ictcp_match_colour_science(x64):
    rgb = np.concatenate(random_rgb(2, 500, -0.1, 1.1))
    xyz = colour_science.RGB_to_XYZ(rgb, "sRGB", D65, apply_cctf_decoding=True)
    for space in NEW[4:]:
        want = getattr(colour_science, "XYZ_to_" + space.replace("-", ""))(xyz)
        got = np.asarray(C.xyz_to_ucs(xyz, space))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, equal_nan=True, err_msg=space)
    # non-default viewing conditions, as colour-science's keyword arguments
    settings = {"L_A": 318.31, "Y_b": 15.0, "surround": colour_science.VIEWING_CONDITIONS_CIECAM02["Dim"]}
    want = colour_science.XYZ_to_CAM16UCS(xyz, XYZ_w=np.array([0.9642, 1.0, 0.8251]), **settings)
    got = C.xyz_to_ucs(xyz, "CAM16-UCS", xyz_w=np.array([0.9642, 1.0, 0.8251]), L_A=318.31, Y_b=15.0, surround="Dim")
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-9, equal_nan=True)
    lab = colour_science.XYZ_to_Lab(xyz, D65)
    for method, (k_E, k_CH) in {"DIN99": (2, 0.5), "DIN99b": (1, 1), "DIN99c": (1, 1), "DIN99d": (1, 1)}.items():
        if True:
            want = colour_science.Lab_to_DIN99(lab, k_E, k_CH, method)
            np.testing.assert_allclose(np.asarray(C.lab_to_din99(lab, k_E, k_CH, method)), want, atol=1e-9)
    luminance = np.abs(rgb) * 1000  # cd/m²
    np.testing.assert_allclose(
        np.asarray(C.pq_encode(luminance)), colour_science.models.eotf_inverse_ST2084(luminance), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(C.rgb_to_ictcp(luminance)), colour_science.RGB_to_ICtCp(luminance), rtol=0, atol=1e-12
    )
    # XYZ through BT.2020: the same matrix; colour-science's rounding in RGB near 0 is amplified by PQ's
    # infinite slope there (1e-16 cd/m² is already PQ 1e-4), so colours well away from a zero LMS signal.
    positive = xyz[(rgb > 0.05).all(-1)] * 100
    np.testing.assert_allclose(
        np.asarray(C.xyz_to_ictcp(positive)), colour_science.XYZ_to_ICtCp(positive), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("name", NEW)
def test_each_metric_matches_colour_science_on_random_inputs(name, x64):
    rgb1, rgb2 = random_rgb(3, 1000, -0.1, 1.1)
    a, b = cs_inputs(name, rgb1), cs_inputs(name, rgb2)
    want = cs_delta_e(name, a, b)
    got = np.asarray(METRICS[name](a, b))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, equal_nan=True)
    for textiles in ("DIN99", "HyCH"):
        if name == textiles:
            got = np.asarray(METRICS[name](a, b, textiles=True))
            np.testing.assert_allclose(got, cs_delta_e(name, a, b, textiles=True), rtol=0, atol=1e-9)


def test_published_values():
    # colour-science's examples and CIE 159:2004 / Fairchild's worked example (XYZ 19.01, 20.00, 21.78 under
    # 95.05, 100, 108.88, L_A 318.31, Y_b 20, average surround).
    with jax.enable_x64(True):
        spec = C.xyz_to_ciecam02(np.array([19.01, 20.00, 21.78]), np.array([95.05, 100.00, 108.88]), 318.31, 20.0)
        np.testing.assert_allclose(
            [float(getattr(spec, k)) for k in "JChsQMH"],
            [41.731, 0.104, 219.048, 2.360, 195.371, 0.108, 278.061],
            atol=0.05,
        )
        spec = C.xyz_to_cam16(np.array([19.01, 20.00, 21.78]), np.array([95.05, 100.00, 108.88]), 318.31, 20.0)
        np.testing.assert_allclose(
            [float(getattr(spec, k)) for k in "JChsQMH"],
            [41.73120791, 0.10335574, 217.06795977, 2.34501507, 195.37170899, 0.10743677, 275.59498615],
            atol=1e-7,
        )
        jab1, jab2 = (
            np.array([54.90433134, -0.08450395, -0.06854831]),
            np.array([54.80352754, -3.96940084, -13.57591013]),
        )
        for f, value in ((C.cam02_lcd, 14.0555464), (C.cam02_scd, 14.0551718), (C.cam02_ucs, 14.0552982)):
            assert float(f(jab1, jab2)) == pytest.approx(value, abs=1e-7)
        assert float(C.din99(np.array([60.2574, -34.0099, 36.2677]), np.array([60.4626, -34.1751, 39.4387]))) == (
            pytest.approx(1.1772166, abs=1e-7)
        )
        lab1, lab2 = (
            np.array([39.91531343, 51.16658481, 146.12933781]),
            np.array([53.12207516, -39.92365056, 249.54831278]),
        )
        assert float(C.hyab(lab1, lab2)) == pytest.approx(151.0215481, abs=1e-7)
        assert float(C.hych(lab1, lab2)) == pytest.approx(48.66427942, abs=1e-7)
        ictcp1, ictcp2 = (
            np.array([0.4885468072, -0.04739350675, 0.07475401302]),
            np.array([0.4899203231, -0.04567508203, 0.07361341775]),
        )
        assert float(C.itp(ictcp1, ictcp2)) == pytest.approx(1.426572247, abs=1e-7)


def test_colordiff_takes_every_name_colour_science_takes(x64):
    rgb1, rgb2 = random_rgb(4, 20)
    names = list(colour_science.DELTA_E_METHODS) + ["cam02ucs", "CAM16_LCD", "din 99", "HYCH", "itp", "DE_2000"]
    for spelled in names:
        canonical = C.metrics._NAMES[C.metrics._canonical(spelled)]
        got = np.asarray(colordiff(RGB(*rgb1.T), RGB(*rgb2.T), spelled))
        want = cs_delta_e(canonical, cs_inputs(canonical, rgb1), cs_inputs(canonical, rgb2))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, err_msg=spelled)
    assert set(METRICS) == {C.metrics._NAMES[C.metrics._canonical(k)] for k in colour_science.DELTA_E_METHODS}


def test_colordiff_converts_xyz_and_lab_under_another_illuminant(x64):
    rng = np.random.default_rng(5)
    xyz1, xyz2 = rng.uniform(0.05, 0.9, (2, 10, 3))
    d50 = colour_science.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]
    white = colour_science.xy_to_XYZ(d50)
    got = colordiff(C.XYZ(*xyz1.T), C.XYZ(*xyz2.T), "CAM16-UCS", illuminant="D50")
    want = cs_delta_e("CAM16-UCS", *(colour_science.XYZ_to_CAM16UCS(x, XYZ_w=white) for x in (xyz1, xyz2)))
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-9)
    lab1 = colour_science.XYZ_to_Lab(xyz1, d50)
    got = colordiff(lab1, C.XYZ(*xyz2.T), "ITP", arrays="Lab", illuminant="D50")
    want = cs_delta_e("ITP", *(colour_science.XYZ_to_ICtCp(x * 100, d50) for x in (xyz1, xyz2)))
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-8)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(dtype):
    rgb1, rgb2 = (x.astype(dtype) for x in random_rgb(6, 50, 0.05))
    for name in ("DIN99", "HyCH", "ITP", "CAM16-UCS"):  # (CAM02's and the other spaces' code is CAM16-UCS's)
        got = colordiff(jnp.asarray(rgb1), jnp.asarray(rgb2), name, arrays="RGB")
        assert got.dtype == dtype, name
        with jax.enable_x64(True):
            want = np.asarray(colordiff(rgb1.astype(np.float64), rgb2.astype(np.float64), name, arrays="RGB"))
        step = 2.0 ** -(10 if dtype == "float16" else 7)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=step, atol=1e-3, err_msg=name)


# --- gradients ---------------------------------------------------------------------------------------


@functools.cache
def _compiled():
    def every_metric(x1, x2):
        results = {}
        for name in NEW:
            values, back = jax.vjp(lambda a, b, name=name: colordiff(a, b, name, arrays="RGB"), x1, x2)
            results[name] = (values, *back(jnp.ones_like(values)))
        return results

    return jax.jit(every_metric)


def evaluate(x1, x2):
    """{metric: (ΔE, gradient w.r.t. x1, gradient w.r.t. x2)} for pairs of sRGB colours through colordiff."""
    dtype = np.asarray(x1).dtype
    n = len(x1)
    assert n <= SIZE
    padded = [np.resize(np.asarray(x, dtype), (SIZE, 3)) for x in (x1, x2)]
    with jax.enable_x64(dtype == np.float64):
        results = _compiled()(*padded)
        return {name: tuple(np.asarray(v)[:n] for v in values) for name, values in results.items()}


def assert_finite(results, where, x1, x2):
    """Values and gradients finite wherever colour-science's value is (NaN where it is NaN: outside DIN99's
    L* > -63.3, or where a far out-of-gamut colour has CIECAM02/CAM16 colourfulness M < -1/c2, where
    ln(1 + c2·M) is not defined)."""
    for name, (values, g1, g2) in results.items():
        with np.errstate(all="ignore"):
            reference = cs_delta_e(name, cs_inputs(name, x1.astype(np.float64)), cs_inputs(name, x2.astype(np.float64)))
        # (and away from the pole of PQ's odd extension, at LMS = -1.1e-4 cd/m², where ITP exceeds 1e6)
        rows = np.isfinite(reference) & (np.abs(reference) < 1e6)
        assert rows.mean() > 0.9, name
        for argument, g in (("first", g1), ("second", g2)):
            finite = np.isfinite(g[rows]).all(axis=-1)
            assert finite.all(), f"{name}, {argument}, {where}: non-finite gradient at {np.flatnonzero(~finite)[:5]}"
        assert np.isfinite(values[rows]).all(), f"{name}, {where}: non-finite value"
        nan = ~np.isfinite(reference)
        assert np.isnan(values[nan]).all(), f"{name}, {where}: NaN outside its domain, as colour-science"


def test_sweep_of_the_rgb_grid_has_finite_gradients_for_every_metric():
    values = np.linspace(0, 1, 6)
    grid = np.stack(np.meshgrid(values, values, values, indexing="ij"), axis=-1).reshape(-1, 3)
    targets = [[1.0, 1, 1], [0.0, 0, 0], [0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    others = [np.broadcast_to(np.array(t), grid.shape) for t in targets] + [grid]
    first = np.concatenate([grid] * len(others) + others).astype(np.float32)
    second = np.concatenate(others + [grid] * len(others)).astype(np.float32)
    assert_finite(evaluate(first, second), "sRGB grid", first, second)


def test_out_of_gamut_and_greys_have_finite_gradients():
    rng = np.random.default_rng(7)
    x1, x2 = rng.uniform(-0.5, 1.5, (2, SIZE, 3)).astype(np.float32)
    x1[: SIZE // 4] = x1[: SIZE // 4, :1]  # greys, out of range ones included
    x2[SIZE // 4 : SIZE // 2] = x1[SIZE // 4 : SIZE // 2]  # identical colours
    assert_finite(evaluate(x1, x2), "out of gamut", x1, x2)


def test_din99_in_lab_is_finite_where_defined_and_nan_below_its_domain():
    rng = np.random.default_rng(10)
    lab1 = np.column_stack([rng.uniform(-300, 300, 400), rng.uniform(-300, 300, (400, 2))]).astype(np.float32)
    lab2 = np.roll(lab1, 1, axis=0)
    lab1[:100, 1:] = 0  # greys
    lab2[100:200] = lab1[100:200]  # identical colours
    lab1[200:210] = 0  # black
    values, (g1, g2) = jax.jit(jax.vmap(jax.value_and_grad(C.din99, argnums=(0, 1))))(lab1, lab2)
    defined = (lab1[:, 0] > -1 / 0.0158) & (lab2[:, 0] > -1 / 0.0158)
    assert 0 < defined.mean() < 1
    assert np.isfinite(values[defined]).all() and np.isnan(values[~defined]).all()
    assert np.isfinite(g1[defined]).all() and np.isfinite(g2[defined]).all()
    assert np.all(values[100:200][defined[100:200]] == 0) and np.all(g1[100:200][defined[100:200]] == 0)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(values, cs_delta_e("DIN99", lab1, lab2), rtol=1e-5, atol=1e-4, equal_nan=True)


def test_identical_colours_have_zero_difference_and_gradient():
    rgb = np.array([[0.2, 0.5, 0.9], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.2, -0.1, 0.3]], np.float32)
    for name, (values, g1, g2) in evaluate(rgb, rgb).items():
        assert np.all(values == 0) and np.all(g1 == 0) and np.all(g2 == 0), name


def test_the_documented_subgradients():
    with jax.enable_x64(True):
        # HyAB, HyCH: |ΔL| has gradient 0 in L at ΔL = 0 (the minimum-norm subgradient), the rest as usual.
        lab1, lab2 = jnp.array([50.0, 20.0, -10.0]), jnp.array([50.0, 0.0, 25.0])
        for f in (C.hyab, C.hych):
            g = jax.grad(f)(lab1, lab2)
            assert float(g[0]) == 0 and np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g[1:]).sum()) > 0
        g = jax.grad(C.hyab)(lab1, lab2)
        np.testing.assert_allclose(np.asarray(g[1:]), (lab1[1:] - lab2[1:]) / np.linalg.norm(lab1[1:] - lab2[1:]))
        # At black every cone response is 0, where the compression's (and PQ's) slope is infinite: gradient 0.
        black, red = jnp.zeros(3), jnp.array([1.0, 0.0, 0.0])
        for name in ("ITP", "CAM02-UCS", "CAM16-UCS"):
            g = jax.grad(lambda y, name=name: colordiff(red, y, name, arrays="RGB"))(black)
            assert np.all(np.asarray(g) == 0), name
        # DIN99 is smooth on the grey axis: its gradient there is the true one (central differences).
        grey, other = np.array([50.0, 0.0, 0.0]), np.array([60.0, 10.0, -20.0])
        g = np.asarray(jax.grad(C.din99)(grey, other))
        step = 1e-6
        fd = [
            (float(C.din99(grey + e, other)) - float(C.din99(grey - e, other))) / (2 * step) for e in np.eye(3) * step
        ]
        np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("x64", [False, True])
def test_din99_near_grey_gradients_equal_colour_science_central_differences(x64):
    # Chromas from 1e-30 up: the series for ln(1 + x)/x (its quotient's derivative is -inf past x ~ 1e-19).
    # DIN99 is C¹ but not C² on the grey axis (a G·e term), so central differences there are off by
    # O(step): steps of 1e-9 in a*, b* (a99, b99 are small there, so rounding is too), 1e-6 in L*.
    tiny = [(1e-30, 0.0), (0.0, -1e-30), (-1e-20, 1e-20), (1e-12, 0.0), (3e-6, -2e-6), (1e-3, 1e-3), (0.1, -0.2)]
    other = np.array([60.0, 10.0, -20.0])
    steps = np.diag([1e-6, 1e-9, 1e-9])
    rtol, atol = (1e-7, 1e-9) if x64 else (1e-5, 1e-6)
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        for a, b in tiny:
            lab = np.array([50.0, a, b])
            want = np.stack(
                [
                    (colour_science.Lab_to_DIN99(lab + e) - colour_science.Lab_to_DIN99(lab - e)) / (2 * e.sum())
                    for e in steps
                ],
                axis=1,
            )
            got = np.asarray(jax.jacrev(C.lab_to_din99)(jnp.asarray(lab, dtype)))
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"Jacobian at a*, b* = {a}, {b}")
            apart = colour_science.Lab_to_DIN99(lab) - colour_science.Lab_to_DIN99(other)
            want = want.T @ apart / np.linalg.norm(apart)  # the chain rule through the Euclidean norm
            got = np.asarray(jax.grad(C.din99)(jnp.asarray(lab, dtype), jnp.asarray(other, dtype)))
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"ΔE99 gradient at a*, b* = {a}, {b}")


def test_gradients_equal_finite_differences_where_differentiable():
    rng = np.random.default_rng(8)
    n = 48
    rgb1, rgb2 = rng.uniform(0.1, 0.9, (2, n, 3))
    with jax.enable_x64(True):
        lab1, lab2 = np.asarray(C.rgb_to_lab(rgb1)), np.asarray(C.rgb_to_lab(rgb2))
    keep = np.abs(lab1[:, 0] - lab2[:, 0]) > 0.05  # HyAB's and HyCH's |ΔL*| kink
    step = 1e-6
    x = np.concatenate([rgb1, rgb2], axis=-1)
    shifts = np.array([1, -1])[:, None, None, None] * np.eye(6)[None, :, None, :] * step  # (2, 6, 1, 6)
    points = np.concatenate([x[None], (x + shifts).reshape(-1, n, 6)]).reshape(-1, 6)
    results = evaluate(points[:, :3], points[:, 3:])
    for name, (values, g1, g2) in results.items():
        gradient = np.concatenate([g1[:n], g2[:n]], axis=-1)
        plus, minus = values[n:].reshape(2, 6, n)
        differences = ((plus - minus) / (2 * step)).T
        error = np.max(np.abs(gradient - differences), axis=-1)
        bad = keep & ~(error <= 1e-5 * np.max(np.abs(differences), axis=-1) + 1e-7)
        assert not bad.any(), f"{name}: {gradient[bad][0]} vs {differences[bad][0]}"


def test_gradients_compose_with_jit_and_vmap(x64):
    rgb1, rgb2 = random_rgb(9, 4, 0.1, 0.9)
    for name in ("CAM16-UCS",):
        f = functools.partial(colordiff, metric=name, arrays="RGB")
        per_pair = jax.jit(jax.vmap(jax.grad(f, argnums=(0, 1))))(rgb1, rgb2)
        summed = jax.grad(lambda a, b, f=f: jnp.sum(jax.jit(f)(a, b)), argnums=(0, 1))(rgb1, rgb2)
        for p, s in zip(per_pair, summed, strict=True):
            np.testing.assert_allclose(np.asarray(p), np.asarray(s), rtol=1e-12, atol=1e-14, err_msg=name)

"""Colour-difference values: Sharma et al.'s table, colour-science's delta_E, the 180° seam, shapes, dtypes, errors."""

import functools

import colour as colour_science
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from toolkit.colour import METRICS, RGB, XYZ, Lab, cie76, cie94, ciede2000, cmc, colordiff

# Sharma, Wu & Dalal (2005), Table 1: L1, a1, b1, L2, a2, b2, ΔE00 (transcribed from the paper's test data).
SHARMA = np.array(
    [
        [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
        [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
        [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
        [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
        [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
        [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
        [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
        [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
        [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
        [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
        [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
        [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
        [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
        [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
        [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
        [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
        [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
        [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
        [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
        [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
    ]
)

# (our function, its keyword arguments, colour-science's method, its keyword arguments)
REFERENCES = [
    (ciede2000, {}, "CIE 2000", {}),
    (ciede2000, {"kL": 2}, "CIE 2000", {"textiles": True}),
    (cie94, {}, "CIE 1994", {}),
    (cie94, {"textiles": True}, "CIE 1994", {"textiles": True}),
    (cmc, {}, "CMC", {}),
    (cmc, {"l": 1, "c": 1}, "CMC", {"l": 1, "c": 1}),
    (cie76, {}, "CIE 1976", {}),
]
REFERENCE_IDS = ["CIEDE2000", "CIEDE2000-textiles", "CIE94", "CIE94-textiles", "CMC2:1", "CMC1:1", "CIE76"]


def delta_e(lab1, lab2, method, **kwargs):
    return colour_science.delta_E(np.asarray(lab1, np.float64), np.asarray(lab2, np.float64), method=method, **kwargs)


@functools.cache
def jitted(f, **kwargs):
    return jax.jit(functools.partial(f, **kwargs))


# --- test colours ---------------------------------------------------------------------


def polar(L, C, h_degrees):
    h = np.radians(h_degrees)
    return np.stack([L, C * np.cos(h), C * np.sin(h)], axis=-1)


def primed_hues(lab1, lab2):
    """CIEDE2000's h1', h2' in float64 NumPy (to keep pairs at the 180° seam out of exact comparisons)."""
    C = (np.hypot(lab1[..., 1], lab1[..., 2]) + np.hypot(lab2[..., 1], lab2[..., 2])) / 2
    G = 0.5 * (1 - np.sqrt(C**7 / (C**7 + 25.0**7)))
    return [np.degrees(np.arctan2(lab[..., 2], (1 + G) * lab[..., 1])) % 360 for lab in (lab1, lab2)]


def hard_pairs(n, seed=0):
    """n Lab pairs covering the hard cases: near-neutral and exactly grey, hues nearly opposite,
    identical pairs, L* near 0 and 100, small differences, and plain random pairs."""
    rng = np.random.default_rng(seed)
    k = n // 8
    L = lambda m: rng.uniform(0, 100, m)  # noqa: E731
    C = lambda m: rng.uniform(0, 130, m)  # noqa: E731
    h = lambda m: rng.uniform(0, 360, m)  # noqa: E731
    groups = []
    groups.append((polar(L(k), C(k), h(k)), polar(L(k), C(k), h(k))))  # random
    tiny = lambda m: np.where(rng.random(m) < 0.2, 0.0, 10 ** rng.uniform(-9, 0, m))  # noqa: E731
    groups.append((polar(L(k), tiny(k), h(k)), polar(L(k), C(k), h(k))))  # near-neutral and grey vs anything
    groups.append((polar(L(k), tiny(k), h(k)), polar(L(k), tiny(k), h(k))))  # both near-neutral
    h1 = h(k)
    side = rng.choice([-1.0, 1.0], k) * 10 ** rng.uniform(-6, 1, k)
    groups.append((polar(L(k), C(k), h1), polar(L(k), C(k), h1 + 180 + side)))  # hues nearly opposite
    same = polar(L(k), C(k), h(k))
    groups.append((same, same.copy()))  # identical
    extremes = lambda m: rng.choice([0.0, 100.0], m) + rng.choice([-1.0, 1.0], m) * 10 ** rng.uniform(-6, 0, m)  # noqa: E731
    groups.append((polar(np.clip(extremes(k), 0, 100), C(k), h(k)), polar(rng.choice([0.0, 100.0], k), C(k), h(k))))
    base = polar(L(k), C(k), h(k))
    groups.append((base, base + rng.normal(0, 0.5, base.shape)))  # small differences
    m = n - 7 * k
    groups.append((polar(L(m), C(m) * 1.5, h(m)), polar(L(m), C(m) * 1.5, h(m))))  # high chroma
    lab1 = np.concatenate([g[0] for g in groups])
    lab2 = np.concatenate([g[1] for g in groups])
    return lab1, lab2


def off_the_seam(lab1, lab2, margin):
    h1, h2 = primed_hues(lab1, lab2)
    return np.abs(np.abs(h1 - h2) - 180) > margin


# --- Sharma et al. (2005) ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sharma_table_in_both_argument_orders(dtype):
    with jax.enable_x64(dtype == "float64"):
        lab1, lab2 = jnp.asarray(SHARMA[:, :3], dtype), jnp.asarray(SHARMA[:, 3:6], dtype)
        forward, backward = jitted(ciede2000)(lab1, lab2), jitted(ciede2000)(lab2, lab1)
        assert forward.dtype == dtype
        np.testing.assert_allclose(forward, SHARMA[:, 6], atol=1e-4, rtol=0)  # the table is rounded to 4 decimals
        np.testing.assert_array_equal(forward, backward)


def test_sharma_pairs_10_and_14_sit_exactly_on_the_seam_and_take_the_standards_branch(x64):
    # Both pairs are exactly opposite in binary: (a2, b2) = -(a1, b1). The standard's "<= 180" case gives
    # the published 7.1792 and 4.8045; the other side of the seam would give pair 11's 7.2195 and 15's 4.7461.
    for pair, other_side in ((9, 10), (13, 14)):
        assert np.array_equal(SHARMA[pair, 4:6], -SHARMA[pair, 1:3])
        value = float(ciede2000(SHARMA[pair, :3], SHARMA[pair, 3:6]))
        assert round(value, 4) == SHARMA[pair, 6] != SHARMA[other_side, 6]


# --- colour-science's delta_E --------------------------------------------------------------


@pytest.mark.parametrize(("f", "kwargs", "method", "reference_kwargs"), REFERENCES, ids=REFERENCE_IDS)
def test_matches_colour_science_to_1e_9_on_10_000_pairs(f, kwargs, method, reference_kwargs, x64):
    lab1, lab2 = hard_pairs(10_000)
    got = np.asarray(jitted(f, **kwargs)(lab1, lab2))
    expected = delta_e(lab1, lab2, method, **reference_kwargs)
    compared = off_the_seam(lab1, lab2, 1e-9) if f is ciede2000 else np.ones(len(lab1), bool)
    assert compared.sum() > 9_900
    error = np.abs(got - expected)[compared]
    assert error.max() <= 1e-9, (
        f"worst pair {np.argmax(error)}: {got[compared][np.argmax(error)]} vs {expected[compared][np.argmax(error)]}"
    )


@pytest.mark.parametrize(("f", "kwargs", "method", "reference_kwargs"), REFERENCES[::2], ids=REFERENCE_IDS[::2])
def test_float32_agrees_with_colour_science(f, kwargs, method, reference_kwargs):
    lab1, lab2 = hard_pairs(4_000, seed=1)
    keep = off_the_seam(lab1, lab2, 0.01)  # float32 hues round by about 1e-5 degrees
    got = np.asarray(jitted(f, **kwargs)(jnp.asarray(lab1, jnp.float32), jnp.asarray(lab2, jnp.float32)))
    expected = delta_e(lab1, lab2, method, **reference_kwargs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[keep], expected[keep], rtol=1e-4, atol=2e-3)


# --- the 180° seam ---------------------------------------------------------------------------


def rotated(lab, degrees):
    """``lab`` with its (a*, b*) turned by ``degrees``."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.stack([lab[..., 0], c * lab[..., 1] - s * lab[..., 2], s * lab[..., 1] + c * lab[..., 2]], axis=-1)


def seam_pairs(n=500, seed=2):
    """Pairs of exactly opposite colours, (L1, a, b) and (L2, -k·a, -k·b) with k a power of two (so that they are
    opposite in binary in float32 and float64 alike), and which way |h2 - h1| shrinks."""
    rng = np.random.default_rng(seed)
    lab1 = polar(rng.uniform(0, 100, n), rng.uniform(1, 130, n), rng.uniform(0, 360, n))
    k = rng.choice([1.0, 0.5, 2.0, 0.125, 4.0], n)
    lab2 = np.stack([rng.uniform(0, 100, n), -k * lab1[:, 1], -k * lab1[:, 2]], axis=-1)
    h1, h2 = primed_hues(lab1, lab2)
    inward = -np.sign(h2 - h1)  # turning colour 2 this way makes |h2 - h1| < 180
    return lab1, lab2, inward


def test_exactly_opposite_colours_get_the_limit_from_inside_the_seam(x64):
    lab1, lab2, inward = seam_pairs()
    got = np.asarray(jitted(ciede2000)(lab1, lab2))
    inside = delta_e(lab1, rotated(lab2, inward * 1e-7), "CIE 2000")
    outside = delta_e(lab1, rotated(lab2, -inward * 1e-7), "CIE 2000")
    np.testing.assert_allclose(got, inside, atol=1e-5)
    assert np.max(np.abs(inside - outside)) > 1  # the seam is a real jump
    np.testing.assert_array_equal(got, np.asarray(jitted(ciede2000)(lab2, lab1)))  # symmetric on the seam


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pairs_within_rounding_of_the_seam_take_one_of_its_two_limits(dtype):
    lab1, lab2, inward = seam_pairs(n=300, seed=3)
    inside = delta_e(lab1, rotated(lab2, inward * 1e-7), "CIE 2000")
    outside = delta_e(lab1, rotated(lab2, -inward * 1e-7), "CIE 2000")
    tolerance = 1e-5 if dtype == "float64" else 2e-3
    with jax.enable_x64(dtype == "float64"):
        for turn in (1e-13, 1e-12, 1e-9) if dtype == "float64" else (1e-7, 1e-5, 1e-4):
            for sign in (-1.0, 1.0):
                near = rotated(lab2, sign * turn)
                got = np.asarray(jitted(ciede2000)(jnp.asarray(lab1, dtype), jnp.asarray(near, dtype)))
                on_a_side = np.minimum(np.abs(got - inside), np.abs(got - outside)) <= tolerance * np.maximum(1, inside)
                assert on_a_side.all(), (
                    f"turn {sign * turn}: {got[~on_a_side][:3]} vs {inside[~on_a_side][:3]} / {outside[~on_a_side][:3]}"
                )


def test_ciede2000_is_symmetric_everywhere():
    lab1, lab2 = hard_pairs(4_000, seed=4)
    lab1, lab2 = jnp.asarray(lab1, jnp.float32), jnp.asarray(lab2, jnp.float32)
    np.testing.assert_array_equal(jitted(ciede2000)(lab1, lab2), jitted(ciede2000)(lab2, lab1))
    np.testing.assert_array_equal(jitted(cie76)(lab1, lab2), jitted(cie76)(lab2, lab1))


def test_cie94_and_cmc_weigh_by_the_first_argument_the_reference(x64):
    reference, sample = np.array([50.0, 40.0, 10.0]), np.array([55.0, 10.0, 30.0])
    for f, method in ((cie94, "CIE 1994"), (cmc, "CMC")):
        forward, backward = float(f(reference, sample)), float(f(sample, reference))
        assert forward == pytest.approx(delta_e(reference, sample, method), abs=1e-12)
        assert backward == pytest.approx(delta_e(sample, reference, method), abs=1e-12)
        assert abs(forward - backward) > 0.5


def test_identical_colours_are_zero_apart():
    lab = jnp.array([[50.0, 0.0, 0.0], [0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [60.0, 30.0, -70.0], [20.0, -1e-7, 3e-8]])
    for f in METRICS.values():
        np.testing.assert_array_equal(f(lab, lab), np.zeros(5))


# --- shapes, dtypes, transformations ----------------------------------------------------------


def test_any_leading_shape_broadcasts_and_structs_work_like_arrays():
    rng = np.random.default_rng(5)
    lab1 = polar(rng.uniform(0, 100, (4, 1)), rng.uniform(0, 100, (4, 1)), rng.uniform(0, 360, (4, 1)))
    lab2 = polar(rng.uniform(0, 100, 5), rng.uniform(0, 100, 5), rng.uniform(0, 360, 5))
    wide1, wide2 = np.broadcast_to(lab1, (4, 5, 3)), np.broadcast_to(lab2, (4, 5, 3))
    for (f, _, method, _), name in zip(REFERENCES[::2], REFERENCE_IDS[::2]):
        table = f(jnp.asarray(lab1, jnp.float32), jnp.asarray(lab2, jnp.float32))
        assert table.shape == (4, 5)
        np.testing.assert_allclose(table, delta_e(wide1, wide2, method), rtol=1e-4, err_msg=name)
        as_struct = f(Lab(*np.moveaxis(lab1, -1, 0)), Lab(*np.moveaxis(lab2, -1, 0)))  # (4, 1) fields with (5,) fields
        assert as_struct.shape == (4, 5)
        np.testing.assert_allclose(as_struct, delta_e(wide1, wide2, method), rtol=1e-4, err_msg=name)
    single = delta_e([50.0, 10.0, 0.0], [50.0, 0.0, 10.0], "CIE 2000")
    scalar = ciede2000(Lab(50.0, 10.0, 0.0), Lab(50.0, 0.0, 10.0))
    assert scalar.shape == () and float(scalar) == pytest.approx(float(single), rel=1e-5)
    mixed = ciede2000(Lab(jnp.full((2, 3), 50.0), 10.0, 0.0), jnp.array([50.0, 0.0, 10.0]))
    assert mixed.shape == (2, 3)
    np.testing.assert_allclose(mixed, np.full((2, 3), single), rtol=1e-5)


def test_dtypes_follow_the_inputs():
    assert ciede2000(jnp.ones(3, jnp.float32), jnp.zeros(3, jnp.float32)).dtype == jnp.float32
    assert ciede2000(jnp.array([50, 10, 0]), jnp.array([50, 0, 10])).dtype == jnp.float32  # integers become floats
    with jax.enable_x64(True):
        assert ciede2000(jnp.ones(3), jnp.zeros(3)).dtype == jnp.float64
        assert ciede2000(jnp.ones(3, jnp.float32), jnp.zeros(3, jnp.float64)).dtype == jnp.float64


def test_composes_with_jit_and_vmap(x64):
    lab1, lab2 = hard_pairs(64, seed=6)
    keep = off_the_seam(lab1, np.broadcast_to(lab2[0], lab1.shape), 1e-6)
    for (f, kwargs, method, reference_kwargs), name in zip(REFERENCES[::2], REFERENCE_IDS[::2]):  # each metric
        mapped = jax.jit(jax.vmap(functools.partial(f, **kwargs), in_axes=(0, None)))(lab1, lab2[0])
        expected = delta_e(lab1, np.broadcast_to(lab2[0], lab1.shape), method, **reference_kwargs)
        np.testing.assert_allclose(np.asarray(mapped)[keep], expected[keep], rtol=0, atol=1e-9, err_msg=name)


# --- colordiff -------------------------------------------------------------------------------


def test_colordiff_converts_rgb_like_colour_science(x64):
    rng = np.random.default_rng(7)
    rgb1, rgb2 = rng.uniform(-0.1, 1.1, (2, 500, 3))
    lab = lambda rgb: colour_science.XYZ_to_Lab(colour_science.sRGB_to_XYZ(rgb))  # noqa: E731
    expected = delta_e(lab(rgb1), lab(rgb2), "CIE 2000")
    keep = off_the_seam(lab(rgb1), lab(rgb2), 1e-9)
    got = np.asarray(colordiff(rgb1, rgb2, arrays="RGB"))
    np.testing.assert_allclose(got[keep], expected[keep], atol=1e-9, rtol=0)
    as_structs = np.asarray(colordiff(RGB(*rgb1.T), RGB(*rgb2.T)))
    np.testing.assert_allclose(as_structs[keep], expected[keep], atol=1e-9, rtol=0)


def srgb_lab(rgb):
    """colour-science's CIE Lab (D65) of sRGB code values."""
    return colour_science.XYZ_to_Lab(colour_science.sRGB_to_XYZ(rgb))


def test_colordiff_takes_every_kind_of_colour_like_colour_science(x64):
    rng = np.random.default_rng(8)
    rgb1, rgb2 = rng.uniform(0, 1, (2, 40, 3))
    lab1, lab2 = srgb_lab(rgb1), srgb_lab(rgb2)
    xyz1, xyz2 = colour_science.sRGB_to_XYZ(rgb1), colour_science.sRGB_to_XYZ(rgb2)
    expected = delta_e(lab1, lab2, "CIE 2000")
    keep = off_the_seam(lab1, lab2, 1e-6)
    assert keep.sum() > 35
    struct = {"RGB": lambda x: RGB(*x.T), "Lab": lambda x: Lab(*x.T), "XYZ": lambda x: XYZ(*x.T)}
    values = {"RGB": (rgb1, rgb2), "Lab": (lab1, lab2), "XYZ": (xyz1, xyz2)}
    for first in values:
        for second in values:
            a, b = struct[first](values[first][0]), struct[second](values[second][1])
            got = np.asarray(colordiff(a, b))
            np.testing.assert_allclose(
                got[keep], expected[keep], atol=1e-9, rtol=0, err_msg=f"{first} struct, {second} struct"
            )
    for kind, (a, b) in values.items():  # plain arrays, saying what they hold
        got = np.asarray(colordiff(a, b, arrays=kind))
        np.testing.assert_allclose(got[keep], expected[keep], atol=1e-9, rtol=0, err_msg=f"{kind} arrays")
    got = np.asarray(colordiff(RGB(*rgb1.T), lab2, arrays="Lab"))  # a struct, and an array of the stated kind
    np.testing.assert_allclose(got[keep], expected[keep], atol=1e-9, rtol=0)
    # sRGB red and white, the docstring's pair: 45.81 (rounded)
    assert float(colordiff(RGB(1.0, 0.0, 0.0), RGB(1.0, 1.0, 1.0))) == pytest.approx(
        float(delta_e(srgb_lab(np.array([1.0, 0.0, 0.0])), srgb_lab(np.ones(3)), "CIE 2000")), abs=1e-9
    )


METRIC_SPELLINGS = [
    ("CIEDE2000", "CIE 2000", {}),
    ("ciede2000", "CIE 2000", {}),
    ("CIE 2000", "CIE 2000", {}),
    ("DE_2000", "CIE 2000", {}),
    ("CIE94", "CIE 1994", {}),
    ("cie94", "CIE 1994", {}),
    ("CIE 1994", "CIE 1994", {}),
    ("DE_94", "CIE 1994", {}),
    ("CMC", "CMC", {"l": 2, "c": 1}),
    ("cmc", "CMC", {"l": 2, "c": 1}),
    ("DE_CMC", "CMC", {"l": 2, "c": 1}),
    ("CIE76", "CIE 1976", {}),
    ("cie76", "CIE 1976", {}),
    ("CIE 1976", "CIE 1976", {}),
    ("DE_AB", "CIE 1976", {}),
    (functools.partial(cmc, l=1, c=1), "CMC", {"l": 1, "c": 1}),
    (functools.partial(cie94, textiles=True), "CIE 1994", {"textiles": True}),
]


@pytest.mark.parametrize(
    ("metric", "method", "reference_kwargs"),
    METRIC_SPELLINGS,
    ids=[m if isinstance(m, str) else f"partial-{m.func.__name__}" for m, _, _ in METRIC_SPELLINGS],
)
def test_colordiff_takes_every_metric_like_colour_science(metric, method, reference_kwargs, x64):
    rng = np.random.default_rng(9)
    rgb1, rgb2 = rng.uniform(0, 1, (2, 40, 3))
    lab1, lab2 = srgb_lab(rgb1), srgb_lab(rgb2)
    keep = off_the_seam(lab1, lab2, 1e-6) if method == "CIE 2000" else np.ones(40, bool)
    got = np.asarray(colordiff(RGB(*rgb1.T), RGB(*rgb2.T), metric))
    expected = delta_e(lab1, lab2, method, **reference_kwargs)
    np.testing.assert_allclose(got[keep], expected[keep], atol=1e-9, rtol=0)


def test_colordiff_conversion_settings_like_colour_science(x64):
    rng = np.random.default_rng(10)
    rgb1, rgb2 = rng.uniform(0, 1, (2, 40, 3))
    # Display P3 with its own white as Lab's reference white: XYZ relative to the white's Y, under its chromaticity
    white = colour_science.RGB_to_XYZ(np.ones(3), "Display P3", apply_cctf_decoding=True)
    p3_lab = lambda rgb: colour_science.XYZ_to_Lab(  # noqa: E731
        colour_science.RGB_to_XYZ(rgb, "Display P3", apply_cctf_decoding=True) / white[1],
        colour_science.XYZ_to_xy(white),
    )
    got = np.asarray(colordiff(RGB(*rgb1.T), RGB(*rgb2.T), space="Display P3", reference_white="space"))
    keep = off_the_seam(p3_lab(rgb1), p3_lab(rgb2), 1e-6)
    np.testing.assert_allclose(got[keep], delta_e(p3_lab(rgb1), p3_lab(rgb2), "CIE 2000")[keep], atol=1e-9, rtol=0)
    # linear sRGB, and XYZ colours relative to D50
    linear_lab = lambda rgb: colour_science.XYZ_to_Lab(
        colour_science.RGB_to_XYZ(rgb, "sRGB", apply_cctf_decoding=False)
    )  # noqa: E731
    got = np.asarray(colordiff(rgb1, rgb2, "CIE76", arrays="RGB", linear=True))
    np.testing.assert_allclose(got, delta_e(linear_lab(rgb1), linear_lab(rgb2), "CIE 1976"), atol=1e-9, rtol=0)
    d50 = colour_science.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]
    xyz1, xyz2 = rng.uniform(0, 1, (2, 40, 3))
    got = np.asarray(colordiff(XYZ(*xyz1.T), XYZ(*xyz2.T), "CIE94", illuminant="D50"))
    expected = delta_e(colour_science.XYZ_to_Lab(xyz1, d50), colour_science.XYZ_to_Lab(xyz2, d50), "CIE 1994")
    np.testing.assert_allclose(got, expected, atol=1e-9, rtol=0)


def test_colordiff_gradient_has_the_type_of_the_colour():
    (grad,) = tk.gradient(lambda y: colordiff(RGB(1.0, 0.0, 0.0), y), RGB(1.0, 1.0, 1.0))
    assert isinstance(grad, RGB)
    assert float(grad.g) > 0 and float(grad.b) > 0  # less green and blue is closer to red


@pytest.mark.parametrize("metric", ["CIE 2000", "CIE 1994", "CMC", "CIE 1976"])
def test_colordiff_gradient_is_central_differences_of_colour_science(metric, x64):
    rng = np.random.default_rng(11)
    reference, samples = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, (20, 3))
    kwargs = {"l": 2, "c": 1} if metric == "CMC" else {}

    def theirs(rgb):
        return delta_e(srgb_lab(np.broadcast_to(reference, rgb.shape)), srgb_lab(rgb), metric, **kwargs)

    h = 1e-6
    expected = np.stack([(theirs(samples + h * e) - theirs(samples - h * e)) / (2 * h) for e in np.eye(3)], axis=-1)
    grad = jax.jit(jax.vmap(jax.grad(lambda y: colordiff(RGB(*reference), RGB(*y), metric))))(samples)
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-5, atol=1e-6)


# --- errors ------------------------------------------------------------------------------------


def test_unknown_metric_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown metric 'CIEDE2001'.*'CIEDE2000', 'CIE94', 'CMC', 'CIE76'"):
        colordiff(RGB(1.0, 0.0, 0.0), RGB(1.0, 1.0, 1.0), metric="CIEDE2001")


def test_plain_arrays_must_say_what_they_hold():
    with pytest.raises(TypeError, match=r"(?s)b is a plain array \(f32\[3\]\).*arrays='RGB'"):
        colordiff(RGB(1.0, 0.0, 0.0), jnp.ones(3))
    with pytest.raises(ValueError, match="arrays must be 'RGB', 'Lab' or 'XYZ'.*'HSV'"):
        colordiff(jnp.ones(3), jnp.ones(3), arrays="HSV")
    with pytest.raises(TypeError, match="unknown keyword argument.*illuminnt"):
        colordiff(RGB(1.0, 0.0, 0.0), RGB(1.0, 1.0, 1.0), illuminnt="D50")


def test_wrong_trailing_axis_and_shapes_are_named():
    with pytest.raises(
        ValueError, match=r"ciede2000: lab2 must be a Lab struct or an array whose last axis has length 3.*f32\[5,4\]"
    ):
        ciede2000(jnp.ones((5, 3)), jnp.ones((5, 4)))
    with pytest.raises(
        ValueError, match=r"colordiff: b must be an RGB struct or an array whose last axis has length 3"
    ):
        colordiff(jnp.ones(3), jnp.ones(4), arrays="RGB")
    with pytest.raises(
        ValueError, match=r"cmc: the batch shapes of reference \(4,\) and sample \(5,\) do not broadcast"
    ):
        cmc(jnp.ones((4, 3)), jnp.ones((5, 3)))
    with pytest.raises(TypeError, match="ciede2000: lab1 is an RGB struct, expected Lab"):
        ciede2000(RGB(1.0, 0.0, 0.0), Lab(50.0, 0.0, 0.0))


def test_weights_must_be_positive():
    with pytest.raises(ValueError, match="ciede2000: kH is a weight.*> 0; got kH=0"):
        ciede2000(jnp.ones(3), jnp.zeros(3), kH=0)
    with pytest.raises(ValueError, match="cmc: l is a weight.*got l=-1"):
        cmc(jnp.ones(3), jnp.zeros(3), l=-1)
    with pytest.raises(TypeError, match="cie94: textiles must be True or False"):
        cie94(jnp.ones(3), jnp.zeros(3), textiles="yes")


def test_weights_given_as_arrays_are_checked_too():
    # A zero or negative weight in an array used to pass unchecked: ΔE = inf, or a negative l silently squared away.
    with pytest.raises(ValueError, match=r"ciede2000: kL is a weight.*> 0; got kL=f32\[\] \(0\.0\)"):
        ciede2000(jnp.ones(3), jnp.zeros(3), kL=jnp.array(0.0))
    with pytest.raises(ValueError, match=r"cmc: l is a weight.*> 0; got l=f64\[\] \(-1\.0\)"):
        cmc(jnp.ones(3), jnp.zeros(3), l=np.array(-1.0))
    with pytest.raises(ValueError, match=r"ciede2000: kH is a weight.*got kH=f32\[2\] \(first bad value: nan\)"):
        ciede2000(jnp.ones((2, 3)), jnp.zeros((2, 3)), kH=jnp.array([1.0, jnp.nan]))
    with pytest.raises(TypeError, match=r"cmc: c must be a real number or array of real numbers, got 'one'"):
        cmc(jnp.ones(3), jnp.zeros(3), c="one")
    # arrays of valid weights (one per pair) and lists keep working, and weights may still be traced
    lab1, lab2 = jnp.array([[50.0, 10.0, 3.0]] * 2), jnp.array([[55.0, -4.0, 8.0]] * 2)
    plain = float(delta_e(lab1[0], lab2[0], "CIE 2000"))
    textiles = float(delta_e(lab1[0], lab2[0], "CIE 2000", textiles=True))  # kL = 2
    assert abs(plain - textiles) > 0.4  # 19.558 and 19.090
    per_pair = ciede2000(lab1, lab2, kL=jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(per_pair, [plain, textiles], rtol=1e-5)
    expected = [delta_e(lab1[0], lab2[0], "CMC", l=1, c=1), delta_e(lab1[0], lab2[0], "CMC", l=2, c=1)]
    np.testing.assert_allclose(cmc(lab1, lab2, l=[1.0, 2.0]), expected, rtol=1e-5)
    np.testing.assert_allclose(cmc(lab1, lab2, l=jnp.array([1.0, 2.0])), expected, rtol=1e-5)
    traced = jax.jit(lambda k: ciede2000(lab1[0], lab2[0], kL=k))(2.0)
    assert float(traced) == pytest.approx(textiles, rel=1e-5)

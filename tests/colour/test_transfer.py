"""Transfer functions in JAX against colour-science's (the oracle), their gradients and their edges."""

import functools

import colour as colour_science
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from colour.models import (
    eotf_inverse_sRGB,
    eotf_sRGB,
    oetf_BT709,
    oetf_BT2020,
    oetf_inverse_BT709,
    oetf_inverse_BT2020,
)
from colour.models.rgb.transfer_functions import gamma_function

from toolkit.colour import RGB, transfer

ADOBE = 563 / 256


def mirrored_gamma(exponent):
    return functools.partial(gamma_function, exponent=exponent, negative_number_handling="Mirror")


# (name, ours, colour-science's); Adobe RGB's gamma is compared with colour-science's
# "Mirror" handling, the convention we follow for negative values.
CURVES = [
    ("srgb_decode", transfer.srgb_decode, eotf_sRGB),
    ("srgb_encode", transfer.srgb_encode, eotf_inverse_sRGB),
    ("bt709_decode", transfer.bt709_decode, oetf_inverse_BT709),
    ("bt709_encode", transfer.bt709_encode, oetf_BT709),
    ("bt2020_decode", transfer.bt2020_decode, oetf_inverse_BT2020),
    ("bt2020_encode", transfer.bt2020_encode, oetf_BT2020),
    ("gamma_decode", lambda x: transfer.gamma_decode(x, ADOBE), mirrored_gamma(ADOBE)),
    ("gamma_encode", lambda x: transfer.gamma_encode(x, ADOBE), mirrored_gamma(1 / ADOBE)),
]
IDS = [c[0] for c in CURVES]

# Where each curve changes segment (in its input): exercised exactly below.
CUTS = [0.0, 0.0031308, 0.0031308 * 12.92, 0.018, transfer.BT709.code_cut, 1.0]


def samples(n=10_000, seed=0):
    """Values in and well outside [0, 1], plus every cut and its neighbours."""
    rng = np.random.default_rng(seed)
    cuts = np.array(CUTS)
    edges = np.concatenate([cuts, np.nextafter(cuts, -np.inf), np.nextafter(cuts, np.inf), -cuts])
    return np.concatenate([rng.uniform(-0.5, 1.5, n), rng.uniform(-1e-3, 0.03, n // 4), edges])


@pytest.mark.parametrize(("name", "ours", "reference"), CURVES, ids=IDS)
def test_matches_colour_science_in_and_out_of_range(name, ours, reference, x64):
    x = samples()
    np.testing.assert_allclose(np.asarray(jax.jit(ours)(x)), reference(x), rtol=1e-13, atol=1e-15)


def test_adobe_gamma_agrees_with_colour_sciences_default_where_that_is_defined(x64):
    # colour-science's default ("Indeterminate") is NaN for negative values; we mirror.
    x = np.random.default_rng(1).uniform(0, 1.5, 1000)
    space = colour_science.RGB_COLOURSPACES["Adobe RGB (1998)"]
    np.testing.assert_allclose(np.asarray(transfer.gamma_decode(x, ADOBE)), space.cctf_decoding(x), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(transfer.gamma_encode(x, ADOBE)), space.cctf_encoding(x), rtol=1e-14)
    with np.errstate(invalid="ignore"):
        assert np.isnan(space.cctf_decoding(-0.5))
    assert float(transfer.gamma_decode(-0.5, ADOBE)) == -(0.5**ADOBE)


PAIRS = [
    ("srgb", transfer.srgb_decode, transfer.srgb_encode, eotf_sRGB, eotf_inverse_sRGB),
    ("bt709", transfer.bt709_decode, transfer.bt709_encode, oetf_inverse_BT709, oetf_BT709),
    ("bt2020", transfer.bt2020_decode, transfer.bt2020_encode, oetf_inverse_BT2020, oetf_BT2020),
    (
        "adobe",
        lambda x: transfer.gamma_decode(x, ADOBE),
        lambda x: transfer.gamma_encode(x, ADOBE),
        mirrored_gamma(ADOBE),
        mirrored_gamma(1 / ADOBE),
    ),
]
PAIR_IDS = [p[0] for p in PAIRS]

# The standards' rounded constants leave the two segments slightly apart at the
# cut, so values in a sliver beside it do not round trip, in colour-science
# either: sRGB's curve starts 2.9e-8 below its line, so linear light in
# (0.0031308, 0.0031308022] re-decodes onto the line; BT.709's (and BT.2020's
# 10-bit) curve starts 2.4e-4 above it, so code values in [0.081, 0.0812428)
# decode onto the line and re-encode onto the curve.
LINEAR_GAPS = {"srgb": (0.0031308, 0.0031308023)}
CODE_GAPS = {"bt709": (0.081, transfer.BT709.code_cut), "bt2020": (0.081, transfer.BT2020.code_cut)}


def outside(x, gap):
    low, high = gap
    return x[(x < low) | (x > high)]


@pytest.mark.parametrize(("name", "decode", "encode", "cs_decode", "cs_encode"), PAIRS, ids=PAIR_IDS)
def test_decode_inverts_encode_and_back_outside_the_standards_gaps(name, decode, encode, cs_decode, cs_encode, x64):
    linear = outside(samples(), LINEAR_GAPS.get(name, (1, 0)))
    np.testing.assert_allclose(np.asarray(decode(encode(linear))), linear, rtol=1e-12, atol=1e-15)
    code = outside(samples(seed=1), CODE_GAPS.get(name, (1, 0)))
    np.testing.assert_allclose(np.asarray(encode(decode(code))), code, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("name", "gap"), [*LINEAR_GAPS.items(), *CODE_GAPS.items()])
def test_in_the_standards_gaps_round_trips_do_what_colour_science_does(name, gap, x64):
    _, decode, encode, cs_decode, cs_encode = PAIRS[PAIR_IDS.index(name)]
    x = np.linspace(*gap, 52)[1:-1]
    if name in LINEAR_GAPS:
        ours, theirs = decode(encode(x)), cs_decode(cs_encode(x))
    else:
        ours, theirs = encode(decode(x)), cs_encode(cs_decode(x))
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-13)
    assert not np.allclose(theirs, x, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("name", "ours", "reference"), CURVES, ids=IDS)
def test_gradients_are_finite_everywhere_including_cuts_and_zero(name, ours, reference):
    grad = jax.jit(jax.vmap(jax.grad(ours)))
    for dtype in (jnp.float32, jnp.float64):
        with jax.enable_x64(dtype == jnp.float64):
            x = jnp.asarray(samples(1000), dtype=dtype)
            g = grad(x)
            assert g.dtype == dtype
            assert bool(jnp.all(jnp.isfinite(g))), x[~jnp.isfinite(g)]


@pytest.mark.parametrize(("name", "ours", "reference"), CURVES, ids=IDS)
def test_gradients_match_central_differences_away_from_cuts(name, ours, reference, x64):
    x = np.random.default_rng(2).uniform(-0.5, 1.5, 2000)
    h = 1e-6
    x = x[
        np.min(np.abs(x[:, None] - np.array(CUTS + [-c for c in CUTS])[None]), axis=1) > 1e-3
    ]  # FD truncation error grows near kinks and 0
    fd = (reference(x + h) - reference(x - h)) / (2 * h)
    ad = np.asarray(jax.vmap(jax.grad(ours))(x))
    np.testing.assert_allclose(ad, fd, rtol=1e-6, atol=1e-8)


def test_gradient_at_each_cut_is_the_slope_of_the_segment_that_owns_it(x64):
    srgb_cut = jnp.float64(0.0031308)
    assert float(jax.grad(transfer.srgb_encode)(srgb_cut)) == 12.92  # linear owns L = cut
    bt709_cut = jnp.float64(0.018)  # the curve owns L = cut
    np.testing.assert_allclose(float(jax.grad(transfer.bt709_encode)(bt709_cut)), 1.099 * 0.45 * 0.018**-0.55)


def test_gradient_of_the_encoding_gamma_at_zero_is_the_documented_subgradient_0(x64):
    # The slope of |x| ** (1/2.2) at 0 is infinite; the module documents safe.pow's subgradient, 0.
    assert float(jax.grad(lambda x: transfer.gamma_encode(x, ADOBE))(0.0)) == 0.0
    assert float(jax.grad(lambda x: transfer.gamma_encode(x, ADOBE))(-0.0)) == 0.0


def test_float32_in_float32_out_and_integers_become_floats():
    x = np.linspace(-0.2, 1.2, 7, dtype=np.float32)
    for name, ours, reference in CURVES:
        out = ours(jnp.asarray(x))
        assert out.dtype == jnp.float32, name
        np.testing.assert_allclose(np.asarray(out), reference(x.astype(np.float64)), rtol=2e-6, atol=1e-7, err_msg=name)
    integers = transfer.srgb_decode(jnp.array([0, 1]))
    assert integers.dtype == jnp.float32
    np.testing.assert_array_equal(integers, [0.0, 1.0])


def test_structs_in_structs_out_with_jit_and_vmap():
    rgb = RGB(jnp.array([0.1, 0.5]), jnp.array([0.2, 1.1]), jnp.array([-0.1, 0.0]))
    out = jax.jit(transfer.srgb_decode)(rgb)
    assert isinstance(out, RGB)
    for got, x in ((out.r, [0.1, 0.5]), (out.g, [0.2, 1.1]), (out.b, [-0.1, 0.0])):
        np.testing.assert_allclose(got, eotf_sRGB(np.array(x)), rtol=1e-6, atol=1e-8)
    codes = np.linspace(0.0, 1.0, 12).reshape(4, 3)
    batched = jax.vmap(transfer.srgb_encode)(jnp.asarray(codes, jnp.float32))
    assert batched.shape == (4, 3)
    np.testing.assert_allclose(batched, eotf_inverse_sRGB(codes), rtol=1e-6, atol=1e-7)


def test_complex_input_is_a_clear_error():
    with pytest.raises(TypeError, match=r"srgb_decode: expected real values.*x\.real"):
        transfer.srgb_decode(jnp.array([0.5 + 1j]))

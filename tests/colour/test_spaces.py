"""Colourspace, illuminant and adaptation definitions: taken from colour-science, checked against it."""

import inspect
import subprocess
import sys

import colour as colour_science
import jax
import numpy as np
import pytest

from toolkit.colour import spaces, transfer
from toolkit.colour.spaces import adaptation_matrix, rgb_space, supported_spaces, white_xyz, whitepoint

REQUIRED = ["sRGB", "Display P3", "Adobe RGB (1998)", "ITU-R BT.709", "ITU-R BT.2020"]


def test_the_colour_inside_the_package_is_colour_science():
    assert spaces.colour is colour_science
    assert hasattr(spaces.colour, "RGB_COLOURSPACES")


def test_importing_toolkit_colour_leaves_numpys_print_options_alone():
    # colour-science switches NumPy to its legacy print style on import.
    code = (
        "import numpy as np; before = np.get_printoptions(); import toolkit.colour; "
        "assert np.get_printoptions() == before, np.get_printoptions()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("name", REQUIRED)
def test_matrices_and_whitepoints_are_colour_sciences_own(name):
    ours, theirs = rgb_space(name), colour_science.RGB_COLOURSPACES[name]
    assert ours.name == name
    np.testing.assert_array_equal(ours.matrix, theirs.matrix_RGB_to_XYZ)
    np.testing.assert_array_equal(ours.whitepoint, theirs.whitepoint)


def test_required_spaces_are_supported_with_the_right_curves():
    assert set(REQUIRED) <= set(supported_spaces())
    assert rgb_space("sRGB").curve is transfer.SRGB
    assert rgb_space("Display P3").curve is transfer.SRGB
    assert rgb_space("ITU-R BT.709").curve is transfer.BT709
    assert rgb_space("ITU-R BT.2020").curve is transfer.BT2020
    assert rgb_space("Adobe RGB (1998)").curve == transfer.GammaCurve(563 / 256, 256 / 563)
    assert rgb_space("sRGB", linear=True).curve is transfer.LINEAR


def mirrored(cctf):
    """colour-science's curve, with a pure gamma mirrored below 0 (its default there is NaN), as toolkit documents."""
    return lambda x: np.sign(x) * cctf(np.abs(x))


@pytest.mark.parametrize("name", REQUIRED)
def test_each_required_space_curve_is_colour_sciences_in_and_out_of_range(name, x64):
    x = np.linspace(-0.5, 1.5, 401)
    curve, theirs = rgb_space(name).curve, colour_science.RGB_COLOURSPACES[name]
    gamma = name == "Adobe RGB (1998)"
    decode = mirrored(theirs.cctf_decoding) if gamma else theirs.cctf_decoding
    encode = mirrored(theirs.cctf_encoding) if gamma else theirs.cctf_encoding
    np.testing.assert_allclose(np.asarray(curve.decode(x)), decode(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.asarray(curve.encode(x)), encode(x), rtol=1e-13, atol=1e-15)
    linear = rgb_space(name, linear=True).curve
    np.testing.assert_array_equal(np.asarray(linear.decode(x)), x)
    np.testing.assert_array_equal(np.asarray(linear.encode(x)), x)


def test_every_supported_space_decodes_and_encodes_as_colour_science_does():
    x = np.linspace(0, 1.5, 31)  # colour-science's default gamma is NaN below 0
    decode = jax.jit(lambda curve, v: curve.decode(v), static_argnums=0)
    encode = jax.jit(lambda curve, v: curve.encode(v), static_argnums=0)
    with jax.enable_x64(True):
        for name in supported_spaces():
            curve, theirs = rgb_space(name).curve, colour_science.RGB_COLOURSPACES[name]
            np.testing.assert_allclose(np.asarray(decode(curve, x)), theirs.cctf_decoding(x), rtol=1e-13, err_msg=name)
            np.testing.assert_allclose(np.asarray(encode(curve, x)), theirs.cctf_encoding(x), rtol=1e-13, err_msg=name)


def test_whitepoints_come_from_ccs_illuminants():
    table = colour_science.CCS_ILLUMINANTS
    np.testing.assert_array_equal(whitepoint(), table["CIE 1931 2 Degree Standard Observer"]["D65"])
    np.testing.assert_array_equal(
        whitepoint("D50", "CIE 1964 10 Degree Standard Observer"), table["CIE 1964 10 Degree Standard Observer"]["D50"]
    )
    np.testing.assert_array_equal(whitepoint((0.3, 0.31)), [0.3, 0.31])
    np.testing.assert_array_equal(white_xyz("A"), colour_science.xy_to_XYZ(table["cie_2_1931"]["A"]))


def test_adaptation_is_colour_sciences_default_cat():
    default = inspect.signature(colour_science.RGB_to_XYZ).parameters["chromatic_adaptation_transform"].default
    assert spaces.DEFAULT_ADAPTATION == default
    d65, d50 = whitepoint("D65"), whitepoint("D50")
    expected = colour_science.adaptation.matrix_chromatic_adaptation_VonKries(
        colour_science.xy_to_XYZ(d65), colour_science.xy_to_XYZ(d50), transform=default
    )
    np.testing.assert_array_equal(adaptation_matrix(d65, d50), expected)
    np.testing.assert_array_equal(adaptation_matrix(d65, d65), np.eye(3))


def test_unknown_space_names_the_valid_ones_and_suggests_the_closest():
    with pytest.raises(
        ValueError, match=r"space='sRBG' is not a known RGB colourspace\. Did you mean 'sRGB'\?.*Display P3"
    ):
        rgb_space("sRBG")
    with pytest.raises(ValueError, match=r"space=None is not a known RGB colourspace"):
        rgb_space(None)


def test_space_without_a_jax_transfer_function_suggests_linear():
    with pytest.raises(ValueError, match=r"space='ProPhoto RGB'.*cctf_decoding_ROMMRGB.*linear=True"):
        rgb_space("ProPhoto RGB")
    assert rgb_space("ProPhoto RGB", linear=True).curve is transfer.LINEAR


def test_unknown_illuminant_and_observer_are_clear_errors():
    with pytest.raises(ValueError, match=r"illuminant='D66'.*Did you mean 'D65'\?.*D50.*\(x, y\) chromaticity"):
        whitepoint("D66")
    with pytest.raises(ValueError, match=r"observer='2 degree'.*CIE 1931 2 Degree Standard Observer"):
        whitepoint("D65", "2 degree")
    with pytest.raises(ValueError, match=r"illuminant=\(0.3, 0.0\).*0 < y <= 1"):
        whitepoint((0.3, 0.0))
    with pytest.raises(ValueError, match=r"illuminant=\[1, 2, 3\]"):
        whitepoint([1, 2, 3])

"""RGB <-> XYZ <-> Lab in JAX against colour-science, exact greys, round trips, gradients, kinds and errors."""

import functools

import colour as colour_science
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from colour.models.rgb.transfer_functions import gamma_function
from hypothesis import given
from hypothesis import strategies as st

import toolkit as tk
from toolkit.colour import (
    RGB,
    XYZ,
    Lab,
    lab_to_rgb,
    lab_to_xyz,
    rgb_space,
    rgb_to_lab,
    rgb_to_xyz,
    transfer,
    xyz_to_lab,
    xyz_to_rgb,
)

TEN_DEGREE = "CIE 1964 10 Degree Standard Observer"
DERIVED = ["Display P3", "ITU-R BT.709", "ITU-R BT.2020"]  # matrices derived from primaries and whitepoint
ROUNDED = ["sRGB", "Adobe RGB (1998)"]  # published, rounded matrices
REQUIRED = ROUNDED[:1] + DERIVED[:1] + ROUNDED[1:] + DERIVED[1:]


@functools.cache
def jitted(fn, **settings):
    """One compiled function per conversion and settings, shared by the tests."""
    return jax.jit(functools.partial(fn, **settings))


# --- the oracle: colour-science ---------------------------------------------------


def mirrored(cctf):
    """colour-science's pure gamma with the "Mirror" negative handling we follow (its default is NaN)."""
    if isinstance(cctf, functools.partial) and cctf.func is gamma_function:
        return functools.partial(gamma_function, exponent=cctf.keywords["exponent"], negative_number_handling="Mirror")
    return cctf


class Oracle:
    """colour-science's conversions for one choice of settings (float64 NumPy)."""

    def __init__(self, space="sRGB", linear=False, illuminant="D65", observer="CIE 1931 2 Degree Standard Observer"):
        cs = colour_science.RGB_COLOURSPACES[space].copy()
        cs.cctf_decoding, cs.cctf_encoding = mirrored(cs.cctf_decoding), mirrored(cs.cctf_encoding)
        # colour-science's published XYZ-to-RGB matrix, toolkit's default (inverse="published").
        self.space, self.coded = cs, not linear
        self.xy = (
            np.asarray(illuminant)
            if not isinstance(illuminant, str)
            else colour_science.CCS_ILLUMINANTS[observer][illuminant]
        )

    def rgb_to_xyz(self, rgb):
        return colour_science.RGB_to_XYZ(rgb, self.space, illuminant=self.xy, apply_cctf_decoding=self.coded)

    def xyz_to_rgb(self, xyz):
        return colour_science.XYZ_to_RGB(xyz, self.space, illuminant=self.xy, apply_cctf_encoding=self.coded)

    def xyz_to_lab(self, xyz):
        return colour_science.XYZ_to_Lab(xyz, self.xy)

    def lab_to_xyz(self, lab):
        return colour_science.Lab_to_XYZ(lab, self.xy)

    def rgb_to_lab(self, rgb):
        return self.xyz_to_lab(self.rgb_to_xyz(rgb))

    def lab_to_rgb(self, lab):
        return self.xyz_to_rgb(self.lab_to_xyz(lab))


def random_rgb(n, seed=0):
    """Colours in and well outside the cube, with its corners and some greys."""
    rng = np.random.default_rng(seed)
    corners = np.array(np.meshgrid([0.0, 1.0], [0.0, 1.0], [0.0, 1.0])).reshape(3, -1).T
    greys = np.repeat(np.linspace(-0.5, 1.5, 9)[:, None], 3, axis=1)
    return np.concatenate([rng.uniform(-0.5, 1.5, (n, 3)), corners, greys, [[1.12, 0.0, 0.0]]])


def random_xyz(n, seed=1):
    return np.random.default_rng(seed).uniform(-0.2, 1.3, (n, 3))


def random_lab(n, seed=2):
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-5, 110, n), rng.uniform(-130, 130, n), rng.uniform(-130, 130, n)], axis=-1)


# --- values: colour-science to 1e-10 in float64 ------------------------------------


def test_srgb_to_lab_matches_colour_science_on_1e5_colours(x64):
    rgb = random_rgb(100_000)
    expected = colour_science.XYZ_to_Lab(colour_science.sRGB_to_XYZ(rgb))
    np.testing.assert_allclose(np.asarray(jitted(rgb_to_lab)(rgb)), expected, rtol=0, atol=1e-10)


SETTINGS = [
    *({"space": name} for name in REQUIRED),
    {"space": "sRGB", "linear": True},
    {"space": "ProPhoto RGB", "linear": True},  # D50 space: adapted to D65
    {"space": "sRGB", "illuminant": "D50"},
    {"space": "Adobe RGB (1998)", "illuminant": "A"},
    {"space": "Display P3", "observer": TEN_DEGREE},
    {"space": "ITU-R BT.709", "illuminant": (0.31, 0.32)},
]
SETTING_IDS = ["-".join(str(v) for v in s.values()) for s in SETTINGS]


@pytest.mark.parametrize("settings", SETTINGS, ids=SETTING_IDS)
def test_every_direction_matches_colour_science(settings, x64):
    oracle = Oracle(**settings)
    lab_settings = {k: v for k, v in settings.items() if k in ("illuminant", "observer")}
    rgb, xyz, lab = random_rgb(10_000), random_xyz(10_000), random_lab(10_000)
    checks = [
        (rgb_to_xyz, settings, rgb, oracle.rgb_to_xyz),
        (xyz_to_rgb, settings, xyz, oracle.xyz_to_rgb),
        (rgb_to_lab, settings, rgb, oracle.rgb_to_lab),
        (lab_to_rgb, settings, lab, oracle.lab_to_rgb),
        (xyz_to_lab, lab_settings, xyz, oracle.xyz_to_lab),
        (lab_to_xyz, lab_settings, lab, oracle.lab_to_xyz),
    ]
    for fn, kwargs, x, expected in checks:
        np.testing.assert_allclose(
            np.asarray(jitted(fn, **kwargs)(x)), expected(x), rtol=1e-13, atol=1e-10, err_msg=fn.__name__
        )


@pytest.mark.parametrize("name", REQUIRED)
def test_xyz_to_rgb_is_colour_sciences_published_inverse_and_the_exact_one_on_request(name, x64):
    # sRGB's and Adobe RGB's published XYZ-to-RGB matrices are rounded separately from the forward ones:
    # the default applies them, as colour-science does; inverse="exact" inverts the forward matrix.
    xyz = random_xyz(1000)
    published = colour_science.XYZ_to_RGB(xyz, name)
    ours = np.asarray(jitted(xyz_to_rgb, space=name, linear=True)(xyz))
    np.testing.assert_allclose(ours, published, rtol=0, atol=1e-12)
    exact = np.asarray(jitted(xyz_to_rgb, space=name, linear=True, inverse="exact")(xyz))
    inverted = np.einsum("ij,...j->...i", np.linalg.inv(colour_science.RGB_COLOURSPACES[name].matrix_RGB_to_XYZ), xyz)
    np.testing.assert_allclose(exact, inverted, rtol=0, atol=1e-12)
    deviation = np.abs(exact - published).max()
    if name in DERIVED:
        assert deviation < 1e-13
    else:
        assert 1e-6 < deviation < 2e-4


def test_xyz_to_srgb_passes_colour_sciences_own_assertions(x64):
    # colour-science 0.4.7's colour/models/rgb/tests/test_common.py, TestXYZ_to_sRGB (at its tolerance, 1e-7),
    # with toolkit's function in place of XYZ_to_sRGB (less the Bradford case: toolkit adapts with CAT02).
    cases = [
        ([0.20654008, 0.12197225, 0.05136952], {}, [0.70573936, 0.19248266, 0.22354169]),
        ([0.14222010, 0.23042768, 0.10495772], {}, [0.25847003, 0.58276102, 0.29718877]),
        (
            [0.07818780, 0.06157201, 0.28099326],
            {"illuminant": (0.34570, 0.35850)},
            [0.09838967, 0.25404426, 0.65130925],
        ),
        ([0.00000000, 0.00000000, 0.00000000], {"illuminant": (0.44757, 0.40745)}, [0.0, 0.0, 0.0]),
        ([0.20654008, 0.12197225, 0.05136952], {"linear": True}, [0.45620520, 0.03081070, 0.04091953]),
    ]
    for xyz, settings, expected in cases:
        got = np.asarray(xyz_to_rgb(np.array(xyz), **settings))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7, err_msg=str(settings))
    xyz = random_xyz(10_000) * 1.1
    np.testing.assert_allclose(np.asarray(jitted(xyz_to_rgb)(xyz)), colour_science.XYZ_to_sRGB(xyz), rtol=0, atol=1e-9)
    lab = random_lab(10_000)
    np.testing.assert_allclose(
        np.asarray(jitted(lab_to_rgb)(lab)), colour_science.XYZ_to_sRGB(colour_science.Lab_to_XYZ(lab)), atol=1e-9
    )


def test_reference_white_space_is_lab_relative_to_the_rgb_white(x64):
    # The oracle: colour-science's Lab with the space's own white as reference,
    # which is XYZ_to_Lab of XYZ / Y_white under the white's chromaticity.
    for name in ROUNDED:
        white = colour_science.RGB_to_XYZ(np.ones(3), name)
        rgb = random_rgb(10_000)
        expected = colour_science.XYZ_to_Lab(
            colour_science.RGB_to_XYZ(rgb, Oracle(name).space, apply_cctf_decoding=True) / white[1],
            colour_science.XYZ_to_xy(white),
        )
        ours = np.asarray(jitted(rgb_to_lab, space=name, reference_white="space")(rgb))
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10, err_msg=name)
        # and, per the module's documentation, how far that is from the illuminant's Lab
        illuminant = np.asarray(jitted(rgb_to_lab, space=name)(np.ones(3)))
        assert 1e-3 < np.abs(illuminant[1:]).max() < 1e-2


# --- exact greys ----------------------------------------------------------------


def greys(dtype):
    g = np.concatenate([np.linspace(-1, 2, 3001), [0.0, -0.0, 1.0, 0.5, 1e-30, 1e-6, 0.04045, 10.0, -10.0]])
    return np.repeat(g[:, None], 3, axis=1).astype(dtype)


EXACT = [
    *({"space": name} for name in DERIVED),
    {"space": "Display P3", "illuminant": "D50"},  # adapted
    *({"space": name, "reference_white": "space"} for name in ROUNDED),
    {"space": "ITU-R BT.2020", "reference_white": "space"},
    {"space": "sRGB", "reference_white": "space", "illuminant": "A"},  # adapted
    {"space": "sRGB", "linear": True, "reference_white": "space"},
]
EXACT_IDS = ["-".join(str(v) for v in s.values()) for s in EXACT]


@pytest.mark.parametrize("settings", EXACT, ids=EXACT_IDS)
def test_every_grey_is_exactly_achromatic_and_back(settings):
    for dtype in (np.float32, np.float64):
        with jax.enable_x64(dtype == np.float64):
            lab = np.asarray(jitted(rgb_to_lab, **settings)(greys(dtype)))
            assert lab.dtype == dtype
            assert np.all(lab[:, 1:] == 0), lab[np.any(lab[:, 1:] != 0, axis=1)]
            rgb = np.asarray(jitted(lab_to_rgb, **settings, inverse="exact")(lab))
            assert np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 2] == rgb[:, 1])


def test_greys_are_exact_without_jit_for_structs_and_single_colours():
    for g in (0.0, 0.5, 1.0, 1.12, -0.1):
        lab = rgb_to_lab(RGB(g, g, g), reference_white="space")
        assert float(lab.a) == 0.0 and float(lab.b) == 0.0
        lab = rgb_to_lab(jnp.array([g, g, g]), "Display P3")
        assert float(lab[1]) == 0.0 and float(lab[2]) == 0.0


def test_white_is_lab_100_0_0_for_srgb_only_with_its_own_reference_white(x64):
    np.testing.assert_array_equal(np.asarray(rgb_to_lab(jnp.ones(3), reference_white="space")), [100.0, 0.0, 0.0])
    # colour-science's sRGB white, which the default reproduces
    np.testing.assert_allclose(
        np.asarray(rgb_to_lab(jnp.ones(3))),
        colour_science.XYZ_to_Lab(colour_science.sRGB_to_XYZ(np.ones(3))),
        atol=1e-12,
    )


@given(st.floats(-4.0, 4.0, width=32))
def test_any_float32_grey_is_exactly_achromatic(g):
    lab = jitted(rgb_to_lab, reference_white="space")(jnp.full(3, g, dtype=jnp.float32))
    assert float(lab[1]) == 0.0 and float(lab[2]) == 0.0


# --- round trips ----------------------------------------------------------------


def outside_bt709_gap(rgb):
    """Drop colours with a code value in [0.081, 0.0812428): see test_transfer's gap tests."""
    in_gap = (rgb >= 0.081) & (rgb < transfer.BT709.code_cut)
    return rgb[~np.any(in_gap, axis=1)]


ROUND_TRIPS = [*((name, "illuminant") for name in REQUIRED), *((name, "space") for name in ROUNDED)]


@pytest.mark.parametrize(("name", "reference_white"), ROUND_TRIPS)
def test_rgb_to_lab_to_rgb_is_the_identity(name, reference_white):
    settings = {"space": name, "reference_white": reference_white}
    there, back = jitted(rgb_to_lab, **settings), jitted(lab_to_rgb, **settings, inverse="exact")
    curve = rgb_space(name).curve
    for dtype, tolerance in ((np.float64, 1e-11), (np.float32, 2e-5)):
        with jax.enable_x64(dtype == np.float64):
            rgb = outside_bt709_gap(random_rgb(10_000)).astype(dtype)
            again = back(there(rgb))
            code_tolerance = tolerance
            if isinstance(curve, transfer.GammaCurve):
                # A pure power law's slope is infinite at 0: a rounding error e in
                # linear light becomes e ** (1/gamma) in code values near 0 (in
                # colour-science too). In linear light the round trip stays tight.
                np.testing.assert_allclose(curve.decode(again), curve.decode(rgb), rtol=tolerance, atol=tolerance)
                code_tolerance = (8 * np.finfo(dtype).eps) ** curve.encode_exponent
            np.testing.assert_allclose(np.asarray(again), rgb, rtol=tolerance, atol=code_tolerance)


@pytest.mark.parametrize("name", REQUIRED)
def test_lab_to_rgb_to_lab_and_xyz_round_trips(name, x64):
    lab = random_lab(10_000)
    there = lab_to_rgb(lab, name, inverse="exact")
    np.testing.assert_allclose(np.asarray(rgb_to_lab(there, name)), lab, rtol=1e-11, atol=1e-10)
    xyz = random_xyz(10_000)
    there = xyz_to_rgb(xyz, name, inverse="exact")
    np.testing.assert_allclose(np.asarray(rgb_to_xyz(there, name)), xyz, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(lab_to_xyz(xyz_to_lab(xyz))), xyz, rtol=1e-12, atol=1e-13)


# --- gradients ------------------------------------------------------------------


def grid_around_the_cube():
    """13^3 colours on [-0.25, 1.25] (0 and 1 included) plus the curves' cut points as greys."""
    axis = np.linspace(-0.25, 1.25, 13)
    grid = np.array(np.meshgrid(axis, axis, axis)).reshape(3, -1).T
    cuts = [0.04045, 0.0031308 * 12.92, 0.081, transfer.BT709.code_cut, 0.018, 0.0031308]
    return np.concatenate([grid, np.repeat(np.array(cuts)[:, None], 3, axis=1)])


@pytest.mark.parametrize("name", REQUIRED)
def test_jacobians_are_finite_on_and_around_the_cube(name):
    forward = jax.jit(jax.vmap(jax.jacrev(functools.partial(rgb_to_lab, space=name))))
    inverse = jax.jit(jax.vmap(jax.jacfwd(functools.partial(lab_to_rgb, space=name))))
    for dtype in (np.float32, np.float64):
        with jax.enable_x64(dtype == np.float64):
            rgb = grid_around_the_cube().astype(dtype)
            assert np.all(np.isfinite(np.asarray(forward(rgb)))), name
            lab = np.asarray(jitted(rgb_to_lab, space=name)(rgb))
            lab = np.concatenate([lab, [[0.0, 0.0, 0.0], [8.0, 0.0, 0.0], [100.0, 0.0, 0.0]]])
            assert np.all(np.isfinite(np.asarray(inverse(lab.astype(dtype))))), name


def central_jacobian(f, x, h=1e-6):
    """Central differences of ``f`` (N x 3 -> N x 3), and whether one-sided ones agree (no kink nearby)."""
    columns, smooth = [], np.ones(len(x), dtype=bool)
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        up, mid, down = f(x + step), f(x), f(x - step)
        columns.append((up - down) / (2 * h))
        smooth &= np.all(np.isclose((up - mid) / h, (mid - down) / h, rtol=1e-4, atol=1e-4), axis=1)
    return np.stack(columns, axis=-1), smooth


@pytest.mark.parametrize("name", REQUIRED)
def test_jacobians_match_central_differences_of_colour_science(name, x64):
    oracle = Oracle(name)
    rgb = random_rgb(300, seed=3)
    # Adobe RGB's |x| ** 2.2 is not twice differentiable at 0: central differences
    # there are off by h ** 1.2, so keep every channel away from 0.
    rgb = rgb[np.all(np.abs(rgb) > 1e-3, axis=1)]
    expected, smooth = central_jacobian(oracle.rgb_to_lab, rgb)
    got = np.asarray(jax.jit(jax.vmap(jax.jacrev(functools.partial(rgb_to_lab, space=name))))(rgb))
    assert smooth.mean() > 0.9
    np.testing.assert_allclose(got[smooth], expected[smooth], rtol=1e-6, atol=1e-6)

    lab = random_lab(300, seed=4) * [1.0, 0.5, 0.5]
    expected, smooth = central_jacobian(oracle.lab_to_rgb, lab)
    got = np.asarray(jax.jit(jax.vmap(jax.jacfwd(functools.partial(lab_to_rgb, space=name))))(lab))
    assert smooth.mean() > 0.9
    np.testing.assert_allclose(got[smooth], expected[smooth], rtol=1e-6, atol=1e-8)


# --- kinds, shapes, dtypes and transformations -----------------------------------


def test_structs_in_structs_out_arrays_in_arrays_out(x64):
    oracle = Oracle()
    rgb, xyz, lab = np.array([0.2, 0.3, 0.4]), np.array([0.2, 0.3, 0.4]), np.array([50.0, 1.0, 2.0])
    cases = [
        (rgb_to_xyz, RGB, rgb, XYZ, oracle.rgb_to_xyz),
        (xyz_to_lab, XYZ, xyz, Lab, oracle.xyz_to_lab),
        (rgb_to_lab, RGB, rgb, Lab, oracle.rgb_to_lab),
        (lab_to_xyz, Lab, lab, XYZ, oracle.lab_to_xyz),
        (xyz_to_rgb, XYZ, xyz, RGB, oracle.xyz_to_rgb),
        (lab_to_rgb, Lab, lab, RGB, oracle.lab_to_rgb),
    ]
    for fn, kind, x, out_kind, expected in cases:
        out = fn(kind(*x))
        assert isinstance(out, out_kind), fn.__name__
        np.testing.assert_allclose(
            np.asarray(tk.colour.as_array(out)), expected(x), rtol=1e-13, atol=1e-12, err_msg=fn.__name__
        )
        array_out = fn(jnp.asarray(x))
        assert isinstance(array_out, jax.Array) and array_out.shape == (3,), fn.__name__
        np.testing.assert_allclose(np.asarray(array_out), expected(x), rtol=1e-13, atol=1e-12, err_msg=fn.__name__)


def test_any_leading_shape_and_broadcasting_struct_fields(x64):
    oracle = Oracle()
    for shape in [(3,), (5, 3), (2, 3, 4, 3)]:
        x = np.linspace(0, 1, int(np.prod(shape))).reshape(shape)
        there, back = rgb_to_lab(x), lab_to_rgb(x * 100)
        assert there.shape == shape and back.shape == shape
        np.testing.assert_allclose(np.asarray(there), oracle.rgb_to_lab(x), rtol=1e-13, atol=1e-10)
        np.testing.assert_allclose(np.asarray(back), oracle.lab_to_rgb(x * 100), rtol=1e-13, atol=1e-10)
    rgb = random_rgb(6).reshape(2, 12, 3)
    np.testing.assert_allclose(np.asarray(rgb_to_lab(rgb)), oracle.rgb_to_lab(rgb), rtol=1e-13, atol=1e-10)
    # struct fields of shapes (4,), () and (2, 1) broadcast to (2, 4)
    r, g, b = np.linspace(0, 1, 4), 0.5, np.array([[0.0], [0.25]])
    mixed = rgb_to_lab(RGB(jnp.asarray(r), g, jnp.asarray(b)))
    assert mixed.l.shape == mixed.a.shape == mixed.b.shape == (2, 4)
    stacked = np.stack(np.broadcast_arrays(r, g, b), axis=-1)
    np.testing.assert_allclose(
        np.asarray(tk.colour.as_array(mixed)), oracle.rgb_to_lab(stacked), rtol=1e-13, atol=1e-10
    )


def test_dtypes_are_kept_and_integers_become_floats():
    assert rgb_to_lab(jnp.ones(3, jnp.float32)).dtype == jnp.float32
    assert rgb_to_lab(jnp.array([1, 0, 0])).dtype == jnp.float32
    with jax.enable_x64(True):
        assert rgb_to_lab(jnp.ones(3, jnp.float64)).dtype == jnp.float64
        assert lab_to_rgb(Lab(50.0, 0.0, 0.0)).r.dtype == jnp.float64


def test_float32_is_close_to_colour_science(x64):
    rgb = random_rgb(1000).astype(np.float32)
    exact = Oracle().rgb_to_lab(rgb.astype(np.float64))
    approximate = np.asarray(jitted(rgb_to_lab)(rgb))
    assert approximate.dtype == np.float32
    np.testing.assert_allclose(approximate, exact, atol=5e-4)
    lab = random_lab(1000).astype(np.float32)
    approximate = np.asarray(jitted(lab_to_rgb)(lab))
    assert approximate.dtype == np.float32
    np.testing.assert_allclose(approximate, Oracle().lab_to_rgb(lab.astype(np.float64)), rtol=1e-4, atol=1e-5)


def test_composes_with_jit_vmap_and_grad(x64):
    oracle = Oracle()
    values = np.array([[1.0, 1.0, 1.0], [0.2, 0.5, 1.12]])
    rgb = RGB(*values.T)
    expected = oracle.rgb_to_lab(values)
    jitted_lab = jax.jit(rgb_to_lab, static_argnames=("space",))(rgb, space="sRGB")
    mapped = jax.vmap(rgb_to_lab)(rgb)
    for out in (jitted_lab, mapped):
        assert isinstance(out, Lab)
        np.testing.assert_allclose(np.asarray(tk.colour.as_array(out)), expected, rtol=1e-13, atol=1e-10)

    # the gradient of Σ(L*, a*, b*) is the column sums of colour-science's Jacobian (central differences)
    (grad,) = tk.gradient(lambda c: tk.tree.sum(rgb_to_lab(c)), rgb)
    assert isinstance(grad, RGB)
    jacobian, smooth = central_jacobian(oracle.rgb_to_lab, values)
    assert smooth.all()
    np.testing.assert_allclose(np.asarray(tk.colour.as_array(grad)), jacobian.sum(axis=1), rtol=1e-6, atol=1e-6)
    # second derivative: d²L*/dg² at (1, 0.5, 0.3), against second central differences of colour-science
    second = jax.grad(jax.grad(lambda g: rgb_to_lab(RGB(1.0, g, 0.3)).l))(0.5)
    lightness = lambda g: oracle.rgb_to_lab(np.array([1.0, g, 0.3]))[0]  # noqa: E731
    h = 1e-4
    expected_second = (lightness(0.5 + h) - 2 * lightness(0.5) + lightness(0.5 - h)) / h**2
    assert abs(expected_second) > 10  # a real curvature, not zero
    assert float(second) == pytest.approx(expected_second, rel=1e-4)


# --- errors ---------------------------------------------------------------------


def test_wrong_trailing_axis_says_what_shape_is_needed():
    with pytest.raises(
        ValueError,
        match=r"rgb_to_lab: rgb must be an RGB struct or an array whose last axis has length 3 \(r, g, b\), got f32\[4,4\]",
    ):
        rgb_to_lab(jnp.ones((4, 4)))
    with pytest.raises(ValueError, match=r"lab_to_rgb: lab must be a Lab struct .* \(l, a, b\), got f32\[\]"):
        lab_to_rgb(jnp.float32(1.0))


def test_the_wrong_struct_is_a_type_error_naming_both():
    with pytest.raises(TypeError, match=r"rgb_to_lab: rgb is a Lab struct, expected RGB"):
        rgb_to_lab(Lab(50.0, 0.0, 0.0))
    with pytest.raises(TypeError, match=r"xyz_to_lab: xyz is an RGB struct, expected XYZ"):
        xyz_to_lab(RGB(0.1, 0.2, 0.3))


def test_fields_that_do_not_broadcast_are_named():
    with pytest.raises(
        ValueError, match=r"rgb_to_xyz: the fields of rgb do not broadcast together \(r: f32\[3\], g: f32\[4\]"
    ):
        rgb_to_xyz(RGB(jnp.ones(3), jnp.ones(4), 0.0))


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"space='Display-P3'.*Did you mean 'Display P3'\?"):
        rgb_to_lab(jnp.ones(3), "Display-P3")
    with pytest.raises(ValueError, match=r"illuminant='D66'.*Did you mean 'D65'\?"):
        lab_to_rgb(jnp.ones(3), illuminant="D66")
    with pytest.raises(ValueError, match=r"illuminant='E5'"):
        xyz_to_lab(jnp.ones(3), illuminant="E5")
    with pytest.raises(ValueError, match=r"reference_white='display'.*'illuminant'.*'space'"):
        rgb_to_lab(jnp.ones(3), reference_white="display")

"""Every dtype JAX offers gives a right answer in its dtype, or a clear error.

The matrix: every public conversion and colour difference (and ``colordiff``
with every metric) x {float16, bfloat16, float32, float64} x {x64 off, x64 on}
x {mixed with a Python float, with ``np.float64``, with ``np.float32``}. Each
case checks that

* the result's dtype is JAX's promotion of the inputs' dtypes (a Python float is
  weakly typed; a NumPy scalar is not; float64 exists only with x64 on);
* the values are finite and match colour-science, computed in float64 on the
  very numbers the function received (rounded to the input dtype), to the
  tolerance of the result's dtype (``VALUE_TOLERANCE``);
* the gradient with respect to every channel of every colour comes back in that
  channel's own dtype, finite, and matches the float64 gradient at the same
  numbers to the tolerance of the coarser of the gradient's dtype and the
  dtype the function computed in (``GRADIENT_TOLERANCE``).

A Python float and a NumPy scalar mix in as one channel of a colour struct
(``Lab(50.0, a, b)``), and as the metric's weights (``kL``, ``l``, ...) where it
has any; ``colordiff`` compares an RGB array with such a Lab struct. The
mixed-in values are exact in every dtype, so the reference sees the same
numbers. Every mixture is cast to its working dtype before the compiled
kernel, so the 336 cases compile a few kernels per function, which keeps this
fast (about 25 s on 2 cores).
"""

from __future__ import annotations

import functools

import colour as colour_science
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toolkit.colour import (
    RGB,
    XYZ,
    Lab,
    cie76,
    cie94,
    ciede2000,
    cmc,
    colordiff,
    lab_to_rgb,
    lab_to_xyz,
    rgb_to_lab,
    rgb_to_xyz,
    transfer,
    xyz_to_lab,
    xyz_to_rgb,
)

N = 20
DTYPES = ["float16", "bfloat16", "float32", "float64"]
MIXES = ["python", "numpy64", "numpy32"]

# Relative tolerances, as (rtol, atol): |got - want| <= rtol * |want| + atol * max|want|, the maximum
# over the batch and per channel. For values, of the result's dtype: half precision is computed in
# float32 and rounded once, so its error is under one unit in the last place (2^-10 and 2^-7).
VALUE_TOLERANCE = {
    "float16": (1e-3, 1e-5),
    "bfloat16": (8e-3, 1e-5),
    "float32": (1e-5, 1e-5),
    "float64": (1e-9, 1e-9),
}
# For gradients: the coarser of the gradient's dtype (one rounding) and of the dtype computed in.
GRADIENT_TOLERANCE = {
    "float16": (2e-3, 1e-4),
    "bfloat16": (1e-2, 1e-4),
    "float32": (1e-4, 1e-4),
    "float64": (1e-9, 1e-9),
}
_ORDER = ["float64", "float32", "float16", "bfloat16"]  # finer to coarser


def coarser(*dtypes):
    return max((np.dtype(d).name for d in dtypes), key=_ORDER.index)


# --- inputs and the oracle -------------------------------------------------------------------------

_rng = np.random.default_rng(20240611)
LAB1 = np.column_stack([_rng.uniform(10, 90, N), _rng.uniform(-50, 50, (N, 2))])
LAB2 = np.column_stack([_rng.uniform(10, 90, N), _rng.uniform(-50, 50, (N, 2))])
RGB1 = _rng.uniform(0.05, 0.95, (N, 3))
RGB2 = _rng.uniform(0.05, 0.95, (N, 3))

_SRGB = colour_science.RGB_COLOURSPACES["sRGB"]  # its published XYZ-to-RGB matrix, toolkit's default
_D65 = colour_science.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]


def cs_rgb_to_xyz(rgb):
    return colour_science.RGB_to_XYZ(rgb, _SRGB, illuminant=_D65, apply_cctf_decoding=True)


def cs_xyz_to_rgb(xyz):
    return colour_science.XYZ_to_RGB(xyz, _SRGB, illuminant=_D65, apply_cctf_encoding=True)


def cs_xyz_to_lab(xyz):
    return colour_science.XYZ_to_Lab(xyz, _D65)


def cs_lab_to_xyz(lab):
    return colour_science.Lab_to_XYZ(lab, _D65)


def cs_delta_e(method, **kwargs):
    return lambda lab1, lab2: colour_science.delta_E(lab1, lab2, method=method, **kwargs)


XYZ1 = cs_rgb_to_xyz(RGB1)

# name: (our function, kind, inputs, colour-science's function)
CONVERSIONS = {
    "rgb_to_xyz": (rgb_to_xyz, RGB, RGB1, cs_rgb_to_xyz),
    "xyz_to_rgb": (xyz_to_rgb, XYZ, XYZ1, cs_xyz_to_rgb),
    "xyz_to_lab": (xyz_to_lab, XYZ, XYZ1, cs_xyz_to_lab),
    "lab_to_xyz": (lab_to_xyz, Lab, LAB1, cs_lab_to_xyz),
    "rgb_to_lab": (rgb_to_lab, RGB, RGB1, lambda rgb: cs_xyz_to_lab(cs_rgb_to_xyz(rgb))),
    "lab_to_rgb": (lab_to_rgb, Lab, LAB1, lambda lab: cs_xyz_to_rgb(cs_lab_to_xyz(lab))),
}
# name: (our function, weights, colour-science's function); kind Lab, inputs LAB1 and LAB2
METRICS = {
    "ciede2000": (ciede2000, {"kL": 1.0, "kC": 1.0, "kH": 1.0}, cs_delta_e("CIE 2000")),
    "cie94": (cie94, {}, cs_delta_e("CIE 1994")),
    "cmc": (cmc, {"l": 2.0, "c": 1.0}, cs_delta_e("CMC", l=2, c=1)),
    "cie76": (cie76, {}, cs_delta_e("CIE 1976")),
}
COLORDIFF = {
    "CIEDE2000": "CIE 2000",
    "CIE94": "CIE 1994",
    "CMC": "CMC",
    "CIE76": "CIE 1976",
}
FUNCTIONS = list(CONVERSIONS) + list(METRICS) + [f"colordiff-{m}" for m in COLORDIFF]

# The value mixed into channel 0 of a struct: exact in every dtype.
CONSTANT = {RGB: 0.5, XYZ: 0.5, Lab: 50.0}
SCALAR = {"python": float, "numpy64": np.float64, "numpy32": np.float32}


def expected_dtype(dtype, mix, x64):
    """JAX's promotion, written out: float64 only with x64; a NumPy scalar is strongly typed."""
    own = "float32" if dtype == "float64" and not x64 else dtype
    if mix == "python":
        return own
    if mix == "numpy32":
        return "float64" if own == "float64" else "float32"
    return "float64" if x64 else "float32"


def as_float64(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def stacked(colour):
    """An (N, 3) float64 array of a colour struct or array (struct channels broadcast)."""
    if isinstance(colour, (RGB, Lab, XYZ)):
        return np.stack(np.broadcast_arrays(*as_float64(jax.tree.leaves(colour))), axis=-1)
    return np.asarray(colour, np.float64)


def case(name, dtype, mix):
    """``(call, args, reference)``: ``call(*args)`` is the function under test, ``reference(*arrays)`` colour-science's."""
    array = lambda x: jnp.asarray(np.asarray(x).astype(dtype))  # noqa: E731 (rounded to dtype, canonicalised)
    scalar = SCALAR[mix]
    mixed = lambda kind, x: kind(scalar(CONSTANT[kind]), array(x[:, 1]), array(x[:, 2]))  # noqa: E731
    if name in CONVERSIONS:
        f, kind, x, reference = CONVERSIONS[name]
        return f, (mixed(kind, x),), reference
    if name in METRICS:
        f, weights, reference = METRICS[name]
        weights = {k: scalar(v) for k, v in weights.items()}
        return functools.partial(f, **weights), (array(LAB1), mixed(Lab, LAB2)), reference
    metric = name.split("-", 1)[1]
    method = COLORDIFF[metric]
    kwargs = {"l": 2, "c": 1} if method == "CMC" else {}

    def reference(rgb, lab):
        return colour_science.delta_E(cs_xyz_to_lab(cs_rgb_to_xyz(rgb)), lab, method=method, **kwargs)

    # An RGB array (converted) against a Lab struct (compared as it is).
    return functools.partial(colordiff, metric=metric, arrays="RGB"), (array(RGB1), mixed(Lab, LAB2)), reference


@jax.jit
def _total(out):
    """One scalar of every output channel, with weights exact in every dtype (so are the cotangents)."""
    if isinstance(out, (RGB, Lab, XYZ)):
        first, second, third = jax.tree.leaves(out)
        return jnp.sum(first - 0.5 * second + 0.25 * third)
    if out.ndim == 2:
        return jnp.sum(out[:, 0] - 0.5 * out[:, 1] + 0.25 * out[:, 2])
    return jnp.sum(out)


def loss(call, *args):
    """The scalar to differentiate, and the output."""
    out = call(*args)
    return _total(out), out


def close(got, want, tolerance):
    """The worst |got - want| / (rtol * |want| + atol * max|want|) per channel (pass: <= 1)."""
    rtol, atol = tolerance
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = np.max(np.abs(want), axis=0, keepdims=True) if want.ndim else np.abs(want)
    return float(np.max(np.abs(got - want) / (rtol * np.abs(want) + atol * scale + 1e-300)))


def reference_gradient(name, args):
    """Our float64 gradient at the same numbers, as leaves matching ``args`` (struct channels broadcast for structs)."""
    with jax.enable_x64(True):
        call, _, _ = case(name, "float64", "python")
        # Scalar channels (Python or NumPy) become Python floats: the same numbers, exact in every dtype.
        args64 = jax.tree.map(lambda x: float(x) if np.ndim(x) == 0 else jnp.asarray(np.asarray(x, np.float64)), args)
        grads = jax.grad(functools.partial(loss, call), argnums=tuple(range(len(args))), has_aux=True)(*args64)[0]
        return jax.tree.map(np.asarray, grads)


# --- the matrix ---------------------------------------------------------------------------------


def run_case(name, dtype, x64, mix):
    """Values and gradients of one case, with the worst relative errors (1 = at the tolerance)."""
    with jax.enable_x64(x64):
        call, args, reference = case(name, dtype, mix)
        want_dtype = expected_dtype(dtype, mix, x64)
        grads, out = jax.grad(functools.partial(loss, call), argnums=tuple(range(len(args))), has_aux=True)(*args)
        out_leaves = jax.tree.leaves(out)
        assert all(leaf.dtype == want_dtype for leaf in out_leaves), (
            f"{name}({dtype}, {mix}, x64={x64}) returned {[leaf.dtype for leaf in out_leaves]}, expected {want_dtype}"
        )
        got = stacked(out)
        assert np.all(np.isfinite(got)), f"{name}({dtype}, {mix}, x64={x64}) is not finite: {got}"
        want = reference(*(stacked(a) for a in args))
        value_error = close(got, want, VALUE_TOLERANCE[want_dtype])

        arg_leaves, grad_leaves = jax.tree.leaves(args), jax.tree.leaves(grads)
        assert len(arg_leaves) == len(grad_leaves)
        for a, g in zip(arg_leaves, grad_leaves):
            assert g.dtype == jnp.asarray(a).dtype, (
                f"{name}({dtype}, {mix}, x64={x64}): gradient {g.dtype} for a {jnp.asarray(a).dtype} input"
            )
            assert np.all(np.isfinite(np.asarray(g, np.float64))), (
                f"{name}({dtype}, {mix}, x64={x64}): gradient not finite"
            )
        grad_error = 0.0
        for a, g, w in zip(arg_leaves, grad_leaves, jax.tree.leaves(reference_gradient(name, args))):
            tolerance = GRADIENT_TOLERANCE[coarser(jnp.asarray(a).dtype, want_dtype)]
            if np.ndim(a) == 0:  # a struct's scalar channel: the sum of the batch's gradients
                tolerance = (tolerance[0] * N, tolerance[1] * N)
            grad_error = max(grad_error, close(g, w, tolerance))
        return value_error, grad_error


@pytest.mark.parametrize("mix", MIXES)
@pytest.mark.parametrize("x64", [False, True], ids=["x64-off", "x64-on"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_dtype_gives_the_promoted_dtype_and_right_values_and_gradients(name, dtype, x64, mix):
    value_error, grad_error = run_case(name, dtype, x64, mix)
    assert value_error <= 1, f"values off by {value_error:.3g} x the tolerance"
    assert grad_error <= 1, f"gradients off by {grad_error:.3g} x the tolerance"


def test_plain_half_precision_arrays_stay_in_their_dtype_and_are_accurate():
    """No mixing at all: float16 and bfloat16 arrays in, the same dtype out (the issue's own examples)."""
    lab = jnp.array([50, 20, -10], jnp.float16)
    xyz = lab_to_xyz(lab)
    assert xyz.dtype == jnp.float16 and np.all(np.isfinite(np.asarray(xyz, np.float64)))
    np.testing.assert_allclose(np.asarray(xyz, np.float64), cs_lab_to_xyz([50.0, 20.0, -10.0]), rtol=1e-3)
    rgb = lab_to_rgb(lab)
    assert rgb.dtype == jnp.float16 and np.all(np.isfinite(np.asarray(rgb, np.float64)))
    for dtype, rtol in (("float16", 1e-3), ("bfloat16", 8e-3)):
        lab1, lab2 = jnp.asarray(LAB1.astype(dtype)), jnp.asarray(LAB2.astype(dtype))
        d = ciede2000(lab1, lab2)
        assert d.dtype == dtype
        want = colour_science.delta_E(np.asarray(lab1, np.float64), np.asarray(lab2, np.float64), method="CIE 2000")
        np.testing.assert_allclose(np.asarray(d, np.float64), want, rtol=rtol)


def test_colordiff_converts_half_precision_rgb_in_float32():
    """Two float16 RGB colours: converted to Lab in float32, not rounded to float16 on the way."""
    a = RGB(*(jnp.asarray(c.astype("float16")) for c in RGB1.T))
    b = RGB(*(jnp.asarray(c.astype("float16")) for c in RGB2.T))
    d = colordiff(a, b)
    assert d.dtype == jnp.float16
    lab = lambda rgb: cs_xyz_to_lab(cs_rgb_to_xyz(stacked(rgb)))  # noqa: E731
    assert close(d, colour_science.delta_E(lab(a), lab(b), method="CIE 2000"), VALUE_TOLERANCE["float16"]) <= 1
    # A metric of the caller's returns what it gives colours of the inputs' dtype: its weights promote too.
    assert colordiff(a, b, metric=functools.partial(cmc, l=1.0, c=1.0)).dtype == jnp.float16
    assert colordiff(a, b, metric=functools.partial(cmc, l=np.float32(1.0), c=1.0)).dtype == jnp.float32


# --- other spaces, transfer functions, narrower floats ----------------------------------------------

SPACES = ["sRGB", "Display P3", "Adobe RGB (1998)", "ITU-R BT.709", "ITU-R BT.2020"]


@pytest.mark.parametrize("space", SPACES)
def test_half_precision_and_float32_under_x64_in_every_required_space(space):
    """colour-science's float64 matrices and curves never promote float32, and half precision is accurate."""
    cs = colour_science.RGB_COLOURSPACES[space]
    with jax.enable_x64(True):
        for dtype in ("float16", "bfloat16", "float32"):
            rgb = jnp.asarray(RGB1.astype(dtype))
            lab = rgb_to_lab(rgb, space)
            assert lab.dtype == dtype
            want = cs_xyz_to_lab(
                colour_science.RGB_to_XYZ(np.asarray(rgb, np.float64), cs, _D65, apply_cctf_decoding=True)
            )
            assert close(lab, want, VALUE_TOLERANCE[dtype]) <= 1
            back = lab_to_rgb(jnp.asarray(LAB1.astype(dtype)), space, illuminant="D50")
            assert back.dtype == dtype and np.all(np.isfinite(np.asarray(back, np.float64)))
            if space == "Adobe RGB (1998)":  # its pure gamma (the others' curves are in the matrix and below)
                g = jax.grad(lambda x: rgb_to_lab(x, space).sum())(rgb)
                assert g.dtype == dtype and np.all(np.isfinite(np.asarray(g, np.float64)))


TRANSFER = [
    ("srgb_decode", transfer.srgb_decode, colour_science.models.eotf_sRGB),
    ("srgb_encode", transfer.srgb_encode, colour_science.models.eotf_inverse_sRGB),
    ("bt709_decode", transfer.bt709_decode, colour_science.models.oetf_inverse_BT709),
    ("bt709_encode", transfer.bt709_encode, colour_science.models.oetf_BT709),
    ("bt2020_decode", transfer.bt2020_decode, colour_science.models.oetf_inverse_BT2020),
    ("bt2020_encode", transfer.bt2020_encode, colour_science.models.oetf_BT2020),
]


@pytest.mark.parametrize("x64", [False, True], ids=["x64-off", "x64-on"])
@pytest.mark.parametrize("name, ours, reference", TRANSFER, ids=[t[0] for t in TRANSFER])
def test_transfer_functions_keep_every_dtype(name, ours, reference, x64):
    with jax.enable_x64(x64):
        for dtype in DTYPES:
            x = jnp.asarray(RGB1.astype(dtype))
            y = ours(x)
            assert y.dtype == x.dtype
            assert close(y, reference(np.asarray(x, np.float64)), VALUE_TOLERANCE[np.dtype(y.dtype).name]) <= 1
            g = jax.grad(lambda v: ours(v).sum())(x)
            assert g.dtype == x.dtype and np.all(np.isfinite(np.asarray(g, np.float64)))


@pytest.mark.parametrize("dtype", [jnp.float8_e4m3fn, jnp.float8_e5m2], ids=["float8_e4m3fn", "float8_e5m2"])
def test_float8_is_computed_in_float32_and_rounded_once(dtype):
    """The narrowest floats get the float32 answer rounded to their few bits (3 or 2 of significand)."""
    rtol = {jnp.float8_e4m3fn: 2**-3, jnp.float8_e5m2: 2**-2}[dtype]
    lab1 = jnp.asarray(LAB1.astype(dtype))
    lab2 = Lab(50.0, jnp.asarray(LAB2[:, 1].astype(dtype)), jnp.asarray(LAB2[:, 2].astype(dtype)))
    d = ciede2000(lab1, lab2)
    assert d.dtype == dtype
    want = colour_science.delta_E(stacked(lab1), stacked(lab2), method="CIE 2000")
    np.testing.assert_allclose(np.asarray(d, np.float64), want, rtol=rtol)
    rgb = lab_to_rgb(lab1)
    assert rgb.dtype == dtype and np.all(np.isfinite(np.asarray(rgb, np.float64)))
    g = jax.grad(lambda x: ciede2000(x, lab2).astype(jnp.float32).sum())(lab1)
    assert g.dtype == dtype and np.all(np.isfinite(np.asarray(g, np.float64)))


# --- integers, unsupported types ---------------------------------------------------------------------


@pytest.mark.parametrize("x64", [False, True], ids=["x64-off", "x64-on"])
def test_integer_colours_are_floats_as_jnp_makes_them(x64):
    """[50, 0, 0] is computed like jnp.sin computes it: float32, or float64 for 64-bit integers (x64)."""
    with jax.enable_x64(x64):
        for lab in (jnp.array([50, 10, -10]), jnp.array([50, 10, -10], jnp.int32), jnp.array([50, 10, -10], jnp.int16)):
            want = jnp.sin(lab).dtype
            assert lab_to_rgb(lab).dtype == want
            assert ciede2000(lab, jnp.array([60.0, 0.0, 0.0], want)).dtype == want
            np.testing.assert_array_equal(lab_to_rgb(lab), lab_to_rgb(lab.astype(want)))
        assert lab_to_xyz(Lab(50, 0, 0)).x.dtype == jnp.sin(50).dtype  # Python integers: the default float
        assert rgb_to_lab(RGB(jnp.array([1, 0]), 0.5, 0.25)).l.dtype == (jnp.array([1, 0]) + 0.5).dtype
        assert rgb_to_lab(RGB(jnp.array([1, 0]), jnp.array([0.5, 0.5], jnp.float16), 0)).l.dtype == jnp.float16


_BAD = {
    "a complex array": jnp.array([50 + 1j, 0, 0]),
    "a string": "red",
    "an array of strings": np.array(["50", "0", "0"]),
    "None": None,
    "a list of objects": [object()] * 3,
}
_INTERNAL = (
    "_compiled",
    "_ciede2000",
    "_cie94",
    "_cmc",
    "_cie76",
    "_cone",
    "_saturating",
    "stage",
    "pjit",
    "jnp.array",
)


def _calls():
    good_lab, good_rgb = jnp.array([50.0, 10.0, 10.0]), jnp.array([0.5, 0.5, 0.5])
    for name, (f, kind, _, _) in CONVERSIONS.items():
        yield name, kind.__name__.lower(), (lambda f: lambda bad: f(bad))(f)
    yield "ciede2000", "lab2", lambda bad: ciede2000(good_lab, bad)
    yield "cie94", "reference", lambda bad: cie94(bad, good_lab)
    yield "cmc", "sample", lambda bad: cmc(good_lab, bad)
    yield "cie76", "lab1", lambda bad: cie76(bad, good_lab)
    yield "colordiff", "b", lambda bad: colordiff(good_rgb, bad, arrays="RGB")
    yield "colordiff", "a", lambda bad: colordiff(bad, RGB(0.5, 0.5, 0.5))


@pytest.mark.parametrize("what", list(_BAD))
def test_unsupported_colours_are_a_type_error_naming_the_argument(what):
    bad = _BAD[what]
    for caller, argument, call in _calls():
        with pytest.raises(TypeError) as error:
            call(bad)
        message = str(error.value)
        assert message.startswith(f"{caller}: {argument}"), message
        assert not any(name in message for name in _INTERNAL), message


def test_complex_struct_channels_are_a_type_error_naming_the_channel():
    for caller, argument, call in _calls():
        struct = {"rgb": RGB, "xyz": XYZ, "b": RGB}.get(argument, Lab)
        field = {RGB: "g", XYZ: "y", Lab: "a"}[struct]
        with pytest.raises(TypeError, match=rf"^{caller}: {argument}\.{field} must be real, got complex"):
            call(struct(0.5, 0.5j, 0.5))


def test_complex_weights_are_a_type_error_traced_or_not():
    lab = jnp.array([50.0, 10.0, 10.0])
    with pytest.raises(TypeError, match=r"^ciede2000: kL must be a real number"):
        ciede2000(lab, lab, kL=1j)
    with pytest.raises(TypeError, match=r"^cmc: c must be a real number.*traced"):
        jax.jit(lambda c: cmc(lab, lab, c=c))(jnp.complex64(1))
    with pytest.raises(TypeError, match=r"^srgb_decode: expected real values"):
        transfer.srgb_decode(jnp.array([0.5j]))


# --- nested differentiation ------------------------------------------------------------------------


def test_the_gradient_of_value_and_grad_sees_the_custom_rules_at_greys():
    """Nested differentiation goes through CIEDE2000's own rules: finite, and equal to the plain gradient."""
    a, b = jnp.array([50.0, 0.0, 0.0]), jnp.array([60.0, 0.0, 0.0])
    for dtype in ("float32", "float16", "bfloat16"):
        x, y = a.astype(dtype), b.astype(dtype)
        nested = jax.grad(lambda x: jax.value_and_grad(ciede2000)(x, y)[0])(x)
        plain = jax.grad(ciede2000)(x, y)
        assert nested.dtype == plain.dtype == dtype
        assert np.all(np.isfinite(np.asarray(nested, np.float64)))
        np.testing.assert_array_equal(np.asarray(nested, np.float64), np.asarray(plain, np.float64))

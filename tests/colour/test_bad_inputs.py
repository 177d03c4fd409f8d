"""A sweep of bad inputs over every public function and class of ``toolkit.colour``.

Each case is a call and what it must give: either a correct value, checked against an
independent oracle (colour-science in float64; a NumPy CIEDE2000 written from Sharma et
al. (2005) for the weights colour-science does not take), or an error *raised by toolkit*
whose message

* starts with the public name the user called (``ciede2000:``, ``rgb_to_lab:``,
  ``srgb_decode:``, ``colordiff:``, ``rgb_space:``; ``RGB.r:`` for a struct's field),
* names the argument, field or setting at fault (``lab2``, ``rgb.g``, ``kL``, ``space``),
* says how to fix it,

and mentions no toolkit-internal function (``_run``, ``_compiled``, ``_cone``, kernels,
...) and no JAX-internal jargon, and comes from a check toolkit made (the innermost
frame of the traceback is in toolkit, not in JAX, NumPy or colour-science).

What each kind of input gives:

* a colour is a struct (``RGB``, ``Lab``, ``XYZ``) or an array whose last axis has length 3;
  lists and tuples of numbers are arrays (values, as ``jnp.asarray`` reads them);
  ``None``, strings, bytes, dicts, sets, objects, classes, functions, PRNG keys, ragged
  lists and NumPy string or object arrays are a ``TypeError``, complex numbers too
  (``TypeError``, pass ``.real``); a struct of the wrong kind is a ``TypeError``;
* a trailing axis other than 3 (scalars and empty vectors included) is a ``ValueError``;
  an empty batch ``(0, 3)`` gives an empty result; batch shapes broadcast as NumPy's, and
  shapes that do not are a ``ValueError`` naming both colours (or the weight);
* NaN and inf pass through, as colour-science has them: nothing is clipped;
* every real dtype gives a value: float16 and bfloat16 stay themselves (computed in
  float32), float64 is float64 with x64 on (float32 without), integers and booleans are
  floats as ``jnp.sin`` makes them (float32, float64 for 64-bit integers);
* bad settings (unknown colourspace, illuminant, observer, reference white, metric,
  ``arrays=`` kind; ``linear``/``textiles`` not a bool; weights that are not numbers > 0,
  booleans included; a gamma exponent that is not one finite number > 0) are errors;
* the transfer functions take arrays of any shape, or structs.

Errors about types and shapes are raised under ``jax.jit`` too (checked on shapes and
dtypes, before anything is traced).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import colour as colour_science
import jax
import jax.numpy as jnp
import numpy as np
from colour.models import (
    eotf_inverse_sRGB,
    eotf_sRGB,
    oetf_BT709,
    oetf_BT2020,
    oetf_inverse_BT709,
    oetf_inverse_BT2020,
)
from colour.models.rgb.transfer_functions import gamma_function

from tests.sweep import INTERNALS, KEY, Gives, Plain, Raises, Sweep, fn, in_x64, satisfies
from toolkit import colour as C
from toolkit.colour import RGB, XYZ, Lab, transfer

# Words a message must never contain, besides the sweep's own: toolkit's private names and JAX internals.
FORBIDDEN = [
    *INTERNALS,  # _run, _compiled, _cone, _saturating, _pair, kernels, tk.adjoint rules, ...
    r"\bstage\b",
    r"jnp\.array\b",
    r"not subscriptable",
    r"Cannot determine dtype",
    r"not a valid (JAX|dtype)",
    r"Incompatible shapes",
    r"Too many indices",
    r"takes \d+ positional argument",
    r"unsupported operand",
    r"division by zero",
    r"static=True",  # a struct-definer's fix: the colour structs are toolkit's
]
TOLERANCE = {"float16": 2e-3, "bfloat16": 1e-2, "float32": 5e-5, "float64": 1e-9}
SWEEP = Sweep(forbidden=FORBIDDEN, tolerance=TOLERANCE)
case = SWEEP.case


# --- oracles --------------------------------------------------------------------------------------


def leaves(x: Any) -> list[Any]:
    return [getattr(x, f) for f in FIELDS[type(x)]] if type(x) in FIELDS else [x]


def close(expected: Any, dtype: Any = None, kind: type | None = None) -> Gives:
    """A value close to ``expected`` (NaN where it is NaN): an array, or a ``kind`` struct of ``expected[..., i]``.

    The tolerance fits the result's dtype, relative to the largest finite value expected.
    """
    want = np.asarray(expected, np.float64)

    def check(got: Any) -> None:
        if kind is not None:
            assert type(got) is kind, f"expected a {kind.__name__} struct, got {type(got).__name__}"
            parts, wants = leaves(got), [want[..., i] for i in range(3)]
        else:
            assert isinstance(got, jax.Array), f"expected an array, got {type(got).__name__}"
            parts, wants = [got], [want]
        for part, w in zip(parts, wants, strict=True):
            if dtype is not None:
                assert np.dtype(part.dtype) == np.dtype(dtype), f"dtype {part.dtype}, expected {np.dtype(dtype)}"
            else:
                assert isinstance(part, (jax.Array, float)), f"expected an array or a float, got {part!r}"
            assert np.shape(part) == w.shape, f"shape {np.shape(part)}, expected {w.shape}"
            finite = np.abs(w[np.isfinite(w)])
            scale = max(1.0, float(finite.max())) if finite.size else 1.0
            values = np.asarray(part).astype(np.float64)  # bfloat16 too (ml_dtypes)
            SWEEP.assert_close(values, w, np.asarray(part).dtype.name, scale)

    return Gives(check)


def mirrored(cctf: Any) -> Any:
    """colour-science's pure gamma with the "Mirror" negative handling toolkit follows (its default is NaN)."""
    if isinstance(cctf, functools.partial) and cctf.func is gamma_function:
        return functools.partial(gamma_function, exponent=cctf.keywords["exponent"], negative_number_handling="Mirror")
    return cctf


@functools.cache
def cs_space(space: str = "sRGB") -> Any:
    """colour-science's colourspace (its published XYZ-to-RGB matrix, toolkit's default), with mirrored gammas."""
    cs = colour_science.RGB_COLOURSPACES[space].copy()
    cs.cctf_decoding, cs.cctf_encoding = mirrored(cs.cctf_decoding), mirrored(cs.cctf_encoding)
    return cs


D65 = colour_science.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]


def cs_rgb_to_xyz(v, space="sRGB", linear=False, xy=D65):
    return colour_science.RGB_to_XYZ(v, cs_space(space), illuminant=xy, apply_cctf_decoding=not linear)


def cs_xyz_to_rgb(v, space="sRGB", linear=False, xy=D65):
    return colour_science.XYZ_to_RGB(v, cs_space(space), illuminant=xy, apply_cctf_encoding=not linear)


def np_ciede2000(lab1, lab2, kL=1.0, kC=1.0, kH=1.0):
    """CIEDE2000 in NumPy float64, from Sharma, Wu & Dalal (2005), with the parametric weights."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, np.float64), -1, 0)
    mean_c = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(mean_c**7 / (mean_c**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1, c2 = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    grey = c1 * c2 == 0
    dh = h2 - h1
    dh = np.where(grey, 0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    dH = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))
    total = h1 + h2
    hm = np.where(np.abs(h1 - h2) <= 180, total / 2, np.where(total < 360, (total + 360) / 2, (total - 360) / 2))
    hm = np.where(grey, total, hm)
    t = (
        1
        - 0.17 * np.cos(np.radians(hm - 30))
        + 0.24 * np.cos(np.radians(2 * hm))
        + 0.32 * np.cos(np.radians(3 * hm + 6))
        - 0.20 * np.cos(np.radians(4 * hm - 63))
    )
    lm, cm = (L1 + L2) / 2, (c1 + c2) / 2
    s_l = 1 + 0.015 * (lm - 50) ** 2 / np.sqrt(20 + (lm - 50) ** 2)
    s_c, s_h = 1 + 0.045 * cm, 1 + 0.015 * cm * t
    r_t = -np.sin(np.radians(60 * np.exp(-(((hm - 275) / 25) ** 2)))) * 2 * np.sqrt(cm**7 / (cm**7 + 25.0**7))
    l, c, h = (L2 - L1) / (kL * s_l), (c2 - c1) / (kC * s_c), dH / (kH * s_h)  # noqa: E741
    return np.sqrt(l * l + c * c + h * h + r_t * c * h)


def delta_e(method: str, **settings: Any) -> Callable[[Any, Any], np.ndarray]:
    return lambda a, b: colour_science.delta_E(np.asarray(a, np.float64), np.asarray(b, np.float64), method, **settings)


# --- the inputs -----------------------------------------------------------------------------------

FIELDS = {RGB: ("r", "g", "b"), Lab: ("l", "a", "b"), XYZ: ("x", "y", "z")}
VALUES = {  # float values, and small non-negative integers for the integer dtypes
    RGB: (np.array([[0.8, 0.3, 0.1], [0.2, 0.5, 0.9]]), np.array([[1, 0, 0], [0, 1, 1]])),
    XYZ: (np.array([[0.4, 0.35, 0.1], [0.2, 0.25, 0.8]]), np.array([[1, 1, 0], [0, 1, 1]])),
    Lab: (np.array([[50.0, 10.0, -20.0], [70.0, -30.0, 15.0]]), np.array([[50, 10, 20], [70, 30, 15]])),
}
OTHER_LAB = (np.array([[55.0, 5.0, -15.0], [60.0, -20.0, 30.0]]), np.array([[55, 5, 15], [60, 20, 30]]))

# Conversions: name -> (function, argument, its kind, the kind returned, colour-science)
CONVERSIONS = {
    "rgb_to_xyz": (C.rgb_to_xyz, "rgb", RGB, XYZ, cs_rgb_to_xyz),
    "xyz_to_rgb": (C.xyz_to_rgb, "xyz", XYZ, RGB, cs_xyz_to_rgb),
    "xyz_to_lab": (C.xyz_to_lab, "xyz", XYZ, Lab, lambda v: colour_science.XYZ_to_Lab(v, D65)),
    "lab_to_xyz": (C.lab_to_xyz, "lab", Lab, XYZ, lambda v: colour_science.Lab_to_XYZ(v, D65)),
    "rgb_to_lab": (C.rgb_to_lab, "rgb", RGB, Lab, lambda v: colour_science.XYZ_to_Lab(cs_rgb_to_xyz(v), D65)),
    "lab_to_rgb": (C.lab_to_rgb, "lab", Lab, RGB, lambda v: cs_xyz_to_rgb(colour_science.Lab_to_XYZ(v, D65))),
}
# Differences: name -> (function, argument names, colour-science or NumPy)
DIFFERENCES = {
    "ciede2000": (C.ciede2000, ("lab1", "lab2"), delta_e("CIE 2000")),
    "cie94": (C.cie94, ("reference", "sample"), delta_e("CIE 1994")),
    "cmc": (C.cmc, ("reference", "sample"), delta_e("CMC")),
    "cie76": (C.cie76, ("lab1", "lab2"), delta_e("CIE 1976")),
    "hyab": (C.hyab, ("lab1", "lab2"), delta_e("HyAB")),
    "hych": (C.hych, ("lab1", "lab2"), delta_e("HyCH")),
    "din99": (C.din99, ("lab1", "lab2"), delta_e("DIN99")),
    "itp": (C.itp, ("ictcp1", "ictcp2"), delta_e("ITP")),
    **{
        name: (getattr(C, name), ("jab1", "jab2"), delta_e(name.upper().replace("_", "-")))
        for name in ("cam02_ucs", "cam16_ucs")  # the four other spaces' metrics share their code: see below
    },
}
# Transfer functions: name -> (function, argument, colour-science)
TRANSFERS = {
    "srgb_decode": (transfer.srgb_decode, "code", eotf_sRGB),
    "srgb_encode": (transfer.srgb_encode, "linear", eotf_inverse_sRGB),
    "bt709_decode": (transfer.bt709_decode, "code", oetf_inverse_BT709),
    "bt709_encode": (transfer.bt709_encode, "linear", oetf_BT709),
    "bt2020_decode": (transfer.bt2020_decode, "code", oetf_inverse_BT2020),
    "bt2020_encode": (transfer.bt2020_encode, "linear", oetf_BT2020),
    "gamma_decode": (
        lambda v: transfer.gamma_decode(v, 2.2),
        "code",
        lambda v: gamma_function(v, 2.2, "Mirror"),
    ),
    "gamma_encode": (
        lambda v: transfer.gamma_encode(v, 2.2),
        "linear",
        lambda v: gamma_function(v, 1 / 2.2, "Mirror"),
    ),
}
SIGNAL = np.array([[0.5, -0.1, 1.2], [0.0, 0.02, 0.9]])  # negatives and values above 1 are carried through


# What is not a colour: value -> (error, a regex for the fix)
NOT_COLOURS = {
    "none": (None, TypeError, r"must be"),
    "str": ("red", TypeError, r"must be"),
    "bytes": (b"abc", TypeError, r"must be"),
    "dict": ({"r": 1.0, "g": 0.0, "b": 0.0}, TypeError, r"must be"),
    "set": ({0.1, 0.2, 0.3}, TypeError, r"must be"),
    "object": (Plain(), TypeError, r"must be"),
    "class": (Plain, TypeError, r"must be"),
    "function": (fn, TypeError, r"must be"),
    "prng-key": (jax.random.split(KEY, 3), TypeError, r"jax\.random\.uniform"),
    "str-array": (np.array(["0.5", "0.5", "0.5"]), TypeError, r"must be"),
    "object-array": (np.array([0.5, "a", 0.5], dtype=object), TypeError, r"must be"),
    "ragged-list": ([[0.1, 0.2, 0.3], [0.1]], TypeError, r"must be"),
    "list-with-str": ([0.5, "a", 0.5], TypeError, r"must be"),
    "complex": (jnp.full(3, 0.5 + 0.5j), TypeError, r"\.real"),
    "complex-list": ([0.5j, 0.5, 0.5], TypeError, r"\.real"),
}
# Arrays whose trailing axis is not 3
BAD_SHAPES = {
    "scalar": 0.5,
    "python-int": 1,
    "vector-4": jnp.full(4, 0.5),
    "vector-2": jnp.full(2, 0.5),
    "empty-vector": jnp.zeros(0),
    "trailing-2": jnp.full((5, 2), 0.5),
    "trailing-1": jnp.full((3, 1), 0.5),
    "transposed": jnp.full((3, 5), 0.5),
    "empty-trailing-0": jnp.zeros((3, 0)),
}
# dtype name -> (make an array from values, run in x64, use the integer values, the NumPy dtype that holds them)
DTYPES = {
    "float16": (lambda v: jnp.asarray(v, jnp.float16), False, False, jnp.float16),
    "bfloat16": (lambda v: jnp.asarray(v, jnp.bfloat16), False, False, jnp.bfloat16),
    "float32": (lambda v: jnp.asarray(v, jnp.float32), False, False, np.float32),
    "float64-numpy-x32": (lambda v: np.asarray(v, np.float64), False, False, np.float32),
    "float64-x64": (lambda v: jnp.asarray(v, jnp.float64), True, False, np.float64),
    "float64-numpy-x64": (lambda v: np.asarray(v, np.float64), True, False, np.float64),
    "int8": (lambda v: jnp.asarray(v, jnp.int8), False, True, np.int8),
    "int32": (lambda v: jnp.asarray(v, jnp.int32), False, True, np.int32),
    "uint8": (lambda v: jnp.asarray(v, jnp.uint8), False, True, np.uint8),
    "int64-x64": (lambda v: jnp.asarray(v, jnp.int64), True, True, np.int64),
    "bool": (lambda v: jnp.asarray(v, bool), False, True, np.bool_),
}
COMPLEX_DTYPES = {
    "complex64": (lambda v: jnp.asarray(v, jnp.complex64), False),
    "complex128-x64": (lambda v: jnp.asarray(v, jnp.complex128), True),
}


def result_dtype(dname: str) -> Any:
    """The dtype a colour function returns for ``dname``'s colours: jnp.sin's (the module's documented rule)."""
    return {"float16": jnp.float16, "bfloat16": jnp.bfloat16}.get(dname, np.float64 if DTYPES[dname][1] else np.float32)


def held(dname: str, kind: type, values: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The colour values for ``dname`` as that dtype holds them, in float64 (the oracle's input)."""
    _, _, integer, dtype = DTYPES[dname]
    floats, ints = values if values is not None else VALUES[kind]
    return (ints if integer else floats).astype(dtype).astype(np.float64)


def colour_of(dname: str, kind: type, values: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    make, _, integer, _ = DTYPES[dname]
    floats, ints = values if values is not None else VALUES[kind]
    return make(ints if integer else floats)


def dtype_case(name: str, dname: str, call: Callable[[], Any], expected: Raises | Gives) -> None:
    case(name, in_x64(call) if DTYPES[dname][1] else call, expected)


GOOD = {kind: jnp.asarray(floats, jnp.float32) for kind, (floats, _) in VALUES.items()}
GOOD_OTHER = jnp.asarray(OTHER_LAB[0], jnp.float32)


def struct_of(kind: type, array: Any) -> Any:
    return kind(*(jnp.asarray(array)[..., i] for i in range(3)))


# --- conversions ------------------------------------------------------------------------------------

M_SRGB = cs_space().matrix_RGB_to_XYZ


def np_rgb_to_xyz(v):
    return np.einsum("ij,...j->...i", M_SRGB, eotf_sRGB(v))


SPECIAL_ORACLE = {  # the plain formula, for ±inf (NumPy's matrix product has no 0 * inf)
    "rgb_to_xyz": np_rgb_to_xyz,
    "xyz_to_rgb": lambda v: eotf_inverse_sRGB(np.einsum("ij,...j->...i", cs_space().matrix_XYZ_to_RGB, v)),
    "rgb_to_lab": lambda v: colour_science.XYZ_to_Lab(np_rgb_to_xyz(v), D65),
}

for cname, (f, arg, kind, out, oracle) in CONVERSIONS.items():
    caller = cname
    fields = FIELDS[kind]
    other_kind = Lab if kind is not Lab else RGB
    for dname in DTYPES:
        expected = oracle(held(dname, kind))
        dtype_case(
            f"{cname}-{dname}",
            dname,
            lambda f=f, d=dname, k=kind: f(colour_of(d, k)),
            close(expected, result_dtype(dname)),
        )
    for dname, (make, x64) in COMPLEX_DTYPES.items():
        call = lambda f=f, make=make, k=kind: f(make(VALUES[k][0] * (1 + 1j)))
        case(
            f"{cname}-{dname}",
            in_x64(call) if x64 else call,
            Raises(TypeError, caller, rf"\b{arg} must be real", r"\.real"),
        )
    for bname, (value, error, fix) in NOT_COLOURS.items():
        case(
            f"{cname}-{bname}",
            lambda f=f, value=value: f(value),
            Raises(error, caller, rf"\b{arg} must be", fix),
        )
    for sname, value in BAD_SHAPES.items():
        case(
            f"{cname}-shape-{sname}",
            lambda f=f, value=value: f(value),
            Raises(ValueError, caller, rf"\b{arg} must be .* last axis has length 3", r"jnp\.stack|build"),
        )
    floats = VALUES[kind][0]
    # lists and tuples are arrays; any batch shape, empty ones included
    case(f"{cname}-list", lambda f=f, v=floats: f(v.tolist()), close(oracle(floats), "float32"))
    case(f"{cname}-tuple", lambda f=f, v=floats: f(tuple(v[0])), close(oracle(floats[0]), "float32"))
    case(f"{cname}-python-ints", lambda f=f: f([1, 0, 1]), close(oracle(np.array([1.0, 0.0, 1.0])), "float32"))
    case(f"{cname}-empty-batch", lambda f=f: f(jnp.zeros((0, 3))), close(np.zeros((0, 3)), "float32"))
    case(f"{cname}-empty-batch-2d", lambda f=f: f(jnp.zeros((2, 0, 3))), close(np.zeros((2, 0, 3)), "float32"))
    stacked = np.stack([floats, floats[::-1]])  # (2, 2, 3)
    case(f"{cname}-batch-2d", lambda f=f, v=stacked: f(jnp.asarray(v)), close(oracle(stacked), "float32"))
    # structs
    case(
        f"{cname}-struct",
        lambda f=f, k=kind, v=floats: f(struct_of(k, v)),
        close(oracle(floats), "float32", kind=out),
    )
    case(
        f"{cname}-struct-python-floats",
        lambda f=f, k=kind, v=floats: f(k(*v[0].tolist())),
        close(oracle(floats[0]), "float32", kind=out),
    )
    case(
        f"{cname}-struct-broadcast-fields",
        lambda f=f, k=kind, v=floats: f(k(jnp.asarray(v[:, 0]), float(v[0, 1]), float(v[0, 2]))),
        close(oracle(np.stack([floats[:, 0], np.full(2, floats[0, 1]), np.full(2, floats[0, 2])], -1)), kind=out),
    )
    case(
        f"{cname}-struct-list-field",
        lambda f=f, k=kind, v=floats: f(k(v[:, 0].tolist(), jnp.asarray(v[:, 1]), jnp.asarray(v[:, 2]))),
        close(oracle(floats), "float32", kind=out),
    )
    case(
        f"{cname}-struct-mixed-dtypes",
        lambda f=f, k=kind, v=floats: f(k(jnp.asarray(v[:, 0], jnp.float16), jnp.asarray(v[:, 1]), 0.5)),
        satisfies(
            lambda r, out=out: type(r) is out and all(x.dtype == jnp.float32 for x in leaves(r)), "float32 fields"
        ),
    )
    case(
        f"{cname}-struct-wrong-kind",
        lambda f=f, k=other_kind: f(k(0.5, 0.5, 0.5)),
        Raises(TypeError, caller, rf"\b{arg} is an? {other_kind.__name__} struct, expected {kind.__name__}", r"array"),
    )
    case(
        f"{cname}-struct-fields-do-not-broadcast",
        lambda f=f, k=kind: f(k(jnp.ones(2), jnp.ones(3), 0.5)),
        Raises(ValueError, caller, rf"the fields of {arg} do not broadcast", r"equal shapes"),
    )
    for bname, value in {
        "none": None,
        "object": Plain(),
        "prng-key": KEY,
        "complex": jnp.array(0.5j),
        "dict": {"v": 1.0},
    }.items():
        case(
            f"{cname}-struct-field-{bname}",
            lambda f=f, k=kind, value=value: f(k(0.5, value, 0.5)),
            Raises(TypeError, caller, rf"\b{arg}\.{fields[1]}\b", r"must be|\.real|jax\.random"),
        )
    # NaN and inf pass through. colour-science turns every ±inf RGB or XYZ into NaN (its chromatic adaptation,
    # the identity here, multiplies inf by 0); toolkit gives IEEE's ±inf, checked against the formula in NumPy.
    special = np.array([[np.nan, 0.2, 0.1], [np.inf, 0.2, 0.1], [-np.inf, 0.2, 0.1], [0.5, np.nan, np.inf]])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = SPECIAL_ORACLE.get(cname, oracle)(special)
    case(f"{cname}-nan-inf", lambda f=f, v=special: f(jnp.asarray(v)), close(expected, "float32"))
    # under jit: types and shapes are checked at trace time
    case(
        f"{cname}-jit-trailing-axis",
        lambda f=f: jax.jit(f)(jnp.ones(4)),
        Raises(ValueError, caller, rf"\b{arg} must be .* last axis has length 3", r"jnp\.stack"),
    )
    case(
        f"{cname}-jit-complex",
        lambda f=f: jax.jit(f)(jnp.ones(3, jnp.complex64)),
        Raises(TypeError, caller, rf"\b{arg} must be real", r"\.real"),
    )
    case(
        f"{cname}-jit-prng-key",
        lambda f=f: jax.jit(f)(jax.random.split(KEY, 3)),
        Raises(TypeError, caller, rf"\b{arg} must be", r"jax\.random\.uniform"),
    )
    case(
        f"{cname}-jit-struct-wrong-kind",
        lambda f=f, k=other_kind: jax.jit(f)(k(jnp.ones(2), jnp.ones(2), jnp.ones(2))),
        Raises(TypeError, caller, rf"\b{arg} is an? {other_kind.__name__} struct", r"array"),
    )
    if cname != "rgb_to_lab":  # transformations compose (one conversion and one difference: they are slow to compile)
        continue
    case(
        f"{cname}-jit-vmap-grad",
        lambda f=f, k=kind: jax.jit(jax.vmap(jax.grad(lambda c: jnp.sum(f(c)))))(GOOD[k]),
        satisfies(lambda g: g.shape == (2, 3) and bool(jnp.all(jnp.isfinite(g))), "finite (2, 3) gradients"),
    )

# --- conversion settings ------------------------------------------------------------------------------

RGB_ARG, LAB_ARG, XYZ_ARG = GOOD[RGB], GOOD[Lab], GOOD[XYZ]
SPACE_CONVERSIONS = {  # name -> (call with settings, the settings it takes)
    "rgb_to_xyz": (lambda **s: C.rgb_to_xyz(RGB_ARG, **s), ("space", "linear", "illuminant", "observer")),
    "xyz_to_rgb": (lambda **s: C.xyz_to_rgb(XYZ_ARG, **s), ("space", "linear", "illuminant", "observer")),
    "rgb_to_lab": (lambda **s: C.rgb_to_lab(RGB_ARG, **s), ("space", "linear", "illuminant", "observer", "white")),
    "lab_to_rgb": (lambda **s: C.lab_to_rgb(LAB_ARG, **s), ("space", "linear", "illuminant", "observer", "white")),
    "xyz_to_lab": (lambda **s: C.xyz_to_lab(XYZ_ARG, **s), ("illuminant", "observer")),
    "lab_to_xyz": (lambda **s: C.lab_to_xyz(LAB_ARG, **s), ("illuminant", "observer")),
}
BAD_SETTINGS = {  # name -> (settings, the setting it needs, error, names, fix)
    "space-typo": ({"space": "sRBG"}, "space", ValueError, r"space='sRBG' is not a known", r"Did you mean 'sRGB'"),
    "space-none": ({"space": None}, "space", ValueError, r"space=None is not a known", r"Valid names: .*sRGB"),
    "space-int": ({"space": 3}, "space", ValueError, r"space=3", r"Valid names"),
    "space-list": ({"space": ["sRGB"]}, "space", ValueError, r"space=\['sRGB'\]", r"Valid names"),
    "space-no-jax-curve": ({"space": "ProPhoto RGB"}, "space", ValueError, r"space='ProPhoto RGB'", r"linear=True"),
    "linear-str": ({"linear": "yes"}, "linear", TypeError, r"\blinear\b", r"True or False"),
    "linear-none": ({"linear": None}, "linear", TypeError, r"\blinear\b", r"True or False"),
    "linear-int": ({"linear": 1}, "linear", TypeError, r"\blinear\b", r"True or False"),
    "linear-array": ({"linear": jnp.array(True)}, "linear", TypeError, r"\blinear\b", r"True or False"),
    "illuminant-typo": ({"illuminant": "D66"}, "illuminant", ValueError, r"illuminant='D66'", r"Did you mean 'D65'"),
    "illuminant-none": ({"illuminant": None}, "illuminant", ValueError, r"illuminant=None", r"such as 'D65'"),
    "illuminant-y-zero": ({"illuminant": (0.3, 0.0)}, "illuminant", ValueError, r"illuminant=\(0.3, 0.0\)", r"0 < y"),
    "illuminant-3": ({"illuminant": [0.3, 0.3, 0.3]}, "illuminant", ValueError, r"illuminant=\[", r"\(x, y\)"),
    "illuminant-nan": ({"illuminant": (np.nan, 0.3)}, "illuminant", ValueError, r"illuminant=\(nan", r"\(x, y\)"),
    "illuminant-dict": ({"illuminant": {"x": 0.3}}, "illuminant", ValueError, r"illuminant=\{", r"such as 'D65'"),
    "observer-typo": ({"observer": "2 degree"}, "observer", ValueError, r"observer='2 degree'", r"CIE 1931 2 Degree"),
    "observer-none": ({"observer": None}, "observer", ValueError, r"observer=None", r"Valid names"),
    "observer-with-xy": (
        {"observer": 2, "illuminant": (0.31, 0.33)},
        "observer",
        ValueError,
        r"observer=2",
        r"Valid names",
    ),
    "white-typo": ({"reference_white": "display"}, "white", ValueError, r"reference_white='display'", r"'space'"),
    "white-none": ({"reference_white": None}, "white", ValueError, r"reference_white=None", r"'illuminant'"),
    "white-list": ({"reference_white": ["space"]}, "white", ValueError, r"reference_white=\[", r"'illuminant'"),
}
for cname, (call, takes) in SPACE_CONVERSIONS.items():
    for sname, (settings, needs, error, names, fix) in BAD_SETTINGS.items():
        if needs in takes:
            case(f"{cname}-{sname}", lambda c=call, s=settings: c(**s), Raises(error, cname, names, fix))
    if "space" in takes:
        case(
            f"{cname}-space-positional-typo",
            lambda c=cname: getattr(C, c)(GOOD[RGB], "Display-P3"),
            Raises(ValueError, cname, r"space='Display-P3'", r"Did you mean 'Display P3'"),
        )

# Settings that are fine, against colour-science.
case(
    "rgb_to_xyz-prophoto-linear",
    lambda: C.rgb_to_xyz(RGB_ARG, "ProPhoto RGB", linear=True),
    close(cs_rgb_to_xyz(VALUES[RGB][0], "ProPhoto RGB", linear=True), "float32"),
)
case(
    "rgb_to_xyz-display-p3",
    lambda: C.rgb_to_xyz(RGB_ARG, "Display P3"),
    close(cs_rgb_to_xyz(VALUES[RGB][0], "Display P3"), "float32"),
)
case(
    "rgb_to_xyz-linear-numpy-bool",
    lambda: C.rgb_to_xyz(RGB_ARG, linear=np.True_),
    close(cs_rgb_to_xyz(VALUES[RGB][0], linear=True), "float32"),
)
for iname, xy in {"tuple": (0.31, 0.32), "list": [0.31, 0.32], "array": jnp.array([0.31, 0.32])}.items():
    case(
        f"xyz_to_lab-illuminant-xy-{iname}",
        lambda xy=xy: C.xyz_to_lab(XYZ_ARG, illuminant=xy),
        close(colour_science.XYZ_to_Lab(VALUES[XYZ][0], np.array([0.31, 0.32])), "float32"),
    )
case(
    "xyz_to_lab-d50-ten-degree",
    lambda: C.xyz_to_lab(XYZ_ARG, illuminant="D50", observer="CIE 1964 10 Degree Standard Observer"),
    close(
        colour_science.XYZ_to_Lab(
            VALUES[XYZ][0], colour_science.CCS_ILLUMINANTS["CIE 1964 10 Degree Standard Observer"]["D50"]
        ),
        "float32",
    ),
)
case(
    "rgb_to_lab-reference-white-space-grey",
    lambda: C.rgb_to_lab(jnp.full(3, 0.5), reference_white="space")[1:],
    close(np.zeros(2), "float32"),
)

# The conversions behind the metrics: values against colour-science, and bad settings.
CS_XYZ = VALUES[XYZ][0]
case(
    "lab_to_din99-values",
    lambda: C.lab_to_din99(LAB_ARG),
    close(colour_science.Lab_to_DIN99(VALUES[Lab][0]), "float32"),
)
case(
    "lab_to_din99-struct-textiles",
    lambda: C.lab_to_din99(Lab(*GOOD[Lab].T), 2, 0.5, "DIN99b"),
    close(colour_science.Lab_to_DIN99(VALUES[Lab][0], 2, 0.5, "DIN99b"), "float32", Lab),
)
case(
    "lab_to_din99-method",
    lambda: C.lab_to_din99(LAB_ARG, method="DIN98"),
    Raises(ValueError, "lab_to_din99", r"\bmethod\b", r"'DIN99'"),
)
case(
    "lab_to_din99-k_E-zero",
    lambda: C.lab_to_din99(LAB_ARG, k_E=0),
    Raises(ValueError, "lab_to_din99", r"\bk_E\b", r"> 0"),
)
case(
    "lab_to_din99-k_CH-array",
    lambda: C.lab_to_din99(LAB_ARG, k_CH=jnp.ones(2)),
    Raises(TypeError, "lab_to_din99", r"\bk_CH\b", r"a number"),
)
case(
    "lab_to_din99-lab-none", lambda: C.lab_to_din99(None), Raises(TypeError, "lab_to_din99", r"\blab must be", r"array")
)
case(
    "pq_encode-values",
    lambda: C.pq_encode(jnp.asarray(SIGNAL * 1000)),
    close(colour_science.models.eotf_inverse_ST2084(SIGNAL * 1000), "float32"),
)
case("pq_encode-peak", lambda: C.pq_encode(SIGNAL, L_p=-1.0), Raises(ValueError, "pq_encode", r"\bL_p\b", r"10000"))
case("pq_encode-string", lambda: C.pq_encode("bright"), Raises(TypeError, "pq_encode", r"\blinear\b", r"array"))
case(
    "rgb_to_ictcp-values",
    lambda: C.rgb_to_ictcp(RGB_ARG * 100),
    close(colour_science.RGB_to_ICtCp(VALUES[RGB][0] * 100), "float32"),
)
case(
    "rgb_to_ictcp-peak",
    lambda: C.rgb_to_ictcp(RGB_ARG, L_p="max"),
    Raises(TypeError, "rgb_to_ictcp", r"\bL_p\b", r"cd/m"),
)
case(
    "rgb_to_ictcp-shape",
    lambda: C.rgb_to_ictcp(jnp.ones(4)),
    Raises(ValueError, "rgb_to_ictcp", r"\brgb must be", r"jnp\.stack"),
)
case(
    "xyz_to_ictcp-values",
    lambda: C.xyz_to_ictcp(XYZ_ARG * 100),
    close(colour_science.XYZ_to_ICtCp(CS_XYZ * 100), "float32"),
)
case(
    "xyz_to_ictcp-illuminant", lambda: C.xyz_to_ictcp(XYZ_ARG, "D66"), Raises(ValueError, "xyz_to_rgb", r"D66", r"D65")
)
for model, cs_model in (
    ("xyz_to_ciecam02", colour_science.XYZ_to_CIECAM02),
    ("xyz_to_cam16", colour_science.XYZ_to_CAM16),
):
    f = getattr(C, model)
    white = np.array([95.05, 100.0, 108.88])
    case(
        f"{model}-values",
        lambda f=f: jnp.stack([f(XYZ_ARG * 100, white, 318.31, 20.0).J, f(XYZ_ARG * 100, white, 318.31, 20.0).h]),
        close(
            np.stack([cs_model(CS_XYZ * 100, white, 318.31, 20).J, cs_model(CS_XYZ * 100, white, 318.31, 20).h]),
            "float32",
        ),
    )
    case(
        f"{model}-surround-name",
        lambda f=f: f(XYZ_ARG, surround="Dimm"),
        Raises(ValueError, model, r"surround 'Dimm'", r"'Average'"),
    )
    case(
        f"{model}-surround-type",
        lambda f=f: f(XYZ_ARG, surround=3),
        Raises(TypeError, model, r"\bsurround must be", r"Surround\("),
    )
    case(f"{model}-L_A-string", lambda f=f: f(XYZ_ARG, L_A="bright"), Raises(TypeError, model, r"\bL_A\b", r"numbers"))
    case(
        f"{model}-discount",
        lambda f=f: f(XYZ_ARG, discount_illuminant=1),
        Raises(TypeError, model, r"\bdiscount_illuminant\b", r"True or False"),
    )
    case(
        f"{model}-shapes",
        lambda f=f: f(jnp.ones((4, 3)), L_A=jnp.ones(5)),
        Raises(ValueError, model, r"xyz \(4,\).*L_A \(5,\)", r"size-1 axes"),
    )
    case(f"{model}-xyz-none", lambda f=f: f(None), Raises(TypeError, model, r"\bxyz must be", r"array"))
case("Surround-fields", lambda: C.Surround(0.9, 0.59, 0.9).c, satisfies(lambda c: c == 0.59, "the field c"))
case(
    "SURROUNDS-names",
    lambda: sorted(C.SURROUNDS),
    satisfies(lambda s: s == ["Average", "Dark", "Dim"], "three surrounds"),
)
case(
    "Appearance-fields", lambda: C.Appearance._fields, satisfies(lambda f: f == tuple("JChsQMH"), "J, C, h, s, Q, M, H")
)
case(
    "xyz_to_ucs-values",
    lambda: C.xyz_to_ucs(XYZ_ARG, "CAM16-SCD"),
    close(colour_science.XYZ_to_CAM16SCD(CS_XYZ), "float32"),
)
case(
    "xyz_to_ucs-space",
    lambda: C.xyz_to_ucs(XYZ_ARG, "CAM03-UCS"),
    Raises(ValueError, "xyz_to_ucs", r"\bspace must be", r"'CAM02-UCS'"),
)
case(
    "xyz_to_ucs-xyz_w",
    lambda: C.xyz_to_ucs(XYZ_ARG, xyz_w=jnp.ones(2)),
    Raises(ValueError, "xyz_to_ucs", r"\bxyz_w must be", r"jnp\.stack"),
)
case(
    "jmh_to_ucs-values",
    lambda: C.jmh_to_ucs(jnp.array([41.7, 60.0]), jnp.array([0.1, 20.0]), jnp.array([219.0, 10.0]), "CAM02-LCD"),
    close(
        colour_science.models.JMh_CIECAM02_to_CAM02LCD(np.array([[41.7, 0.1, 219.0], [60.0, 20.0, 10.0]])), "float32"
    ),
)
case(
    "jmh_to_ucs-space",
    lambda: C.jmh_to_ucs(50.0, 10.0, 5.0, "UCS2"),
    Raises(ValueError, "jmh_to_ucs", r"\bspace must be", r"'CAM16-UCS'"),
)
case("METRIC_INPUTS", lambda: C.METRIC_INPUTS["ITP"], satisfies(lambda s: s == "ICtCp", "ICtCp for ITP"))
case(
    "mean_difference-values",  # (swept here so that every public name is; tests/colour/test_images.py tests it)
    lambda: C.mean_difference(RGB_ARG[None], RGB_ARG[None, ::-1]),
    close(
        np.mean(
            delta_e("CIE 2000")(
                colour_science.XYZ_to_Lab(cs_rgb_to_xyz(VALUES[RGB][0]), D65),
                colour_science.XYZ_to_Lab(cs_rgb_to_xyz(VALUES[RGB][0][::-1]), D65),
            )
        ),
        "float32",
    ),
)


for name in ("cam02_lcd", "cam02_scd", "cam16_lcd", "cam16_scd"):
    case(
        f"{name}-values",
        lambda name=name: getattr(C, name)(LAB_ARG, GOOD_OTHER),
        close(delta_e(name.upper().replace("_", "-"))(VALUES[Lab][0], OTHER_LAB[0]), "float32"),
    )
    case(
        f"{name}-shape",
        lambda name=name: getattr(C, name)(jnp.ones(4), GOOD_OTHER),
        Raises(ValueError, name, r"\bjab1 must be", r"jnp\.stack"),
    )


# --- colour differences ---------------------------------------------------------------------------

for dname_f, (f, (first, second), oracle) in DIFFERENCES.items():
    caller = dname_f
    for dname in DTYPES:
        expected = oracle(held(dname, Lab), held(dname, Lab, OTHER_LAB))
        dtype_case(
            f"{dname_f}-{dname}",
            dname,
            lambda f=f, d=dname: f(colour_of(d, Lab), colour_of(d, Lab, OTHER_LAB)),
            close(expected, result_dtype(dname)),
        )
    for dname, (make, x64) in COMPLEX_DTYPES.items():
        call = lambda f=f, make=make: f(make(VALUES[Lab][0] * (1 + 1j)), GOOD_OTHER)
        case(
            f"{dname_f}-{dname}",
            in_x64(call) if x64 else call,
            Raises(TypeError, caller, rf"\b{first} must be real", r"\.real"),
        )
    for position, arg in enumerate((first, second)):
        for bname, (value, error, fix) in NOT_COLOURS.items():
            pair = (value, GOOD_OTHER) if position == 0 else (GOOD[Lab], value)
            case(
                f"{dname_f}-{arg}-{bname}",
                lambda f=f, pair=pair: f(*pair),
                Raises(error, caller, rf"\b{arg} must be", fix),
            )
        for sname, value in BAD_SHAPES.items():
            pair = (value, GOOD_OTHER) if position == 0 else (GOOD[Lab], value)
            case(
                f"{dname_f}-{arg}-shape-{sname}",
                lambda f=f, pair=pair: f(*pair),
                Raises(ValueError, caller, rf"\b{arg} must be a Lab struct .* last axis has length 3", r"jnp\.stack"),
            )
        pair = (RGB(0.5, 0.5, 0.5), GOOD_OTHER) if position == 0 else (GOOD[Lab], XYZ(0.5, 0.5, 0.5))
        case(
            f"{dname_f}-{arg}-wrong-struct",
            lambda f=f, pair=pair: f(*pair),
            Raises(TypeError, caller, rf"\b{arg} is an? (RGB|XYZ) struct, expected Lab", r"array"),
        )
        pair = (Lab(None, 0.0, 0.0), GOOD_OTHER) if position == 0 else (GOOD[Lab], Lab(50.0, None, 0.0))
        case(
            f"{dname_f}-{arg}-struct-field-none",
            lambda f=f, pair=pair: f(*pair),
            Raises(TypeError, caller, rf"\b{arg}\.(l|a)\b", r"must be"),
        )
    labs, others = VALUES[Lab][0], OTHER_LAB[0]
    BROADCAST = {  # name -> (first, second, the expected pairs)
        "(2,1,3)-(2,3)": (labs[:, None], others, (labs[:, None], others[None])),
        "(3,)-(2,3)": (labs[0], others, (labs[0][None], others)),
        "struct-array": (Lab(*labs.T), others, (labs, others)),
        "struct-python-floats": (Lab(*labs[0].tolist()), others, (labs[0][None], others)),
        "lists": (labs.tolist(), others.tolist(), (labs, others)),
        "empty": (np.zeros((0, 3)), np.zeros((0, 3)), (np.zeros((0, 3)), np.zeros((0, 3)))),
        "empty-with-one": (np.zeros((0, 3)), others[0], (np.zeros((0, 3)), np.zeros((0, 3)))),
    }
    for bname, (a, b, (ea, eb)) in BROADCAST.items():
        ea, eb = np.broadcast_arrays(ea, eb)
        case(
            f"{dname_f}-broadcast-{bname}",
            lambda f=f, a=a, b=b: f(jnp.asarray(a) if isinstance(a, np.ndarray) else a, b),
            close(oracle(ea, eb) if ea.size else np.zeros(ea.shape[:-1]), "float32"),
        )
    for mname, (a, b, shapes) in {
        "(4,)-(5,)": (jnp.ones((4, 3)), jnp.ones((5, 3)), r"\(4,\) and .* \(5,\)"),
        "(2,3)-(3,2)": (jnp.ones((2, 3, 3)), jnp.ones((3, 2, 3)), r"\(2, 3\) and .* \(3, 2\)"),
        "struct-(4,)-(5,)": (Lab(jnp.ones(4), 0.0, 0.0), jnp.ones((5, 3)), r"\(4,\) and .* \(5,\)"),
    }.items():
        case(
            f"{dname_f}-mismatch-{mname}",
            lambda f=f, a=a, b=b: f(a, b),
            Raises(ValueError, caller, rf"batch shapes of {first} {shapes}", r"size-1 axes"),
        )
    case(
        f"{dname_f}-mismatch-jit",
        lambda f=f: jax.jit(f)(jnp.ones((4, 3)), jnp.ones((5, 3))),
        Raises(ValueError, caller, rf"batch shapes of {first}", r"size-1 axes"),
    )
    special = np.array([[np.nan, 0.0, 0.0], [np.inf, 10.0, 10.0], [50.0, -np.inf, 0.0], [50.0, 10.0, 10.0]])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = oracle(special, np.array([50.0, 5.0, 5.0]))
    case(f"{dname_f}-nan-inf", lambda f=f, v=special: f(jnp.asarray(v), jnp.array([50.0, 5.0, 5.0])), close(expected))
    if dname_f != "cie76":
        continue
    case(
        f"{dname_f}-jit-vmap-grad",
        lambda f=f: jax.jit(jax.vmap(jax.grad(lambda a, b: f(a, b))))(GOOD[Lab], GOOD_OTHER),
        satisfies(lambda g: g.shape == (2, 3) and bool(jnp.all(jnp.isfinite(g))), "finite (2, 3) gradients"),
    )

# The weights: numbers (or arrays that broadcast with the batch) > 0.
WEIGHTED = {  # name -> (call with the weight, the weight's name, the oracle of the weight's value)
    "ciede2000-kL": (lambda w: C.ciede2000(LAB_ARG, GOOD_OTHER, kL=w), "kL", lambda w: {"kL": w}),
    "ciede2000-kC": (lambda w: C.ciede2000(LAB_ARG, GOOD_OTHER, kC=w), "kC", lambda w: {"kC": w}),
    "ciede2000-kH": (lambda w: C.ciede2000(LAB_ARG, GOOD_OTHER, kH=w), "kH", lambda w: {"kH": w}),
    "cmc-l": (lambda w: C.cmc(LAB_ARG, GOOD_OTHER, l=w), "l", lambda w: {"l": w}),
    "cmc-c": (lambda w: C.cmc(LAB_ARG, GOOD_OTHER, c=w), "c", lambda w: {"c": w}),
}


def weighted_oracle(wname: str, w: Any) -> np.ndarray:
    settings = WEIGHTED[wname][2](np.asarray(w, np.float64))
    if wname.startswith("cmc"):
        base = {"l": 2.0, "c": 1.0, **settings}
        return np.vectorize(lambda lw, cw, i: float(delta_e("CMC", l=lw, c=cw)(VALUES[Lab][0][i], OTHER_LAB[0][i])))(
            base["l"], base["c"], np.arange(2)
        )
    return np_ciede2000(VALUES[Lab][0], OTHER_LAB[0], **settings)


BAD_WEIGHTS = {  # value -> (error, fix)
    "none": (None, TypeError, r"must be a real number"),
    "str": ("2", TypeError, r"must be a real number"),
    "dict": ({"kL": 2.0}, TypeError, r"must be a real number"),
    "set": ({2.0}, TypeError, r"must be a real number"),
    "object": (Plain(), TypeError, r"must be a real number"),
    "function": (fn, TypeError, r"must be a real number"),
    "prng-key": (KEY, TypeError, r"must be a real number"),
    "complex": (2j, TypeError, r"must be a real number"),
    "str-array": (np.array(["2"]), TypeError, r"must be a real number"),
    "ragged-list": ([[1.0], [1.0, 2.0]], TypeError, r"must be a real number"),
    "bool": (True, TypeError, r"not a boolean.*pass a number"),
    "numpy-bool": (np.True_, TypeError, r"not a boolean.*pass a number"),
    "bool-array": (jnp.ones(2, bool), TypeError, r"not a boolean.*pass a number"),
    "zero": (0, ValueError, r"must be > 0"),
    "negative": (-1.0, ValueError, r"must be > 0"),
    "nan": (np.nan, ValueError, r"must be > 0"),
    "negative-in-array": (jnp.array([1.0, -1.0]), ValueError, r"must be > 0.*first bad value: -1\.0"),
    "nan-in-list": ([1.0, np.nan], ValueError, r"must be > 0.*first bad value: nan"),
    "shape-(3,)": (jnp.ones(3), ValueError, r"does not broadcast with the batch shape \(2,\).*pass a number"),
    "shape-(2,2)": (jnp.ones((2, 2)) * 1.5, None, None),  # broadcasts with (2,): fine, a (2, 2) result
}
GOOD_WEIGHTS = {
    "int": 2,
    "float": 1.5,
    "numpy-float64": np.float64(2.0),
    "float16-array": jnp.float16(2.0),
    "per-pair-list": [1.0, 2.0],
    "per-pair-array": jnp.array([0.5, 3.0]),
    "int-array": jnp.array([1, 2]),
    "inf": np.inf,
}
for wname, (call, name, _) in WEIGHTED.items():
    caller = wname.split("-")[0]
    for bname, (value, error, fix) in BAD_WEIGHTS.items():
        if error is None:
            continue
        case(f"{wname}-{bname}", lambda c=call, v=value: c(v), Raises(error, caller, rf"\b{name}\b", fix))
    for gname, value in GOOD_WEIGHTS.items():
        expected = weighted_oracle(wname, np.asarray(value, np.float64))
        case(f"{wname}-{gname}", lambda c=call, v=value: c(v), close(expected, "float32"))
    column = np.array([[1.0], [2.0]])
    case(
        f"{wname}-broadcast-(2,1)",
        lambda c=call, v=column: c(jnp.asarray(v)),
        close(np.stack([weighted_oracle(wname, w) for w in (1.0, 2.0)]), "float32"),
    )
    case(
        f"{wname}-jit-traced-complex",
        lambda c=call: jax.jit(c)(jnp.complex64(1.0)),
        Raises(TypeError, caller, rf"\b{name} must be a real number", r"traced"),
    )
    case(
        f"{wname}-jit-traced-bad-shape",
        lambda c=call: jax.jit(c)(jnp.ones(3)),
        Raises(ValueError, caller, rf"\b{name}\b.*batch shape \(2,\)", r"pass a number"),
    )
    case(
        f"{wname}-jit-traced-bool",
        lambda c=call: jax.jit(c)(jnp.array(True)),
        Raises(TypeError, caller, rf"\b{name}\b.*not a boolean", r"pass a number"),
    )
    case(
        f"{wname}-jit-traced",
        lambda c=call: jax.jit(c)(jnp.float32(2.0)),
        close(weighted_oracle(wname, 2.0), "float32"),
    )
case(
    "ciede2000-kL-2-is-colour-sciences-textiles",
    lambda: C.ciede2000(LAB_ARG, GOOD_OTHER, kL=2),
    close(delta_e("CIE 2000", textiles=True)(VALUES[Lab][0], OTHER_LAB[0]), "float32"),
)
case(
    "ciede2000-numpy-oracle-matches-colour-science",
    lambda: np_ciede2000(VALUES[Lab][0], OTHER_LAB[0]) - delta_e("CIE 2000")(VALUES[Lab][0], OTHER_LAB[0]),
    satisfies(lambda d: np.max(np.abs(d)) < 1e-10, "the two oracles agree"),
)
case(
    "ciede2000-weights-float64-x64",
    in_x64(lambda: C.ciede2000(jnp.asarray(VALUES[Lab][0]), jnp.asarray(OTHER_LAB[0]), kL=0.5, kC=2.0, kH=3.0)),
    close(np_ciede2000(VALUES[Lab][0], OTHER_LAB[0], 0.5, 2.0, 3.0), "float64"),
)
for tname, value in {"none": None, "str": "yes", "int": 1, "zero": 0, "array": jnp.array(True), "list": [True]}.items():
    case(
        f"cie94-textiles-{tname}",
        lambda v=value: C.cie94(LAB_ARG, GOOD_OTHER, textiles=v),
        Raises(TypeError, r"cie94", r"\btextiles\b", r"True or False"),
    )
for tname, value in {"true": True, "numpy-true": np.True_}.items():
    case(
        f"cie94-textiles-{tname}",
        lambda v=value: C.cie94(LAB_ARG, GOOD_OTHER, textiles=v),
        close(delta_e("CIE 1994", textiles=True)(VALUES[Lab][0], OTHER_LAB[0]), "float32"),
    )

# --- colordiff --------------------------------------------------------------------------------------

CD = C.colordiff
RGB_A, RGB_B = VALUES[RGB][0], VALUES[RGB][0][::-1]


def cs_rgb_lab(v):
    return colour_science.XYZ_to_Lab(cs_rgb_to_xyz(v), D65)


case(
    "colordiff-rgb-arrays",
    lambda: CD(jnp.asarray(RGB_A), jnp.asarray(RGB_B), arrays="RGB"),
    close(delta_e("CIE 2000")(cs_rgb_lab(RGB_A), cs_rgb_lab(RGB_B)), "float32"),
)
case(
    "colordiff-rgb-lists",
    lambda: CD(RGB_A.tolist(), RGB_B.tolist(), arrays=RGB),
    close(delta_e("CIE 2000")(cs_rgb_lab(RGB_A), cs_rgb_lab(RGB_B)), "float32"),
)
case(
    "colordiff-rgb-struct-vs-lab-struct",
    lambda: CD(RGB(*RGB_A.T), Lab(*VALUES[Lab][0].T)),
    close(delta_e("CIE 2000")(cs_rgb_lab(RGB_A), VALUES[Lab][0]), "float32"),
)
case(
    "colordiff-xyz-struct-cie76",
    lambda: CD(XYZ(*VALUES[XYZ][0].T), Lab(*VALUES[Lab][0].T), "CIE76"),
    close(delta_e("CIE 1976")(colour_science.XYZ_to_Lab(VALUES[XYZ][0], D65), VALUES[Lab][0]), "float32"),
)
for mname, method in {"cie 2000": "CIE 2000", "de_94": "CIE 1994", "DE_CMC": "CMC", "CIE 1976": "CIE 1976"}.items():
    case(
        f"colordiff-metric-{mname}",
        lambda m=mname: CD(LAB_ARG, GOOD_OTHER, m, arrays="Lab"),
        close(delta_e(method)(VALUES[Lab][0], OTHER_LAB[0]), "float32"),
    )
case(
    "colordiff-metric-function",
    lambda: CD(LAB_ARG, GOOD_OTHER, functools.partial(C.cmc, l=1, c=1), arrays="Lab"),
    close(delta_e("CMC", l=1, c=1)(VALUES[Lab][0], OTHER_LAB[0]), "float32"),
)
for dname in ("float16", "bfloat16", "int32", "bool", "float64-x64"):
    expected = delta_e("CIE 2000")(cs_rgb_lab(held(dname, RGB)), cs_rgb_lab(held(dname, RGB)[::-1]))
    dtype_case(
        f"colordiff-{dname}",
        dname,
        lambda d=dname: CD(colour_of(d, RGB), colour_of(d, RGB)[::-1], arrays="RGB"),
        close(expected, result_dtype(dname)),
    )
for aname, value in {"None": None, "HSV": "HSV", "lower-case": "rgb", "int": 3, "list": ["RGB"], "class": int}.items():
    error = TypeError if value is None else ValueError
    names, fix = (
        (r"\ba is a plain array", r"arrays='RGB'") if value is None else (r"\barrays\b", r"'RGB', 'Lab' or 'XYZ'")
    )
    case(
        f"colordiff-arrays-{aname}",
        lambda v=value: CD(LAB_ARG, GOOD_OTHER, arrays=v),
        Raises(error, r"colordiff", names, fix),
    )
case(
    "colordiff-plain-array-b",
    lambda: CD(RGB(0.5, 0.5, 0.5), RGB_ARG),
    Raises(TypeError, r"colordiff", r"\bb is a plain array", r"arrays='RGB'"),
)
for mname, value in {"typo": "CIEDE2001", "none": None, "int": 3, "list": ["CIE76"]}.items():
    case(
        f"colordiff-metric-{mname}",
        lambda v=value: CD(LAB_ARG, GOOD_OTHER, v, arrays="Lab"),
        Raises(ValueError, r"colordiff", r"unknown metric", r"choose one of 'CIEDE2000'"),
    )
for mname, value in {"one-argument": lambda a: a, "builtin-len": len, "three-arguments": lambda a, b, c: a}.items():
    case(
        f"colordiff-metric-{mname}",
        lambda v=value: CD(LAB_ARG, GOOD_OTHER, v, arrays="Lab"),
        Raises(TypeError, r"colordiff", r"\bmetric must be a function of two Lab colours", r"functools\.partial"),
    )
case(
    "colordiff-unknown-keyword",
    lambda: CD(LAB_ARG, GOOD_OTHER, arrays="Lab", illuminnt="D50"),
    Raises(TypeError, r"colordiff", r"illuminnt", r"conversion settings are linear"),
)
case(
    "colordiff-metric-setting-as-keyword",
    lambda: CD(LAB_ARG, GOOD_OTHER, "CMC", arrays="Lab", l=1),
    Raises(TypeError, r"colordiff", r"\bl\b", r"functools\.partial\(tk\.colour\.cmc"),
)
for sname, (settings, _, error, names, fix) in BAD_SETTINGS.items():
    for aname in ("RGB", "Lab"):  # checked whether or not the colours need them
        a, b = (RGB_ARG, RGB_ARG[::-1]) if aname == "RGB" else (LAB_ARG, GOOD_OTHER)
        case(
            f"colordiff-{aname}-{sname}",
            lambda s=settings, a=a, b=b, k=aname: CD(a, b, arrays=k, **s),
            Raises(error, r"colordiff", names, fix),
        )
for bname, (value, error, fix) in NOT_COLOURS.items():
    case(
        f"colordiff-b-{bname}",
        lambda v=value: CD(RGB_ARG, v, arrays="RGB"),
        Raises(error, r"colordiff", r"\bb must be", fix),
    )
for sname, value in BAD_SHAPES.items():
    case(
        f"colordiff-a-shape-{sname}",
        lambda v=value: CD(v, RGB_ARG, arrays="RGB"),
        Raises(ValueError, r"colordiff", r"\ba must be an RGB struct .* last axis has length 3", r"jnp\.stack"),
    )
case(
    "colordiff-batch-mismatch",
    lambda: CD(jnp.ones((3, 3)), jnp.ones((2, 3)), arrays="RGB"),
    Raises(ValueError, r"colordiff", r"batch shapes of a \(3,\) and b \(2,\)", r"size-1 axes"),
)
case(
    "colordiff-struct-fields-do-not-broadcast",
    lambda: CD(RGB(jnp.ones(2), jnp.ones(3), 0.5), RGB(0.5, 0.5, 0.5)),
    Raises(ValueError, r"colordiff", r"the fields of a do not broadcast", r"equal shapes"),
)
case(
    "colordiff-struct-field-complex",
    lambda: CD(RGB(0.5, 0.5j, 0.5), RGB(0.5, 0.5, 0.5)),
    Raises(TypeError, r"colordiff", r"\ba\.g must be real", r"\.real"),
)
case(
    "colordiff-jit-shape",
    lambda: jax.jit(lambda a, b: CD(a, b, arrays="RGB"))(jnp.ones(4), jnp.ones(3)),
    Raises(ValueError, r"colordiff", r"\ba must be", r"jnp\.stack"),
)
case(
    "colordiff-nan",
    lambda: CD(jnp.array([np.nan, 0.5, 0.5]), jnp.full(3, 0.5), arrays="RGB"),
    close(np.nan),
)
case("colordiff-empty", lambda: CD(jnp.zeros((0, 3)), jnp.zeros((0, 3)), arrays="RGB"), close(np.zeros(0)))

# --- transfer functions -------------------------------------------------------------------------------

for tname, (f, arg, oracle) in TRANSFERS.items():
    caller = tname
    for dname in ("float16", "bfloat16", "float32", "float64-numpy-x32", "float64-x64", "int8", "uint8", "bool"):
        _, _, integer, holds = DTYPES[dname]
        values = np.array([[1, 0, 2], [0, 1, 1]]) if integer else SIGNAL
        make = DTYPES[dname][0]
        dtype_case(
            f"{tname}-{dname}",
            dname,
            lambda f=f, make=make, v=values: f(make(v)),
            close(oracle(values.astype(holds).astype(np.float64)), result_dtype(dname)),
        )
    for shape in [(), (4,), (0,), (2, 0, 5)]:
        v = np.full(shape, 0.5)
        case(f"{tname}-shape-{shape}", lambda f=f, v=v: f(jnp.asarray(v)), close(oracle(v), "float32"))
    case(f"{tname}-list", lambda f=f: f(SIGNAL.tolist()), close(oracle(SIGNAL), "float32"))
    case(f"{tname}-python-float", lambda f=f: f(0.5), close(oracle(np.float64(0.5)), "float32"))
    case(f"{tname}-rgb-struct", lambda f=f: f(RGB(*SIGNAL.T)), close(oracle(SIGNAL), "float32", kind=RGB))
    case(f"{tname}-xyz-struct", lambda f=f: f(XYZ(*SIGNAL.T)), close(oracle(SIGNAL), "float32", kind=XYZ))
    special = np.array([np.nan, np.inf, -np.inf, 0.5])
    with np.errstate(all="ignore"):
        expected = oracle(special)
    case(f"{tname}-nan-inf", lambda f=f, v=special: f(jnp.asarray(v)), close(expected, "float32"))
    for bname, (value, error, fix) in NOT_COLOURS.items():
        case(f"{tname}-{bname}", lambda f=f, v=value: f(v), Raises(error, caller, rf"\b{arg}\b", fix))
    for bname, value in {"none": None, "object": Plain(), "prng-key": KEY, "complex": jnp.array(0.5j)}.items():
        case(
            f"{tname}-struct-field-{bname}",
            lambda f=f, v=value: f(RGB(0.5, v, 0.5)),
            Raises(TypeError, caller, rf"\b{arg}\.g\b", r"must be|x\.real|jax\.random"),
        )
    case(
        f"{tname}-jit-complex",
        lambda f=f: jax.jit(f)(jnp.ones(3, jnp.complex64)),
        Raises(TypeError, caller, rf"complex values for {arg}\b", r"x\.real"),
    )
BAD_EXPONENTS = {  # value -> (error, fix)
    "none": (None, TypeError, r"one real number > 0"),
    "str": ("2.2", TypeError, r"one real number > 0"),
    "list": ([2.2], TypeError, r"one real number > 0"),
    "array": (jnp.full(3, 2.2), TypeError, r"one real number > 0"),
    "complex": (2.2j, TypeError, r"one real number > 0"),
    "bool": (True, TypeError, r"one real number > 0"),
    "prng-key": (KEY, TypeError, r"one real number > 0"),
    "zero": (0, ValueError, r"finite and > 0"),
    "negative": (-2.2, ValueError, r"finite and > 0"),
    "nan": (np.nan, ValueError, r"finite and > 0"),
    "inf": (np.inf, ValueError, r"finite and > 0"),
}
for tname in ("gamma_decode", "gamma_encode"):
    g = getattr(transfer, tname)
    for ename, (value, error, fix) in BAD_EXPONENTS.items():
        case(
            f"{tname}-exponent-{ename}",
            lambda g=g, v=value: g(jnp.full(3, 0.5), v),
            Raises(error, tname, r"\bexponent\b", fix),
        )
    case(
        f"{tname}-exponent-traced",
        lambda g=g: jax.jit(lambda e: g(jnp.full(3, 0.5), e))(2.2),
        Raises(TypeError, tname, r"\bexponent is traced", r"static_argnums"),
    )
    for ename, value in {"int": 2, "numpy": np.float32(2.2), "0d-array": jnp.array(2.2)}.items():
        p = float(value) if tname == "gamma_decode" else 1 / float(value)
        case(
            f"{tname}-exponent-{ename}",
            lambda g=g, v=value: g(jnp.asarray(SIGNAL), v),
            close(gamma_function(SIGNAL, p, "Mirror"), "float32"),
        )

# --- structs, as_array, like, channels, from_channels ---------------------------------------------------

for kind, fields in FIELDS.items():
    kname = kind.__name__
    for bname, value in {"str": "red", "bytes": b"r", "str-in-list": [0.5, "a"], "str-in-dict": {"v": "a"}}.items():
        path = {"str-in-list": r"\[1\]", "str-in-dict": r"\['v'\]"}.get(bname, "")
        case(
            f"{kname}-field-{bname}",
            lambda k=kind, v=value: k(0.5, v, 0.5),
            Raises(TypeError, rf"{kname}\.{fields[1]}", rf"{kname}\.{fields[1]}{path}", r"convert it first"),
        )
    case(
        f"{kname}-replace-str",
        lambda k=kind, f=fields[0]: k(0.5, 0.5, 0.5).replace(**{f: "x"}),
        Raises(TypeError, rf"{kname}\.{fields[0]}", rf"{kname}\.{fields[0]}", r"convert it first"),
    )
    case(
        f"{kname}-times-2",
        lambda k=kind: as_tuple(k(0.5, 1.0, 2.0) * 2),
        satisfies(lambda r: r == (1.0, 2.0, 4.0), "x2"),
    )
    case(
        f"{kname}-plus-other-kind",
        lambda k=kind: k(0.5, 0.5, 0.5) + (Lab if k is not Lab else RGB)(0.5, 0.5, 0.5),
        Raises(TypeError, kname, r"cannot compute", r"same type"),
    )


def as_tuple(colour: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in leaves(colour))


case("as_array-struct", lambda: C.as_array(Lab(50.0, jnp.ones(2), 0.0)), close([[50.0, 1.0, 0.0]] * 2, "float32"))
case("as_array-list", lambda: C.as_array([0.1, 0.2, 0.3]), close([0.1, 0.2, 0.3], "float32"))
case(
    "as_array-int-array-stays-int",
    lambda: C.as_array(jnp.array([1, 2, 3])).dtype,
    satisfies(lambda d: d == jnp.int32, "int32"),
)
case("as_array-empty-batch", lambda: C.as_array(jnp.zeros((0, 3))), close(np.zeros((0, 3))))
for sname, value in BAD_SHAPES.items():
    case(
        f"as_array-shape-{sname}",
        lambda v=value: C.as_array(v),
        Raises(ValueError, r"as_array", r"\bcolour\b.*last axis has length 3", r"jnp\.stack"),
    )
for bname, (value, error, fix) in NOT_COLOURS.items():
    case(f"as_array-{bname}", lambda v=value: C.as_array(v), Raises(error, r"as_array", r"\bcolour must be", fix))
case(
    "as_array-fields-do-not-broadcast",
    lambda: C.as_array(RGB(jnp.ones(2), jnp.ones(3), 0.5)),
    Raises(ValueError, r"as_array", r"the fields of colour do not broadcast", r"equal shapes"),
)
case(
    "as_array-named",
    lambda: C.as_array(jnp.ones(4), "target"),
    Raises(ValueError, r"as_array", r"\btarget\b", r"jnp\.stack"),
)
BAD_KINDS = {"int": int, "none": None, "str": "Lab", "dict": dict, "instance": Lab(1.0, 0.0, 0.0), "list": [Lab]}
for bname, value in BAD_KINDS.items():
    case(
        f"like-kind-{bname}",
        lambda v=value: C.like(RGB(1.0, 1.0, 1.0), jnp.ones(3), v),
        Raises(TypeError, r"like", r"\bkind\b", r"RGB, Lab or XYZ"),
    )
    case(
        f"from_channels-kind-{bname}",
        lambda v=value: C.from_channels(RGB(1.0, 1.0, 1.0), (1.0, 2.0, 3.0), v),
        Raises(TypeError, r"from_channels", r"\bkind\b", r"RGB, Lab or XYZ"),
    )
    case(
        f"channels-kind-{bname}",
        lambda v=value: C.channels(jnp.ones(3), v, "f", "x"),
        Raises(TypeError, r"channels", r"\bkind\b", r"RGB, Lab or XYZ"),
    )
case(
    "like-struct",
    lambda: C.like(RGB(1.0, 1.0, 1.0), jnp.array([[50.0, 1.0, 2.0]]), Lab),
    close([[50.0, 1.0, 2.0]], kind=Lab),
)
case("like-struct-stays", lambda: C.like(RGB(1.0, 1.0, 1.0), Lab(jnp.ones(2), 0.0, 0.0), Lab).l, close([1.0, 1.0]))
case(
    "like-struct-of-another-kind",
    lambda: C.like(RGB(1.0, 1.0, 1.0), XYZ(1.0, 1.0, 1.0), Lab),
    Raises(TypeError, r"like", r"\barray is an XYZ struct, expected Lab", r"array"),
)
case("like-array-stays", lambda: C.like(jnp.zeros(3), jnp.array([4.0, 5.0, 6.0]), Lab), close([4.0, 5.0, 6.0]))
case("like-list", lambda: C.like(RGB(1.0, 1.0, 1.0), [50.0, 1.0, 2.0], Lab), close([50.0, 1.0, 2.0], kind=Lab))
for sname, value in BAD_SHAPES.items():
    case(
        f"like-shape-{sname}",
        lambda v=value: C.like(RGB(1.0, 1.0, 1.0), v, Lab),
        Raises(ValueError, r"like", r"\barray must have a last axis of length 3", r"l, a, b"),
    )
for bname in ("none", "str", "object", "prng-key", "complex"):
    value, error, fix = NOT_COLOURS[bname]
    case(
        f"like-array-{bname}",
        lambda v=value: C.like(RGB(1.0, 1.0, 1.0), v, Lab),
        Raises(error, r"like", r"\barray must be", fix),
    )
case(
    "from_channels-struct",
    lambda: C.from_channels(RGB(1.0, 1.0, 1.0), (50.0, 1.0, 2.0), Lab),
    close([50.0, 1.0, 2.0], kind=Lab),
)
case(
    "from_channels-values-array",
    lambda: C.from_channels(RGB(1.0, 1.0, 1.0), jnp.array([[50.0], [1.0], [2.0]]), Lab),
    close([[50.0, 1.0, 2.0]], kind=Lab),
)
case(
    "from_channels-array-broadcasts",
    lambda: C.from_channels(jnp.ones(3), (jnp.ones(2), 0.0, jnp.zeros(2)), Lab),
    close([[1.0, 0.0, 0.0]] * 2),
)
for vname, value in {
    "two": (1.0, 2.0),
    "four": (1.0, 2.0, 3.0, 4.0),
    "none": None,
    "array-of-4": jnp.ones(4),
    "str": "abc",
}.items():
    case(
        f"from_channels-values-{vname}",
        lambda v=value: C.from_channels(RGB(1.0, 1.0, 1.0), v, Lab),
        Raises(TypeError, r"from_channels", r"\bvalues must be a tuple of the 3 Lab channels", r"l, a, b"),
    )
for bname in ("none", "str", "object", "prng-key"):
    value, error, fix = NOT_COLOURS[bname]
    case(
        f"from_channels-values-{bname}-channel",
        lambda v=value: C.from_channels(jnp.ones(3), (1.0, v, 2.0), Lab),
        Raises(error, r"from_channels", r"\bvalues\[1\] must be", fix),
    )
case(
    "from_channels-do-not-broadcast",
    lambda: C.from_channels(jnp.ones(3), (jnp.ones(2), jnp.ones(3), 0.0), Lab),
    Raises(ValueError, r"from_channels", r"values do not broadcast together \(values\[0\]: f32\[2\]", r"equal shapes"),
)
case(
    "channels-struct",
    lambda: C.channels(Lab(50, jnp.ones(2), False), Lab, "f", "lab")[2],
    close(np.zeros(2), "float32"),
)
case(
    "channels-caller-and-name",
    lambda: C.channels(jnp.ones(2), Lab, "my_loss", "target"),
    Raises(ValueError, r"my_loss", r"\btarget must be a Lab struct", r"jnp\.stack"),
)

# --- spaces --------------------------------------------------------------------------------------------

case(
    "rgb_space-srgb",
    lambda: C.rgb_space("sRGB").matrix,
    satisfies(lambda m: np.allclose(m, cs_space().matrix_RGB_to_XYZ), "colour-science's matrix"),
)
case(
    "rgb_space-linear-numpy-bool",
    lambda: C.rgb_space("ProPhoto RGB", np.True_).name,
    satisfies(lambda n: n == "ProPhoto RGB", "the space"),
)
for sname, (settings, needs, error, names, fix) in BAD_SETTINGS.items():
    if needs == "space":
        case(f"rgb_space-{sname}", lambda s=settings: C.rgb_space(s["space"]), Raises(error, r"rgb_space", names, fix))
    if needs == "linear":
        case(
            f"rgb_space-{sname}",
            lambda s=settings: C.rgb_space("sRGB", s["linear"]),
            Raises(error, r"rgb_space", names, fix),
        )
    if needs in ("illuminant", "observer"):
        case(
            f"whitepoint-{sname}",
            lambda s=settings: C.whitepoint(**s),
            Raises(error, r"whitepoint", names, fix),
        )
case(
    "whitepoint-d50",
    lambda: C.whitepoint("D50"),
    satisfies(
        lambda xy: np.allclose(xy, colour_science.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]), "D50"
    ),
)
case("whitepoint-xy", lambda: C.whitepoint((0.3, 0.31)), satisfies(lambda xy: xy.tolist() == [0.3, 0.31], "the pair"))
case(
    "whitepoint-xy-array",
    lambda: C.whitepoint(jnp.array([0.3, 0.25])),
    satisfies(lambda xy: xy.shape == (2,), "the pair"),
)
case(
    "supported_spaces",
    C.supported_spaces,
    satisfies(lambda s: "sRGB" in s and "Display P3" in s, "sRGB and Display P3"),
)
case(
    "METRICS",
    lambda: sorted(C.METRICS),
    satisfies(
        lambda m: (
            set(m)
            == set(colour_science.DELTA_E_METHODS)
            - {"CIE 1976", "CIE 1994", "CIE 2000", "cie1976", "cie1994", "cie2000"}
            | {"CIE76", "CIE94", "CIEDE2000"}
        ),
        "colour-science's fourteen metrics",
    ),
)
case("DEFAULT_OBSERVER", lambda: C.DEFAULT_OBSERVER in colour_science.CCS_ILLUMINANTS, satisfies(bool, "an observer"))


# --- the sweep ---------------------------------------------------------------------------------------


test_bad_input = SWEEP.test_bad_input()
test_the_sweep_is_large = SWEEP.test_the_sweep_is_large(values=300, errors=700)


def test_every_public_name_is_swept():
    swept = {name.split("-")[0] for name, _ in SWEEP.collected}
    public = set(C.__all__) - {"transfer"} | {n for n in transfer.__all__ if n.endswith(("_decode", "_encode"))}
    assert public <= swept, sorted(public - swept)

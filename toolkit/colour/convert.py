"""Colourspace conversions in JAX: RGB <-> CIE XYZ <-> CIE L*a*b*.

Every function takes a colour struct (``RGB``, ``XYZ``, ``Lab``) or an array
whose last axis holds the three channels, with any leading batch shape, and
returns the same kind. Each compiles to one fused elementwise kernel (the
3x3 matrices are constants; called outside ``jit`` it is compiled once per
settings and shape), so it is cheap on large images, and it composes with
``jax.jit``, ``jax.vmap`` and ``jax.grad``. Half-precision colours (float16,
bfloat16) are converted in float32 and returned in their own dtype (see
:mod:`toolkit.colour` on dtypes). Gradients are finite everywhere:
on the sRGB cube, at black and at every grey, and for out-of-gamut values
(negative or above 1), which are carried through, never clipped.

Settings (``space`` may also be passed second, positionally):

* ``space``: an RGB colourspace of colour-science (default ``"sRGB"``; see
  :func:`toolkit.colour.supported_spaces`).
* ``linear``: ``True`` when the RGB values are linear light, so no transfer
  function is applied. ``space="sRGB", linear=True`` is linear sRGB (as is
  colour-science's ``"Linear Rec.709 (sRGB)"``); any colourspace of
  colour-science works with ``linear=True``.
* ``illuminant``, ``observer``: the white that XYZ and Lab refer to (default
  D65, CIE 1931 2 degree observer). When it differs from the colourspace's
  whitepoint, colours are adapted with CAT02, as colour-science's
  ``RGB_to_XYZ`` does by default.
* ``reference_white`` (``rgb_to_lab``/``lab_to_rgb`` only): what Lab's
  (Xn, Yn, Zn) is. ``"illuminant"`` (default, colour-science's and CIE 15's
  convention) uses the illuminant's chromaticity. ``"space"`` uses the
  colourspace's own white, the XYZ of RGB (1, 1, 1). The two agree, to
  rounding, for colourspaces whose matrix colour-science derives from the
  primaries and whitepoint (Display P3, ITU-R BT.709, ITU-R BT.2020). They
  differ for sRGB and Adobe RGB (1998), whose published matrices are rounded
  to 4 and 5 decimals: the sRGB white's XYZ is IEC 61966-2-1's
  (0.9505, 1, 1.089), not D65's (0.95046, 1, 1.08906), so with
  ``"illuminant"`` sRGB white is Lab (100, 0.0077, 0.0035) (as in
  colour-science) while with ``"space"`` it is (100, 0, 0).

Greys stay exactly grey: whenever the reference white is the colourspace's
white (``reference_white="space"``, or ``"illuminant"`` with a derived
matrix), every grey ``(g, g, g)``, out-of-range ones included, maps to
a* = b* = 0 exactly (not merely to rounding), in every dtype, and
``lab_to_rgb`` maps (L, 0, 0) to an exact grey (for sRGB and Adobe RGB (1998)
with ``inverse="exact"``: their published inverse does not map their own white
to (1, 1, 1)). The matrix is applied as
``s * g + m0 * (r - g) + m2 * (b - g)``, with the row sums ``s`` equal to 1
exactly, so a grey's ratios X/Xn, Y/Yn, Z/Zn are all ``g``. (A plain matrix
product leaves chroma of order 1e-7, and CIEDE2000's gradient near the grey
axis grows like 1/sqrt(chroma) in a direction set by that noise.)

``xyz_to_rgb`` and ``lab_to_rgb`` apply, by default, the colourspace's
published XYZ-to-RGB matrix, as colour-science's ``XYZ_to_RGB`` does
(``inverse="published"``). For Display P3, BT.709 and BT.2020 that is the
inverse of the forward matrix; sRGB's and Adobe RGB (1998)'s standards round it
separately, and it disagrees with their forward matrix by up to 4e-5 (sRGB)
and 7e-6 (Adobe RGB). ``inverse="exact"`` inverts the forward matrix instead,
so round trips are the identity to rounding (and, with
``reference_white="space"``, ``lab_to_rgb`` keeps greys exactly grey in those
two spaces too).
Round trips through BT.709 and BT.2020 also miss by up to 2.4e-4 for code
values in [0.081, 0.0812428), where the standards' rounded constants leave a
gap between the linear and the power segment (colour-science's too).

References:
    IEC 61966-2-1:1999, Default RGB colour space - sRGB.
    CIE 15:2004, Colorimetry, 3rd edition, 8.2.1 (CIE 1976 L*a*b*).
    Moroney N. et al. (2002), The CIECAM02 color appearance model (CAT02).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from toolkit.colour._dtypes import as_they_are, cast, needs_cast, promoted, working_dtype
from toolkit.colour.spaces import (
    DEFAULT_OBSERVER,
    Illuminant,
    adaptation_matrix,
    checked_space,
    checked_whitepoint,
    rgb_space,
    white_xyz,
    whitepoint,
)
from toolkit.colour.transfer import Curve, positive_power
from toolkit.colour.types import RGB, XYZ, Channels, Colour, Lab, channels, checked, from_channels, well_formed

__all__ = ["rgb_to_xyz", "xyz_to_rgb", "xyz_to_lab", "lab_to_xyz", "rgb_to_lab", "lab_to_rgb"]

ReferenceWhite = Literal["illuminant", "space"]
Inverse = Literal["published", "exact"]

# Row sums within this of 1 are rounding error in colour-science's derived
# matrices (about 1e-16); they are taken as exactly 1 so that greys stay grey.
_ROW_SUM_TOLERANCE = 1e-12

# CIE 15:2004 L*a*b*: the cube root holds above (24/116)^3, a straight line below.
_F_CUT = 24 / 116
_T_CUT = _F_CUT**3
_F_SLOPE = 841 / 108
_F_OFFSET = 16 / 116


# --- constants ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class _Constants:
    """Everything a conversion needs for one choice of settings, as float64 NumPy."""

    curve: Curve
    to_xyz: np.ndarray  # linear RGB -> XYZ under the illuminant (adaptation included)
    from_xyz: np.ndarray
    to_ratios: np.ndarray  # linear RGB -> (X/Xn, Y/Yn, Z/Zn) under reference_white
    to_ratios_sums: np.ndarray
    from_ratios: np.ndarray
    from_ratios_sums: np.ndarray


def _settings_key(illuminant: Illuminant) -> Any:
    """A hashable form of an ``illuminant`` that :func:`whitepoint` accepted, for caching."""
    return illuminant if isinstance(illuminant, str) else tuple(float(v) for v in illuminant)


@functools.cache
def _constants(
    space: str, linear: bool, illuminant: Any, observer: str, reference_white: str, inverse: str
) -> _Constants:
    rgb = rgb_space(space, linear)
    target = whitepoint(illuminant, observer)
    to_xyz = adaptation_matrix(rgb.whitepoint, target) @ rgb.matrix
    ratio_white = to_xyz.sum(axis=1) if reference_white == "space" else white_xyz(illuminant, observer)
    to_ratios, to_ratios_sums = _keeping_greys(to_xyz / ratio_white[:, None])
    if inverse == "exact":
        from_xyz, ratios_inverse = np.linalg.inv(to_xyz), np.linalg.inv(to_ratios)
    else:  # colour-science's XYZ_to_RGB: adapt to the space's white, then its matrix_XYZ_to_RGB
        from_xyz = rgb.published_inverse @ adaptation_matrix(target, rgb.whitepoint)
        ratios_inverse = from_xyz * ratio_white[None, :]
    from_ratios, from_ratios_sums = _keeping_greys(ratios_inverse)
    return _Constants(
        curve=rgb.curve,
        to_xyz=to_xyz,
        from_xyz=from_xyz,
        to_ratios=to_ratios,
        to_ratios_sums=to_ratios_sums,
        from_ratios=from_ratios,
        from_ratios_sums=from_ratios_sums,
    )


def _keeping_greys(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``matrix`` with row sums within rounding of 1 made exactly 1 (via the middle column), and its row sums."""
    sums = matrix.sum(axis=1)
    sums = np.where(np.abs(sums - 1) <= _ROW_SUM_TOLERANCE, 1.0, sums)
    adjusted = matrix.copy()
    adjusted[:, 1] = sums - matrix[:, 0] - matrix[:, 2]
    return adjusted, sums


def lookup(
    caller: str,
    space: Any,
    linear: Any,
    illuminant: Any,
    observer: Any,
    reference_white: Any = "illuminant",
    inverse: Any = "published",
) -> _Constants:
    """The constants for these settings, each checked first (errors start with ``caller``, the public function)."""
    if not isinstance(reference_white, str) or reference_white not in ("illuminant", "space"):
        raise ValueError(
            f"{caller}: reference_white={reference_white!r}: expected 'illuminant' (Lab relative to the illuminant, "
            f"as colour-science) or 'space' (relative to the colourspace's white, RGB (1, 1, 1))."
        )
    if not isinstance(inverse, str) or inverse not in ("published", "exact"):
        raise ValueError(
            f"{caller}: inverse={inverse!r}: expected 'published' (the colourspace's published XYZ-to-RGB matrix, "
            f"as colour-science) or 'exact' (the exact inverse of the RGB-to-XYZ matrix: exact round trips)."
        )
    checked_space(caller, space, linear)  # validates space before caching
    checked_whitepoint(caller, illuminant, observer)  # validates illuminant and observer
    return _constants(space, bool(linear), _settings_key(illuminant), observer, reference_white, inverse)


# --- elementwise pieces --------------------------------------------------------


def _mix(matrix: np.ndarray, c: Channels) -> Channels:
    """``matrix @ c`` written out channel by channel (fuses with what surrounds it)."""
    m = matrix.tolist()
    return tuple(m[i][0] * c[0] + m[i][1] * c[1] + m[i][2] * c[2] for i in range(3))  # type: ignore[return-value]


def _mix_keeping_greys(matrix: np.ndarray, sums: np.ndarray, c: Channels) -> Channels:
    """``matrix @ c`` as ``s * c1 + m0 * (c0 - c1) + m2 * (c2 - c1)``: equal channels in, equal channels out."""
    m, s = matrix.tolist(), sums.tolist()
    d0, d2 = c[0] - c[1], c[2] - c[1]
    return tuple(_scaled(s[i], c[1]) + m[i][0] * d0 + m[i][2] * d2 for i in range(3))  # type: ignore[return-value]


def _scaled(factor: float, x: jax.Array) -> jax.Array:
    return x if factor == 1.0 else factor * x


def _f(t: jax.Array) -> jax.Array:
    """CIE 1976's lightness function of a ratio such as Y/Yn (cube root above (24/116)^3, linear below)."""
    curved = t > _T_CUT
    # 1.0 stands in for t where the line is used: the cube root's infinite slope
    # at 0 (black) would otherwise turn the gradient into inf * 0 = NaN.
    return jnp.where(curved, positive_power(jnp.where(curved, t, 1.0), 1 / 3), _F_SLOPE * t + _F_OFFSET)


def _f_inverse(f: jax.Array) -> jax.Array:
    return jnp.where(f > _F_CUT, f * f * f, (f - _F_OFFSET) / _F_SLOPE)


def _lab_from_ratios(ratios: Channels) -> Channels:
    fx, fy, fz = (_f(t) for t in ratios)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _ratios_from_lab(lab: Channels) -> Channels:
    l, a, b = lab  # noqa: E741 (CIE's name for lightness)
    fy = (l + 16) / 116
    return _f_inverse(a / 500 + fy), _f_inverse(fy), _f_inverse(fy - b / 200)


def _decode(curve: Curve, c: Channels) -> Channels:
    return tuple(curve.decode(x) for x in c)  # type: ignore[return-value]


def _encode(curve: Curve, c: Channels) -> Channels:
    return tuple(curve.encode(x) for x in c)  # type: ignore[return-value]


# --- the conversions, as pure functions of their constants ------------------------
#
# The constants are Python floats, weakly typed, so they never promote a float32
# colour to float64 under x64. The public functions below cast the colour to its
# working dtype first (float32 for half precision, see toolkit.colour._dtypes).


def _rgb_to_xyz(k: _Constants, rgb: Any) -> Any:
    xyz = _mix(k.to_xyz, _decode(k.curve, channels(rgb, RGB, "rgb_to_xyz", "rgb")))
    return from_channels(rgb, xyz, XYZ)


def _xyz_to_rgb(k: _Constants, xyz: Any) -> Any:
    rgb = _encode(k.curve, _mix(k.from_xyz, channels(xyz, XYZ, "xyz_to_rgb", "xyz")))
    return from_channels(xyz, rgb, RGB)


def _xyz_to_lab(white: tuple[float, float, float], xyz: Any) -> Any:
    c = channels(xyz, XYZ, "xyz_to_lab", "xyz")
    lab = _lab_from_ratios(tuple(x * (1 / w) for w, x in zip(white, c)))  # type: ignore[arg-type]
    return from_channels(xyz, lab, Lab)


def _lab_to_xyz(white: tuple[float, float, float], lab: Any) -> Any:
    ratios = _ratios_from_lab(channels(lab, Lab, "lab_to_xyz", "lab"))
    x, y, z = (w * t for w, t in zip(white, ratios))
    return from_channels(lab, (x, y, z), XYZ)


def _rgb_to_lab(k: _Constants, rgb: Any) -> Any:
    linear_rgb = _decode(k.curve, channels(rgb, RGB, "rgb_to_lab", "rgb"))
    lab = _lab_from_ratios(_mix_keeping_greys(k.to_ratios, k.to_ratios_sums, linear_rgb))
    return from_channels(rgb, lab, Lab)


def _lab_to_rgb(k: _Constants, lab: Any) -> Any:
    ratios = _ratios_from_lab(channels(lab, Lab, "lab_to_rgb", "lab"))
    rgb = _encode(k.curve, _mix_keeping_greys(k.from_ratios, k.from_ratios_sums, ratios))
    return from_channels(lab, rgb, RGB)


# Compiled once per conversion, settings and input shape: called eagerly, a
# conversion is one fused kernel rather than dozens of dispatches; inside a
# caller's jit it is simply inlined.
@functools.partial(jax.jit, static_argnums=(0, 1))
def _compiled(conversion: Callable[[Any, Any], Any], constants: Any, colour: Any) -> Any:
    return conversion(constants, colour)


def _run(conversion: Callable[[Any, Any], Any], constants: Any, colour: Any, kind: type, caller: str, name: str) -> Any:
    """``conversion`` of ``colour`` in its working dtype, returned in the dtype its channels promote to.

    A colour of float32 or float64 arrays throughout goes straight to the
    kernel; so does one the kernel will reject, so that its error describes the
    colour as given. Anything else (half precision, mixed dtypes, NumPy or
    Python-scalar channels) is cast to the working dtype, so that one kernel
    per working dtype serves every mixture.
    """
    if as_they_are((colour,)):
        return _compiled(conversion, constants, colour)
    colour = checked(colour, kind, caller, name)
    dtype = promoted(colour)
    work = working_dtype(dtype)
    if not needs_cast(colour, work) or not well_formed(colour, kind):
        return _compiled(conversion, constants, colour)
    return cast(_compiled(conversion, constants, cast(colour, work)), dtype)


@functools.cache
def _cached_white(illuminant: Any, observer: str) -> tuple[float, float, float]:
    return tuple(white_xyz(illuminant, observer).tolist())  # type: ignore[return-value]


def _white(caller: str, illuminant: Illuminant, observer: str) -> tuple[float, float, float]:
    checked_whitepoint(caller, illuminant, observer)  # validates before caching
    return _cached_white(_settings_key(illuminant), observer)


# --- public conversions ---------------------------------------------------------


def rgb_to_xyz(
    rgb: Colour,
    space: str = "sRGB",
    *,
    linear: bool = False,
    illuminant: Illuminant = "D65",
    observer: str = DEFAULT_OBSERVER,
) -> Colour:
    """RGB in ``space`` to CIE XYZ (white's Y = 1) under ``illuminant``: colour-science's ``RGB_to_XYZ``.

    Decodes with the space's transfer function (unless ``linear=True``),
    applies colour-science's RGB-to-XYZ matrix and, if the space's whitepoint
    is not the illuminant's, CAT02 adaptation. ``rgb`` is an ``RGB`` struct or
    an array with a trailing axis of 3; the result is an ``XYZ`` struct or an array.

    Example:
        >>> from toolkit.colour import RGB, rgb_to_xyz
        >>> xyz = rgb_to_xyz(RGB(1.0, 1.0, 1.0))
        >>> round(float(xyz.x), 4), round(float(xyz.y), 4), round(float(xyz.z), 4)
        (0.9505, 1.0, 1.089)
    """
    return _run(_rgb_to_xyz, lookup("rgb_to_xyz", space, linear, illuminant, observer), rgb, RGB, "rgb_to_xyz", "rgb")


def xyz_to_rgb(
    xyz: Colour,
    space: str = "sRGB",
    *,
    linear: bool = False,
    illuminant: Illuminant = "D65",
    observer: str = DEFAULT_OBSERVER,
    inverse: Inverse = "published",
) -> Colour:
    """CIE XYZ under ``illuminant`` to RGB in ``space``: colour-science's ``XYZ_to_RGB``.

    ``inverse="published"`` (default) applies the colourspace's published
    XYZ-to-RGB matrix, as colour-science and the standards do: for sRGB (IEC
    61966-2-1) and Adobe RGB (1998) it is rounded separately from the RGB-to-XYZ
    matrix, so it is not quite the inverse of :func:`rgb_to_xyz` (by up to
    4e-5 in linear sRGB); for the spaces whose matrices colour-science derives
    (Display P3, BT.709, BT.2020, ...) it is the inverse. ``inverse="exact"``
    inverts :func:`rgb_to_xyz`'s matrix instead, so round trips are the identity
    to rounding. Out-of-gamut colours give RGB values below 0 or above 1;
    nothing is clipped.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import xyz_to_rgb
        >>> white = jnp.array([0.9505, 1.0, 1.089])  # sRGB's white: RGB (1, 1, 1) through its forward matrix
        >>> [round(v, 5) for v in xyz_to_rgb(white, linear=True).tolist()]  # the published inverse
        [1.00002, 1.00005, 1.00002]
        >>> [round(v, 5) for v in xyz_to_rgb(white, linear=True, inverse="exact").tolist()]
        [1.0, 1.0, 1.0]
    """
    constants = lookup("xyz_to_rgb", space, linear, illuminant, observer, inverse=inverse)
    return _run(_xyz_to_rgb, constants, xyz, XYZ, "xyz_to_rgb", "xyz")


def xyz_to_lab(xyz: Colour, *, illuminant: Illuminant = "D65", observer: str = DEFAULT_OBSERVER) -> Colour:
    """CIE XYZ (white's Y = 1) to CIE 1976 L*a*b* relative to ``illuminant``: colour-science's ``XYZ_to_Lab``.

    Example:
        >>> from toolkit.colour import XYZ, xyz_to_lab
        >>> lab = xyz_to_lab(XYZ(0.5, 0.5, 0.5))
        >>> round(float(lab.l), 3)
        76.069
    """
    return _run(_xyz_to_lab, _white("xyz_to_lab", illuminant, observer), xyz, XYZ, "xyz_to_lab", "xyz")


def lab_to_xyz(lab: Colour, *, illuminant: Illuminant = "D65", observer: str = DEFAULT_OBSERVER) -> Colour:
    """CIE 1976 L*a*b* relative to ``illuminant`` to CIE XYZ: colour-science's ``Lab_to_XYZ``.

    Example:
        >>> from toolkit.colour import Lab, lab_to_xyz
        >>> round(float(lab_to_xyz(Lab(100.0, 0.0, 0.0)).y), 6)
        1.0
    """
    return _run(_lab_to_xyz, _white("lab_to_xyz", illuminant, observer), lab, Lab, "lab_to_xyz", "lab")


def rgb_to_lab(
    rgb: Colour,
    space: str = "sRGB",
    *,
    linear: bool = False,
    illuminant: Illuminant = "D65",
    observer: str = DEFAULT_OBSERVER,
    reference_white: ReferenceWhite = "illuminant",
) -> Colour:
    """RGB in ``space`` to CIE 1976 L*a*b*: colour-science's ``XYZ_to_Lab(RGB_to_XYZ(rgb))`` in one pass.

    By default Lab is relative to the illuminant, as in colour-science, and
    sRGB white is not quite achromatic (colour-science's sRGB matrix is IEC
    61966-2-1's, rounded to 4 decimals). ``reference_white="space"`` makes Lab
    relative to the colourspace's own white, so that every grey is exactly
    achromatic (see the module's documentation); for Display P3, BT.709 and
    BT.2020 greys are exactly achromatic either way.

    Example:
        >>> from toolkit.colour import RGB, rgb_to_lab
        >>> red = rgb_to_lab(RGB(1.0, 0.0, 0.0))
        >>> round(float(red.l), 2), round(float(red.a), 2), round(float(red.b), 2)
        (53.23, 80.11, 67.22)
        >>> white = rgb_to_lab(RGB(1.0, 1.0, 1.0))
        >>> round(float(white.a), 4), round(float(white.b), 4)
        (0.0077, 0.0035)
        >>> white = rgb_to_lab(RGB(1.0, 1.0, 1.0), reference_white="space")
        >>> float(white.a), float(white.b)
        (0.0, 0.0)
    """
    constants = lookup("rgb_to_lab", space, linear, illuminant, observer, reference_white)
    return _run(_rgb_to_lab, constants, rgb, RGB, "rgb_to_lab", "rgb")


def lab_to_rgb(
    lab: Colour,
    space: str = "sRGB",
    *,
    linear: bool = False,
    illuminant: Illuminant = "D65",
    observer: str = DEFAULT_OBSERVER,
    reference_white: ReferenceWhite = "illuminant",
    inverse: Inverse = "published",
) -> Colour:
    """CIE 1976 L*a*b* to RGB in ``space``: colour-science's ``XYZ_to_RGB(Lab_to_XYZ(lab))`` in one pass.

    ``inverse`` as for :func:`xyz_to_rgb`: with ``"exact"`` it is the exact
    inverse of :func:`rgb_to_lab` with the same settings (greys stay grey as the
    module's documentation says); with ``"published"`` (default) sRGB and Adobe RGB (1998) use
    their published, separately rounded XYZ-to-RGB matrix, as colour-science
    does. Out-of-gamut colours give RGB values below 0 or above 1; nothing is
    clipped.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import lab_to_rgb
        >>> [round(v, 3) + 0.0 for v in lab_to_rgb(jnp.array([53.2329, 80.1112, 67.2237])).tolist()]
        [1.0, 0.0, 0.0]
        >>> from toolkit.colour import rgb_to_lab
        >>> rgb = jnp.array([0.2, 0.5, 0.9])
        >>> float(jnp.abs(lab_to_rgb(rgb_to_lab(rgb), inverse="exact") - rgb).max()) < 1e-6
        True
    """
    constants = lookup("lab_to_rgb", space, linear, illuminant, observer, reference_white, inverse)
    return _run(_lab_to_rgb, constants, lab, Lab, "lab_to_rgb", "lab")

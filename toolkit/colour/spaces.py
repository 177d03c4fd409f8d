"""RGB colourspaces, illuminants and chromatic adaptation, read from colour-science.

Matrices, whitepoints and illuminant chromaticities come from colour-science's
own definitions (``colour.RGB_COLOURSPACES``, ``colour.CCS_ILLUMINANTS``,
``colour.adaptation``); nothing here is typed by hand. A colourspace is usable
when toolkit has a JAX version of its transfer function (see
:mod:`toolkit.colour.transfer`), or always with ``linear=True``.

References:
    CIE 15:2004, Colorimetry, 3rd edition (illuminants, standard observers).
    Moroney N. et al. (2002), The CIECAM02 color appearance model (the CAT02 transform).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

_PRINT_OPTIONS = np.get_printoptions()
# colour-science, not this package: absolute imports resolve top-level names.
import colour  # noqa: E402
from colour.models.rgb.transfer_functions import gamma_function  # noqa: E402

# Importing colour-science switches NumPy to its 1.13 print style for every
# program; importing toolkit.colour should not change how a user's arrays print.
np.set_printoptions(**_PRINT_OPTIONS)

from toolkit.colour.transfer import BT709, BT2020, LINEAR, SRGB, Curve, GammaCurve  # noqa: E402

__all__ = [
    "DEFAULT_OBSERVER",
    "DEFAULT_ADAPTATION",
    "RGBSpace",
    "Illuminant",
    "rgb_space",
    "checked_space",
    "supported_spaces",
    "whitepoint",
    "checked_whitepoint",
    "white_xyz",
    "adaptation_matrix",
]

DEFAULT_OBSERVER = "CIE 1931 2 Degree Standard Observer"
DEFAULT_ADAPTATION = "CAT02"
"""colour-science's default chromatic adaptation transform in ``RGB_to_XYZ``/``XYZ_to_RGB``."""

Illuminant = str | Sequence[float]
"""An illuminant's name in ``colour.CCS_ILLUMINANTS`` (``"D65"``), or its CIE 1931 ``(x, y)`` chromaticity."""

_PIECEWISE = {
    colour.models.eotf_sRGB: SRGB,
    colour.models.oetf_inverse_BT709: BT709,
    colour.models.oetf_inverse_BT2020: BT2020,
}


@dataclasses.dataclass(frozen=True, eq=False)
class RGBSpace:
    """An RGB colourspace as colour-science defines it, with its transfer function in JAX.

    Example:
        >>> from toolkit.colour.spaces import rgb_space
        >>> space = rgb_space("sRGB")
        >>> space.whitepoint.tolist(), space.matrix[1].tolist()
        ([0.3127, 0.329], [0.2126, 0.7152, 0.0722])
    """

    name: str
    matrix: np.ndarray
    """Linear RGB to CIE XYZ under the space's own whitepoint (colour-science's ``matrix_RGB_to_XYZ``)."""
    published_inverse: np.ndarray
    """CIE XYZ to linear RGB as colour-science has it (``matrix_XYZ_to_RGB``): for sRGB and Adobe RGB (1998)
    the standards' inverse, rounded separately from ``matrix``; for the others the inverse of ``matrix``."""
    whitepoint: np.ndarray
    """CIE 1931 ``(x, y)`` chromaticity of the space's white."""
    curve: Curve
    """The transfer function: ``LINEAR`` when asked for linear values."""


def _curve(space: Any) -> Curve | None:
    """Our JAX version of ``space``'s transfer function, or ``None`` if there is none."""
    decoding, encoding = space.cctf_decoding, space.cctf_encoding
    if decoding is colour.linear_function:
        return LINEAR
    if decoding in _PIECEWISE:
        return _PIECEWISE[decoding]
    if _is_plain_gamma(decoding) and _is_plain_gamma(encoding):
        return GammaCurve(float(decoding.keywords["exponent"]), float(encoding.keywords["exponent"]))
    return None


def _is_plain_gamma(f: Any) -> bool:
    """A ``functools.partial`` of ``gamma_function`` with only an exponent bound."""
    return (
        isinstance(f, functools.partial) and f.func is gamma_function and not f.args and set(f.keywords) == {"exponent"}
    )


def _name_of(f: Any) -> str:
    f = getattr(f, "func", f)
    return getattr(f, "__name__", repr(f))


@functools.cache
def supported_spaces() -> tuple[str, ...]:
    """Names of colour-science's RGB colourspaces whose transfer function toolkit implements in JAX.

    Any colourspace in ``colour.RGB_COLOURSPACES`` works with ``linear=True``.

    Example:
        >>> from toolkit.colour.spaces import supported_spaces
        >>> {"sRGB", "Display P3", "Adobe RGB (1998)", "ITU-R BT.709", "ITU-R BT.2020"} <= set(supported_spaces())
        True
    """
    return tuple(sorted({space.name for space in colour.RGB_COLOURSPACES.values() if _curve(space) is not None}))


def rgb_space(name: str, linear: bool = False) -> RGBSpace:
    """colour-science's RGB colourspace ``name``; ``linear=True`` drops its transfer function.

    Names are colour-science's (``"sRGB"``, ``"Display P3"``, ``"Adobe RGB (1998)"``,
    ``"ITU-R BT.709"``, ``"ITU-R BT.2020"``, ...; see :func:`supported_spaces`).

    Example:
        >>> from toolkit.colour.spaces import rgb_space
        >>> rgb_space("Display P3").curve is rgb_space("sRGB").curve
        True
    """
    return checked_space("rgb_space", name, linear)


def checked_space(caller: str, name: Any, linear: Any) -> RGBSpace:
    """:func:`rgb_space`, with errors that start with ``caller`` (the public function the settings were given to)."""
    if not isinstance(linear, (bool, np.bool_)):
        raise TypeError(f"{caller}: linear must be True or False, got {linear!r}.")
    if not isinstance(name, str) or not _known_space(name):
        raise ValueError(_unknown(caller, "RGB colourspace", name, supported_spaces(), "space"))
    space = _rgb_space(name, bool(linear))
    if space is None:
        decoding = colour.RGB_COLOURSPACES[name].cctf_decoding
        raise ValueError(
            f"{caller}: space={name!r}: colour-science decodes it with {_name_of(decoding)}, which toolkit "
            f"has no JAX version of. Pass linear=True to convert linear {name} values, or use one of: "
            f"{', '.join(supported_spaces())}."
        )
    return space


_KNOWN_SPACES: set[str] = set()


def _known_space(name: str) -> bool:
    # colour-science's mappings take ~0.3 ms a lookup, and every conversion checks its settings:
    # names found are remembered (names not found are looked up again, in case one is added).
    if name not in _KNOWN_SPACES and name in colour.RGB_COLOURSPACES:
        _KNOWN_SPACES.add(name)
    return name in _KNOWN_SPACES


@functools.cache
def _rgb_space(name: str, linear: bool) -> RGBSpace | None:
    """The colourspace, or ``None`` if toolkit has no JAX version of its transfer function."""
    space = colour.RGB_COLOURSPACES[name]
    curve = LINEAR if linear else _curve(space)
    if curve is None:
        return None
    return RGBSpace(
        name=space.name,
        matrix=np.asarray(space.matrix_RGB_to_XYZ, dtype=np.float64),
        published_inverse=np.asarray(space.matrix_XYZ_to_RGB, dtype=np.float64),
        whitepoint=np.asarray(space.whitepoint, dtype=np.float64),
        curve=curve,
    )


def whitepoint(illuminant: Illuminant = "D65", observer: str = DEFAULT_OBSERVER) -> np.ndarray:
    """The CIE ``(x, y)`` chromaticity of ``illuminant`` for ``observer``, from ``colour.CCS_ILLUMINANTS``.

    ``illuminant`` may also be an ``(x, y)`` pair, returned as it is (after checking it).

    Example:
        >>> from toolkit.colour.spaces import whitepoint
        >>> whitepoint("D65").tolist(), whitepoint("D65", "CIE 1964 10 Degree Standard Observer").tolist()
        ([0.3127, 0.329], [0.31382, 0.331])
    """
    return checked_whitepoint("whitepoint", illuminant, observer)


def checked_whitepoint(caller: str, illuminant: Any, observer: Any) -> np.ndarray:
    """:func:`whitepoint`, with errors that start with ``caller`` (the public function the settings were given to)."""
    if not isinstance(observer, str) or _illuminants(observer) is None:
        raise ValueError(_unknown(caller, "observer", observer, _OBSERVERS, "observer"))
    if not isinstance(illuminant, str):
        return _checked_xy(caller, illuminant)
    xy = _named_whitepoint(illuminant, observer)
    if xy is None:
        valid = tuple(_illuminants(observer) or ())
        raise ValueError(
            _unknown(caller, f"illuminant for the {observer}", illuminant, valid, "illuminant")
            + " An (x, y) chromaticity pair is accepted too."
        )
    return xy.copy()


@functools.cache
def _illuminants(observer: str) -> Any:
    # Cached: colour-science's mappings take ~0.3 ms a lookup.
    return colour.CCS_ILLUMINANTS[observer] if observer in colour.CCS_ILLUMINANTS else None


@functools.cache
def _named_whitepoint(illuminant: str, observer: str) -> np.ndarray | None:
    table = _illuminants(observer)
    return np.asarray(table[illuminant], dtype=np.float64) if illuminant in table else None


def white_xyz(illuminant: Illuminant = "D65", observer: str = DEFAULT_OBSERVER) -> np.ndarray:
    """The CIE XYZ of ``illuminant``'s white, scaled to Y = 1 (Lab's Xn, Yn, Zn).

    Example:
        >>> from toolkit.colour.spaces import white_xyz
        >>> [round(v, 5) for v in white_xyz("D65").tolist()]
        [0.95046, 1.0, 1.08906]
    """
    return colour.xy_to_XYZ(checked_whitepoint("white_xyz", illuminant, observer))


_OBSERVERS = ("CIE 1931 2 Degree Standard Observer", "CIE 1964 10 Degree Standard Observer")


def _checked_xy(caller: str, xy: Any) -> np.ndarray:
    try:
        array = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != (2,) or not np.all(np.isfinite(array)) or not 0 < array[1] <= 1:
        raise ValueError(
            f"{caller}: illuminant={xy!r}: expected a name such as 'D65' or a CIE (x, y) chromaticity pair "
            f"with 0 < y <= 1, such as (0.3127, 0.329)."
        )
    return array


def adaptation_matrix(source_xy: np.ndarray, target_xy: np.ndarray) -> np.ndarray:
    """The chromatic adaptation (colour-science's CAT02 von Kries) from one whitepoint to another.

    The identity, exactly, when the whitepoints are equal.

    Example:
        >>> from toolkit.colour.spaces import adaptation_matrix, whitepoint
        >>> adaptation_matrix(whitepoint("D65"), whitepoint("D65")).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    if np.array_equal(source_xy, target_xy):
        return np.eye(3)
    return colour.adaptation.matrix_chromatic_adaptation_VonKries(
        colour.xy_to_XYZ(source_xy), colour.xy_to_XYZ(target_xy), transform=DEFAULT_ADAPTATION
    )


def _unknown(caller: str, what: str, value: Any, valid: Sequence[str], argument: str) -> str:
    close = difflib.get_close_matches(str(value), valid, n=1) if isinstance(value, str) else []
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{caller}: {argument}={value!r} is not a known {what}.{hint} Valid names: {', '.join(valid)}."

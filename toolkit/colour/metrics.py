"""``colordiff`` and the registry of every colour difference: each name colour-science's ``delta_E`` takes.

``METRICS`` maps each metric's name to its function and ``METRIC_INPUTS`` to what that function takes:
CIE L*a*b* (CIEDE2000, CIE94, CMC, CIE76, DIN99, HyAB, HyCH), ICtCp (ITP) or J′a′b′ of one of the six
uniform colour spaces (CAM02-LCD, -SCD, -UCS; CAM16-LCD, -SCD, -UCS). ``colordiff(a, b, metric)`` takes
RGB, Lab or XYZ colours and converts them to what the metric takes:

* Lab metrics: to CIE L*a*b* (:func:`~toolkit.colour.rgb_to_lab`, :func:`~toolkit.colour.xyz_to_lab`);
* CAM02-* and CAM16-*: to XYZ (white's Y = 1) under ``illuminant``, then :func:`~toolkit.colour.xyz_to_ucs`
  with the illuminant's white as the adopted white and colour-science's other sRGB viewing conditions
  (L_A = 64/π·0.2 cd/m², Y_b = 20, average surround). For other viewing conditions call
  ``xyz_to_ucs(..., L_A=..., Y_b=..., surround=...)`` and the metric (``tk.colour.cam02_ucs``) directly;
* ITP: to XYZ, with Y = 1 (RGB white) as 100 cd/m² (an SDR display's white), then
  :func:`~toolkit.colour.xyz_to_ictcp` (adapted to D65 with CAT02 if ``illuminant`` is not D65). For
  other luminances call ``xyz_to_ictcp(xyz * luminance)`` and ``tk.colour.itp`` directly.

Names are matched as colour-science matches them, ignoring case, spaces, hyphens and underscores
(``"cie2000"``, ``"CIE 2000"``, ``"CAM02UCS"``, ``"hyab"``), and Colors.jl's (``"DE_2000"``, ``"DE_94"``,
``"DE_CMC"``, ``"DE_AB"``) work too.

References:
    Colors.jl's ``colordiff``; colour-science's ``colour.delta_E`` and ``colour.DELTA_E_METHODS``
    (each metric's own reference is in its docstring).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit._show import describe
from toolkit.colour._dtypes import cast, needs_cast, promoted, working_dtype
from toolkit.colour.convert import lab_to_xyz, lookup, rgb_to_lab, rgb_to_xyz, xyz_to_lab
from toolkit.colour.difference import cie76, cie94, ciede2000, cmc, hyab, hych
from toolkit.colour.din99 import din99
from toolkit.colour.ictcp import itp, xyz_to_ictcp
from toolkit.colour.spaces import DEFAULT_OBSERVER, white_xyz
from toolkit.colour.types import RGB, XYZ, Lab, batch_shape, channels, checked, well_formed
from toolkit.colour.ucs import cam02_lcd, cam02_scd, cam02_ucs, cam16_lcd, cam16_scd, cam16_ucs, xyz_to_ucs

__all__ = ["METRICS", "METRIC_INPUTS", "colordiff"]

METRICS: dict[str, Callable[..., jax.Array]] = {
    "CIEDE2000": ciede2000,
    "CIE94": cie94,
    "CMC": cmc,
    "CIE76": cie76,
    "DIN99": din99,
    "HyAB": hyab,
    "HyCH": hych,
    "ITP": itp,
    "CAM02-LCD": cam02_lcd,
    "CAM02-SCD": cam02_scd,
    "CAM02-UCS": cam02_ucs,
    "CAM16-LCD": cam16_lcd,
    "CAM16-SCD": cam16_scd,
    "CAM16-UCS": cam16_ucs,
}
METRIC_INPUTS = {name: "Lab" for name in ("CIEDE2000", "CIE94", "CMC", "CIE76", "DIN99", "HyAB", "HyCH")}
METRIC_INPUTS.update({"ITP": "ICtCp"}, **{name: name for name in METRICS if name.startswith("CAM")})
_ALIASES = {  # colour-science's and Colors.jl's names for the same metrics
    "CIE 2000": "CIEDE2000",
    "DE_2000": "CIEDE2000",
    "CIE 1994": "CIE94",
    "DE_94": "CIE94",
    "DE_CMC": "CMC",
    "CIE 1976": "CIE76",
    "DE_AB": "CIE76",
}
_ITP_WHITE = 100.0  # cd/m² of Y = 1 when colordiff converts to ICtCp
_KINDS = {"RGB": RGB, "Lab": Lab, "XYZ": XYZ}
_DEFAULT_SETTINGS = {
    "space": "sRGB",
    "linear": False,
    "illuminant": "D65",
    "observer": DEFAULT_OBSERVER,
    "reference_white": "illuminant",
}


def _canonical(name: str) -> str:
    """A metric's name as colour-science's ``CanonicalMapping`` compares it: lower case, no spaces, hyphens, underscores."""
    return re.sub(r"[\s_-]", "", name).lower()


_NAMES = {_canonical(name): name for name in METRICS} | {_canonical(k): v for k, v in _ALIASES.items()}


def _metric(metric: str | Callable[..., jax.Array]) -> tuple[Callable[..., jax.Array], str]:
    """The metric's function and what it takes ('Lab', 'ICtCp' or a UCS's name); a function takes Lab."""
    if callable(metric):
        _check_takes_two(metric)
        return metric, "Lab"
    name = _NAMES.get(_canonical(metric)) if isinstance(metric, str) else None
    if name is None:
        raise ValueError(
            f"colordiff: unknown metric {metric!r}; choose one of {', '.join(map(repr, METRICS))} "
            f"(ignoring case, spaces, hyphens and underscores, as colour-science; also accepted: "
            f"{', '.join(map(repr, _ALIASES))}), or pass a function f(lab1, lab2), "
            f"e.g. functools.partial(tk.colour.cmc, l=1, c=1)."
        )
    return METRICS[name], METRIC_INPUTS[name]


def _check_takes_two(metric: Callable[..., Any]) -> None:
    try:
        signature = inspect.signature(metric)
    except (TypeError, ValueError):
        return  # no signature to read (some builtins): the call will tell
    try:
        signature.bind(None, None)
    except TypeError:
        raise TypeError(
            f"colordiff: metric must be a function of two Lab colours, f(lab1, lab2), but "
            f"{getattr(metric, '__name__', type(metric).__name__)}{signature} cannot be called with two; "
            f"bind other settings first, e.g. functools.partial(tk.colour.cmc, l=1, c=1)."
        ) from None


def _check_batches(a: Any, b: Any) -> None:
    """A ``ValueError`` naming ``a`` and ``b`` (not the metric's arguments) if their batch shapes do not broadcast."""
    shapes = [batch_shape(a), batch_shape(b)]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            f"colordiff: the batch shapes of a {shapes[0]} and b {shapes[1]} do not broadcast together "
            f"(the trailing channel axis excluded). Give them equal shapes, or size-1 axes to broadcast along, "
            f"e.g. a[:, None] against b[None, :]."
        ) from None


def _kind(arrays: Any) -> type | None:
    if arrays is None or arrays in _KINDS.values():
        return arrays
    if isinstance(arrays, str) and arrays in _KINDS:
        return _KINDS[arrays]
    raise ValueError(f"colordiff: arrays must be 'RGB', 'Lab' or 'XYZ' (what plain arrays hold), got {arrays!r}.")


def _checked_colour(colour: Any, name: str, kind: type | None) -> tuple[Any, type]:
    """``colour``, checked to hold real numbers (and, if a plain array, to hold ``kind``), and its kind."""
    if isinstance(colour, (RGB, Lab, XYZ)):
        kind = type(colour)
    colour = checked(colour, kind, "colordiff", name)
    if kind is None:
        raise TypeError(
            f"colordiff: {name} is a plain array ({describe(jnp.asarray(colour))}), which could hold RGB or Lab "
            f"values. Say which, for every plain array:\n"
            f"  colordiff(a, b, arrays='RGB')   # or arrays='Lab' (or 'XYZ')\n"
            f"or pass a struct: tk.colour.RGB(r, g, b), tk.colour.Lab(l, a, b)."
        )
    if not well_formed(colour, kind):
        channels(colour, kind, "colordiff", name)  # raises, naming colordiff's argument
    return colour, kind


def _to_lab(colour: Any, kind: type, work: Any, rgb_settings: dict[str, Any], lab_settings: dict[str, Any]) -> Any:
    """``colour`` (of ``kind``) as Lab: RGB and XYZ converted in the working dtype, Lab as it is."""
    if kind is Lab:
        return colour  # the metric casts it itself
    if needs_cast(colour, work):
        colour = cast(colour, work)
    if kind is RGB:
        return rgb_to_lab(colour, **rgb_settings)
    return xyz_to_lab(colour, **lab_settings)


def _to_xyz(colour: Any, kind: type, work: Any, rgb_settings: dict[str, Any], lab_settings: dict[str, Any]) -> Any:
    """``colour`` (of ``kind``) as CIE XYZ with the white's Y = 1, converted in the working dtype."""
    if needs_cast(colour, work):
        colour = cast(colour, work)
    if kind is RGB:
        return rgb_to_xyz(colour, **{k: v for k, v in rgb_settings.items() if k != "reference_white"})
    if kind is Lab:
        return lab_to_xyz(colour, **lab_settings)
    return colour


def _to_input(colour: Any, kind: type, takes: str, work: Any, rgb_settings: dict, lab_settings: dict) -> Any:
    """``colour`` as what the metric takes: Lab, ICtCp or J′a′b′ (see the module's docstring)."""
    if takes == "Lab":
        return _to_lab(colour, kind, work, rgb_settings, lab_settings)
    xyz = _to_xyz(colour, kind, work, rgb_settings, lab_settings)
    if isinstance(xyz, XYZ):
        xyz = jnp.stack(channels(xyz, XYZ, "colordiff", "xyz"), axis=-1)
    illuminant = lab_settings.get("illuminant", "D65")
    observer = lab_settings.get("observer", DEFAULT_OBSERVER)
    if takes == "ICtCp":
        return xyz_to_ictcp(xyz * _ITP_WHITE, illuminant, observer=observer)
    return xyz_to_ucs(xyz, takes, xyz_w=tuple(white_xyz(illuminant, observer).tolist()))


def colordiff(
    a: Any,
    b: Any,
    metric: str | Callable[..., jax.Array] = "CIEDE2000",
    *,
    arrays: str | type | None = None,
    space: str = "sRGB",
    **conversion: Any,
) -> jax.Array:
    """The colour difference between ``a`` and ``b`` (Colors.jl's ``colordiff``; default metric CIEDE2000).

    ``a`` and ``b`` are ``RGB``, ``Lab`` or ``XYZ`` structs, or plain arrays whose
    last axis holds three channels; colours that are not Lab are converted with
    :func:`~toolkit.colour.rgb_to_lab` (RGB in ``space``, sRGB by default) or
    :func:`~toolkit.colour.xyz_to_lab`. A plain array does not say what it holds,
    so with plain arrays ``arrays`` is required: ``"RGB"``, ``"Lab"`` or ``"XYZ"``.

    Args:
        metric: ``"CIEDE2000"`` (default), ``"CIE94"``, ``"CMC"`` (2:1), ``"CIE76"``,
            ``"DIN99"``, ``"HyAB"``, ``"HyCH"``, ``"ITP"``, ``"CAM02-LCD"``, ``"CAM02-SCD"``,
            ``"CAM02-UCS"``, ``"CAM16-LCD"``, ``"CAM16-SCD"``, ``"CAM16-UCS"`` (every name
            colour-science's ``delta_E`` takes, matched as it matches them, and Colors.jl's),
            or a function ``f(lab1, lab2)`` of two Lab colours for other settings. For the
            asymmetric CIE94 and CMC, ``a`` is the reference. Colours are converted to
            what the metric takes (see :mod:`toolkit.colour.metrics`).
        arrays: what plain arrays hold (structs say it themselves).
        space: the RGB colourspace of RGB colours.
        conversion: ``linear``, ``illuminant``, ``observer``, ``reference_white``,
            as for :func:`~toolkit.colour.rgb_to_lab` (``illuminant``/``observer``
            also apply to XYZ colours). Every setting is checked, whether or not
            the colours given need it.

    The gradient is with respect to the colours as given: an ``RGB`` struct gets
    an ``RGB`` gradient. See :mod:`toolkit.colour.difference` for the gradients
    at grey colours, at ΔE = 0 and along the 180° hue seam.

    Example:
        >>> import toolkit as tk
        >>> from toolkit.colour import RGB, colordiff
        >>> round(float(colordiff(RGB(1.0, 0.0, 0.0), RGB(1.0, 1.0, 1.0))), 2)
        45.81
        >>> grad = tk.gradient(lambda y: colordiff(RGB(1.0, 0.0, 0.0), y), RGB(1.0, 1.0, 1.0))[0]
        >>> type(grad).__name__
        'RGB'
    """
    f, takes = _metric(metric)
    kind = _kind(arrays)
    unknown = sorted(set(conversion) - {"linear", "illuminant", "observer", "reference_white"})
    if unknown:
        raise TypeError(
            f"colordiff: unknown keyword argument(s) {', '.join(unknown)}; conversion settings are linear, "
            f"illuminant, observer and reference_white (metric settings go in a function: "
            f"metric=functools.partial(tk.colour.cmc, l=1, c=1))."
        )
    lab_settings = {k: v for k, v in conversion.items() if k in ("illuminant", "observer")}
    rgb_settings = dict(conversion, space=space)
    lookup("colordiff", **{**_DEFAULT_SETTINGS, **rgb_settings})  # every setting checked, used or not
    (a, kind_a), (b, kind_b) = _checked_colour(a, "a", kind), _checked_colour(b, "b", kind)
    _check_batches(a, b)
    dtype = promoted(a, b)
    work = working_dtype(dtype)
    # RGB and XYZ are converted in the working dtype (float32 for half precision), so
    # that Lab is not rounded to float16 or bfloat16 on the way to the metric.
    lab_a = _to_input(a, kind_a, takes, work, rgb_settings, lab_settings)
    lab_b = _to_input(b, kind_b, takes, work, rgb_settings, lab_settings)
    difference = f(lab_a, lab_b)
    if work == dtype:
        return difference
    # Half precision: return what f gives colours of dtype.
    if isinstance(metric, str):  # one of ours at its defaults: the colours' dtype
        return cast(difference, dtype)
    like = [jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), dtype), lab) for lab in (lab_a, lab_b)]
    return jax.tree.map(lambda d, shape: d.astype(shape.dtype), difference, jax.eval_shape(f, *like))

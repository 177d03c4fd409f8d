"""DIN99 colour space and colour difference ΔE99 (DIN 6176; ASTM D2244-07), differentiable.

``lab_to_din99`` is colour-science's ``Lab_to_DIN99`` (methods DIN99, DIN99b, DIN99c, DIN99d, with the
weights k_E, k_CH) and ``din99`` its ``delta_E_DIN99``, the Euclidean distance in DIN99.

The map is smooth wherever it is defined: its chroma ``C99 ∝ ln(1 + c6·G)`` is written as
``G·ln(1 + c6·G)/(c6·G)``, so on the grey axis (G = 0) a99, b99 are linear in a*, b* to first order
and the gradient is the true one (not a subgradient). It is defined for L* > -1/c2 (-63.3 for DIN99):
below, ``ln(1 + c2·L*)`` is NaN, in value and gradient, as in colour-science. ΔE99's only kink is at
ΔE99 = 0, where the gradient is **0** (the minimum-norm subgradient).

References:
    DIN 6176:2001, Farbmetrische Bestimmung von Farbabständen bei Körperfarben nach der DIN99-Formel.
    ASTM D2244-07 (2007), Standard practice for calculation of color tolerances and color differences
    from instrumentally measured color coordinates, 7.3 (DIN99).
    Cui G., Luo M. R., Rigg B., Roesler G., Witt K. (2002), Uniform colour spaces based on the DIN99
    colour-difference formula, Color Research & Application 27(4), 282-290 (DIN99b, c, d).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import safe
from toolkit._show import describe
from toolkit.colour._scale import norm3
from toolkit.colour.convert import _run as convert_run
from toolkit.colour.difference import _pair, _run
from toolkit.colour.types import Lab, channels, from_channels

__all__ = ["DIN99_METHODS", "lab_to_din99", "din99"]

# c1 ... c8 of each method (colour-science's DIN99_METHODS; ASTM D2244-07 and Cui et al. 2002).
DIN99_METHODS = {
    "DIN99": (105.509, 0.0158, 16.0, 0.7, 1.0, 0.045, 0.0, 0.045),
    "DIN99b": (303.67, 0.0039, 26.0, 0.83, 23.0, 0.075, 26.0, 1.0),
    "DIN99c": (317.65, 0.0037, 0.0, 0.94, 23.0, 0.066, 0.0, 1.0),
    "DIN99d": (325.22, 0.0036, 50.0, 1.14, 22.5, 0.06, 50.0, 1.0),
}
DIN99_METHODS["ASTMD2244-07"] = DIN99_METHODS["DIN99"]


def _log1p_ratio(x: jax.Array) -> jax.Array:
    """ln(1 + x) / x for x >= 0, and its derivative, accurate down to x = 0.

    Below ε^(1/4) of the dtype it is the series 1 - x/2 + x²/3 - x³/4 (off by x⁴/5 < ε): the quotient's
    derivative, 1/(x(1 + x)) - ln(1 + x)/x², cancels to -1/2 from two terms of size 1/x, and past
    x ≈ 1e-19 (float32) x² underflows and it is -inf (a NaN gradient for a near-grey colour).
    """
    small = x < float(jnp.finfo(jnp.result_type(x)).eps) ** 0.25
    quotient_x = jnp.where(small, 1, x)  # the untaken branch never sees 0
    series = 1 - x * (1 / 2 - x * (1 / 3 - x / 4))
    return jnp.where(small, series, jnp.log1p(quotient_x) / quotient_x)


def _din99(L: Any, a: Any, b: Any, k_E: Any, k_CH: Any, method: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    c1, c2, c3, c4, c5, c6, c7, c8 = DIN99_METHODS[method]
    cos3, sin3 = float(np.cos(np.radians(c3))), float(np.sin(np.radians(c3)))
    cos7, sin7 = float(np.cos(np.radians(c7))), float(np.sin(np.radians(c7)))
    e = cos3 * a + sin3 * b
    f = c4 * (-sin3 * a + cos3 * b)
    G = safe.hypot(e, f)
    # C99 / G = c5·ln(1 + c6·G) / (c8·k_CH·k_E·G), finite at G = 0; a99 = C99·cos(h_ef + c7) and so on.
    ratio = (c5 * c6 / c8) * _log1p_ratio(c6 * G) / (k_CH * k_E)
    a99 = ratio * (cos7 * e - sin7 * f)
    b99 = ratio * (sin7 * e + cos7 * f)
    # An infinite a* or b*: C99 is infinite and the ratio inf/inf; the angle form gives colour-science's ±inf.
    C99 = (c5 / c8) * jnp.log1p(c6 * G) / (k_CH * k_E)
    angle = safe.atan2(f, e) + float(np.radians(c7))
    infinite = jnp.isinf(G)
    a99 = jnp.where(infinite, C99 * jnp.cos(angle), a99)
    b99 = jnp.where(infinite, C99 * jnp.sin(angle), b99)
    L99 = c1 * jnp.log1p(c2 * L) * k_E
    return L99, a99, b99


def _checked_method(caller: str, method: Any) -> str:
    if not isinstance(method, str) or method not in DIN99_METHODS:
        raise ValueError(f"{caller}: method must be one of {', '.join(map(repr, DIN99_METHODS))}, got {method!r}.")
    return method


def _convert(settings: tuple[float, float, str], lab: Any) -> Any:
    return from_channels(lab, _din99(*channels(lab, Lab, "lab_to_din99", "lab"), *settings), Lab)


def _weight(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"lab_to_din99: {name} must be a number > 0 (a parametric weight), got {describe(value)}.")
    if not value > 0:
        raise ValueError(f"lab_to_din99: {name} divides the chroma, so it must be > 0; got {name}={value!r}.")
    return float(value)


def lab_to_din99(lab: Any, k_E: float = 1.0, k_CH: float = 1.0, method: str = "DIN99") -> Any:
    """DIN99 L99, a99, b99 of a CIE L*a*b* colour, as colour-science's ``Lab_to_DIN99`` (ASTM D2244-07, 7.3).

    Returns the form given: a ``Lab`` struct (holding L99, a99, b99) or an array with a trailing axis of 3.
    ``k_E`` and ``k_CH`` are the parametric weights, numbers (2 and 0.5 for textiles); ``method`` one of
    ``DIN99_METHODS`` (DIN99b, DIN99c, DIN99d: Cui et al. 2002).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import lab_to_din99
        >>> [round(v, 4) for v in lab_to_din99(jnp.array([41.52787529, 52.63858304, 26.92317922])).tolist()]
        [53.2282, 28.4163, 3.8984]
    """
    settings = (_weight("k_E", k_E), _weight("k_CH", k_CH), _checked_method("lab_to_din99", method))
    return convert_run(_convert, settings, lab, Lab, "lab_to_din99", "lab")


def _delta(lab1: Any, lab2: Any, textiles: bool) -> jax.Array:
    L1, a1, b1, L2, a2, b2 = _pair("din99", ("lab1", "lab2"), lab1, lab2)
    k_E, k_CH = (2.0, 0.5) if textiles else (1.0, 1.0)
    # Both colours through one computation, so that equal colours map to equal numbers (ΔE99 exactly 0):
    # two separate copies may be fused differently by XLA and round differently.
    L, a, b = (jnp.stack([x, y]) for x, y in ((L1, L2), (a1, a2), (b1, b2)))
    first, second = zip(*_din99(L, a, b, k_E, k_CH, "DIN99"), strict=True)
    return 2 * norm3(*(x / 2 - y / 2 for x, y in zip(first, second, strict=True)))


_delta_compiled = jax.jit(_delta, static_argnums=2)


def din99(lab1: Any, lab2: Any, textiles: bool = False) -> jax.Array:
    """DIN99 colour difference ΔE99 between two CIE L*a*b* colours (DIN 6176; ASTM D2244-07).

    The Euclidean distance between their :func:`lab_to_din99`; ``textiles=True`` uses k_E = 2, k_CH = 0.5.
    As colour-science's ``delta_E(lab1, lab2, method="DIN99", textiles=textiles)``. Symmetric; gradient 0
    at ΔE99 = 0, the true gradient elsewhere (greys included); NaN for L* ≤ -63.3, as colour-science.

    Example:
        >>> from toolkit.colour import Lab, din99
        >>> round(float(din99(Lab(60.2574, -34.0099, 36.2677), Lab(60.4626, -34.1751, 39.4387))), 4)
        1.1772
    """
    if not isinstance(textiles, (bool, np.bool_)):
        raise TypeError(f"din99: textiles must be True or False, got {textiles!r}.")
    flag = bool(textiles)
    return _run(lambda x, y: _delta_compiled(x, y, flag), "din99", ("lab1", "lab2"), lab1, lab2)

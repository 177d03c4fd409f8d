"""Colour appearance models, forward: CIE XYZ to CIECAM02 and CAM16 (J, C, h, s, Q, M, H), differentiable.

``xyz_to_ciecam02`` and ``xyz_to_cam16`` follow colour-science's ``XYZ_to_CIECAM02`` and ``XYZ_to_CAM16``
step by step (and match them to about 1e-12 in float64): XYZ in the model's domain (the white's Y = 100),
the viewing conditions as arguments, with colour-science's sRGB defaults (``CAM_KWARGS_CIECAM02_sRGB``):
the white ``xyz_w`` D65 (Y = 100), the adapting luminance ``L_A = 64/π·0.2`` cd/m² (64 lux, a grey world
of 20%), the background ``Y_b = 20`` and the ``"Average"`` surround. Each of ``L_A``, ``Y_b`` and
``xyz_w`` may be an array that broadcasts with the colours (and is differentiated like them).

**Gradients.** The models are continuous but not everywhere differentiable, and the gradients are
finite everywhere (tested on greys, black, the sRGB cube and out of gamut):

* the post-adaptation compression ``sign(x)·|x|^0.42`` has an infinite slope where a cone response is 0
  (black, and the surfaces where one of the adapted R, G, B crosses 0): the gradient there takes
  ``tk.safe.pow``'s convention, slope **0**. So at black every gradient is 0;
* J, C and s are signed powers (``J = 100·(A/A_w)^(c·z)``, ``C ∝ t^0.9·(J/100)^0.5``,
  ``s = 100·(M/Q)^0.5``) with infinite slopes at 0 for exponents below 1: slope **0** there too;
* the hue angle ``h`` at the model's grey axis (a = b = 0) is 0 with gradient 0 (``tk.safe.atan2``); the
  chroma ``t ∝ hypot(a, b)`` there is a cone, with gradient 0 (``tk.safe.hypot``). Near (not on) the grey
  axis C grows like ``hypot(a, b)^0.9``, whose slope ``∝ hypot(a, b)^-0.1`` is large but finite.

Outside a formula's domain (``Q`` for J < 0, a negative ``L_A`` or ``Y_b``) values are NaN, as in
colour-science; nothing is clipped except CAM16's degree of adaptation D, to [0, 1], as its definition says.

References:
    CIE 159:2004, A colour appearance model for colour management systems: CIECAM02.
    Moroney N., Fairchild M. D., Hunt R. W. G., Li C., Luo M. R., Newman T. (2002), The CIECAM02
    color appearance model, IS&T/SID Tenth Color Imaging Conference, 23-27.
    Li C., Li Z., Wang Z., Xu Y., Luo M. R., Cui G., Melgosa M., Brill M. H., Pointer M. (2017),
    Comprehensive color solutions: CAM16, CAT16, and CAM16-UCS, Color Research & Application 42(6), 703-718.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import safe
from toolkit._show import describe
from toolkit.colour._dtypes import promoted, working_dtype
from toolkit.colour._hue import hue
from toolkit.colour.spaces import white_xyz
from toolkit.colour.types import XYZ, Channels, channels, checked

__all__ = ["Surround", "SURROUNDS", "Appearance", "xyz_to_ciecam02", "xyz_to_cam16", "DEFAULT_L_A", "DEFAULT_Y_B"]


class Surround(NamedTuple):
    """The induction factors of a surround: the degree of adaptation F, the impact c and N_c (CIE 159:2004)."""

    F: float
    c: float
    N_c: float


SURROUNDS = {
    "Average": Surround(1.0, 0.69, 1.0),
    "Dim": Surround(0.9, 0.59, 0.9),
    "Dark": Surround(0.8, 0.525, 0.8),
}
DEFAULT_L_A = 64 / math.pi * 0.2  # cd/m²: colour-science's CAM_KWARGS_CIECAM02_sRGB
DEFAULT_Y_B = 20.0


class Appearance(NamedTuple):
    """The correlates of a colour appearance model, as colour-science's ``CAM_Specification_CIECAM02``.

    J lightness, C chroma, h hue angle (degrees), s saturation, Q brightness, M colourfulness,
    H hue quadrature; arrays of the colours' batch shape (a pytree, so it passes through ``jax.jit``).
    """

    J: jax.Array
    C: jax.Array
    h: jax.Array
    s: jax.Array
    Q: jax.Array
    M: jax.Array
    H: jax.Array


_CAT02 = np.array([[0.7328, 0.4296, -0.1624], [-0.7036, 1.6975, 0.0061], [0.0030, 0.0136, 0.9834]])
_HPE = np.array([[0.38971, 0.68898, -0.07868], [-0.22981, 1.18340, 0.04641], [0.0, 0.0, 1.0]])
_M16 = np.array([[0.401288, 0.650173, -0.051461], [-0.250268, 1.204414, 0.045854], [-0.002079, 0.048952, 0.953127]])
_CAT02_TO_HPE = _HPE @ np.linalg.inv(_CAT02)
_HUE_ANGLES = np.array([20.14, 90.0, 164.25, 237.53, 380.14])  # CIE 159:2004 Table 2 (unique hues)
_HUE_E = np.array([0.8, 0.7, 1.0, 1.2, 0.8])
_HUE_H = np.array([0.0, 100.0, 200.0, 300.0, 400.0])


def _mix(matrix: np.ndarray, c: Channels) -> Channels:
    m = matrix.tolist()
    return tuple(m[i][0] * c[0] + m[i][1] * c[1] + m[i][2] * c[2] for i in range(3))  # type: ignore[return-value]


def _compress(x: jax.Array, F_L: jax.Array) -> jax.Array:
    """400·sign(x)·p / (27.13 + p) + 0.1 with p = (F_L·|x|/100)^0.42; slope 0 at x = 0 (``tk.safe.pow``)."""
    q = safe.pow(F_L * x / 100, 0.42, signed=True)
    return 400 * q / (27.13 + jnp.abs(q)) + 0.1


def hue_quadrature(h: jax.Array) -> jax.Array:
    """H, the hue quadrature of a hue angle ``h`` in degrees (CIE 159:2004, step 9), as colour-science computes it.

    Example:
        >>> from toolkit.colour.cam import hue_quadrature
        >>> round(float(hue_quadrature(219.0484326582719)), 4)
        278.0607
    """
    h = jnp.where(jnp.isnan(h), 0, h)
    i = jnp.searchsorted(jnp.asarray(_HUE_ANGLES, h.dtype), h, side="left") - 1
    i = jnp.where(i < 0, i + len(_HUE_ANGLES), i)

    def at(table: np.ndarray, k: jax.Array) -> jax.Array:
        return jnp.asarray(table, h.dtype)[k]

    h_i, e_i, H_i = at(_HUE_ANGLES, i), at(_HUE_E, i), at(_HUE_H, i)
    h_next, e_next = at(_HUE_ANGLES, (i + 1) % 5), at(_HUE_E, (i + 1) % 5)
    H = H_i + (100 * (h - h_i) / e_i) / ((h - h_i) / e_i + (h_next - h) / e_next)
    H = jnp.where(h < 20.14, 385.9 + (14.1 * h / 0.856) / (h / 0.856 + (20.14 - h) / 0.8), H)
    return jnp.where(h >= 237.53, H_i + (85.9 * (h - h_i) / e_i) / ((h - h_i) / e_i + (360 - h) / 0.856), H)


def _model(xyz: Channels, white: Channels, L_A: Any, Y_b: Any, surround: Any, cam16: bool, discount: bool):
    """The forward model (CIE 159:2004 steps 0-9 for CIECAM02; Li et al. 2017, appendix, for CAM16)."""
    F, c, N_c = surround
    Y_w = white[1]
    n = Y_b / Y_w
    k4 = (1 / (5 * L_A + 1)) ** 4
    F_L = 0.2 * k4 * (5 * L_A) + 0.1 * (1 - k4) ** 2 * safe.cbrt(5 * L_A)
    N_bb = 0.725 * (1 / n) ** 0.2
    z = 1.48 + safe.sqrt(n)
    D = F * (1 - (1 / 3.6) * jnp.exp((-L_A - 42) / 92))
    D = jnp.ones_like(D) if discount else (jnp.clip(D, 0, 1) if cam16 else D)
    cone = _M16 if cam16 else _CAT02
    rgb, rgb_w = _mix(cone, xyz), _mix(cone, white)
    factors = [Y_w * D / w + 1 - D for w in rgb_w]
    adapted: Channels = (factors[0] * rgb[0], factors[1] * rgb[1], factors[2] * rgb[2])
    adapted_w: Channels = (factors[0] * rgb_w[0], factors[1] * rgb_w[1], factors[2] * rgb_w[2])
    if not cam16:
        adapted, adapted_w = _mix(_CAT02_TO_HPE, adapted), _mix(_CAT02_TO_HPE, adapted_w)
    R, G, B = (_compress(v, F_L) for v in adapted)
    R_w, G_w, B_w = (_compress(v, F_L) for v in adapted_w)
    a, b = R - 12 * G / 11 + B / 11, (R + G - 2 * B) / 9
    h = hue(b, a)
    e_t = 0.25 * (jnp.cos(2 + jnp.radians(h)) + 3.8)
    A = (2 * R + G + B / 20 - 0.305) * N_bb
    A_w = (2 * R_w + G_w + B_w / 20 - 0.305) * N_bb
    J = 100 * safe.pow(A / A_w, c * z, signed=True)
    F_L4 = safe.pow(F_L, 0.25)
    Q = (4 / c) * safe.sqrt(J / 100) * (A_w + 4) * F_L4
    t = (50000 / 13) * N_c * N_bb * e_t * safe.hypot(a, b) / (R + G + 21 * B / 20)
    C = safe.pow(t, 0.9, signed=True) * safe.pow(J / 100, 0.5, signed=True) * (1.64 - 0.29**n) ** 0.73
    M = C * F_L4
    s = 100 * safe.pow(jnp.nan_to_num(safe.div(M, Q)), 0.5, signed=True)  # colour-science's sdiv: M/NaN is 0
    return Appearance(J=J, C=C, h=h, s=s, Q=Q, M=M, H=hue_quadrature(h))


_model_compiled = jax.jit(_model, static_argnums=(5, 6))


def _surround(caller: str, surround: Any) -> tuple[float, float, float] | tuple[Any, Any, Any]:
    """(F, c, N_c) of a surround's name, a ``Surround``, colour-science's ``InductionFactors_CIECAM02`` or a triple."""
    if isinstance(surround, str):
        if surround not in SURROUNDS:
            raise ValueError(
                f"{caller}: unknown surround {surround!r}; choose one of {', '.join(map(repr, SURROUNDS))}, or pass "
                f"the induction factors (F, c, N_c), e.g. tk.colour.Surround(F=1.0, c=0.69, N_c=1.0)."
            )
        F, c, N_c = SURROUNDS[surround]
        return F, c, N_c
    if all(hasattr(surround, k) for k in ("F", "c", "N_c")):
        return surround.F, surround.c, surround.N_c
    if isinstance(surround, (tuple, list)) and len(surround) == 3:
        F, c, N_c = surround
        return F, c, N_c
    raise TypeError(
        f"{caller}: surround must be 'Average', 'Dim', 'Dark' or the induction factors (F, c, N_c), "
        f"got {describe(surround)}; e.g. surround='Dim' or tk.colour.Surround(F=0.9, c=0.59, N_c=0.9)."
    )


def _real(caller: str, name: str, value: Any) -> Any:
    value = checked(value, None, caller, name)  # a TypeError naming it unless it holds real numbers
    if jnp.issubdtype(jnp.result_type(value), jnp.complexfloating) or jnp.result_type(value) == np.dtype(bool):
        raise TypeError(f"{caller}: {name} must be a real number or array of real numbers, got {describe(value)}.")
    return value


@functools.cache
def _default_white() -> tuple[float, float, float]:
    return tuple((100 * white_xyz("D65")).tolist())  # type: ignore[return-value]


def appearance(
    caller: str,
    xyz: Any,
    xyz_w: Any,
    L_A: Any,
    Y_b: Any,
    surround: Any,
    cam16: bool,
    discount_illuminant: Any,
    scale: float = 1.0,
) -> Appearance:
    """The checked, dtype-handled call of the model behind :func:`xyz_to_ciecam02` and :func:`xyz_to_cam16`.

    ``scale`` multiplies ``xyz`` and ``xyz_w`` first (100 for XYZ whose white has Y = 1).
    """
    if not isinstance(discount_illuminant, (bool, np.bool_)):
        raise TypeError(f"{caller}: discount_illuminant must be True or False, got {describe(discount_illuminant)}.")
    xyz_w = _default_white() if xyz_w is None else xyz_w
    factors = tuple(_real(caller, f"surround.{k}", v) for k, v in zip(("F", "c", "N_c"), _surround(caller, surround)))
    L_A, Y_b = _real(caller, "L_A", L_A), _real(caller, "Y_b", Y_b)
    parts = channels(xyz, XYZ, caller, "xyz")
    if isinstance(xyz_w, tuple) and len(xyz_w) == 3 and all(type(v) in (float, int) for v in xyz_w):
        white = tuple(float(v) * scale for v in xyz_w)  # Python numbers: they take the colours' dtype
    else:
        white = tuple(p.astype(working_dtype(promoted(p))) * scale for p in channels(xyz_w, XYZ, caller, "xyz_w"))
    shapes = {"xyz": parts[0].shape, "xyz_w": np.shape(white[0]), "L_A": np.shape(L_A), "Y_b": np.shape(Y_b)}
    try:
        np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(
            f"{caller}: the batch shapes of {listed} do not broadcast together (the trailing X, Y, Z axis "
            f"excluded); give them equal shapes, or size-1 axes to broadcast along."
        ) from None
    dtype = promoted(parts, white, L_A, Y_b, factors)
    work = working_dtype(dtype)
    cast = lambda v: v if type(v) in (float, int) else jnp.asarray(v, work)  # noqa: E731
    out = _model_compiled(
        tuple(p.astype(work) * scale for p in parts),
        tuple(cast(p) for p in white),
        cast(L_A),
        cast(Y_b),
        tuple(cast(f) for f in factors),
        cam16,
        bool(discount_illuminant),
    )
    return Appearance(*(v if v.dtype == dtype else v.astype(dtype) for v in out))


def xyz_to_ciecam02(
    xyz: Any,
    xyz_w: Any = None,
    L_A: Any = DEFAULT_L_A,
    Y_b: Any = DEFAULT_Y_B,
    surround: Any = "Average",
    *,
    discount_illuminant: bool = False,
) -> Appearance:
    """CIECAM02's correlates of ``xyz`` (CIE 159:2004; Moroney et al. 2002), as colour-science's ``XYZ_to_CIECAM02``.

    ``xyz`` and the white ``xyz_w`` are in the model's domain, the white's Y = 100 (an ``XYZ`` struct or an
    array with a trailing axis of 3; default D65). ``L_A`` is the adapting field's luminance in cd/m², ``Y_b``
    the background's relative luminance, ``surround`` ``"Average"``, ``"Dim"``, ``"Dark"`` or the factors
    ``Surround(F, c, N_c)``. See :mod:`toolkit.colour.cam` for the defaults and the gradients.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import xyz_to_ciecam02
        >>> spec = xyz_to_ciecam02(jnp.array([19.01, 20.0, 21.78]), jnp.array([95.05, 100.0, 108.88]), 318.31, 20.0)
        >>> [round(float(v), 2) for v in (spec.J, spec.C, spec.Q)], round(float(spec.h))  # h of a near-grey
        ([41.73, 0.1, 195.37], 219)
    """
    return appearance("xyz_to_ciecam02", xyz, xyz_w, L_A, Y_b, surround, False, discount_illuminant)


def xyz_to_cam16(
    xyz: Any,
    xyz_w: Any = None,
    L_A: Any = DEFAULT_L_A,
    Y_b: Any = DEFAULT_Y_B,
    surround: Any = "Average",
    *,
    discount_illuminant: bool = False,
) -> Appearance:
    """CAM16's correlates of ``xyz`` (Li et al. 2017), as colour-science's ``XYZ_to_CAM16``.

    As :func:`xyz_to_ciecam02`, with CAM16's single matrix M16 for adaptation and compression (no
    Hunt-Pointer-Estévez step) and D clipped to [0, 1].

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import xyz_to_cam16
        >>> spec = xyz_to_cam16(jnp.array([19.01, 20.0, 21.78]), jnp.array([95.05, 100.0, 108.88]), 318.31, 20.0)
        >>> [round(float(v), 2) for v in (spec.J, spec.C, spec.Q)], round(float(spec.h))  # h of a near-grey
        ([41.73, 0.1, 195.37], 217)
    """
    return appearance("xyz_to_cam16", xyz, xyz_w, L_A, Y_b, surround, True, discount_illuminant)

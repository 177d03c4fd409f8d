"""ICtCp (ITU-R BT.2100, PQ) with the SMPTE ST 2084 transfer function, and ΔE_ITP (ITU-R BT.2124), differentiable.

``pq_encode`` is ST 2084's inverse EOTF (colour-science's ``eotf_inverse_ST2084``), ``rgb_to_ictcp`` and
``xyz_to_ictcp`` colour-science's ``RGB_to_ICtCp`` and ``XYZ_to_ICtCp`` (method "Dolby 2016", the same as
"ITU-R BT.2100-2 PQ"), with light in cd/m² (``L_p`` = 10000 cd/m² is PQ's peak), and ``itp`` its
``delta_E_ITP``: 720·sqrt(ΔI² + (ΔT)² + ΔP²) with T = Ct/2, P = Cp.

**Gradients.** PQ starts with ``(Y/L_p)^m1``, m1 = 0.159, whose slope is infinite at Y = 0: the gradient
takes ``tk.safe.pow``'s convention there, slope **0** (so at black, and where one of the LMS signals is
0, that signal's gradient is 0). Negative (out-of-gamut) signals are encoded with the signed power, as
colour-science does; that extension has a pole where ``c3·Y_p = -1`` (a negative LMS signal of about
-1.1e-4 cd/m², far out of gamut), near which values and gradients overflow, as colour-science's values do.
Elsewhere values and gradients are finite. ΔE_ITP is Euclidean: gradient **0** at ΔE_ITP = 0.

References:
    SMPTE ST 2084:2014, High dynamic range electro-optical transfer function of mastering reference displays.
    ITU-R BT.2100-2 (2018), Image parameter values for high dynamic range television, Table 4 (PQ) and 6 (ICtCp).
    ITU-R BT.2124-0 (2019), Objective metric for the assessment of the potential visibility of colour
    differences in television (ΔE_ITP).
    Dolby Laboratories (2016), ICtCp dolby white paper, version 7.2.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from toolkit import safe
from toolkit._show import describe
from toolkit.colour._scale import norm3
from toolkit.colour.convert import _run as convert_run
from toolkit.colour.convert import xyz_to_rgb
from toolkit.colour.difference import _pair, _run
from toolkit.colour.spaces import DEFAULT_OBSERVER
from toolkit.colour.transfer import _elementwise
from toolkit.colour.types import RGB, XYZ, channels, from_channels

__all__ = ["pq_encode", "rgb_to_ictcp", "xyz_to_ictcp", "itp"]

_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128  # ST 2084's m1, m2 and c1, c2, c3
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
_RGB_TO_LMS = np.array([[1688, 2146, 262], [683, 2951, 462], [99, 309, 3688]]) / 4096  # BT.2100 Table 6
_LMS_TO_ICTCP = np.array([[2048, 2048, 0], [6610, -13613, 7003], [17933, -17390, -543]]) / 4096


def _pq(Y: jax.Array, L_p: float) -> jax.Array:
    Y_p = safe.pow(Y / L_p, _M1, signed=True)
    return safe.pow((_C1 + _C2 * Y_p) / (_C3 * Y_p + 1), _M2, signed=True)


def _peak(caller: str, L_p: Any) -> float:
    if isinstance(L_p, (bool, np.bool_)) or not isinstance(L_p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{caller}: L_p is PQ's peak luminance, a number of cd/m² (10000), got {describe(L_p)}.")
    if not L_p > 0:
        raise ValueError(f"{caller}: L_p divides the luminance, so it must be > 0 (PQ's is 10000); got L_p={L_p!r}.")
    return float(L_p)


def pq_encode(linear: Any, L_p: float = 10000.0) -> Any:
    """SMPTE ST 2084's inverse EOTF: luminance in cd/m² to PQ code values in [0, 1], as colour-science's ``eotf_inverse_ST2084``.

    Elementwise on any array; negative values are encoded with the signed power (odd extension).

    Example:
        >>> from toolkit.colour import pq_encode
        >>> round(float(pq_encode(100.0)), 6)
        0.508078
    """
    return _elementwise(_curve(_peak("pq_encode", L_p)), linear, "pq_encode", "linear")


@functools.cache
def _curve(L_p: float) -> Any:
    """PQ at peak ``L_p``, one function per peak (so its kernel is compiled once)."""
    return functools.partial(_pq, L_p=L_p)


def _rgb_to_ictcp(L_p: float, rgb: Any) -> Any:
    lms = [_pq(v, L_p) for v in _mix(_RGB_TO_LMS, channels(rgb, RGB, "rgb_to_ictcp", "rgb"))]
    return from_channels(rgb, _mix(_LMS_TO_ICTCP, lms), RGB)


def _mix(matrix: np.ndarray, c: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    m = matrix.tolist()
    return tuple(m[i][0] * c[0] + m[i][1] * c[1] + m[i][2] * c[2] for i in range(3))  # type: ignore[return-value]


def rgb_to_ictcp(rgb: Any, L_p: float = 10000.0) -> Any:
    """ICtCp of linear ITU-R BT.2020 RGB in cd/m² (BT.2100 PQ), as colour-science's ``RGB_to_ICtCp``.

    Returns the form given: an ``RGB`` struct (holding I, Ct, Cp) or an array with a trailing axis of 3.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import rgb_to_ictcp
        >>> [round(v, 4) for v in rgb_to_ictcp(jnp.array([0.45620519, 0.03081071, 0.04091952])).tolist()]
        [0.0735, 0.0048, 0.0935]
    """
    return convert_run(_rgb_to_ictcp, _peak("rgb_to_ictcp", L_p), rgb, RGB, "rgb_to_ictcp", "rgb")


def xyz_to_ictcp(xyz: Any, illuminant: Any = "D65", L_p: float = 10000.0, *, observer: str = DEFAULT_OBSERVER) -> Any:
    """ICtCp of CIE XYZ in cd/m² (Y is the luminance) under ``illuminant``, as colour-science's ``XYZ_to_ICtCp``.

    XYZ to linear BT.2020 with colour-science's matrix (CAT02 from ``illuminant`` to D65 if they differ),
    then :func:`rgb_to_ictcp`. Returns an array with a trailing axis of 3 (or an ``RGB`` struct for a struct).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import xyz_to_ictcp
        >>> [round(v, 4) for v in xyz_to_ictcp(jnp.array([0.20654008, 0.12197225, 0.05136952])).tolist()]
        [0.0686, -0.0028, 0.0602]
    """
    peak = _peak("xyz_to_ictcp", L_p)
    if isinstance(xyz, XYZ):
        xyz = jax.numpy.stack(channels(xyz, XYZ, "xyz_to_ictcp", "xyz"), axis=-1)
    rgb = xyz_to_rgb(xyz, "ITU-R BT.2020", linear=True, illuminant=illuminant, observer=observer)
    return rgb_to_ictcp(rgb, peak)


def _itp(ictcp1: Any, ictcp2: Any) -> jax.Array:
    I1, T1, P1, I2, T2, P2 = _pair("itp", ("ictcp1", "ictcp2"), ictcp1, ictcp2)
    return 1440 * norm3(I1 / 2 - I2 / 2, T1 / 4 - T2 / 4, P1 / 2 - P2 / 2)  # 720·2·(halves): cannot overflow


_itp_compiled = jax.jit(_itp)


def itp(ictcp1: Any, ictcp2: Any) -> jax.Array:
    """ΔE_ITP between two ICtCp colours (ITU-R BT.2124): 720·sqrt(ΔI² + (ΔCt/2)² + ΔCp²).

    As colour-science's ``delta_E(ictcp1, ictcp2, method="ITP")``; 1 is about one just-noticeable
    difference. ICtCp from :func:`xyz_to_ictcp` or :func:`rgb_to_ictcp` (absolute light, cd/m²), or
    ``colordiff(a, b, "ITP")``. Symmetric; gradient 0 at ΔE_ITP = 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import itp
        >>> round(float(itp(jnp.array([0.4885468072, -0.04739350675, 0.07475401302]),
        ...                 jnp.array([0.4899203231, -0.04567508203, 0.07361341775]))), 4)
        1.4266
    """
    return _run(_itp_compiled, "itp", ("ictcp1", "ictcp2"), ictcp1, ictcp2)

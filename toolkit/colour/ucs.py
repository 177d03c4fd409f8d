"""The uniform colour spaces J′a′b′ of CIECAM02 (CAM02-LCD, -SCD, -UCS) and CAM16 (CAM16-LCD, -SCD, -UCS), and their ΔE′.

``xyz_to_ucs(xyz, "CAM02-UCS")`` is colour-science's ``XYZ_to_CAM02UCS`` (and likewise for the other five):
XYZ with the white's Y = 1 (toolkit's XYZ, colour-science's domain 1) through :func:`~toolkit.colour.xyz_to_ciecam02`
or :func:`~toolkit.colour.xyz_to_cam16` (the viewing conditions as arguments, colour-science's sRGB defaults),
then J′ = (1 + 100·c1)·J / (1 + c1·J), M′ = ln(1 + c2·M) / c2, a′ = M′·cos h, b′ = M′·sin h.

The six ΔE′ take J′a′b′ arrays (as colour-science's ``delta_E(..., method="CAM02-UCS")``):
ΔE′ = sqrt((ΔJ′/K_L)² + Δa′² + Δb′²), Euclidean, so their only kink is at ΔE′ = 0, where the gradient
is **0** (the minimum-norm subgradient). Through ``xyz_to_ucs`` the gradients are the models'
(see :mod:`toolkit.colour.cam`): finite everywhere, 0 at black, and at the model's grey axis (a = b = 0,
where M′ grows like hypot(a, b)^0.9) the a′, b′ gradient is 0.

References:
    Luo M. R., Cui G., Li C. (2006), Uniform colour spaces based on CIECAM02 colour appearance model,
    Color Research & Application 31(4), 320-330 (K_L, c1, c2 of LCD, SCD, UCS, and ΔE′).
    Li C., Li Z., Wang Z., Xu Y., Luo M. R., Cui G., Melgosa M., Brill M. H., Pointer M. (2017),
    Comprehensive color solutions: CAM16, CAT16, and CAM16-UCS, Color Research & Application 42(6), 703-718.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from toolkit.colour._scale import norm3
from toolkit.colour.cam import DEFAULT_L_A, DEFAULT_Y_B, appearance
from toolkit.colour.difference import _pair, _run
from toolkit.colour.spaces import white_xyz

__all__ = [
    "UCS_COEFFICIENTS",
    "jmh_to_ucs",
    "xyz_to_ucs",
    "cam02_lcd",
    "cam02_scd",
    "cam02_ucs",
    "cam16_lcd",
    "cam16_scd",
    "cam16_ucs",
]

# Luo et al. (2006), Table 3: (K_L, c1, c2); CAM16's spaces use the same (Li et al. 2017).
UCS_COEFFICIENTS = {"LCD": (0.77, 0.007, 0.0053), "SCD": (1.24, 0.007, 0.0363), "UCS": (1.00, 0.007, 0.0228)}
_SPACES = tuple(f"{model}-{kind}" for model in ("CAM02", "CAM16") for kind in UCS_COEFFICIENTS)


def _kind(caller: str, space: Any) -> str:
    if not isinstance(space, str) or space not in _SPACES + tuple(UCS_COEFFICIENTS):
        raise ValueError(
            f"{caller}: space must be one of {', '.join(map(repr, _SPACES))} (or 'LCD', 'SCD', 'UCS'), got {space!r}."
        )
    return space[-3:]


def jmh_to_ucs(J: Any, M: Any, h: Any, space: str = "CAM02-UCS") -> jax.Array:
    """J′a′b′ (last axis) of lightness J, colourfulness M and hue h (degrees) (Luo et al. 2006, eq. 4).

    As colour-science's ``JMh_CIECAM02_to_UCS_Luo2006`` (and ``JMh_CAM16_to_UCS_Li2017``: the same formula);
    ``space`` chooses the coefficients (LCD, SCD or UCS).

    Example:
        >>> from toolkit.colour import jmh_to_ucs
        >>> [round(v, 3) for v in jmh_to_ucs(41.73109113, 0.10884218, 219.04843266).tolist()]
        [54.904, -0.084, -0.068]
    """
    _, c1, c2 = UCS_COEFFICIENTS[_kind("jmh_to_ucs", space)]
    J, M, h = (jnp.asarray(v) for v in (J, M, h))
    return _ucs(J, M, h, c1, c2)


def _ucs(J: jax.Array, M: jax.Array, h: jax.Array, c1: float, c2: float) -> jax.Array:
    J_p = (1 + 100 * c1) * J / (1 + c1 * J)
    M_p = jnp.log1p(c2 * M) / c2
    radians = jnp.radians(h)
    return jnp.stack([J_p, M_p * jnp.cos(radians), M_p * jnp.sin(radians)], axis=-1)


@functools.cache
def _default_white() -> tuple[float, float, float]:
    return tuple(white_xyz("D65").tolist())  # type: ignore[return-value]


def xyz_to_ucs(
    xyz: Any,
    space: str = "CAM02-UCS",
    *,
    xyz_w: Any = None,
    L_A: Any = DEFAULT_L_A,
    Y_b: Any = DEFAULT_Y_B,
    surround: Any = "Average",
    discount_illuminant: bool = False,
) -> jax.Array:
    """J′a′b′ (last axis) of ``xyz`` (Y of the white = 1) in ``space``, as colour-science's ``XYZ_to_CAM02UCS`` etc.

    ``space`` is ``"CAM02-LCD"``, ``"CAM02-SCD"``, ``"CAM02-UCS"`` (Luo et al. 2006) or ``"CAM16-LCD"``,
    ``"CAM16-SCD"``, ``"CAM16-UCS"`` (Li et al. 2017). ``xyz_w`` (Y = 1; default D65), ``L_A`` (cd/m²),
    ``Y_b`` and ``surround`` are the viewing conditions, as for :func:`~toolkit.colour.xyz_to_ciecam02`.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import xyz_to_ucs
        >>> [round(v, 4) for v in xyz_to_ucs(jnp.array([0.20654008, 0.12197225, 0.05136952])).tolist()]
        [46.6139, 29.8831, 12.1235]
    """
    kind = _kind("xyz_to_ucs", space)
    cam16 = space.startswith("CAM16")
    xyz_w = _default_white() if xyz_w is None else xyz_w
    spec = appearance("xyz_to_ucs", xyz, xyz_w, L_A, Y_b, surround, cam16, discount_illuminant, scale=100.0)
    _, c1, c2 = UCS_COEFFICIENTS[kind]
    return _ucs_compiled(spec.J, spec.M, spec.h, c1, c2)


_ucs_compiled = jax.jit(_ucs, static_argnums=(3, 4))


def _luo2006(jab1: Any, jab2: Any, K_L: float, caller: str) -> jax.Array:
    J1, a1, b1, J2, a2, b2 = _pair(caller, ("jab1", "jab2"), jab1, jab2)
    return 2 * norm3((J1 / 2 - J2 / 2) / K_L, a1 / 2 - a2 / 2, b1 / 2 - b2 / 2)  # halves cannot overflow


def _metric(space: str) -> Any:
    K_L = UCS_COEFFICIENTS[space[-3:]][0]
    name = space.lower().replace("-", "_")
    kernel = jax.jit(functools.partial(_luo2006, K_L=K_L, caller=name))

    def metric(jab1: Any, jab2: Any) -> jax.Array:
        return _run(kernel, name, ("jab1", "jab2"), jab1, jab2)

    metric.__name__ = metric.__qualname__ = name
    source = "Luo et al. 2006" if space.startswith("CAM02") else "Li et al. 2017"
    metric.__doc__ = f"""ΔE′ in {space} between two J′a′b′ colours ({source}): sqrt((ΔJ′/{K_L})² + Δa′² + Δb′²).

    As colour-science's ``delta_E(jab1, jab2, method="{space}")``; J′a′b′ from :func:`~toolkit.colour.xyz_to_ucs`
    (``space="{space}"``), or ``colordiff(a, b, "{space}")`` from RGB, Lab or XYZ. Gradient 0 at ΔE′ = 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import {name}
        >>> float({name}(jnp.array([54.9, -0.08, -0.07]), jnp.array([54.9, 2.92, 3.93])))  # Δa′ = 3, Δb′ = 4
        5.0
    """
    return metric


cam02_lcd, cam02_scd, cam02_ucs, cam16_lcd, cam16_scd, cam16_ucs = (_metric(space) for space in _SPACES)

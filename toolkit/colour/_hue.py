"""Hue angles for the colour differences: angle, difference and mean, in degrees, as CIEDE2000 defines them.

Reference:
    Sharma G., Wu W., Dalal E. N. (2005), The CIEDE2000 color-difference formula:
    implementation notes, supplementary test data, and mathematical observations,
    Color Research & Application 30(1), 21-30, equations (7), (10) and (14).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toolkit import safe

__all__ = ["hue", "shared_hues", "hue_difference", "mean_hue"]


def hue(b: jax.Array, a: jax.Array) -> jax.Array:
    """The hue angle of ``(a, b)`` in degrees, in [0, 360]; 0 with gradient 0 at the origin.

    Example:
        >>> from toolkit.colour._hue import hue
        >>> float(hue(-1.0, 0.0)), float(hue(0.0, 0.0))
        (270.0, 0.0)
    """
    return jnp.degrees(safe.atan2(b, a)) % 360


def shared_hues(h1: jax.Array, h2: jax.Array, grey1: jax.Array, grey2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The two hues, where a grey colour (chroma 0) takes the other colour's hue (both 0 if both are grey).

    CIEDE2000 sets Δh' = 0 and h̄' = h1' + h2' when C1'·C2' = 0, with the grey's
    hue 0: the same numbers as a grey borrowing the other hue. Borrowing also
    makes the hue terms constant in the grey colour's a, b along the ray toward
    the other hue (their true derivative there) and keeps ∂h̄'/∂h_other = 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour._hue import shared_hues
        >>> [float(h) for h in shared_hues(jnp.array(0.0), jnp.array(40.0), jnp.array(True), jnp.array(False))]
        [40.0, 40.0]
    """
    return jnp.where(grey1, h2, h1), jnp.where(grey2, h1, h2)


def _opposite_slack(d: jax.Array) -> jax.Array:
    """4·360·ε, ε the machine epsilon of ``d``'s precision (about 5.6 units in the last place of 360).

    Two exactly opposite colours, (a, b) and (-k·a, -k·b), get hue angles whose
    difference rounds to up to one unit in the last place beyond 180 (about 1 in
    14 pairs). Differences within this slack of ±180 count as exactly ±180, so
    opposite colours always take the standard's "exactly 180" branch, with room
    to spare for the compiler rounding the same difference differently in the
    value and in the gradient.
    """
    return 1440 * jnp.asarray(jnp.finfo(jnp.result_type(d)).eps)


def hue_difference(h1: jax.Array, h2: jax.Array) -> jax.Array:
    """Δh' = h2 - h1 taken the short way round, in [-180, 180] (Sharma et al. 2005, eq. 10).

    At ±180 (to within rounding, see ``_opposite_slack``) the standard keeps
    h2 - h1 (its "≤ 180" case).

    Example:
        >>> from toolkit.colour._hue import hue_difference
        >>> float(hue_difference(350.0, 10.0)), float(hue_difference(10.0, 190.0))
        (20.0, 180.0)
    """
    d = h2 - h1
    limit = 180 + _opposite_slack(d)
    return jnp.where(d > limit, d - 360, jnp.where(d < -limit, d + 360, d))


def mean_hue(h1: jax.Array, h2: jax.Array) -> jax.Array:
    """h̄', the mean of two hues taken the short way round (Sharma et al. 2005, eq. 14).

    At a difference of 180 degrees (to within rounding, as :func:`hue_difference`)
    the standard takes the plain mean.

    Example:
        >>> from toolkit.colour._hue import mean_hue
        >>> float(mean_hue(350.0, 10.0)), float(mean_hue(10.0, 190.0))
        (0.0, 100.0)
    """
    total, d = h1 + h2, h1 - h2
    wrapped = jnp.where(total < 360, total + 360, total - 360) / 2
    return jnp.where(jnp.abs(d) <= 180 + _opposite_slack(d), total / 2, wrapped)

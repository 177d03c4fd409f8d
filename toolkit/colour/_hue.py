"""Hue angles for the colour differences: angle, difference and mean, in degrees, as CIEDE2000 defines them.

Reference:
    Sharma G., Wu W., Dalal E. N. (2005), The CIEDE2000 color-difference formula:
    implementation notes, supplementary test data, and mathematical observations,
    Color Research & Application 30(1), 21-30, equations (7), (10) and (14).
    Dekker T. J. (1971), A floating-point technique for extending the available
    precision, Numerische Mathematik 18, 224-242 (the sign of a1'·b2 - b1·a2' at the seam).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toolkit import safe

__all__ = ["hue", "shared_hues", "wraps", "hue_difference", "mean_hue"]


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


def wraps(h1: jax.Array, h2: jax.Array, cross: jax.Array) -> jax.Array:
    """Whether the short way round from h1 to h2 crosses 0°/360°: the standard's |h2 - h1| > 180 (Sharma et al., eq. 10, 14).

    ``cross`` is (a1'·b2 - b1·a2') or anything of its sign (the colours' a*, b*:
    the factor 1 + G does not change it), computed accurately (see
    ``toolkit.colour._scale.cross``). Near opposite hues (90° < |h2 - h1| < 270°)
    the side is read from its sign, not from the rounded hue angles, whose
    rounding (about 1e-5° in float32) would put pairs that close to the seam on
    either side: for h1 < h2, |h2 - h1| <= 180 exactly when ``cross >= 0``.
    Exactly opposite colours (``cross == 0``) take the standard's "<= 180" case.
    Elsewhere the rounded angles are far from 180° and decide as they are.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour._hue import wraps
        >>> [bool(wraps(jnp.array(h1), jnp.array(h2), jnp.array(c))) for h1, h2, c in [(10.0, 190.0, 0.0), (10.0, 190.0, -1e-9), (350.0, 10.0, 1.0)]]
        [False, True, True]
    """
    d = h2 - h1
    near_opposite = (jnp.abs(d) > 90) & (jnp.abs(d) < 270)
    by_cross = jnp.where(d > 0, cross < 0, cross > 0)
    return jnp.where(near_opposite, by_cross, jnp.abs(d) > 180)


def hue_difference(h1: jax.Array, h2: jax.Array, wrapped: jax.Array) -> jax.Array:
    """Δh' = h2 - h1 taken the short way round (Sharma et al. 2005, eq. 10): ``wrapped`` as :func:`wraps` says.

    Example:
        >>> from toolkit.colour._hue import hue_difference
        >>> float(hue_difference(350.0, 10.0, True)), float(hue_difference(10.0, 190.0, False))
        (20.0, 180.0)
    """
    d = h2 - h1
    return jnp.where(wrapped, jnp.where(d > 0, d - 360, d + 360), d)


def mean_hue(h1: jax.Array, h2: jax.Array, wrapped: jax.Array) -> jax.Array:
    """h̄', the mean of two hues taken the short way round (Sharma et al. 2005, eq. 14): ``wrapped`` as :func:`wraps`.

    Example:
        >>> from toolkit.colour._hue import mean_hue
        >>> float(mean_hue(350.0, 10.0, True)), float(mean_hue(10.0, 190.0, False))
        (0.0, 100.0)
    """
    total = h1 + h2
    return jnp.where(wrapped, jnp.where(total < 360, total + 360, total - 360) / 2, total / 2)

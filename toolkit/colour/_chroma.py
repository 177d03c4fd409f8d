"""Chroma with a directional subgradient on the grey axis, for the colour differences.

Chroma ``C = hypot(s·a, b)`` (``s = 1`` for CIE 1976 chroma, ``s = 1 + G`` for
CIEDE2000's C') is a cone over the grey axis ``a = b = 0``: continuous, with a
direction-dependent slope there and no gradient. Autodiff gives ``0/0 = NaN``;
the minimum-norm subgradient ``(0, 0)`` is finite but useless to an optimiser
started at a grey (it would only ever move the lightness, staying grey).

In a colour difference one colour is compared with another, and the ray from the
grey point toward the *other* colour's hue is the one along which every hue term
vanishes identically (the two hues stay equal), so the difference is smooth along
it. :func:`chroma` takes that direction, ``toward``, and at the origin returns
the gradient ``k·u``: ``u`` the unit vector of ``toward`` in the (a, b) plane,
``k = hypot(s·u_a, u_b)`` the cone's slope along ``u``. Its inner product with
``u`` is the true one-sided derivative along ``u``, and it is parallel to ``u``,
so a colour difference built from it has, at a grey colour, a gradient along
the other colour's hue whose negative is a genuine descent direction.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from toolkit.adjoints import adjoint

__all__ = ["chroma"]


def chroma(a: Any, b: Any, toward_a: Any, toward_b: Any, scale: Any = 1.0) -> jax.Array:
    """``hypot(scale·a, b)``; at ``a = b = 0`` its gradient points along ``(toward_a, toward_b)``.

    Gradients: away from the origin the usual ``(scale²·a, b, scale·a²) / C`` with
    respect to ``(a, b, scale)``. At the origin, ``k·u`` with respect to ``(a, b)``,
    where ``u`` is the unit vector of ``(toward_a, toward_b)`` and
    ``k = hypot(scale·u_a, u_b)`` the one-sided slope along ``u``, and 0 with respect
    to ``scale`` (its true value, as ``a = 0``); ``(0, 0)`` if ``toward`` is the
    origin too. ``toward`` only chooses a direction: no gradient flows into it.

    Example:
        >>> import jax
        >>> from toolkit.colour._chroma import chroma
        >>> float(chroma(3.0, 4.0, 0.0, 0.0))
        5.0
        >>> [float(g) for g in jax.grad(chroma, argnums=(0, 1))(0.0, 0.0, 3.0, -4.0)]
        [0.6000000238418579, -0.800000011920929]
    """
    return _cone(*jnp.broadcast_arrays(a, b, scale, toward_a, toward_b))


@adjoint
def _cone(a, b, scale, toward_a, toward_b):
    # sqrt of a sum of squares rather than jnp.hypot: several times cheaper to differentiate. Where the
    # squares underflow (chromas below ~1e-19 in float32) they are taken again, scaled up by a power of two
    # (the colour differences scale huge a*, b* down first, see toolkit.colour._scale).
    scaled = scale * a
    c = jnp.sqrt(scaled * scaled + b * b)
    up = 2.0 ** ((jnp.finfo(c.dtype).maxexp // 2) - 4)  # 2^60 in float32
    small_a, small_b = scaled * up, b * up
    c = jnp.where(c < 1 / up, jnp.sqrt(small_a * small_a + small_b * small_b) * (1 / up), c)
    origin = c == 0
    inverse = 1 / jnp.where(origin, 1, c)
    length_squared = toward_a * toward_a + toward_b * toward_b
    nowhere = length_squared == 0
    inverse_length = jnp.where(nowhere, 0, jax.lax.rsqrt(jnp.where(nowhere, 1, length_squared)))
    u_a, u_b = toward_a * inverse_length, toward_b * inverse_length
    slope = jnp.sqrt((scale * u_a) ** 2 + u_b * u_b)
    d_a = jnp.where(origin, slope * u_a, scale * scaled * inverse)
    d_b = jnp.where(origin, slope * u_b, b * inverse)
    d_scale = jnp.where(origin, 0, a * scaled * inverse)
    return c, lambda Δ: (Δ * d_a, Δ * d_b, Δ * d_scale, None, None)

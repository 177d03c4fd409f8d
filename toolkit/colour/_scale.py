"""Exact rescaling by powers of two, a hypot-like norm and an accurate 2x2 determinant, for the colour differences.

Squaring overflows from about 1.8e19 in float32 (1.3e154 in float64), and the
colour differences square chromas and their differences. As ``hypot`` does, the
formulas here divide by a power of two first, which is exact (it only moves the
exponent), so values in the ordinary range round exactly as they did unscaled,
and huge ones (up to the dtype's largest) give finite values and gradients.

The determinant ``a1·b2 - b1·a2`` decides on which side of CIEDE2000's 180° hue
seam a pair lies. Its two products cancel there, so it is computed as a
double-length sum (Dekker's product: each factor split into two halves whose
partial products are exact), to about ε² relative, and its sign is right for any
pair more than about 1e-13° from the seam, in float32 too.

References:
    Dekker T. J. (1971), A floating-point technique for extending the available
    precision, Numerische Mathematik 18, 224-242 (the exact product, "mul12").
    Kahan W. (1996), Lecture notes on the status of IEEE 754 (scaling by powers of two, hypot).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from toolkit.adjoints import adjoint

__all__ = ["binade", "chroma_scale", "rescaled", "norm3", "cross"]

# Below this, chromas are squared as they are (their squares fit in float32 with room to spare).
_SQUARES_FIT = 2.0**40


def _layout(dtype: np.dtype) -> tuple[np.dtype, int, int]:
    """The unsigned integer of ``dtype``'s width, its number of explicit significand bits and of exponent bits."""
    info = jnp.finfo(dtype)
    return np.dtype(f"uint{info.bits}"), int(info.nmant), int(info.bits - info.nmant - 1)


def binade(x: jax.Array) -> jax.Array:
    """The largest power of two ≤ ``x`` for a positive normal ``x`` (``x`` with its significand bits cleared).

    0 for 0 and subnormals, ``inf`` for ``inf``. No gradient flows through it.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour._scale import binade
        >>> binade(jnp.array([0.0, 3.0, 1e30])).tolist()
        [0.0, 2.0, 6.338253001141147e+29]
    """
    x = jax.lax.stop_gradient(jnp.abs(x))
    uint, mantissa, exponent = _layout(x.dtype)
    mask = np.array(((1 << exponent) - 1) << mantissa, uint)
    return jax.lax.bitcast_convert_type(jax.lax.bitcast_convert_type(x, uint) & mask, x.dtype)


def _limits(dtype: np.dtype) -> tuple[float, float]:
    """The powers of two a scale is kept between: 2^±(maxexp - 28), so that its reciprocal is normal too."""
    e = int(jnp.finfo(dtype).maxexp) - 28
    return 2.0**-e, 2.0**e


def chroma_scale(*channels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A power of two ``s`` and ``1/s`` to divide a*, b* by: 1 unless one of ``channels`` exceeds 2^40.

    With ``s`` the largest a*, b* of a pair divided by ``s`` are below 2 (below
    2^28 past 2^(maxexp - 28)), so chromas, their sums and products do not
    overflow; in the usual range ``s = 1`` and nothing changes.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour._scale import chroma_scale
        >>> [float(v) for v in chroma_scale(jnp.array(3.0), jnp.array(-1e30))]
        [6.338253001141147e+29, 1.5777218104420236e-30]
    """
    largest = jax.lax.stop_gradient(jnp.max(jnp.stack([jnp.abs(c) for c in channels]), axis=0))
    low, high = _limits(largest.dtype)
    s = jnp.where(largest > _SQUARES_FIT, jnp.clip(binade(largest), low, high), 1)
    return s, 1 / s


@adjoint
def rescaled(x: jax.Array, factor: jax.Array):
    """``x·factor`` whose gradient is taken as 1 with respect to ``x``: for a power of two used in pairs.

    A formula computed on inputs divided by ``s`` (``rescaled(a, 1/s)``) whose result is multiplied back
    (``rescaled(y, s)``) has, with both, the gradient it has unscaled: ``s·f'(a/s)·(1/s) = f'(a/s)``, without
    the cotangents in between ever holding the factor ``s`` (which would overflow where the gradient is
    large and ``s`` huge). Every path from the one to the other must go through both.

    Example:
        >>> import jax
        >>> from toolkit.colour._scale import rescaled
        >>> float(rescaled(3.0, 0.25)), float(jax.grad(rescaled)(3.0, 0.25))
        (0.75, 1.0)
    """
    return x * factor, lambda Δ: (Δ, None)


def norm3(x: jax.Array, y: jax.Array, z: jax.Array, rotation: jax.Array | float = 0.0) -> jax.Array:
    """sqrt(x² + y² + z² + rotation·y·z) without overflow or underflow in the squares (|rotation| < 2).

    The terms are divided by a power of two near the largest of them (exactly),
    so the result is finite wherever it is representable and tiny terms are
    not lost; infinite terms (an overflowed quotient) count as the largest
    finite number, so gradients stay finite. The gradient at 0 is 0, as
    ``safe.sqrt``'s.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour._scale import norm3
        >>> float(norm3(jnp.float32(3e30), jnp.float32(4e30), jnp.float32(0.0)))
        4.9999999241216036e+30
    """
    from toolkit import safe  # noqa: PLC0415 (toolkit imports toolkit.colour)

    top = float(jnp.finfo(x.dtype).max)
    # The barrier keeps XLA from seeing a constant term: it would regroup (c·1/p)² as c²·(1/p)², and 1/p² can
    # overflow (0·inf = NaN for a literal 0 under jit, as in a grey colour's a* = b* = 0).
    x, y, z = jax.lax.optimization_barrier(tuple(jnp.clip(t, -top, top) for t in (x, y, z)))
    low, high = _limits(x.dtype)
    largest = jnp.maximum(jnp.maximum(jnp.abs(x), jnp.abs(y)), jnp.abs(z))
    p = jnp.clip(binade(largest), low, high)
    inverse = 1 / p
    u, v, w = x * inverse, y * inverse, z * inverse
    return p * safe.sqrt(u * u + v * v + w * w + rotation * v * w)


def _halves(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``x = high + low`` with ``high`` keeping about half the significand bits (by masking, not arithmetic)."""
    uint, mantissa, _ = _layout(x.dtype)
    mask = np.array(~((1 << (mantissa + 1) // 2) - 1) & ((1 << (8 * uint.itemsize)) - 1), uint)
    high = jax.lax.bitcast_convert_type(jax.lax.bitcast_convert_type(x, uint) & mask, x.dtype)
    return high, x - high


def _product_error(x: jax.Array, y: jax.Array, product: jax.Array) -> jax.Array:
    """``x·y - product`` for ``product = fl(x·y)``: exact in float32, to about 2^-106 relative in float64."""
    xh, xl = _halves(x)
    yh, yl = _halves(y)
    return ((xh * yh - product) + xh * yl + xl * yh) + xl * yl


def cross(a1: jax.Array, b1: jax.Array, a2: jax.Array, b2: jax.Array) -> jax.Array:
    """``a1·b2 - b1·a2`` to about ε² relative (its sign right unless it is within that of 0), antisymmetric exactly.

    Exactly 0 when ``(a2, b2)`` is ``(a1, b1)`` times a power of two, of either sign.
    No gradient flows through it (it decides branches).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour._scale import cross
        >>> a, b = jnp.float32(2.49), jnp.float32(-0.001)
        >>> float(cross(a, b, -a, -b)), float(cross(a, b, -a, -b + jnp.float32(1e-10))) > 0
        (0.0, True)
    """
    a1, b1, a2, b2 = (jax.lax.stop_gradient(t) for t in (a1, b1, a2, b2))
    p, q = a1 * b2, b1 * a2
    return (p - q) + (_product_error(a1, b2, p) - _product_error(b1, a2, q))

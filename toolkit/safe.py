"""Numerically safe primitives: finite gradients at the points where the textbook derivative blows up.

``jnp.sqrt``, ``jnp.hypot``, ``jnp.arctan2``, ``jnp.cbrt``, ``x ** p`` and ``x / y``
have derivatives that are infinite or undefined at a few points (0, the origin,
0/0). Autodiff there yields ``inf`` or ``NaN``, and a single ``NaN`` poisons a
whole gradient, even through the untaken branch of a ``jnp.where``. The functions
here compute the same values (up to the documented 0/0 and atan2 origin
conventions) and, at those points only, return a finite subgradient: each
function's docstring says which one and why. Everywhere else their derivatives
are the usual ones.

All are ``@tk.adjoint`` rules whose pullbacks are linear in Δ, so they work under
``jit``, ``vmap``, reverse mode, forward mode and ``hessian``; their residuals are
elementwise arrays, so XLA fuses the rules into the surrounding computation.
Second derivatives at the singular points are finite too, except where the true
curvature is infinite (``pow`` with ``1 < p < 2``): each ``jnp.where`` guards
both the value and its derivative.

Outside a function's real domain (``sqrt(-1)``, ``pow(-8.0, 0.5)``) values and
gradients are ``NaN``, exactly as in ``jnp``: nothing is clipped. Broadcasting
follows NumPy, and cotangents are summed back to each argument's shape.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import tree
from toolkit.adjoints import adjoint

__all__ = ["sqrt", "hypot", "norm", "atan2", "cbrt", "pow", "div"]

ArrayLike = Any


def _sum_to(cotangent: jax.Array, like: Any) -> jax.Array | None:
    """Sum ``cotangent`` over the axes along which ``like`` was broadcast, in ``like``'s dtype."""
    if not tree.is_differentiable(like):
        return None
    shape = np.shape(like)
    leading = cotangent.ndim - len(shape)
    stretched = tuple(leading + i for i, n in enumerate(shape) if n == 1 and cotangent.shape[leading + i] != 1)
    axes = tuple(range(leading)) + stretched
    summed = jnp.sum(cotangent, axis=axes) if axes else cotangent
    return summed.reshape(shape).astype(jnp.result_type(like))


@adjoint
def sqrt(x: ArrayLike):
    """Square root whose derivative at 0 is 0 (``jnp.sqrt``'s is ``inf``).

    Subgradient at ``x = 0``: **0**. The one-sided derivative there is +∞; 0 is
    what the composed Euclidean norm ``sqrt(sum(v**2))`` has as its minimum-norm
    subgradient at ``v = 0``, and it keeps a loss that touches 0 (a distance
    between equal points) from producing ``inf * 0 = NaN``.
    For ``x < 0`` the value and gradient are ``NaN``, as with ``jnp.sqrt``.

    Example:
        >>> import jax, toolkit as tk
        >>> tk.safe.sqrt(4.0), jax.grad(tk.safe.sqrt)(4.0), jax.grad(tk.safe.sqrt)(0.0)
        (Array(2., dtype=float32, weak_type=True), Array(0.25, dtype=float32, weak_type=True), Array(0., dtype=float32, weak_type=True))
    """
    zero = x == 0
    root = jnp.sqrt(jnp.where(zero, 1, x))
    slope = jnp.where(zero, 0, 0.5 / root)
    return jnp.where(zero, 0, root), lambda Δ: (Δ * slope,)


@adjoint
def hypot(x: ArrayLike, y: ArrayLike):
    """``sqrt(x**2 + y**2)`` without overflow, with gradient ``(0, 0)`` at the origin.

    Subgradient at ``(0, 0)``: **(0, 0)**, the minimum-norm element of the
    subdifferential of the Euclidean norm there (the unit disc), and the only
    choice that does not prefer a direction. Elsewhere ``(x/r, y/r)``.

    Example:
        >>> import jax, toolkit as tk
        >>> tk.safe.hypot(3.0, 4.0), jax.grad(tk.safe.hypot, argnums=(0, 1))(0.0, 0.0)
        (Array(5., dtype=float32, weak_type=True), (Array(0., dtype=float32, weak_type=True), Array(0., dtype=float32, weak_type=True)))
    """
    origin = (x == 0) & (y == 0)
    r = jnp.hypot(jnp.where(origin, 1, x), y)
    inverse = jnp.where(origin, 0, 1 / r)
    ux, uy = x * inverse, y * inverse
    return jnp.where(origin, 0, r), lambda Δ: (_sum_to(Δ * ux, x), _sum_to(Δ * uy, y))


@adjoint
def norm(x: ArrayLike, axis: int | tuple[int, ...] = -1, keepdims: bool = False):
    """Euclidean norm of ``x`` along ``axis`` (default: the last), with gradient 0 at the zero vector.

    Subgradient at ``x = 0``: **the zero vector**, the minimum-norm subgradient
    of the norm at the origin (as for :func:`hypot`). Elsewhere ``x / norm(x)``.

    Example:
        >>> import jax, jax.numpy as jnp, toolkit as tk
        >>> tk.safe.norm(jnp.array([[3.0, 4.0], [0.0, 0.0]]))
        Array([5., 0.], dtype=float32)
        >>> jax.grad(lambda v: tk.safe.norm(v))(jnp.zeros(3))
        Array([0., 0., 0.], dtype=float32)
    """
    squares = jnp.sum(x * x, axis=axis, keepdims=True)
    zero = squares == 0
    root = jnp.sqrt(jnp.where(zero, 1, squares))
    r = jnp.where(zero, 0, root)
    unit = x * jnp.where(zero, 0, 1 / root)

    def pullback(Δ):
        return (Δ if keepdims else jnp.expand_dims(Δ, axis)) * unit, None, None

    return (r if keepdims else jnp.squeeze(r, axis)), pullback


@adjoint
def atan2(y: ArrayLike, x: ArrayLike):
    """The angle of the point ``(x, y)``, in ``(-π, π]``; 0 with gradient ``(0, 0)`` at the origin.

    At ``(0, 0)`` the angle is undefined. The value returned there is **0** for
    every combination of signed zeros (IEEE ``atan2`` gives ±0 or ±π), the hue
    that CIEDE2000 assigns to a neutral colour, and the gradient is **(0, 0)**:
    no direction is preferred, and terms that multiply a hue by a chroma stay
    finite. Elsewhere the gradient is ``(x, -y) / (x**2 + y**2)`` with respect
    to ``(y, x)``.

    Example:
        >>> import jax, toolkit as tk
        >>> float(tk.safe.atan2(1.0, 1.0)), float(tk.safe.atan2(0.0, -0.0))
        (0.7853981852531433, 0.0)
        >>> [float(g) == 0 for g in jax.grad(tk.safe.atan2, argnums=(0, 1))(0.0, 0.0)]
        [True, True]
    """
    origin = (x == 0) & (y == 0)
    angle = jnp.where(origin, 0, jnp.arctan2(y, x))
    inverse = jnp.where(origin, 0, 1 / jnp.hypot(jnp.where(origin, 1, x), y))  # 1/r, not 1/r²: no underflow
    dy, dx = (x * inverse) * inverse, -(y * inverse) * inverse
    return angle, lambda Δ: (_sum_to(Δ * dy, y), _sum_to(Δ * dx, x))


@adjoint
def cbrt(x: ArrayLike):
    """Real cube root (``cbrt(-8) = -2``), with derivative 0 at 0 (``jnp.cbrt``'s is ``inf``).

    Subgradient at ``x = 0``: **0**. The true derivative is +∞ (a vertical
    tangent). CIE L*a*b* evaluates ``cbrt`` inside a ``jnp.where`` whose other
    branch is used near 0; with an infinite derivative the untaken branch still
    turns the gradient into ``inf * 0 = NaN``, with 0 it cannot. Elsewhere
    ``1 / (3 * cbrt(x)**2)``, for negative ``x`` too.

    Example:
        >>> import jax, toolkit as tk
        >>> tk.safe.cbrt(-8.0), jax.grad(tk.safe.cbrt)(8.0), jax.grad(tk.safe.cbrt)(0.0)
        (Array(-2., dtype=float32, weak_type=True), Array(0.08333334, dtype=float32, weak_type=True), Array(0., dtype=float32, weak_type=True))
    """
    zero = x == 0
    root = jnp.cbrt(jnp.where(zero, 1, x))
    slope = jnp.where(zero, 0, 1 / (3 * root * root))
    return jnp.where(zero, 0, root), lambda Δ: (Δ * slope,)


@adjoint
def pow(x: ArrayLike, p: ArrayLike, *, signed: bool = False):
    """``x ** p`` with finite gradients at ``x = 0``; ``signed=True`` gives ``sign(x) * |x| ** p``.

    Negative bases: with ``signed=False`` (default) ``x ** p`` is real only for
    integer-valued ``p``, and is ``NaN`` otherwise, exactly as ``jnp.power``; a
    fractional power of a negative number is never silently replaced. Ask for
    the odd extension with ``signed=True`` (what a real cube root of a signed
    quantity needs: ``pow(x, 1/3, signed=True) == cbrt(x)``).

    Gradients with respect to ``x``: ``p * x ** (p - 1)``. At ``x = 0`` with
    ``p >= 0`` this is taken as its limit where that exists (1 for ``p = 1``,
    0 for ``p > 1`` and ``p = 0``) and as **0** for ``0 < p < 1``, where the
    true derivative is +∞ (same reasoning as :func:`sqrt`). For ``p < 0`` the
    value at 0 is infinite and so is the gradient.

    With respect to ``p``: ``x ** p * log(x)`` (``log|x|`` when signed), and
    **0** at ``x = 0`` for ``p >= 0`` (its limit for ``p > 0``; at ``p = 0``,
    where ``0 ** p`` jumps from 1 to 0, the same 0). It is ``NaN`` for a
    negative base when ``signed=False``, since ``x ** p`` is not defined for
    nearby non-integer ``p``.

    Second derivatives at ``x = 0`` are the true ones where finite (0 for
    ``p = 1`` and ``p > 2``, 2 for ``p = 2``), 0 for ``p < 1`` (continuing the
    choice above) and ``inf`` for ``1 < p < 2``, where the curvature is infinite.

    Example:
        >>> import jax, toolkit as tk
        >>> tk.safe.pow(-8.0, 1 / 3, signed=True), jax.grad(tk.safe.pow)(0.0, 0.5), jax.grad(tk.safe.pow)(2.0, 3.0)
        (Array(-2., dtype=float32, weak_type=True), Array(0., dtype=float32, weak_type=True), Array(12., dtype=float32, weak_type=True))
    """
    zero_base = (x == 0) & (p >= 0)
    infinite_slope = zero_base & (p < 1)  # p * 0 ** (p - 1) is +inf (0 < p < 1) or 0 * inf (p = 0)
    base = jnp.where(zero_base, 1, x)
    magnitude = jnp.abs(base) if signed else base
    power = jnp.sign(base) * jnp.power(magnitude, p) if signed else jnp.power(magnitude, p)
    value_at_zero = 0 if signed else jnp.where(p == 0, 1, 0)  # sign(0) = 0; 0 ** 0 = 1
    constant_slope = infinite_slope | (p == 1)  # 0 ** 0 would give d/dx x ** 0 = 0 * inf
    slope_base = jnp.where(constant_slope, 1, jnp.abs(x) if signed else x)
    slope_x = jnp.where(infinite_slope, 0, p * jnp.power(slope_base, p - 1))
    slope_p = jnp.where(zero_base, 0, power * jnp.log(magnitude))
    return jnp.where(zero_base, value_at_zero, power), lambda Δ: (_sum_to(Δ * slope_x, x), _sum_to(Δ * slope_p, p))


@adjoint
def div(x: ArrayLike, y: ArrayLike):
    """``x / y``, with ``0 / 0 = 0`` and gradient ``(0, 0)`` there.

    At ``x = y = 0`` IEEE division gives ``NaN``. Here the value is **0** (the
    quotient is 0 all along the line ``x = 0``, so 0 continues it there) and the
    gradient is **(0, 0)**: ``∂/∂y = -x/y**2`` is 0 along that line, and
    ``∂/∂x = 1/y`` is infinite, so 0 is the choice that cannot inject ``inf``
    into a sum that is meant to vanish (a ratio of two quantities that are both
    zero, such as chromaticity of black). Elsewhere ``(1/y, -x/y**2)``;
    ``x / 0`` for ``x != 0`` is ``±inf`` as usual.

    Example:
        >>> import jax, toolkit as tk
        >>> float(tk.safe.div(1.0, 4.0)), float(tk.safe.div(0.0, 0.0))
        (0.25, 0.0)
        >>> [float(g) == 0 for g in jax.grad(tk.safe.div, argnums=(0, 1))(0.0, 0.0)]
        [True, True]
    """
    both_zero = (x == 0) & (y == 0)
    denominator = jnp.where(both_zero, 1, y)
    quotient = jnp.where(both_zero, 0, x / denominator)
    inverse = jnp.where(both_zero, 0, 1 / denominator)
    return quotient, lambda Δ: (_sum_to(Δ * inverse, x), _sum_to(-Δ * quotient * inverse, y))

"""Numerically safe primitives: finite gradients at the points where the textbook derivative blows up.

``jnp.sqrt``, ``jnp.hypot``, ``jnp.arctan2``, ``jnp.cbrt``, ``x ** p`` and ``x / y``
have derivatives that are infinite or undefined at a few points (0, the origin,
0/0). Autodiff there yields ``inf`` or ``NaN``, and a single ``NaN`` poisons a
whole gradient, even through the untaken branch of a ``jnp.where``. The functions
here compute the same values (up to the documented 0/0 and atan2 origin
conventions) and, at those points only, return a finite subgradient: each
function's docstring says which one and why. Everywhere else their derivatives
are the usual ones.

Two implementations, chosen per function by comparing the values, first and
second derivatives (``grad``, ``jvp``, ``hessian``, grad of grad; eager and
jitted) of the double-where form with those of the ``@tk.adjoint`` rule, at the
singular points (signed zeros), ordinary points and the extremes of float32 and
float64 (``python benchmarks/adjoint_overhead.py --part agree`` prints that
comparison; ``--part safe`` the costs):

* **Double-where**, plain ``jnp`` (``where(bad, fallback, f(where(bad, 1, x)))``:
  the untaken branch never sees the singular input), where JAX's derivatives of
  ``f`` are the rule's to 2 ulps with no new ``inf``/``NaN``. Under ``jax.jit``,
  so that an eager call is one dispatch: about 10x cheaper eagerly than the
  rule was, the same jitted.

  - ``sqrt``: bit-identical (JAX's derivative is the rule's ``0.5 / sqrt(x)``).
  - ``cbrt``: within 2 ulps (``(1/3) * cbrt(x)**-2`` against ``1 / (3 * cbrt(x)**2)``).

* **``@tk.adjoint`` rules** (value + pullback) where it is not. JAX's derivatives
  of these square an input, so they overflow or underflow into ``inf``, ``NaN``
  or a wrong 0 outside about ``1e±18`` (float32) or ``1e±147`` (float64):

  - ``hypot``: ``jnp.hypot``'s derivative has ``max(|x|, |y|)**-2``; the rule's is ``x/r``.
  - ``atan2``: JAX's ``x / (x**2 + y**2)``; the rule's ``(x/r) * (1/r)``.
  - ``div``: JAX's ``-x * y**-2``; the rule's ``-(x/y) * (1/y)``.
  - ``norm``: values and reverse mode are the same, but where ``sum(x**2)`` overflows (the
    value is then ``inf`` in both) the tangent ``2 * x * dx`` does too: ``NaN`` in forward mode.
  - ``pow``: no one mask gives slope 1 at ``x = 0, p = 1`` and curvature 2 at ``p = 2``; masked
    only for ``p <= 1``, ``jnp.power`` gives ``NaN`` curvature at 0 for ``signed=True, 1 < p < 2``
    (the rule: ``inf``) and ``NaN`` for negative subnormals, which the mask reads as 0.

  The rules' residuals (``x/r``, ``1/y``) are computed with helpers whose own
  derivatives avoid those squares too, so second derivatives (JAX differentiates
  the residuals) are right at the extremes as well; and in one jitted call, so an
  eager call costs about half what it did.

All of them work under ``jit``, ``vmap``, reverse mode, forward mode and
``hessian`` (the rules' pullbacks are linear in Δ), and are elementwise or one
reduction, so XLA fuses them into the surrounding computation.
Second derivatives at the singular points are finite too, except where the true
curvature is infinite (``pow`` with ``1 < p < 2``): each ``jnp.where`` guards
both the value and its derivative. Where a derivative is beyond the float range
(``div(1, 1e-30)`` in float32: ``∂/∂y = -1e60``), forward mode multiplies it by
the other directions' zero tangents, so those come out ``NaN`` (``0 * inf``), as
for any JAX function; reverse mode gives each partial separately. The masks are
computed by XLA, as the values are, so a subnormal input, which XLA on CPU
flushes to 0, gets the zero conventions.

Outside a function's real domain (``sqrt(-1)``, ``pow(-8.0, 0.5)``) values and
gradients are ``NaN``, exactly as in ``jnp``: nothing is clipped. Broadcasting
follows NumPy, and cotangents are summed back to each argument's shape.

Arguments are real numbers or arrays of real numbers of any dtype (integers and
booleans are computed in ``jnp``'s float type); lists and tuples of numbers are
read as arrays. Anything else (``None``, strings, PRNG keys, complex numbers,
NumPy string or object arrays), shapes that do not broadcast and bad options
(``norm``'s ``axis``/``keepdims``, ``pow``'s ``signed``) are errors that name the
function and the argument, raised in Python before anything is traced, so under
``jax.jit`` too.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import filters, tree
from toolkit._show import describe
from toolkit.adjoints import adjoint

__all__ = ["sqrt", "hypot", "norm", "atan2", "cbrt", "pow", "div"]

ArrayLike = Any


# The rules' residuals (x/r, 1/y, ...) are computed with these three, whose own derivatives never
# square anything: JAX's for x / y is -x * y**-2 and for jnp.hypot goes through max(|x|, |y|)**-2,
# which overflow or underflow for |y| beyond about 1e±19 in float32, so second derivatives (JAX
# differentiates the rule's residuals) would be inf, NaN or 0 where the true ones are finite.
# No quotient is divided again: XLA rewrites (a / b) / c as a / (b * c), which overflows.


@jax.custom_jvp
def _quotient(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x / y`` whose derivative is ``(dx - (x/y) dy) / y``."""
    return x / y


@_quotient.defjvp
def _quotient_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    q = _quotient(x, y)
    return q, _quotient(dx - q * dy, y)


@jax.custom_jvp
def _inverse(y: jax.Array) -> jax.Array:
    """``1 / y`` whose derivative is ``-(dy / y) / y``, computed as ``-(dy * (1/y)) * (1/y)``."""
    return 1 / y


@_inverse.defjvp
def _inverse_jvp(primals, tangents):
    (y,), (dy,) = primals, tangents
    inverse = _inverse(y)
    return inverse, -(dy * inverse) * inverse


@jax.custom_jvp
def _hypot(x: jax.Array, y: jax.Array) -> jax.Array:
    """``jnp.hypot`` whose derivative is ``(x/r) dx + (y/r) dy``; the callers keep it away from the origin."""
    return jnp.hypot(x, y)


@_hypot.defjvp
def _hypot_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    r = _hypot(x, y)
    return r, _quotient(x, r) * dx + _quotient(y, r) * dy


def _floats(*args: ArrayLike) -> list[jax.Array]:
    """The arguments broadcast to one shape and one floating dtype, as ``x / y`` promotes them (weak types kept)."""
    ones = jnp.ones_like(functools.reduce(jnp.true_divide, [jnp.ones_like(a) for a in args]))
    return [a * ones for a in args]  # not a + 0: -0.0 keeps its sign


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


# --- arguments: checked in Python before anything is traced, so errors name the function and argument ---

_PYTHON_REALS = (bool, int, float)  # np.float64 is a float too


def _real(caller: str, name: str, x: Any) -> Any:
    """``x`` if it is a real number or an array of real numbers (lists and tuples as arrays), else a ``TypeError``."""
    if isinstance(x, _PYTHON_REALS):
        return x
    if isinstance(x, (list, tuple)):
        return _real(caller, name, _sequence(caller, name, x))
    if not filters.is_array(x):
        raise TypeError(f"tk.safe.{caller}: {name} must be a real number or an array of real numbers, {_got(x)}.")
    if not filters.is_numeric(x):
        raise TypeError(f"tk.safe.{caller}: {name} {_not_numbers(name, x)}.")
    if np.dtype(x.dtype).kind == "c":
        raise TypeError(_complex(caller, name, x))
    return x


def _got(x: Any) -> str:
    if isinstance(x, complex):
        return f"got the complex number {x!r}; pass its real part (x.real), or use jnp for complex values"
    if x is None:
        shown = "None"
    elif isinstance(x, (str, bytes)):
        shown = f"the {type(x).__name__} {x!r}"
    else:
        shown = f"a {describe(x)}"
    return f"got {shown}; pass a float or an array, e.g. jnp.asarray(values)"


def _not_numbers(name: str, x: Any) -> str:
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return f"is a PRNG key array ({describe(x)}), which holds no numbers: draw them first, e.g. jax.random.uniform(key)"
    return f"is an array of dtype {x.dtype}, not numbers; convert it first, e.g. np.asarray({name}, dtype=float)"


def _complex(caller: str, name: str, x: Any) -> str:
    return (
        f"tk.safe.{caller}: {name} is complex ({describe(x)}), but tk.safe functions are real: pass the real and "
        f"imaginary parts as separate real arrays ({name}.real, {name}.imag), or use jnp for complex values."
    )


def _sequence(caller: str, name: str, x: list | tuple) -> jax.Array:
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(
            f"tk.safe.{caller}: {name} is a {type(x).__name__} that is not an array of numbers (ragged, or holding "
            f"something else); pass a number or an array of numbers."
        ) from None


def _real_pair(caller: str, name_a: str, a: Any, name_b: str, b: Any) -> tuple[Any, Any]:
    """Both arguments checked by :func:`_real`, and their shapes to broadcast together."""
    a, b = _real(caller, name_a, a), _real(caller, name_b, b)
    try:
        np.broadcast_shapes(np.shape(a), np.shape(b))
    except ValueError:
        raise ValueError(
            f"tk.safe.{caller}: {name_a} ({describe(a)}) and {name_b} ({describe(b)}) do not broadcast together; "
            f"give them equal shapes, or size-1 axes to broadcast along."
        ) from None
    return a, b


def _inexact(x: Any) -> bool:
    return isinstance(x, float) or (filters.is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact))


def _as_float(x: Any) -> Any:
    """An integer or boolean ``x`` in the floating type ``jnp.sqrt`` gives it (Python scalars stay weakly typed)."""
    if isinstance(x, (bool, int)):
        return float(x)
    return jnp.asarray(x).astype(jnp.sqrt(jnp.zeros((), x.dtype)).dtype)


def _checked_flag(caller: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"tk.safe.{caller}: {name} must be True or False, got {value!r}.")
    return bool(value)


def _small_int(p: Any) -> Any:
    """A Python int exponent outside int32 as a float (JAX cannot hold it as an integer; the value is the same)."""
    return float(p) if type(p) is int and abs(p) >= 2**31 else p


def _checked_axis(x: Any, axis: Any) -> int | tuple[int, ...]:
    """``norm``'s ``axis``: ints within ``x``'s dimensions, without repeats (``None``: all of them)."""
    ndim = np.ndim(x)
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if not all(isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)) for a in axes):
        raise TypeError(f"tk.safe.norm: axis must be an int, a tuple of ints or None, got {axis!r}.")
    if not all(-ndim <= a < ndim for a in axes):
        hint = (
            "the norm of a number is its absolute value, jnp.abs(x)" if ndim == 0 else f"pass axes in [{-ndim}, {ndim})"
        )
        raise ValueError(f"tk.safe.norm: axis={axis!r} is out of range for x of shape {np.shape(x)}; {hint}.")
    if len({int(a) % ndim for a in axes}) != len(axes):
        raise ValueError(f"tk.safe.norm: axis={axis!r} names an axis twice; give each axis once.")
    return tuple(int(a) for a in axes) if isinstance(axis, (tuple, list)) else int(axis)


def sqrt(x: ArrayLike) -> jax.Array:
    """Square root whose derivative at 0 is 0 (``jnp.sqrt``'s is ``inf``).

    Subgradient at ``x = 0``: **0**. The one-sided derivative there is +∞; 0 is
    what the composed Euclidean norm ``sqrt(sum(v**2))`` has as its minimum-norm
    subgradient at ``v = 0``, and it keeps a loss that touches 0 (a distance
    between equal points) from producing ``inf * 0 = NaN``.
    For ``x < 0`` the value and gradient are ``NaN``, as with ``jnp.sqrt``.

    Example:
        >>> import jax, toolkit as tk
        >>> tk.safe.sqrt(4.0), jax.grad(tk.safe.sqrt)(4.0)
        (Array(2., dtype=float32, weak_type=True), Array(0.25, dtype=float32, weak_type=True))
        >>> jax.grad(tk.safe.sqrt)(0.0)
        Array(0., dtype=float32, weak_type=True)
    """
    return _sqrt(_real("sqrt", "x", x))


@jax.jit  # one dispatch when called eagerly, instead of five
def _sqrt(x: ArrayLike) -> jax.Array:
    zero = jnp.equal(x, 0)  # in XLA, as the value: a subnormal is flushed to 0 in both
    return jnp.where(zero, 0, jnp.sqrt(jnp.where(zero, 1, x)))


def hypot(x: ArrayLike, y: ArrayLike) -> jax.Array:
    """``sqrt(x**2 + y**2)`` without overflow, with gradient ``(0, 0)`` at the origin.

    Subgradient at ``(0, 0)``: **(0, 0)**, the minimum-norm element of the
    subdifferential of the Euclidean norm there (the unit disc), and the only
    choice that does not prefer a direction. Elsewhere ``(x/r, y/r)``.

    Example:
        >>> import jax, toolkit as tk
        >>> tk.safe.hypot(3.0, 4.0)
        Array(5., dtype=float32, weak_type=True)
        >>> jax.grad(tk.safe.hypot, argnums=(0, 1))(0.0, 0.0)
        (Array(0., dtype=float32, weak_type=True), Array(0., dtype=float32, weak_type=True))
    """
    x, y = _real_pair("hypot", "x", x, "y", y)
    return _hypot_rule(x, y)


@adjoint
def _hypot_rule(x: ArrayLike, y: ArrayLike):
    r, ux, uy = _hypot_parts(x, y)
    return r, lambda Δ: (_sum_to(Δ * ux, x), _sum_to(Δ * uy, y))


@jax.jit  # one dispatch when called eagerly, instead of one per operation
def _hypot_parts(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    origin = jnp.equal(x, 0) & jnp.equal(y, 0)  # compared in XLA, which flushes subnormals as it computes
    a, b = _floats(jnp.where(origin, 1, x), y)
    r = _hypot(a, b)
    # x/r, not x * (1/r): 1/r is subnormal, so flushed to 0, above 8.5e37 in float32
    ux, uy = jnp.where(origin, 0, _quotient(a, r)), jnp.where(origin, 0, _quotient(b, r))
    return jnp.where(origin, 0, r), ux, uy


def norm(x: ArrayLike, axis: int | tuple[int, ...] | None = -1, keepdims: bool = False) -> jax.Array:
    """Euclidean norm of ``x`` along ``axis`` (default: the last; ``None``: all axes), with gradient 0 at the zero vector.

    Subgradient at ``x = 0``: **the zero vector**, the minimum-norm subgradient
    of the norm at the origin (as for :func:`hypot`). Elsewhere ``x / norm(x)``.

    Range: it is ``sqrt(sum(x**2))``, as ``jnp.linalg.norm`` and ``optax.safe_norm``,
    so a norm above ``sqrt(finfo.max)`` (1.8e19 in float32, 1.3e154 in float64) is
    ``inf``, and one below ``sqrt(finfo.tiny)`` (1.1e-19, 1.5e-154) is 0 with gradient
    0; use :func:`hypot` for two components over the whole range. Integer input
    is converted to ``jnp.sqrt``'s float type before squaring.

    Example:
        >>> import jax, jax.numpy as jnp, toolkit as tk
        >>> tk.safe.norm(jnp.array([[3.0, 4.0], [0.0, 0.0]]))
        Array([5., 0.], dtype=float32)
        >>> jax.grad(lambda v: tk.safe.norm(v))(jnp.zeros(3))
        Array([0., 0., 0.], dtype=float32)
    """
    x = _real("norm", "x", x)
    return _norm_rule(x, _checked_axis(x, axis), _checked_flag("norm", "keepdims", keepdims))


@adjoint
def _norm_rule(x: ArrayLike, axis: int | tuple[int, ...], keepdims: bool):
    r, unit = _norm_parts(x, axis)

    def pullback(Δ):
        return (Δ if keepdims else jnp.expand_dims(Δ, axis)) * unit, None, None

    return (r if keepdims else jnp.squeeze(r, axis)), pullback


@functools.partial(jax.jit, static_argnums=1)
def _norm_parts(x: jax.Array, axis: int | tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.sqrt(jnp.zeros((), x.dtype)).dtype)  # as jnp.sqrt promotes, before squaring (no int overflow)
    squares = jnp.sum(x * x, axis=axis, keepdims=True)
    zero = jnp.equal(squares, 0)
    root = jnp.sqrt(jnp.where(zero, 1, squares))
    return jnp.where(zero, 0, root), jnp.where(zero, 0, _quotient(x, root))


def atan2(y: ArrayLike, x: ArrayLike) -> jax.Array:
    """The angle of the point ``(x, y)``, in ``[-π, π]``; 0 with gradient ``(0, 0)`` at the origin.

    At ``(0, 0)`` the angle is undefined. The value returned there is **0** for
    every combination of signed zeros (IEEE ``atan2`` gives ±0 or ±π), the hue
    that CIEDE2000 assigns to a neutral colour, and the gradient is **(0, 0)**:
    no direction is preferred, and terms that multiply a hue by a chroma stay
    finite. Elsewhere the gradient is ``(x, -y) / (x**2 + y**2)`` with respect
    to ``(y, x)``. As IEEE ``atan2``, ``-π`` is the angle of ``(x, -0.0)`` for ``x < 0``.

    Example:
        >>> import jax, toolkit as tk
        >>> float(tk.safe.atan2(1.0, 1.0)), float(tk.safe.atan2(0.0, -0.0))
        (0.7853981852531433, 0.0)
        >>> [float(g) == 0 for g in jax.grad(tk.safe.atan2, argnums=(0, 1))(0.0, 0.0)]
        [True, True]
    """
    y, x = _real_pair("atan2", "y", y, "x", x)
    return _atan2_rule(y, x)


@adjoint
def _atan2_rule(y: ArrayLike, x: ArrayLike):
    angle, dy, dx = _atan2_parts(y, x)
    return angle, lambda Δ: (_sum_to(Δ * dy, y), _sum_to(Δ * dx, x))


@jax.jit  # one dispatch when called eagerly, instead of one per operation
def _atan2_parts(y: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    origin = jnp.equal(x, 0) & jnp.equal(y, 0)  # compared in XLA, which flushes subnormals as it computes
    angle = jnp.where(origin, 0, jnp.arctan2(y, x))
    a, b = _floats(jnp.where(origin, 1, x), y)
    r = _hypot(a, b)
    inverse = _inverse(r)
    dy = jnp.where(origin, 0, _quotient(a, r) * inverse)  # (x/r)/r, not x/r²: no overflow or underflow
    dx = jnp.where(origin, 0, -_quotient(b, r) * inverse)
    return angle, dy, dx


def cbrt(x: ArrayLike) -> jax.Array:
    """Real cube root (``cbrt(-8) = -2``), with derivative 0 at 0 (``jnp.cbrt``'s is ``inf``).

    Subgradient at ``x = 0``: **0**. The true derivative is +∞ (a vertical
    tangent). CIE L*a*b* evaluates ``cbrt`` inside a ``jnp.where`` whose other
    branch is used near 0; with an infinite derivative the untaken branch still
    turns the gradient into ``inf * 0 = NaN``, with 0 it cannot. Elsewhere
    ``1 / (3 * cbrt(x)**2)``, for negative ``x`` too.

    Example:
        >>> import jax, toolkit as tk
        >>> tk.safe.cbrt(-8.0), jax.grad(tk.safe.cbrt)(8.0)
        (Array(-2., dtype=float32, weak_type=True), Array(0.08333334, dtype=float32, weak_type=True))
        >>> jax.grad(tk.safe.cbrt)(0.0)
        Array(0., dtype=float32, weak_type=True)
    """
    return _cbrt(_real("cbrt", "x", x))


@jax.jit  # one dispatch when called eagerly, instead of five
def _cbrt(x: ArrayLike) -> jax.Array:
    zero = jnp.equal(x, 0)  # in XLA, as the value: a subnormal is flushed to 0 in both
    return jnp.where(zero, 0, jnp.cbrt(jnp.where(zero, 1, x)))


def pow(x: ArrayLike, p: ArrayLike, *, signed: bool = False) -> jax.Array:
    """``x ** p`` with finite gradients at ``x = 0``; ``signed=True`` gives ``sign(x) * |x| ** p``.

    Integer ``x`` and ``p`` are computed in ``jnp.sqrt``'s float type (``jnp.power``
    would keep the integers, which have no derivative).

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
    The mixed ``∂²/∂x∂p`` there is 0 both ways round (the ``p``-derivative of the
    0 above); elsewhere it is ``x ** (p - 1) * (1 + p * log(x))``. (For ``p = 0``,
    ``∂²/∂x²`` is ``0 * x ** -2``: ``NaN`` where ``x ** -2`` overflows, below about
    1e-19 in float32, as for ``jnp.power``.)

    Example:
        >>> import jax, toolkit as tk
        >>> tk.safe.pow(-8.0, 1 / 3, signed=True)
        Array(-2., dtype=float32, weak_type=True)
        >>> jax.grad(tk.safe.pow)(0.0, 0.5), jax.grad(tk.safe.pow)(2.0, 3.0)
        (Array(0., dtype=float32, weak_type=True), Array(12., dtype=float32, weak_type=True))
    """
    x, p = _real_pair("pow", "x", x, "p", _small_int(p))
    x = x if _inexact(x) or _inexact(p) else _as_float(x)  # an integer power of an integer: in jnp.sqrt's float
    return _pow_rule(x, p, signed=_checked_flag("pow", "signed", signed))


@adjoint
def _pow_rule(x: ArrayLike, p: ArrayLike, *, signed: bool):
    # A Python int p stays one (jnp.power then multiplies: x ** 3 = x * x * x, as jnp's x ** 3).
    parts = _pow_parts_int if isinstance(p, int) else _pow_parts
    value, slope_x, slope_p = parts(x, p, signed)
    return value, lambda Δ: (_sum_to(Δ * slope_x, x), _sum_to(Δ * slope_p, p))


def _pow_forward(x: jax.Array, p: Any, signed: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
    zero_base = jnp.equal(x, 0) & jnp.greater_equal(p, 0)  # compared in XLA, which flushes subnormals
    infinite_slope = zero_base & jnp.less(p, 1)  # p * 0 ** (p - 1) is +inf (0 < p < 1) or 0 * inf (p = 0)
    base = jnp.where(zero_base, 1, x)
    magnitude = jnp.abs(base) if signed else base
    power = jnp.sign(base) * jnp.power(magnitude, p) if signed else jnp.power(magnitude, p)
    value_at_zero = 0 if signed else jnp.where(jnp.equal(p, 0), 1, 0)  # sign(0) = 0; 0 ** 0 = 1
    unit_slope = zero_base & jnp.equal(p, 1)  # slope 1 held constant: x ** 0 at 0 would give d/dx 0 * inf
    slope_base = jnp.where(infinite_slope | unit_slope, 1, jnp.abs(x) if signed else x)
    slope_x = jnp.where(infinite_slope, 0, jnp.where(unit_slope, 1, p * jnp.power(slope_base, p - 1)))
    slope_p = jnp.where(zero_base, 0, power * jnp.log(magnitude))
    return jnp.where(zero_base, value_at_zero, power), slope_x, slope_p


_pow_parts = jax.jit(_pow_forward, static_argnums=2)  # one dispatch when called eagerly
_pow_parts_int = jax.jit(_pow_forward, static_argnums=(1, 2))


def div(x: ArrayLike, y: ArrayLike) -> jax.Array:
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
    x, y = _real_pair("div", "x", x, "y", y)
    return _div_rule(x, y)


@adjoint
def _div_rule(x: ArrayLike, y: ArrayLike):
    quotient, slope_x, slope_y = _div_parts(x, y)
    return quotient, lambda Δ: (_sum_to(Δ * slope_x, x), _sum_to(Δ * slope_y, y))


@jax.jit  # one dispatch when called eagerly, instead of one per operation
def _div_parts(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    both_zero = jnp.equal(x, 0) & jnp.equal(y, 0)  # compared in XLA, which flushes subnormals as it computes
    a, b = _floats(x, jnp.where(both_zero, 1, y))
    q = _quotient(a, b)
    inverse = _inverse(b)
    slope_y = -q * inverse  # -(x/y)/y, not -x/y²: no overflow or underflow
    return jnp.where(both_zero, 0, q), jnp.where(both_zero, 0, inverse), jnp.where(both_zero, 0, slope_y)

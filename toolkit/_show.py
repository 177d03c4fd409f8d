"""Short, readable descriptions of values for reprs and error messages."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_DTYPE_PREFIXES = (("bfloat", "bf"), ("complex", "c"), ("float", "f"), ("uint", "u"), ("int", "i"))


def _is_key(dtype: Any) -> bool:
    try:
        return bool(jax.numpy.issubdtype(dtype, jax.dtypes.prng_key))
    except TypeError:  # not a dtype JAX knows
        return False


def describe(x: Any) -> str:
    """``f32[3,3]``-style summary of an array's dtype and shape (``key<fry>[]`` for a key); else the type's name."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return type(x).__name__
    if _is_key(dtype):
        return f"{dtype}[{','.join(map(str, np.shape(x)))}]"
    try:
        short = np.dtype(dtype).name
    except TypeError:  # a dtype attribute NumPy does not know
        return type(x).__name__
    for long, abbrev in _DTYPE_PREFIXES:
        if short.startswith(long):
            short = abbrev + short[len(long) :]
            break
    return f"{short}[{','.join(map(str, np.shape(x)))}]"


def _number(v: Any) -> str:
    """One array element as NumPy's short printing would: about 5 significant digits (``1.0187``, ``3.4419e-05``).

    Floats keep a decimal point (``1.0``, ``50.0``) so they do not read as
    integers; below 1e-4 or from 1e5 on they are written in scientific notation.
    Digits are the shortest that identify the element in its own dtype (``f32``
    0.1 is ``0.1``, not ``0.10000000149``), cut to 5 significant digits.
    """
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (numbers.Integral, np.integer)):
        return str(int(v))
    if isinstance(v, (complex, np.complexfloating)):
        real, imag = _number(v.real), _number(abs(v.imag))
        return f"{real}{'-' if np.signbit(v.imag) else '+'}{imag}j"
    if isinstance(v, np.generic) and not isinstance(v, np.floating) and jnp.issubdtype(v.dtype, jnp.floating):
        v = np.float32(v)  # bfloat16 and the other ml_dtypes floats, exact in float32; NumPy formats its own only
    if not isinstance(v, (float, np.floating)):
        return str(v)
    if not np.isfinite(v):
        return str(float(v))  # nan, inf, -inf
    magnitude = abs(float(v))
    if magnitude != 0 and not 1e-4 <= magnitude < 1e5:
        return np.format_float_scientific(v, precision=4, unique=True, trim="-")
    return np.format_float_positional(v, precision=5, unique=True, fractional=False, trim="0")


def short_repr(x: Any, few: int = 3) -> str:
    """Arrays as ``f32[3,3] [1.0 1.0 1.0 …]``, values to about 5 significant digits; containers recursively; the rest by ``repr``.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from toolkit._show import short_repr
        >>> short_repr(jnp.float32(1.01874899))
        'f32[] 1.0187'
        >>> short_repr(jnp.array([[0.1, -2e-5], [123456.0, 3.0]]))
        'f32[2,2] [0.1 -2e-05 1.2346e+05 …]'
        >>> short_repr((np.int64(7), np.float64(2 / 3), 0.25))
        '(i64[] 7, f64[] 0.66667, 0.25)'
    """
    if isinstance(x, jax.Array) and _is_key(x.dtype):
        return describe(x)  # a PRNG key has no values to show (jax.random.key_data has its bits)
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        try:
            flat = np.ravel(np.asarray(x))
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            return f"{describe(x)}(traced)"  # inside jit, grad or vmap: there are no values to show
        if np.ndim(x) == 0:
            return f"{describe(x)} {_number(flat[0])}"
        shown = " ".join(_number(v) for v in flat[:few]) + (" …" if flat.size > few else "")
        return f"{describe(x)} [{shown}]"
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        inner = ", ".join(short_repr(v) for v in x)
        return f"({inner},)" if len(x) == 1 else f"({inner})"
    if isinstance(x, list):
        return "[" + ", ".join(short_repr(v) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {short_repr(v)}" for k, v in x.items()) + "}"
    return repr(x)


class _Shown:
    """Prints as the text it holds: a leaf of a tree of descriptions."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def shapes(x: Any) -> str:
    """``x`` with every leaf as its dtype and shape (``describe``), no values: ``f32[3,3]``, ``{'w': f32[2]}``.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit._show import shapes
        >>> shapes({"w": jnp.ones((3, 2)), "b": (jnp.zeros(2), None, 1.5)})
        "{'b': (f32[2], None, float), 'w': f32[3,2]}"
    """
    return short_repr(jax.tree.map(lambda leaf: _Shown(describe(leaf)), x))

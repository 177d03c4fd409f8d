"""Short, readable descriptions of values for reprs and error messages."""

from __future__ import annotations

from typing import Any

import jax
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


def short_repr(x: Any, few: int = 3) -> str:
    """Arrays as ``f32[3,3] [1. 1. 1. …]``; containers recursively; the rest by ``repr``."""
    if isinstance(x, jax.Array) and _is_key(x.dtype):
        return describe(x)  # a PRNG key has no values to show (jax.random.key_data has its bits)
    if isinstance(x, (jax.Array, np.ndarray)):
        try:
            flat = np.ravel(np.asarray(x))
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            return f"{describe(x)}(traced)"  # inside jit, grad or vmap: there are no values to show
        if np.ndim(x) == 0:
            return f"{describe(x)} {flat[0]}"
        shown = " ".join(str(v) for v in flat[:few]) + (" …" if flat.size > few else "")
        return f"{describe(x)} [{shown}]"
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        inner = ", ".join(short_repr(v) for v in x)
        return f"({inner},)" if len(x) == 1 else f"({inner})"
    if isinstance(x, list):
        return "[" + ", ".join(short_repr(v) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {short_repr(v)}" for k, v in x.items()) + "}"
    return repr(x)

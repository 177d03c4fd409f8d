"""The dtypes colour functions compute in and return.

A colour function returns the dtype JAX's type promotion gives its inputs
(colours and numeric settings such as ``kL``): float16 stays float16, a
float32 colour stays float32 under ``jax_enable_x64`` unless an input is
float64 (a NumPy ``np.float64`` scalar is, a Python float is not: it is
weakly typed), and float64 exists only with x64 on. Integer and boolean
colours become floats as ``jnp`` makes them (:func:`float_dtype`).

Floats narrower than 32 bits (float16, bfloat16, the float8 types) are
computed in float32 and rounded to their own dtype at the end
(:func:`working_dtype`): float16 cannot hold the intermediates (25^7 in
CIEDE2000; XLA rewrites ((L* + 16) / 116)^3 as (L* + 16)^3 / 116^3, which
overflows at L* = 24) and bfloat16's 8-bit significand would lose several
digits through a conversion. float32 and float64 are computed as they are.

The public functions cast their inputs to the working dtype before the
compiled kernel and its result back after it (:func:`cast`), so a kernel is
compiled once per working dtype, whatever mixture of dtypes reaches it, and
under autodiff the casts send gradients back in each input's own dtype. A
call that needs no cast (float32 or float64 arrays throughout, Python-float
weights aside) goes to its kernel as it is.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["float_dtype", "working_dtype", "promoted", "cast", "needs_cast", "as_they_are"]

_PYTHON_SCALARS = (bool, int, float, complex)
_SINGLE_AND_DOUBLE = frozenset({np.dtype(np.float32), np.dtype(np.float64)})


def float_dtype(dtype: Any) -> np.dtype:
    """The floating dtype ``jnp`` computes a ``dtype`` array in, as ``jnp.sin`` does.

    Floats are kept; booleans and integers up to 32 bits become float32, 64-bit
    integers float64 (they exist only with x64 on), so ``jnp.array([50, 0, 0])``
    is float32, or float64 with x64 on, like ``jnp.sin`` of it.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour._dtypes import float_dtype
        >>> float_dtype(jnp.int32), float_dtype(jnp.bfloat16)
        (dtype('float32'), dtype(bfloat16))
    """
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating):
        return dtype
    wide = jnp.issubdtype(dtype, jnp.integer) and dtype.itemsize == 8
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64 if wide else np.float32))


def working_dtype(dtype: Any) -> np.dtype:
    """The dtype a colour function computes in for results of ``dtype``: float32 for floats narrower than 32 bits.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour._dtypes import working_dtype
        >>> working_dtype(jnp.float16), working_dtype(jnp.bfloat16), working_dtype(jnp.float32)
        (dtype('float32'), dtype('float32'), dtype('float32'))
    """
    dtype = np.dtype(dtype)
    if jnp.finfo(dtype).bits < 32:
        return np.dtype(np.float32)
    return dtype


def as_they_are(colours: tuple[Any, ...], weights: tuple[Any, ...] = ()) -> bool:
    """Whether a kernel can take ``colours`` and ``weights`` unchecked and uncast (the common call, made cheap).

    True when every colour is a JAX array, or a colour struct of JAX arrays, all
    of one dtype, float32 or float64 (not weakly typed), and every weight is a
    Python float or int.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour._dtypes import as_they_are
        >>> as_they_are((jnp.ones(3), jnp.zeros(3)), (1.0,)), as_they_are((jnp.ones(3, jnp.float16),))
        (True, False)
    """
    dtype = None
    for colour in colours:
        for x in (colour,) if isinstance(colour, jax.Array) else _fields(colour):
            if not isinstance(x, jax.Array) or _weak(x) or (dtype is not None and x.dtype != dtype):
                return False
            dtype = x.dtype
    return dtype in _SINGLE_AND_DOUBLE and all(type(w) in (float, int) for w in weights)


def _fields(colour: Any) -> tuple[Any, ...]:
    from toolkit.colour.types import RGB, XYZ, Lab  # noqa: PLC0415 (types imports this module)

    if isinstance(colour, (RGB, Lab, XYZ)):
        return tuple(jax.tree.leaves(colour, is_leaf=lambda x: x is None))
    return (None,)  # anything else is not as it should be


def promoted(*trees: Any) -> np.dtype:
    """The floating dtype of JAX's promotion of every leaf of ``trees`` (Python scalars weakly typed).

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from toolkit.colour._dtypes import promoted
        >>> promoted(jnp.ones(3, jnp.float16), 1.0), promoted(jnp.ones(3, jnp.float16), np.float32(1.0))
        (dtype('float16'), dtype('float32'))
    """
    return float_dtype(jnp.result_type(*(leaf for tree in trees for leaf in jax.tree.leaves(tree))))


def _differs(x: Any, dtype: np.dtype) -> bool:
    return not isinstance(x, _PYTHON_SCALARS) and np.dtype(x.dtype) != dtype


def needs_cast(tree: Any, dtype: Any) -> bool:
    """Whether an array leaf of ``tree`` is not of ``dtype``, or a colour struct in it has a weakly typed channel.

    (A struct such as ``Lab(50.0, a, b)`` is cast so that its kernel is the one
    compiled for ``Lab(l, a, b)`` of arrays; a Python weight on its own is not.)
    """
    dtype = np.dtype(dtype)
    return any(_differs(leaf, dtype) for leaf in jax.tree.leaves(tree)) or any(
        isinstance(leaf, _PYTHON_SCALARS) or _weak(leaf)
        for colour in _colours(tree)
        for leaf in jax.tree.leaves(colour)
    )


def _colours(tree: Any) -> list[Any]:
    from toolkit.colour.types import RGB, XYZ, Lab  # noqa: PLC0415 (types imports this module)

    kinds = (RGB, Lab, XYZ)
    return [x for x in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, kinds)) if isinstance(x, kinds)]


def cast(tree: Any, dtype: Any) -> Any:
    """Every leaf of ``tree`` (Python scalars included) as a ``dtype`` array, unless it is one already.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import Lab
        >>> from toolkit.colour._dtypes import cast
        >>> cast(Lab(50.0, jnp.ones(2, jnp.float16), jnp.ones(2, jnp.float32)), jnp.float32)
        Lab(l=f32[] 50.0, a=f32[2] [1.0 1.0], b=f32[2] [1.0 1.0])
    """
    dtype = np.dtype(dtype)
    return jax.tree.map(
        lambda x: x if isinstance(x, jax.Array) and x.dtype == dtype and not _weak(x) else jnp.asarray(x, dtype), tree
    )


def _weak(x: jax.Array) -> bool:
    return bool(getattr(getattr(x, "aval", x), "weak_type", False))

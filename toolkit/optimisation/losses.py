"""Flux's regression losses: ``mse`` and ``mae``, with Flux's size check, for arrays and whole pytrees.

Flux (``src/losses/functions.jl``): ``mse(ŷ, y; agg = mean) = agg(abs2.(ŷ .- y))``
and ``mae(ŷ, y; agg = mean) = agg(abs.(ŷ .- y))``, after ``_check_sizes`` refuses
arrays of different sizes (a plain number ``y``, a constant label, passes).
Here arrays must have equal shapes; broadcasting one against the other is the
classic silent bug this check exists to catch.

``ŷ`` and ``y`` may also be two pytrees of the same structure (two ``@tk.struct``
values, say, like the seed's ``GG``): the loss is then taken over every element
of every leaf together, as if the leaves were one long vector, so ``mse`` of two
structs is the mean of all their squared differences.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import filters
from toolkit._show import describe

__all__ = ["mse", "mae"]

_SCALARS = (numbers.Number, np.generic)


def _is_array_like(x: Any) -> bool:
    return (isinstance(x, _SCALARS) or filters.is_array(x)) and filters.is_numeric(x)


def _difference(caller: str, ŷ: Any, y: Any) -> jax.Array:
    """``ŷ - y`` as one flat array (every leaf's elements, for pytrees), after checking shapes agree."""
    if _is_array_like(ŷ) and _is_array_like(y):
        return _leaf_difference(caller, "ŷ", ŷ, y)
    if isinstance(y, _SCALARS):  # a constant label for every element of a tree
        parts = [_leaf_difference(caller, label, leaf, y) for label, leaf in filters.labelled_leaves(ŷ, "ŷ")]
    else:
        parts = _paired(caller, ŷ, y)
    if not parts:
        raise ValueError(
            f"tk.{caller}: ŷ has no array leaves, so there is nothing to compare; pass ŷ and y as arrays (or pytrees "
            f"holding at least one array)."
        )
    return jnp.concatenate([jnp.ravel(part) for part in parts])


def _paired(caller: str, ŷ: Any, y: Any) -> list[jax.Array]:
    labelled, structure = jax.tree_util.tree_flatten_with_path(ŷ)
    if jax.tree.structure(y) != structure:
        raise ValueError(
            f"tk.{caller}: ŷ and y must have the same structure (two structs of one type, say):\n"
            f"  ŷ: {structure}\n  y: {jax.tree.structure(y)}"
        )
    return [
        _leaf_difference(caller, filters.keystr(path, "ŷ"), a, b) for (path, a), b in zip(labelled, jax.tree.leaves(y))
    ]


def _leaf_difference(caller: str, label: str, ŷ: Any, y: Any) -> jax.Array:
    for name, value in ((label, ŷ), (label.replace("ŷ", "y", 1), y)):
        if not _is_array_like(value):
            what = filters.non_numeric(value)[0] if filters.is_array(value) else f"a {type(value).__name__}"
            raise TypeError(
                f"tk.{caller}: {name} is {what}, not a number or an array; pass numbers or arrays of numbers."
            )
    if not isinstance(ŷ, _SCALARS) and not isinstance(y, _SCALARS) and np.shape(ŷ) != np.shape(y):
        other = label.replace("ŷ", "y", 1)
        raise ValueError(
            f"tk.{caller}: {label} is {describe(ŷ)} but {other} is {describe(y)}; their shapes must be equal. "
            f"Reshape one of them (e.g. y.reshape(ŷ.shape)) if the mismatch is a stray axis."
        )
    return _counted(ŷ) - _counted(y)


def _counted(x: Any) -> jax.Array:
    """``x`` as an array; booleans as the default float type (JAX cannot subtract booleans)."""
    x = jnp.asarray(x)
    return x.astype(jnp.result_type(float)) if x.dtype == jnp.bool_ else x


def mse(ŷ: Any, y: Any, *, agg: Callable[[jax.Array], jax.Array] = jnp.mean) -> jax.Array:
    """Mean squared error, ``agg(|ŷ - y|²)`` (Flux's ``mse``); ``agg=jnp.sum`` gives the sum.

    ``ŷ`` and ``y`` are arrays of one shape (or ``y`` a number), or two pytrees of
    one structure, whose elements all count together.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.mse(jnp.array([1.0, 2.0, 3.0]), jnp.array([1.0, 0.0, 0.0]))
        Array(4.3333335, dtype=float32)
        >>> tk.mse({"a": jnp.array([1.0, 3.0]), "b": jnp.array(2.0)}, {"a": jnp.zeros(2), "b": jnp.array(0.0)})
        Array(4.666667, dtype=float32)
    """
    filters.check_callable("tk.mse", "agg", agg, "jnp.mean or jnp.sum")
    d = _difference("mse", ŷ, y)
    return agg((d * jnp.conj(d)).real)


def mae(ŷ: Any, y: Any, *, agg: Callable[[jax.Array], jax.Array] = jnp.mean) -> jax.Array:
    """Mean absolute error, ``agg(|ŷ - y|)`` (Flux's ``mae``), for arrays or two pytrees of one structure.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.mae(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 0.0, 0.0]))
        Array(2., dtype=float32)
    """
    filters.check_callable("tk.mae", "agg", agg, "jnp.mean or jnp.sum")
    return agg(jnp.abs(_difference("mae", ŷ, y)))

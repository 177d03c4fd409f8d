"""Maths on whole pytrees: arrays, tuples, dicts and ``@tk.struct`` values alike.

A pytree is treated as one long vector made of all its leaves. Leaves must be
numbers or arrays; integer and boolean leaves take part in the arithmetic as
their values (``True`` counts as 1): ``sum``, ``mean``, ``dot`` and ``norm``
accumulate them in the default float type (float32, or float64 with x64 on),
so a sum of int32 values cannot wrap round and a dot of booleans counts. Their
comparisons in ``isapprox`` are exact by default. Anything else (a string in a dict, say) is an error that names the
leaf's path. Mark such values ``tk.field(static=True)`` in a struct.
"""

from __future__ import annotations

import builtins
import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit._show import describe
from toolkit.filters import (  # partition, combine: re-exported as tk.tree's
    check_callable,
    combine,
    is_inexact,
    is_numeric,
    keystr,
    non_numeric,
    partition,
)

__all__ = [
    "map",
    "zero",
    "sum",
    "mean",
    "size",
    "dot",
    "norm",
    "isapprox",
    "is_differentiable",
    "partition",
    "combine",
]


def _leaves(x: Any, caller: str) -> list[Any]:
    """All leaves of ``x``, each checked to be a number or an array."""
    return [leaf for _, leaf in _checked_flatten(x, caller)[0]]


def _checked_flatten(x: Any, caller: str, name: str = "") -> tuple[list[tuple[Any, Any]], Any]:
    """``x`` flattened with paths, each leaf checked to be a number or an array; ``name``: which argument ``x`` is."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(x)
    for path, leaf in flat:
        if not is_numeric(leaf):
            what, fix = non_numeric(leaf)
            of = f" of {name}" if name else ""
            raise TypeError(
                f"tk.tree.{caller}: the leaf at {keystr(path)}{of} is {what}, not a number or array; {fix}."
            )
    return flat, treedef


def _paired_leaves(x: Any, y: Any, caller: str) -> list[tuple[str, Any, Any]]:
    """Leaves of two trees side by side, after checking structures and shapes agree."""
    flat_x, tree_x = _checked_flatten(x, caller, "x")
    flat_y, tree_y = _checked_flatten(y, caller, "y")
    if tree_x != tree_y:
        raise ValueError(
            f"tk.tree.{caller}: tree structures differ:\n  x: {tree_x}\n  y: {tree_y}\n"
            f"x and y must have the same structure (the same containers, dict keys, struct types and static fields)."
        )
    pairs = []
    for (path, a), (_, b) in zip(flat_x, flat_y):
        where = keystr(path)
        if np.shape(a) != np.shape(b):
            raise ValueError(
                f"tk.tree.{caller}: shapes differ at {where}: {np.shape(a)} vs {np.shape(b)}; x and y must have the "
                f"same shape leaf by leaf (they are not broadcast)."
            )
        pairs.append((where, a, b))
    return pairs


def _check_number(caller: str, name: str, value: Any, lowest: float, hint: str) -> None:
    """A clear error unless ``value`` is a real number (not a bool) ``>= lowest``; NaN is refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"tk.tree.{caller}: {name} must be a real number {hint}, a Python number known before tracing; "
            f"got {_shown(value)}."
        )
    if not float(value) >= lowest:
        raise ValueError(f"tk.tree.{caller}: {name} must be {hint}, got {name}={value!r}.")


def _shown(value: Any) -> str:
    return describe(value) if hasattr(value, "dtype") else repr(value)


def map(f: Callable, x: Any, *rest: Any, is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """Apply ``f`` leaf by leaf; ``rest`` must have the structure of ``x``.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.tree.map(jnp.sqrt, {"a": jnp.array(4.0)})
        {'a': Array(2., dtype=float32, weak_type=True)}
    """
    check_callable("tk.tree.map", "f", f, "jnp.sqrt (applied to each leaf)")
    if is_leaf is not None:
        check_callable("tk.tree.map", "is_leaf", is_leaf, "tk.is_struct (leaf -> bool), or None")
    tree = jax.tree.structure(x, is_leaf=is_leaf)
    for i, other in enumerate(rest, start=2):
        other_tree = jax.tree.structure(other, is_leaf=is_leaf)
        if other_tree != tree:
            raise ValueError(
                f"tk.tree.map: argument {i} has a different structure:\n  {tree}\n  {other_tree}\n"
                f"every tree after x must have the structure of x."
            )
    return jax.tree.map(f, x, *rest, is_leaf=is_leaf)


def zero(x: Any) -> Any:
    """Zeros with the structure, shapes and dtypes of ``x`` (integer leaves stay integer).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.tree.zero((jnp.ones(2), 3))
        (Array([0., 0.], dtype=float32), Array(0, dtype=int32, weak_type=True))
    """
    _leaves(x, "zero")
    return jax.tree.map(jnp.zeros_like, x)


def sum(x: Any) -> jax.Array:
    """Sum of every element of every leaf (a scalar; 0.0 for an empty tree).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.tree.sum({"a": jnp.ones((2, 2)), "b": 1.0})
        Array(5., dtype=float32)
    """
    parts = [_total(_counted(leaf)) for leaf in _leaves(x, "sum")]
    return jnp.asarray(builtins.sum(parts[1:], parts[0])) if parts else jnp.zeros(())


def size(x: Any) -> int:
    """Total number of elements over all leaves (a Python int, known before tracing).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.tree.size({"a": jnp.ones((2, 3)), "b": 1.0})
        7
    """
    return _size(x, "size")


def _size(x: Any, caller: str) -> int:
    return builtins.sum(math.prod(np.shape(leaf)) for leaf in _leaves(x, caller))


def mean(x: Any) -> jax.Array:
    """``sum(x) / size(x)``: the mean over all elements of all leaves.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.tree.mean((jnp.array([1.0, 2.0]), jnp.array(6.0)))
        Array(3., dtype=float32)
    """
    n = _size(x, "mean")
    if n == 0:
        raise ValueError(
            "tk.tree.mean: the tree has no elements, so its mean is undefined; pass a tree with at least one element "
            "(tk.tree.sum of an empty tree is 0)."
        )
    return sum(x) / n


def dot(x: Any, y: Any) -> jax.Array:
    """Inner product over all leaves, ``Σ conj(x)·y`` (structures and shapes must match).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.tree.dot((jnp.ones(3), 2.0), (jnp.ones(3), 3.0))
        Array(9., dtype=float32)
    """
    parts = [_inner(_counted(a), _counted(b)) for _, a, b in _paired_leaves(x, y, "dot")]
    return jnp.asarray(builtins.sum(parts[1:], parts[0])) if parts else jnp.zeros(())


def norm(x: Any, p: float = 2) -> jax.Array:
    """The ``p``-norm of all elements together (``p`` ≥ 1 or ``inf``; default 2), as a float.

    The 2-norm has gradient zero (not NaN) at the zero tree, so it is safe in a loss; a NaN element gives NaN.
    Integer and boolean leaves are converted to floats first, so their squares cannot overflow.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.tree.norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])})
        Array(5., dtype=float32)
    """
    _check_number("norm", "p", p, 1, ">= 1 or inf (e.g. p=2)")
    magnitudes = [_magnitude(leaf) for leaf in _leaves(x, "norm")]
    if not magnitudes:
        return jnp.zeros(())
    if p == math.inf:
        return jnp.max(jnp.stack([jnp.max(m, initial=0) for m in magnitudes]))
    if p == 1:
        return jnp.asarray(builtins.sum(_total(m) for m in magnitudes))
    if p == 2:
        squares = jnp.asarray(builtins.sum(_total(m * m) for m in magnitudes))
        zero = squares == 0  # NaN is not zero: it passes through
        return jnp.where(zero, 0, jnp.sqrt(jnp.where(zero, 1, squares)))
    return jnp.asarray(builtins.sum(_total(m**p) for m in magnitudes)) ** (1 / p)


def _counted(leaf: Any) -> Any:
    """Integer and boolean leaves as the default float type, so sums cannot wrap round and booleans count.

    Python numbers stay Python numbers (weakly typed), so they take the other leaves' dtype, as in JAX.
    """
    if isinstance(leaf, (bool, int)):
        return float(leaf)
    if isinstance(leaf, (float, complex)):
        return leaf
    leaf = jnp.asarray(leaf)
    if jnp.issubdtype(leaf.dtype, jnp.inexact):
        return leaf
    return leaf.astype(jnp.result_type(float))


def _total(leaf: Any) -> Any:
    return leaf if isinstance(leaf, (float, complex)) else jnp.sum(leaf)


def _inner(a: Any, b: Any) -> Any:
    if isinstance(a, (float, complex)) and isinstance(b, (float, complex)):
        return a.conjugate() * b
    return jnp.vdot(a, b)


def _magnitude(leaf: Any) -> Any:
    """``|leaf|`` in a floating dtype: integer squares and sums would overflow (Julia's norm of Ints is a float too)."""
    leaf = _counted(leaf)
    return abs(leaf) if isinstance(leaf, (float, complex)) else jnp.abs(leaf)


def _default_rtol(dtype: Any) -> float:
    """Julia's ``rtoldefault``: √eps for floating types, 0 for exact ones."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.inexact):
        return float(np.sqrt(jnp.finfo(dtype).eps))
    return 0.0


def isapprox(x: Any, y: Any, rtol: float | None = None, atol: float = 0.0, nans: bool = False) -> jax.Array:
    """Julia's ``isapprox``, leaf by leaf: ``‖a - b‖ ≤ max(atol, rtol·max(‖a‖, ‖b‖))``.

    Every pair of leaves must pass. ``rtol`` defaults to √eps of the leaves' dtype
    (so float32 leaves get ≈3.5e-4, integer leaves 0), or to 0 when ``atol > 0``.
    Where the difference is not finite, elements are compared one by one (equal
    infinities match; NaNs match only with ``nans=True``). Structures and shapes
    must match. Returns a boolean scalar array, so it also works under ``jit``.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> bool(tk.tree.isapprox({"a": jnp.ones(3)}, {"a": jnp.ones(3) + 1e-6}))
        True
    """
    if rtol is not None:
        _check_number("isapprox", "rtol", rtol, 0, ">= 0 (or None for the default)")
    _check_number("isapprox", "atol", atol, 0, ">= 0")
    if not isinstance(nans, (bool, np.bool_)):
        raise TypeError(f"tk.tree.isapprox: nans must be True or False, got {_shown(nans)}.")
    results = [
        _isapprox_leaf(jnp.asarray(a), jnp.asarray(b), rtol, atol, nans) for _, a, b in _paired_leaves(x, y, "isapprox")
    ]
    return jnp.all(jnp.stack(results)) if results else jnp.array(True)


def _isapprox_leaf(a: jax.Array, b: jax.Array, rtol: float | None, atol: float, nans: bool) -> jax.Array:
    if rtol is None:
        rtol = 0.0 if atol > 0 else max(_default_rtol(a.dtype), _default_rtol(b.dtype))
    common = jnp.result_type(a, b)
    if not jnp.issubdtype(common, jnp.inexact) and rtol == 0 and atol == 0:
        return jnp.all(a == b)  # exact, without rounding large integers through floats
    common = jnp.promote_types(common, jnp.float32)
    a, b = a.astype(common), b.astype(common)
    distance = jnp.linalg.norm(jnp.ravel(a - b))
    by_norm = distance <= jnp.maximum(
        atol, rtol * jnp.maximum(jnp.linalg.norm(jnp.ravel(a)), jnp.linalg.norm(jnp.ravel(b)))
    )
    close = jnp.abs(a - b) <= jnp.maximum(atol, rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)))
    elementwise = (a == b) | (jnp.isfinite(a) & jnp.isfinite(b) & close)
    if nans:
        elementwise = elementwise | (jnp.isnan(a) & jnp.isnan(b))
    return jnp.where(jnp.isfinite(distance), by_norm, jnp.all(elementwise))


def is_differentiable(leaf: Any) -> bool:
    """True for leaves JAX can differentiate: floating or complex numbers and arrays.

    Python ints and bools, integer and boolean arrays, strings, ``None`` and other
    objects are not differentiable.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.tree.is_differentiable(jnp.ones(2)), tk.tree.is_differentiable(3)
        (True, False)
    """
    return is_inexact(leaf)

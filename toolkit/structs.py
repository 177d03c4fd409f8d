"""Differentiable structs: frozen dataclasses that are JAX pytrees and do arithmetic.

``@tk.struct`` turns a class with annotated fields into a frozen dataclass whose
data fields are pytree leaves (differentiated, traced, optimised) and whose
static fields (``tk.field(static=True)``) are part of the tree's structure.
Arithmetic (``+ - * / **``, unary ``- + abs``) applies field by field, so a
gradient of a struct, a struct of momenta or a struct minus a struct all read
like the maths they stand for.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import operator
from typing import Any, Callable, TypeVar

import jax
import numpy as np

from toolkit._show import describe, short_repr

__all__ = ["struct", "field", "is_struct"]

T = TypeVar("T")

_STATIC = "toolkit.static"
_FIELDS = "__toolkit_fields__"  # (data names, static names), set on each struct class


def field(*, static: bool = False, **kwargs: Any) -> Any:
    """Declare a struct field; ``static=True`` makes it structure, not data.

    A static field is never differentiated or traced: it is compared when two
    structs meet in arithmetic and it is part of the key ``jax.jit`` caches on,
    so it must be hashable. Other keyword arguments go to ``dataclasses.field``.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> @tk.struct
        ... class Scaled:
        ...     x: jnp.ndarray
        ...     unit: str = tk.field(static=True, default="m")
        >>> Scaled(jnp.ones(2)).unit
        'm'
    """
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata[_STATIC] = static
    return dataclasses.field(metadata=metadata, **kwargs)


def is_struct(x: Any) -> bool:
    """True for an instance of a ``@tk.struct`` class (not for the class itself).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> @tk.struct
        ... class Point:
        ...     x: jnp.ndarray
        >>> tk.is_struct(Point(jnp.zeros(2))), tk.is_struct(Point), tk.is_struct((1.0, 2.0))
        (True, False, False)
    """
    return hasattr(type(x), _FIELDS)


def struct(cls: type[T] | None = None, /, *, kw_only: bool = False) -> Any:
    """Make ``cls`` a frozen dataclass that is a JAX pytree with elementwise arithmetic.

    Data fields are the leaves JAX traces and differentiates; fields declared with
    ``tk.field(static=True)`` are hashable structure. Arithmetic works struct with
    struct (same type, equal static fields) and struct with a scalar or any array
    that broadcasts against every data field, on either side.

    Rebuilding a struct inside ``jit``, ``grad`` or ``vmap`` does not call
    ``__init__`` or ``__post_init__``: validation written there runs when *you*
    construct a struct (or call ``.replace``), never on tracers or placeholders.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> @tk.struct
        ... class GG:
        ...     a: jnp.ndarray
        ...     b: jnp.ndarray
        >>> x = GG(jnp.ones(2), jnp.zeros(2))
        >>> (2 * x + 1).a
        Array([3., 3.], dtype=float32)
    """
    if cls is None:
        return functools.partial(struct, kw_only=kw_only)
    cls = dataclasses.dataclass(frozen=True, eq=False, repr=False, kw_only=kw_only)(cls)
    fields = dataclasses.fields(cls)
    data = tuple(f.name for f in fields if not f.metadata.get(_STATIC, False))
    static = tuple(f.name for f in fields if f.metadata.get(_STATIC, False))
    setattr(cls, _FIELDS, (data, static))
    _validate_on_init(cls)
    _register(cls, data, static)
    for name, method in _METHODS.items():
        if not _user_defined(cls, name):  # a method the user wrote wins, also in a base class
            setattr(cls, name, method)
    return cls


def _user_defined(cls: type, name: str) -> bool:
    """True when ``cls`` or a base (``object`` aside) defines ``name`` by hand rather than through ``@tk.struct``."""
    for klass in cls.__mro__[:-1]:
        if name in klass.__dict__:
            return klass.__dict__[name] is not _METHODS[name]
    return False


# --- pytree registration --------------------------------------------------------


def _new(cls: type, values: dict[str, Any]) -> Any:
    """Build an instance without running ``__init__``/``__post_init__``."""
    obj = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


def _register(cls: type, data: tuple[str, ...], static: tuple[str, ...]) -> None:
    # jax.tree_util.register_dataclass would rebuild through cls(**fields) and so
    # re-run user validation on tracers (jax-ml/jax#25486); an unflatten that
    # bypasses __init__ keeps user code out of JAX's internals.
    keys = tuple(jax.tree_util.GetAttrKey(name) for name in data)

    def flatten_with_keys(x):
        children = tuple((key, getattr(x, name)) for key, name in zip(keys, data))
        return children, tuple(getattr(x, name) for name in static)

    def flatten(x):
        children = tuple(getattr(x, name) for name in data)
        return children, tuple(getattr(x, name) for name in static)

    def unflatten(aux, children):
        return _new(cls, {**dict(zip(static, aux)), **dict(zip(data, children))})

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)


def _validate_on_init(cls: type) -> None:
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        _check_fields(self)

    cls.__init__ = __init__


def _check_fields(x: Any) -> None:
    data, static = getattr(type(x), _FIELDS)
    name = type(x).__name__
    for f in static:
        value = getattr(x, f)
        if isinstance(value, (jax.Array, np.ndarray)):
            raise TypeError(
                f"{name}.{f}: a static field cannot hold an array (got {describe(value)}); "
                f"declare it as a data field (drop static=True), or store a tuple/float instead."
            )
        try:
            hash(value)
        except TypeError:
            raise TypeError(
                f"{name}.{f}: static fields must be hashable, got a {type(value).__name__} "
                f"({value!r}); use a tuple instead of a list, or make it a data field."
            ) from None
    for f in data:
        if isinstance(getattr(x, f), str):
            raise TypeError(
                f"{name}.{f}: a string cannot be a data field (JAX cannot trace it); "
                f"declare it with tk.field(static=True)."
            )


# --- arithmetic -----------------------------------------------------------------

_ARRAY_LIKE = (numbers.Number, np.ndarray, np.generic, jax.Array)


def _leafwise(op: Callable, x: Any, other: Any, path: str, reflected: bool) -> Any:
    """Apply ``op`` between every leaf of ``x`` and the array-like ``other``."""

    def apply(key_path, leaf):
        _check_broadcast(path + jax.tree_util.keystr(key_path), leaf, other)
        return op(other, leaf) if reflected else op(leaf, other)

    return jax.tree_util.tree_map_with_path(apply, x)


def _check_broadcast(path: str, a: Any, b: Any) -> None:
    try:
        np.broadcast_shapes(np.shape(a), np.shape(b))
    except ValueError:
        raise ValueError(f"{path}: shapes {np.shape(a)} and {np.shape(b)} do not broadcast") from None


def _pairwise(op: Callable, symbol: str, x: Any, y: Any, path: str) -> Any:
    """Apply ``op`` leaf by leaf between two structs of the same type."""
    if type(x) is not type(y):
        raise TypeError(
            f"{path}: cannot compute {type(x).__name__} {symbol} {type(y).__name__}; "
            f"struct arithmetic needs two structs of the same type (or a struct and an array)."
        )
    data, static = getattr(type(x), _FIELDS)
    for f in static:
        if getattr(x, f) != getattr(y, f):
            raise ValueError(
                f"{path}.{f}: static fields differ ({getattr(x, f)!r} vs {getattr(y, f)!r}); "
                f"structs combine only when their static fields are equal."
            )
    values = {f: getattr(x, f) for f in static}
    for f in data:
        values[f] = _pairwise_field(op, symbol, getattr(x, f), getattr(y, f), f"{path}.{f}")
    return _new(type(x), values)


def _pairwise_field(op: Callable, symbol: str, a: Any, b: Any, path: str) -> Any:
    if is_struct(a) or is_struct(b):
        return _pairwise(op, symbol, a, b, path)
    leaves_a, tree_a = jax.tree_util.tree_flatten_with_path(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    if tree_a != tree_b:
        raise ValueError(f"{path}: tree structures differ ({tree_a} vs {tree_b})")
    out = []
    for (key_path, leaf_a), leaf_b in zip(leaves_a, leaves_b):
        _check_broadcast(path + jax.tree_util.keystr(key_path), leaf_a, leaf_b)
        out.append(op(leaf_a, leaf_b))
    return jax.tree_util.tree_unflatten(tree_a, out)


def _binary(op: Callable, symbol: str) -> tuple[Callable, Callable]:
    def forward(self, other):
        return _dispatch(op, symbol, self, other, reflected=False)

    def reflected(self, other):
        return _dispatch(op, symbol, self, other, reflected=True)

    return forward, reflected


def _dispatch(op: Callable, symbol: str, self: Any, other: Any, reflected: bool) -> Any:
    name = type(self).__name__
    if is_struct(other):
        return _pairwise(op, symbol, other, self, name) if reflected else _pairwise(op, symbol, self, other, name)
    if isinstance(other, _ARRAY_LIKE):
        data, static = getattr(type(self), _FIELDS)
        values = {f: getattr(self, f) for f in static}
        for f in data:
            values[f] = _leafwise(op, getattr(self, f), other, f"{name}.{f}", reflected)
        return _new(type(self), values)
    return NotImplemented


def _unary(op: Callable) -> Callable:
    def method(self):
        return jax.tree.map(op, self)

    return method


def _replace(self: T, **changes: Any) -> T:
    """Return a copy with the given fields replaced (runs ``__init__`` validation)."""
    names = [f.name for f in dataclasses.fields(self)]
    unknown = sorted(set(changes) - set(names))
    if unknown:
        raise TypeError(
            f"{type(self).__name__}.replace: no field named {', '.join(map(repr, unknown))}; "
            f"fields are {', '.join(names)}"
        )
    return dataclasses.replace(self, **changes)


def _repr(self: Any) -> str:
    parts = (f"{f.name}={short_repr(getattr(self, f.name))}" for f in dataclasses.fields(self) if f.repr)
    return f"{type(self).__name__}({', '.join(parts)})"


def _build_methods() -> dict[str, Any]:
    methods: dict[str, Any] = {
        "replace": _replace,
        "__repr__": _repr,
        "__neg__": _unary(operator.neg),
        "__pos__": _unary(operator.pos),
        "__abs__": _unary(abs),
        # NumPy arrays on the left would otherwise broadcast over the struct as
        # an object; None makes them defer to our reflected operators.
        "__array_ufunc__": None,
    }
    for name, op, symbol in (
        ("add", operator.add, "+"),
        ("sub", operator.sub, "-"),
        ("mul", operator.mul, "*"),
        ("truediv", operator.truediv, "/"),
        ("pow", operator.pow, "**"),
    ):
        methods[f"__{name}__"], methods[f"__r{name}__"] = _binary(op, symbol)
    return methods


_METHODS = _build_methods()

"""Differentiable structs: frozen dataclasses that are JAX pytrees and do arithmetic.

``@tk.struct`` turns a class with annotated fields into a frozen dataclass whose
data fields are pytree leaves (differentiated, traced, optimised) and whose
static fields (``tk.field(static=True)``) are part of the tree's structure.
Arithmetic (``+ - * / **``, unary ``- + abs``) applies field by field, so a
gradient of a struct, a struct of momenta or a struct minus a struct all read
like the maths they stand for.

A subclass of a struct is a struct too, decorated or not: ``class Sub(Base): ...``
is made a struct when it is defined, as ``@tk.struct`` would make it (its new
annotated fields become fields), so JAX sees its fields rather than one opaque
leaf. A subclass that cannot be made one that way (a field without a default
after inherited ones with defaults; new fields next to a hand-written
``__init__`` it inherits) raises a ``TypeError`` when constructed, saying to
decorate it with ``@tk.struct``.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import operator
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

import jax
import numpy as np

from toolkit._show import describe, short_repr
from toolkit.filters import concrete_array_type, is_numeric, non_numeric

__all__ = [
    "data_of",
    "field",
    "fields_arithmetic",
    "is_struct",
    "like",
    "pairs_arithmetic",
    "struct",
    "watch_arithmetic",
]

T = TypeVar("T")

_STATIC = "toolkit.static"
_FIELDS = "__toolkit_fields__"  # (data names, static names), set on each struct class
_STATE = "__toolkit_struct__"  # a _State, set on each struct class (and on a subclass that is not one yet)
_GENERATED = "__toolkit_generated__"  # marks the functions @tk.struct writes, so a user's own win
_MISSING: Any = dataclasses.MISSING


def field(
    *,
    static: bool = False,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] = _MISSING,
    init: bool = True,
    kw_only: bool = _MISSING,
    **kwargs: Any,
) -> Any:
    """Declare a struct field; ``static=True`` makes it structure, not data.

    A static field is never differentiated or traced: it is compared when two
    structs meet in arithmetic and it is part of the key ``jax.jit`` caches on,
    so it must be hashable. The other arguments (and ``repr``, ``hash``,
    ``compare``, ``metadata``) go to ``dataclasses.field``.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> @tk.struct
        ... class Scaled:
        ...     x: jnp.ndarray
        ...     unit: str = tk.field(static=True, default="m")
        >>> Scaled(jnp.ones(2)).unit
        'm'
    """
    _check_field_options(static, default, default_factory, init, kw_only, kwargs)
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata[_STATIC] = static
    return dataclasses.field(
        default=default, default_factory=default_factory, init=init, kw_only=kw_only, metadata=metadata, **kwargs
    )


_FIELD_OPTIONS = ("repr", "hash", "compare", "metadata")


def _check_field_options(static, default, default_factory, init, kw_only, kwargs: dict[str, Any]) -> None:
    for name, value in (("static", static), ("init", init), ("kw_only", kw_only)):
        if value is not _MISSING and not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"tk.field: {name} must be True or False, got {value!r}.")
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("tk.field: both default and default_factory were given; pass only one of them.")
    if default_factory is not _MISSING and not callable(default_factory):
        raise TypeError(
            f"tk.field: default_factory must be a function that makes the default (e.g. default_factory=list), "
            f"got {describe(default_factory)}; for a fixed value use default=..."
        )
    unknown = sorted(set(kwargs) - set(_FIELD_OPTIONS))
    if unknown:
        raise TypeError(
            f"tk.field: unknown option {', '.join(map(repr, unknown))}; tk.field takes static, default, "
            f"default_factory, init, kw_only, {', '.join(_FIELD_OPTIONS)}."
        )


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
    return _FIELDS in type(x).__dict__


@overload
def struct(cls: type[T], /, *, kw_only: bool = False) -> type[T]: ...


@overload
def struct(cls: None = None, /, *, kw_only: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def struct(cls: type[T] | None = None, /, *, kw_only: bool = False) -> Any:
    """Make ``cls`` a frozen dataclass that is a JAX pytree with elementwise arithmetic.

    Data fields are the leaves JAX traces and differentiates; fields declared with
    ``tk.field(static=True)`` are hashable structure. Arithmetic works struct with
    struct (same type, equal static fields) and struct with a scalar or any array
    that broadcasts against every data field, on either side.

    Rebuilding a struct inside ``jit``, ``grad`` or ``vmap`` does not call
    ``__init__`` or ``__post_init__``: validation written there runs when *you*
    construct a struct (or call ``.replace``), never on tracers or placeholders.

    Subclasses of ``cls`` become structs when they are defined, decorated or not.

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
    if not isinstance(kw_only, (bool, np.bool_)):
        raise TypeError(f"tk.struct: kw_only must be True or False, got {kw_only!r}.")
    if cls is None:
        return functools.partial(struct, kw_only=kw_only)
    if not isinstance(cls, type):
        raise TypeError(
            f"tk.struct: expected a class to decorate, got {describe(cls)}; write @tk.struct (or "
            f"@tk.struct(kw_only=True)) on the line above a class statement."
        )
    return _make_struct(cls, kw_only=bool(kw_only), init=True)


# --- making a class a struct ----------------------------------------------------


@dataclasses.dataclass
class _State:
    source: dict[str, Any]  # the class's namespace as written, to start again from
    settings: tuple[bool, bool] | None = None  # (kw_only, init) it is a struct with; None: not one (yet)
    registered: bool = False  # with JAX, which allows it once per class


def _make_struct(cls: Any, kw_only: bool, init: bool) -> Any:
    """Make ``cls`` a struct, starting again from its namespace if it is one with other settings.

    A subclass is made a struct as it is defined, before any decorator on it runs,
    so ``@tk.struct(kw_only=True)`` on a subclass redoes that work rather than
    processing the class a second time (which would lose its fields' metadata).
    """
    state = cls.__dict__.get(_STATE) or _State(dict(cls.__dict__))
    if state.settings == (kw_only, init):
        return cls
    _restore(cls, state.source)
    state.settings = None
    try:
        _build(cls, state, kw_only, init)
    except BaseException:
        _restore(cls, state.source)
        setattr(cls, _STATE, state)
        raise
    return cls


def _build(cls: Any, state: _State, kw_only: bool, init: bool) -> None:
    dataclasses.dataclass(frozen=True, eq=False, repr=False, kw_only=kw_only, init=init)(cls)
    fields = dataclasses.fields(cls)
    data = tuple(f.name for f in fields if not f.metadata.get(_STATIC, False))
    static = tuple(f.name for f in fields if f.metadata.get(_STATIC, False))
    if not init:
        _refuse_new_fields(cls, data + static)
    setattr(cls, _FIELDS, (data, static))
    _validate_on_init(cls, generated=init and "__init__" not in state.source)
    if not state.registered:  # redone with other settings, the fields are the same
        _register(cls, data, static)
        state.registered = True
    for name, method in _methods(cls).items():
        if not _user_defined(cls, name):  # a method the user wrote wins, also in a base class
            setattr(cls, name, method)
    _install_subclass_hook(cls)
    state.settings = (kw_only, init)
    setattr(cls, _STATE, state)


def _restore(cls: Any, source: dict[str, Any]) -> None:
    """Put the class's namespace back as it was written."""
    for name in [name for name in cls.__dict__ if name not in source]:
        delattr(cls, name)
    for name, value in source.items():
        if cls.__dict__.get(name, _MISSING) is not value:
            setattr(cls, name, value)


def _user_defined(cls: type, name: str) -> bool:
    """True when ``cls`` or a base (``object`` aside) defines ``name`` by hand rather than through ``@tk.struct``."""
    for klass in cls.__mro__[:-1]:
        if name in klass.__dict__:
            return not getattr(klass.__dict__[name], _GENERATED, False)
    return False


def _named(method: Any, cls: type, name: str) -> Any:
    """Give a generated method its name and ``cls``'s qualified name, and mark it as generated."""
    method.__name__ = name
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(method, _GENERATED, True)
    return method


# --- subclasses -----------------------------------------------------------------


def _install_subclass_hook(cls: Any) -> None:
    """Make every subclass of ``cls`` a struct as it is defined, after ``cls``'s own ``__init_subclass__``."""
    own = cls.__dict__.get("__init_subclass__")

    def __init_subclass__(sub: Any, **kwargs: Any) -> None:
        if own is not None:
            own.__get__(None, sub)(**kwargs)
        else:
            super(cls, sub).__init_subclass__(**kwargs)
        _auto_struct(sub)

    __init_subclass__.__doc__ = "Make the new subclass a struct, as ``@tk.struct`` would."
    cls.__init_subclass__ = classmethod(_named(__init_subclass__, cls, "__init_subclass__"))


def _auto_struct(cls: Any) -> None:
    """Make a new subclass of a struct a struct too, as a bare ``@tk.struct`` would.

    A hand-written ``__init__`` the subclass inherits (rather than defines) is kept,
    as Python's inheritance would keep it. A subclass this cannot work for is left
    as written, with an ``__init__`` that says why and to decorate it: the error
    cannot come now, as a ``@tk.struct(kw_only=True)`` on it (which fixes most such
    classes) runs only after this.
    """
    if _STATE in cls.__dict__:  # done already, through another struct base's hook
        return
    init = next(k.__dict__["__init__"] for k in cls.__mro__[1:] if "__init__" in k.__dict__)
    handwritten = "__init__" not in cls.__dict__ and not getattr(init, _GENERATED, False)
    try:
        _make_struct(cls, kw_only=False, init=not handwritten)
    except (TypeError, ValueError) as error:
        _refuse_on_init(cls, str(error))


def _refuse_new_fields(cls: Any, names: tuple[str, ...]) -> None:
    inherited: set[str] = set()
    for klass in cls.__mro__[1:]:
        if _FIELDS in klass.__dict__:
            data, static = klass.__dict__[_FIELDS]
            inherited.update(data, static)
    new = [name for name in names if name not in inherited]
    if new:
        owner = next(k for k in cls.__mro__[1:] if "__init__" in k.__dict__)
        raise TypeError(
            f"it adds the field{'s' if len(new) > 1 else ''} {', '.join(new)} but inherits the hand-written "
            f"{owner.__qualname__}.__init__, which does not know {'them' if len(new) > 1 else 'it'}"
        )


def _refuse_on_init(cls: Any, reason: str) -> None:
    base = next(k for k in cls.__mro__[1:] if _FIELDS in k.__dict__)
    message = (
        f"{cls.__qualname__} subclasses the struct {base.__qualname__}, so it must be a struct too, "
        f"but it cannot be made one as written ({reason}). Decorate it with @tk.struct, or "
        f"@tk.struct(kw_only=True) for fields without defaults after inherited ones with defaults."
    )

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        raise TypeError(message)

    cls.__init__ = __init__


# --- pytree registration and validation -----------------------------------------


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

    data_of, static_of = _getter(data), _getter(static)  # flattened on every compiled call: kept fast
    _GETTERS[cls] = (data_of, static_of)

    def flatten(x):
        return data_of(x), static_of(x)

    slotted = any("__slots__" in vars(k) for k in cls.__mro__[:-1])  # then instances have no __dict__
    unflatten = (_setattr_unflatten if slotted else _dict_unflatten)(cls, data, static)
    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)


_GETTERS: dict[type, tuple[Callable[[Any], tuple], Callable[[Any], tuple]]] = {}


def getters(cls: type) -> tuple[Callable[[Any], tuple], Callable[[Any], tuple]] | None:
    """``(data_of, static_of)`` of a struct class: functions giving an instance's data fields (the children JAX
    flattens it into) and its static fields (its treedef's aux data), as tuples; ``None`` for other classes."""
    return _GETTERS.get(cls)


def _setattr_unflatten(cls: type, data: tuple[str, ...], static: tuple[str, ...]) -> Callable:
    """An unflatten setting each field with ``object.__setattr__`` (the frozen dataclass's own is refused)."""

    def unflatten(aux, children):
        obj = object.__new__(cls)
        for name, value in zip(static, aux):
            object.__setattr__(obj, name, value)
        for name, value in zip(data, children):
            object.__setattr__(obj, name, value)
        return obj

    return unflatten


def _dict_unflatten(cls: type, data: tuple[str, ...], static: tuple[str, ...]) -> Callable:
    """An unflatten writing the fields straight into the new instance's ``__dict__``, as the setattr one would
    (static fields first), in half its time: every compiled call's output is rebuilt with it."""
    new = object.__new__

    def unflatten(aux, children):
        obj = new(cls)
        fields = obj.__dict__
        if static:
            fields.update(zip(static, aux))
        fields.update(zip(data, children))
        return obj

    return unflatten


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """``x -> tuple(getattr(x, n) for n in names)``, without a generator."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        name = names[0]
        return lambda x: (getattr(x, name),)
    return lambda x: ()


def _validate_on_init(cls: Any, generated: bool) -> None:
    """Check the fields after the class's ``__init__`` (its own, generated or inherited) has run."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self).__init__ is __init__:  # the outermost: a subclass's __init__ may not have set its fields yet
            _check_fields(self)

    setattr(__init__, _GENERATED, generated)  # a generated __init__ a subclass may replace by its own
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
        for path, leaf in jax.tree_util.tree_flatten_with_path(getattr(x, f))[0]:
            if isinstance(leaf, (str, bytes)):
                raise TypeError(
                    f"{name}.{f}{jax.tree_util.keystr(path)}: a string cannot be a data field (JAX cannot trace it); "
                    f"declare it with tk.field(static=True)."
                )


# --- arithmetic -----------------------------------------------------------------

_ARRAY_LIKE = (numbers.Number, np.ndarray, np.generic, jax.Array)
_BUILTINS = (list, tuple, dict, set, frozenset, str, bytes, type(None))  # their reflected operators never take a struct


def _refuse_non_numeric(where: str, leaf: Any, symbol: str) -> None:
    if not is_numeric(leaf):
        what, fix = non_numeric(leaf)
        raise TypeError(f"{where}: this leaf is {what}, which struct arithmetic ({symbol}) cannot use; {fix}.")


def _leafwise(op: Callable, symbol: str, x: Any, other: Any, path: str, reflected: bool) -> Any:
    """Apply ``op`` between every leaf of ``x`` and the array-like ``other``."""

    def apply(key_path, leaf):
        where = path + jax.tree_util.keystr(key_path)
        _refuse_non_numeric(where, leaf, symbol)
        _check_broadcast(where, leaf, other)
        return op(other, leaf) if reflected else op(leaf, other)

    return jax.tree_util.tree_map_with_path(apply, x)


def _shape(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, (jax.Array, np.ndarray)) else np.shape(x)


def _check_broadcast(path: str, a: Any, b: Any) -> None:
    first, second = _shape(a), _shape(b)
    if first == second or not first or not second:  # the usual cases (np.broadcast_shapes costs microseconds)
        return
    if any(m != n and m != 1 and n != 1 for m, n in zip(reversed(first), reversed(second))):
        raise ValueError(f"{path}: shapes {first} and {second} do not broadcast")


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
        where = path + jax.tree_util.keystr(key_path)
        _refuse_non_numeric(where, leaf_a, symbol)
        _refuse_non_numeric(where, leaf_b, symbol)
        _check_broadcast(where, leaf_a, leaf_b)
        out.append(op(leaf_a, leaf_b))
    return jax.tree_util.tree_unflatten(tree_a, out)


# --- arithmetic in one call ------------------------------------------------------
# Eagerly, ``colour - eta * grad`` on a struct of three arrays is six dispatches of
# a few microseconds each; when every data field is itself a concrete JAX array (or,
# between two structs, a Python number met by a floating-point array: the seed's
# ``RGB(1.0, 1.0, 1.0) - eta * g``), the checks run as below and the arithmetic of
# all fields is one jitted call. Under a
# transformation (tracers) it is the plain field-by-field code, so jaxprs are unchanged.
# ``**`` keeps the plain path: a Python exponent must stay static (integer_pow).


def fields_arithmetic(op: Callable, reflected: bool, leaves: tuple, other: Any) -> tuple:
    """``op`` of each of a struct's data fields ``leaves`` with one array or number ``other`` (``other op field``
    if ``reflected``): what struct arithmetic with a number or an array computes."""
    return tuple(op(other, leaf) if reflected else op(leaf, other) for leaf in leaves)


def pairs_arithmetic(op: Callable, reflected: bool, leaves: tuple, others: tuple) -> tuple:
    """``op`` of two structs' data fields, pair by pair (``others``' first if ``reflected``)."""
    first, second = (others, leaves) if reflected else (leaves, others)
    return tuple(op(a, b) for a, b in zip(first, second))


@functools.cache
def _fields_at_once(op: Callable, reflected: bool) -> Callable:
    return jax.jit(functools.partial(fields_arithmetic, op, reflected))


@functools.cache
def _pairs_at_once(op: Callable, reflected: bool) -> Callable:
    return jax.jit(functools.partial(pairs_arithmetic, op, reflected))


def _concrete_arrays(values: tuple[Any, ...]) -> bool:
    concrete = concrete_array_type()
    for v in values:
        if type(v) is not concrete:
            return False
    return True


def _arrays_and_numbers(leaves: tuple[Any, ...], others: tuple[Any, ...]) -> bool:
    """Whether each pair of fields is two concrete arrays, or a concrete floating-point array and a Python number
    (``RGB(1.0, 1.0, 1.0) - eta * g``: the plain path turns the number into an array of the array's dtype too)."""
    concrete = concrete_array_type()
    for a, b in zip(leaves, others):
        array, number = (a, b) if type(a) is concrete else (b, a)
        if type(array) is not concrete:
            return False
        if type(number) is not concrete and (
            type(number) not in (int, float) or not jax.numpy.issubdtype(array.dtype, jax.numpy.inexact)
        ):
            return False
    return True


@functools.lru_cache(maxsize=256)
def _data_getter(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    registered = _GETTERS.get(cls)  # the getter its registration with JAX flattens it with
    return registered[0] if registered is not None else _getter(getattr(cls, _FIELDS)[0])


def _at_once(op: Callable, symbol: str, self: Any, other: Any, reflected: bool) -> Any:
    """``self op other`` with every field in one call, or ``None`` where the plain path applies."""
    kind = type(self)
    data, static = getattr(kind, _FIELDS)
    if op is operator.pow or not data:
        return None
    watch = _WATCH
    if watch.kept is not None:
        made = watch.kept(op, reflected, self, other)
        if made is not None:
            return made
    leaves = _data_getter(kind)(self)
    if type(other) is kind:
        if static and any(getattr(self, f) != getattr(other, f) for f in static):
            return None  # the plain path says what differs
        others = _data_getter(kind)(other)
        if not (_concrete_arrays(leaves) and _concrete_arrays(others) or _arrays_and_numbers(leaves, others)):
            return None
        for f, a, b in zip(data, leaves, others):
            if type(a) is type(b) and a.shape != b.shape:  # (a number broadcasts with any field)
                _check_broadcast(f"{kind.__name__}.{f}", a, b)
        results = _pairs_at_once(op, reflected)(leaves, others)
    elif is_struct(other):
        return None
    else:
        number = type(other) in (int, float)
        if not _concrete_arrays(leaves if number else (*leaves, other)):
            return None
        for f, leaf in zip(data, leaves) if not number else ():  # a number broadcasts with any field
            _check_broadcast(f"{kind.__name__}.{f}", leaf, other)
        results = _fields_at_once(op, reflected)(leaves, other)
    obj = like(self, results)
    if watch.seen is not None:
        watch.seen(op, reflected, self, other, obj)
    return obj


def like(x: Any, leaves: Any) -> Any:
    """A struct of ``x``'s type and static fields whose data fields are ``leaves`` (in field order), made without
    running ``__init__`` (what arithmetic on ``x`` returns)."""
    kind = type(x)
    data, static = getattr(kind, _FIELDS)
    obj = object.__new__(kind)
    for f in static:
        object.__setattr__(obj, f, getattr(x, f))
    for f, value in zip(data, leaves):
        object.__setattr__(obj, f, value)
    return obj


def data_of(x: Any) -> tuple[Any, ...]:
    """The struct ``x``'s data fields, in field order."""
    return _data_getter(type(x))(x)


class _Watch:
    """Where a module above this one follows struct arithmetic (``toolkit.ahead``, see :func:`watch_arithmetic`)."""

    kept: Callable[[Callable, bool, Any, Any], Any] | None = None
    seen: Callable[[Callable, bool, Any, Any, Any], None] | None = None


_WATCH = _Watch()


def watch_arithmetic(
    kept: Callable[[Callable, bool, Any, Any], Any], seen: Callable[[Callable, bool, Any, Any, Any], None]
) -> None:
    """Have struct arithmetic done in one call (every data field a concrete JAX array) ask ``kept(op, reflected,
    self, other)`` first for a result worked out before (``None``: none, it is computed), and tell ``seen(op,
    reflected, self, other, result)`` of each one it computes. (For ``toolkit.ahead``, which sits above this
    module: a gradient's program can then also compute the arithmetic a loop makes of it.)"""
    _WATCH.kept, _WATCH.seen = kept, seen


def _dispatch(op: Callable, symbol: str, dunder: str, self: Any, other: Any, reflected: bool) -> Any:
    name = type(self).__name__
    fast = _at_once(op, symbol, self, other, reflected)
    if fast is not None:
        return fast
    if is_struct(other):  # errors name the left operand's type (Python tries a subclass's reflected method first)
        if reflected:
            return _pairwise(op, symbol, other, self, type(other).__name__)
        return _pairwise(op, symbol, self, other, name)
    if isinstance(other, _ARRAY_LIKE) and is_numeric(other):
        data, static = getattr(type(self), _FIELDS)
        values = {f: getattr(self, f) for f in static}
        for f in data:
            values[f] = _leafwise(op, symbol, getattr(self, f), other, f"{name}.{f}", reflected)
        return _new(type(self), values)
    if not reflected and hasattr(type(other), f"__r{dunder}__") and not isinstance(other, _ARRAY_LIKE + _BUILTINS):
        return NotImplemented  # Python asks other's reflected method next, as for any other type
    raise _unsupported(name, symbol, other, reflected)


def _unsupported(name: str, symbol: str, other: Any, reflected: bool) -> TypeError:
    """Why ``other`` cannot meet the struct ``name`` in arithmetic, and what to pass instead."""
    kind = type(other).__name__
    left, right = (kind, name) if reflected else (name, kind)
    if isinstance(other, _ARRAY_LIKE):
        what, fix = non_numeric(other)
        return TypeError(f"{name}: cannot compute {left} {symbol} {right}: the other operand is {what}; {fix}.")
    hint = f" (convert the {kind} with jnp.asarray(...))" if isinstance(other, (list, tuple)) else ""
    return TypeError(
        f"{name}: cannot compute {left} {symbol} {right} (unsupported operand type(s) for {symbol}); struct "
        f"arithmetic takes a struct of the same type, a number or an array{hint}."
    )


def _replace(self: Any, changes: dict[str, Any]) -> Any:
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


# --- the generated methods: new function objects for each class, named for it ---

_BINARY = (
    ("add", operator.add, "+"),
    ("sub", operator.sub, "-"),
    ("mul", operator.mul, "*"),
    ("truediv", operator.truediv, "/"),
    ("pow", operator.pow, "**"),
)


def _binary(op: Callable, symbol: str, dunder: str) -> tuple[Callable, Callable]:
    def forward(self, other):
        return _dispatch(op, symbol, dunder, self, other, reflected=False)

    def reflected(self, other):
        return _dispatch(op, symbol, dunder, self, other, reflected=True)

    forward.__doc__ = f"``self {symbol} other`` field by field; ``other`` is a struct of this type or an array-like."
    reflected.__doc__ = f"``other {symbol} self`` field by field; ``other`` is an array-like."
    return forward, reflected


def _unary(op: Callable, symbol: str) -> Callable:
    def method(self):
        return jax.tree.map(op, self)

    method.__doc__ = f"``{symbol}`` applied to every data field."
    return method


def _replace_method() -> Callable:
    def replace(self, **changes):
        """Return a copy with the given fields replaced (runs ``__init__`` validation)."""
        return _replace(self, changes)

    return replace


def _repr_method() -> Callable:
    def __repr__(self):
        """The type and each field, arrays as dtype, shape and their first values."""
        return _repr(self)

    return __repr__


def _methods(cls: type) -> dict[str, Any]:
    """The methods ``@tk.struct`` gives ``cls`` (where neither it nor a base wrote its own)."""
    methods: dict[str, Any] = {
        "replace": _replace_method(),
        "__repr__": _repr_method(),
        "__neg__": _unary(operator.neg, "-x"),
        "__pos__": _unary(operator.pos, "+x"),
        "__abs__": _unary(abs, "abs(x)"),
    }
    for name, op, symbol in _BINARY:
        methods[f"__{name}__"], methods[f"__r{name}__"] = _binary(op, symbol, name)
    methods = {name: _named(method, cls, name) for name, method in methods.items()}
    # NumPy arrays on the left would otherwise broadcast over the struct as an
    # object; None makes them defer to our reflected operators.
    methods["__array_ufunc__"] = None
    return methods

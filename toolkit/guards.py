"""Guard plans: a capture walk's decisions, replayed on the next call without building its key.

:func:`toolkit.closures.capture` walks everything a call reads and builds a deep
hashable key; a plain loop calls ``tk.gradient`` with a new lambda every step,
so the key is built, hashed and compared every step (most of a step's time)
although nothing in it changes but the arrays' values. A plan turns the key
into checks on the new call's values: "this is a function with that code and
those globals, its first cell holds that ``tk.Param`` box, which holds a
``float32[3, 3]`` array, its second a ``float32[3]`` NumPy array, ...". Replayed,
it checks each and collects the arrays in the walk's order.

A plan is never looser than the key: where every check passes, the walk would
have built an equal key (so the call may run the program cached under it, on
the arrays collected); where one fails, the call takes the walk, which may make
a new plan. It checks exact types where the key has only shapes and dtypes,
and identity where the key is looser still ("recursive" functions), so it may
fail where the key would match, never the other way round.

Example:
    >>> import jax.numpy as jnp
    >>> from toolkit import closures, guards
    >>> def make(target):
    ...     return lambda p: jnp.sum((p - target) ** 2)
    >>> loss = make(jnp.array([1.0, 2.0]))
    >>> match = guards.plan(loss, closures.capture(loss).key)
    >>> arrays = []
    >>> match(make(jnp.array([3.0, 4.0])), arrays), arrays   # the same code, a new array
    (True, [Array([3., 4.], dtype=float32)])
    >>> match(make(jnp.array([3.0, 4.0, 5.0])), [])          # another shape
    False
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from toolkit import _effects, closures
from toolkit.cache import Key
from toolkit.params import Param, Params

__all__ = ["Match", "plan"]

Match = Callable[[Any, list], bool]  # (value, arrays found so far) -> whether the value keys as planned


class _NoPlan(Exception):
    """The key has a part whose check would depend on more than the values a plan looks at."""


def plan(value: Any, key: Any) -> Match | None:
    """The checks that ``value``'s capture key ``key`` stands for, or ``None`` where a plan cannot be made."""
    try:
        return _match(value, key)
    except _NoPlan:
        return None


def _match(value: Any, key: Any) -> Match:
    if isinstance(key, Key):  # a library tuple (an optimiser), remembered by identity with its arrays
        return _remembered(value, key)
    head = key[0]
    if type(head) is str:
        return _TAGGED[head](value, key)
    if head in (tuple, list) and type(value) is head:
        return _sequence(head, [_match(item, k) for item, k in zip(value, key[1])])
    if head is dict and type(value) is dict:
        return _dict(tuple(value), [_match(item, k) for item, k in zip(value.values(), (k for _, k in key[1]))])
    return _plain(head, key[1])


def _plain(kind: type, expected: Any) -> Match:
    def match(v: Any, arrays: list) -> bool:
        return type(v) is kind and (v is expected or v == expected)

    return match


def _array(value: Any, key: Any) -> Match:
    kind, (_, shape, dtype, weak) = type(value), key
    if kind is np.ndarray:

        def match_numpy(v: Any, arrays: list) -> bool:
            if type(v) is kind and v.shape == shape and v.dtype == dtype:
                arrays.append(v)
                return True
            return False

        return match_numpy

    def match(v: Any, arrays: list) -> bool:
        if type(v) is kind and v.shape == shape and v.dtype == dtype and v.weak_type == weak:
            arrays.append(v)
            return True
        return False

    return match


def _sequence(kind: type, items: list[Match]) -> Match:
    n = len(items)

    def match(v: Any, arrays: list) -> bool:
        if type(v) is not kind or len(v) != n:
            return False
        for m, item in zip(items, v):
            if not m(item, arrays):
                return False
        return True

    return match


def _dict(names: tuple[Any, ...], items: list[Match]) -> Match:
    n = len(items)

    def match(v: Any, arrays: list) -> bool:
        if type(v) is not dict or len(v) != n:
            return False
        for name, m, (k, item) in zip(names, items, v.items()):
            if k != name or not m(item, arrays):
                return False
        return True

    return match


def _same(value: Any) -> Match:
    """The very object (held weakly where Python allows)."""
    alive = closures.identity(value).alive

    def match(v: Any, arrays: list) -> bool:
        return v is alive()

    return match


def _identity(value: Any, key: Any) -> Match:
    return _same(value)


def _remembered(value: Any, key: Key) -> Match:
    kind, (_, arrays_of_value) = type(value), closures.remembered(value) or (None, ())

    def match(v: Any, arrays: list) -> bool:
        if v is value:
            arrays.extend(arrays_of_value)
            return True
        if type(v) is not kind:
            return False
        other = closures.remembered(v)  # an equal optimiser made anew (`tk.Momentum()` each step): keyed alike
        if other is None or other[0] != key:
            return False
        arrays.extend(other[1])
        return True

    return match


def _empty(value: Any, key: Any) -> Match:
    kind = key[1]

    def match(v: Any, arrays: list) -> bool:
        return type(v) is kind and not v

    return match


def _value(value: Any, key: Any) -> Match:
    return _plain(key[1], key[2])


def _box(value: Param, key: Any) -> Match:
    alive, inner = closures.identity(value).alive, _match(value.value, key[2])

    def match(v: Any, arrays: list) -> bool:
        return v is alive() and inner(v.value, arrays)

    return match


def _boxes(value: Params, key: Any) -> Match:
    return _sequence_of(type(value), [_match(box, k) for box, k in zip(value, key[1:])])


def _sequence_of(kind: type, items: list[Match]) -> Match:
    """Like :func:`_sequence`, for an iterable type other than a tuple or a list (``tk.Params``)."""
    n = len(items)

    def match(v: Any, arrays: list) -> bool:
        if type(v) is not kind or len(v) != n:
            return False
        for m, item in zip(items, v):
            if not m(item, arrays):
                return False
        return True

    return match


def _method(value: types.MethodType, key: Any) -> Match:
    function, receiver = _match(value.__func__, key[1]), _match(value.__self__, key[2])

    def match(v: Any, arrays: list) -> bool:
        return type(v) is types.MethodType and function(v.__func__, arrays) and receiver(v.__self__, arrays)

    return match


def _partial(value: functools.partial, key: Any) -> Match:
    kind = type(value)
    func, args = _match(value.func, key[1]), _match(value.args, key[2])
    keywords = _match(dict(value.keywords), key[3])

    def match(v: Any, arrays: list) -> bool:
        return type(v) is kind and func(v.func, arrays) and args(v.args, arrays) and keywords(dict(v.keywords), arrays)

    return match


def _tree(value: Any, key: Any) -> Match:
    kind, treedef = type(value), key[1]
    leaves = [_match(leaf, k) for leaf, k in zip(jax.tree.leaves(value), key[2])]

    def match(v: Any, arrays: list) -> bool:
        if type(v) is not kind:
            return False
        found, structure = jax.tree.flatten(v)
        if structure != treedef:
            return False
        for m, leaf in zip(leaves, found):
            if not m(leaf, arrays):
                return False
        return True

    return match


def _object(value: Any, key: Any) -> Match:
    alive = closures.identity(value).alive
    attributes = _match(dict(value.__dict__), key[3])
    methods = closures.methods(type(value))
    planned = [_match(method, k) for (_, method), k in zip(methods, key[4])]

    def match(v: Any, arrays: list) -> bool:
        if v is not alive() or not attributes(v.__dict__, arrays):
            return False
        for m, (_, method) in zip(planned, methods):
            if not m(method, arrays):
                return False
        return True

    return match


def _empty_cell(value: Any, key: Any) -> Match:
    def match(v: Any, arrays: list) -> bool:
        return v is _EMPTY

    return match


_EMPTY = object()  # what an empty closure cell holds, for the checks


def _function(value: types.FunctionType, key: Any) -> Match:
    _, code, _, cell_keys, defaults_key, globals_key = key
    scope, library = value.__globals__, closures.is_library_code(code)
    if not library and not all(map(_constant_attributes, _effects.read_through_attributes(value))):
        raise _NoPlan  # its side-effect verdict reads attributes that nothing checks: judged by the walk each call
    cells = [_match(_contents(cell), k) for cell, k in zip(value.__closure__ or (), cell_keys)]
    both = (value.__defaults__, value.__kwdefaults__)
    defaults = None if defaults_key is None else _match(both, defaults_key)
    names = closures.global_names(value) if not library else ()
    read = [(name, _match(scope[name], k)) for name, (_, k) in zip(names, globals_key)]
    modules = [] if library else closures.user_modules(value)
    attributes = [
        (name, attribute, module, _match(getattr(module, attribute, closures.MISSING), k[2]))
        for (name, attribute, module), k in zip(modules, globals_key[len(names) :])
    ]
    fixed = [] if library else [(n, scope.get(n, _EMPTY)) for n in closures.code_names(code) if n not in names]
    return _function_match(code, scope, cells, defaults, read, attributes, fixed)


def _function_match(code, scope, cells, defaults, read, attributes, fixed) -> Match:  # noqa: ANN001
    def match(v: Any, arrays: list) -> bool:
        if type(v) is not types.FunctionType or v.__code__ is not code or v.__globals__ is not scope:
            return False
        for m, cell in zip(cells, v.__closure__ or ()):
            if not m(_contents(cell), arrays):
                return False
        if defaults is None:
            if v.__defaults__ is not None or v.__kwdefaults__ is not None:
                return False
        elif not defaults((v.__defaults__, v.__kwdefaults__), arrays):
            return False
        for name, m in read:
            if not m(scope.get(name, _EMPTY), arrays):
                return False
        for name, held in fixed:  # absent names stay absent, modules stay the same modules
            if scope.get(name, _EMPTY) is not held:
                return False
        for name, attribute, module, m in attributes:  # `mymodel.w`: the same module, and what it holds now
            found = getattr(module, attribute, closures.MISSING)
            if closures.module_named(v, name) is not module or not m(found, arrays):
                return False
        return True

    return match


def _constant_attributes(value: Any) -> bool:
    """A library's module (``jax`` of ``jax.random.uniform``): its attributes are taken as constants."""
    return type(value) is types.ModuleType and closures.is_library(value)


def _contents(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY


def _recursive(value: Any, key: Any) -> Match:
    return _same(value)  # the key has the code only (the walk met the function before): the same object, stricter


_TAGGED: dict[str, Callable[[Any, Any], Match]] = {
    "array": _array,
    "function": _function,
    "recursive": _recursive,
    "box": _box,
    "boxes": _boxes,
    "method": _method,
    "partial": _partial,
    "empty": _empty,
    "tree": _tree,
    "identity": _identity,
    "opaque": _identity,
    "object": _object,
    "value": _value,
    "empty cell": _empty_cell,
}

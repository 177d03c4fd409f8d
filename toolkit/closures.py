"""What a function reads besides its arguments: arrays to pass in, and everything else to key a compiled program on.

``jax.jit`` bakes the arrays a function reads from its closure or from globals
into the compiled program as constants, so changing one later silently gives
stale results. toolkit compiles user functions for them (``tk.optimise``), so it
must do better: :func:`capture` walks a function the way Python will run it (its
closure cells, the globals its code names, default arguments, bound ``self``,
``functools.partial`` arguments, and the same for every function it reaches
that way, containers and pytrees included) and sorts what it finds:

* **arrays** (JAX arrays and NumPy arrays) become inputs of the compiled
  program, so the next call sees their current values (NumPy *scalars* are
  immutable and keep their constant typing, so they go into the key);
* **everything else** goes into a hashable key: numbers and strings by value
  (a changed ``int`` compiles anew, never a stale result), functions by their
  code and what they capture in turn, other objects by identity (held weakly
  where Python allows, so the cache keeps nothing alive).

:meth:`Captured.rebuild` makes a copy of the function that reads given
replacement arrays (tracers, inside ``jit``) instead, by building new function
objects with new closure cells and a globals mapping where those names are
replaced. Library functions (JAX, NumPy, optax, ...) are walked through their
closures (an ``optax.adam(1e-3)`` made anew each call keys the same as the last
one) but not through their module globals, which are constants.

Instances of the user's own classes are walked through their ``__dict__`` (a
model whose ``W`` attribute is an array has ``W`` passed in; ``copy.copy`` makes
the replacement). Other objects (a jitted function, an instance of a library
class, anything with ``__slots__`` only) key by identity, and whatever arrays
they hold stay constants of the program.
"""

from __future__ import annotations

import copy
import dataclasses
import dis
import functools
import types
import weakref
from typing import Any

import jax
import numpy as np

from toolkit import filters

__all__ = ["Captured", "capture"]

_LIBRARIES = ("jax", "jaxlib", "numpy", "optax", "flax", "chex", "scipy", "colour", "builtins", "functools")
_DEPTH = 12  # how deep the walk goes (containers and functions reached through each other)
_MOST_LEAVES = 10_000  # a container with more leaves than this is keyed by identity, not walked


def _is_library(thing: Any) -> bool:
    module = getattr(thing, "__module__", None) or ""
    return module.split(".")[0] in _LIBRARIES


@functools.lru_cache(maxsize=4096)
def _code_names(code: types.CodeType) -> tuple[str, ...]:
    """Every global name the code (and code nested in it: lambdas, comprehensions) looks up (not attributes)."""
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        names.update(i.argval for i in dis.get_instructions(current) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME"))
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return tuple(sorted(names))


_STRONG = (dict, tuple, list, int, str)  # never weakly referenceable (a module's globals: a dict that lives forever)


class _Identity:
    """A key part that stands for an object by identity, without keeping it alive where a weak reference works."""

    __slots__ = ("ref", "ident", "strong")

    def __init__(self, value: Any):
        self.ident = id(value)
        if type(value) in _STRONG:
            self.ref, self.strong = None, value
            return
        try:
            self.ref, self.strong = weakref.ref(value), None
        except TypeError:
            self.ref, self.strong = None, value  # not weakly referenceable: kept (the cache that holds this is bounded)

    def alive(self) -> Any:
        return self.strong if self.ref is None else self.ref()

    def __hash__(self) -> int:
        return self.ident

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and self.ident == other.ident and self.alive() is other.alive() is not None


@dataclasses.dataclass
class _Walk:
    """One walk: the arrays found so far (in order) and the functions already being walked (cycles)."""

    arrays: list[Any] = dataclasses.field(default_factory=list)
    seen: dict[int, Any] = dataclasses.field(default_factory=dict)

    def array(self, value: Any) -> tuple:
        self.arrays.append(value)
        return ("array", value.shape, value.dtype, bool(getattr(value, "weak_type", False)))


_PLAIN = (bool, int, float, complex, str, bytes, type(None))  # keyed by value at once (the common case, kept fast)


def _key(value: Any, walk: _Walk, depth: int) -> Any:
    """The key part for ``value``, recording the arrays it holds in ``walk``."""
    if type(value) in _PLAIN or isinstance(value, np.generic):  # NumPy scalars: immutable, and typed as constants
        return (type(value), value)
    if filters.is_array(value):
        return walk.array(value)
    if depth > _DEPTH:
        return ("opaque", _Identity(value))
    if isinstance(value, types.FunctionType):
        return _function_key(value, walk, depth)
    if isinstance(value, types.MethodType):
        return ("method", _key(value.__func__, walk, depth + 1), _key(value.__self__, walk, depth + 1))
    if isinstance(value, functools.partial):
        parts = (value.func, value.args, dict(value.keywords))
        return ("partial", *(_key(part, walk, depth + 1) for part in parts))
    flat = _flatten(value)
    if flat is not None and len(flat[0]) > _MOST_LEAVES:  # a dataset, say: by identity (its arrays stay constants)
        return ("identity", _Identity(value))
    if flat is not None:  # a container or a registered pytree (a struct, say)
        leaves, treedef = flat
        return ("tree", treedef, tuple(_key(leaf, walk, depth + 1) for leaf in leaves))
    return _scalar_or_object_key(value, walk, depth)


def _flatten(value: Any) -> tuple[list[Any], Any] | None:
    """``value``'s leaves and structure if it is a pytree node (not a leaf); ``None`` for a leaf or an odd node."""
    try:
        leaves, treedef = jax.tree.flatten(value)
    except (TypeError, ValueError):  # e.g. a dict whose keys do not sort (classes as keys): keyed as an object
        return None
    return None if len(leaves) == 1 and leaves[0] is value else (leaves, treedef)


def _walks_into(value: Any) -> bool:
    """An instance of a user's class with a plain ``__dict__``: its attributes are walked (and copied to replace)."""
    kind = type(value)
    return isinstance(getattr(value, "__dict__", None), dict) and not _is_library(kind) and not isinstance(value, type)


def _scalar_or_object_key(value: Any, walk: _Walk, depth: int) -> Any:
    if isinstance(value, (type, types.ModuleType, types.BuiltinFunctionType)):
        return ("identity", _Identity(value))
    if _walks_into(value) and type(value).__hash__ is object.__hash__:
        return ("object", type(value), _Identity(value), _key(dict(value.__dict__), walk, depth + 1))
    try:
        hash(value)
    except TypeError:
        return ("identity", _Identity(value))
    if type(value).__hash__ is object.__hash__:  # hashed by identity anyway
        return ("identity", _Identity(value))
    return ("value", type(value), value)


def _function_key(function: types.FunctionType, walk: _Walk, depth: int) -> Any:
    if id(function) in walk.seen:  # recursion (a function reaching itself): the key of its code only
        return ("recursive", function.__code__)
    walk.seen[id(function)] = function
    cells = tuple(_cell_key(cell, walk, depth + 1) for cell in function.__closure__ or ())
    defaults = _key((function.__defaults__, function.__kwdefaults__), walk, depth + 1)
    names = () if _is_library(function) else _global_names(function)
    globals_ = tuple((name, _key(function.__globals__[name], walk, depth + 1)) for name in names)
    return ("function", function.__code__, _Identity(function.__globals__), cells, defaults, globals_)


def _cell_key(cell: types.CellType, walk: _Walk, depth: int) -> Any:
    try:
        contents = cell.cell_contents
    except ValueError:  # an empty cell (a name assigned later in the enclosing function)
        return ("empty cell",)
    return _key(contents, walk, depth)


def _global_names(function: types.FunctionType) -> tuple[str, ...]:
    """The globals the function's code names that exist in its module (modules themselves aside)."""
    scope = function.__globals__
    return tuple(n for n in _code_names(function.__code__) if n in scope and type(scope[n]) is not types.ModuleType)


# --- rebuilding with replacement arrays --------------------------------------------------------------


class _Rebuild:
    """Replacement arrays, handed out in the order the walk found the originals."""

    def __init__(self, arrays: list[Any]):
        self.arrays = iter(arrays)
        self.done: dict[int, Any] = {}

    def value(self, value: Any, depth: int) -> Any:
        if type(value) in _PLAIN or isinstance(value, np.generic):
            return value
        if filters.is_array(value):
            return next(self.arrays)
        if depth > _DEPTH:
            return value
        if isinstance(value, types.FunctionType):
            return self.function(value, depth)
        if isinstance(value, types.MethodType):
            return types.MethodType(self.value(value.__func__, depth + 1), self.value(value.__self__, depth + 1))
        if isinstance(value, functools.partial):
            func, args, keywords = (
                self.value(part, depth + 1) for part in (value.func, value.args, dict(value.keywords))
            )
            return functools.partial(func, *args, **keywords)
        flat = _flatten(value)
        if flat is not None and len(flat[0]) <= _MOST_LEAVES:
            leaves, treedef = flat
            return jax.tree.unflatten(treedef, [self.value(leaf, depth + 1) for leaf in leaves])
        return self.object(value, depth)

    def object(self, value: Any, depth: int) -> Any:
        if not (_walks_into(value) and type(value).__hash__ is object.__hash__):
            return value
        attributes = self.value(dict(value.__dict__), depth + 1)
        if all(attributes[name] is value.__dict__[name] for name in attributes):
            return value
        twin = copy.copy(value)
        twin.__dict__.update(attributes)
        return twin

    def cell(self, cell: types.CellType, depth: int) -> types.CellType:
        try:
            contents = cell.cell_contents
        except ValueError:
            return types.CellType()
        return types.CellType(self.value(contents, depth))

    def function(self, function: types.FunctionType, depth: int) -> types.FunctionType:
        if id(function) in self.done:
            return self.done[id(function)]
        self.done[id(function)] = function  # until rebuilt: a recursive reference keeps the original
        closure = tuple(self.cell(c, depth + 1) for c in function.__closure__ or ())
        defaults, kwdefaults = self.value((function.__defaults__, function.__kwdefaults__), depth + 1)
        scope = function.__globals__
        names = () if _is_library(function) else _global_names(function)
        replaced = {name: self.value(scope[name], depth + 1) for name in names}
        if any(replaced[name] is not scope[name] for name in names):
            scope = {**scope, **replaced}
        twin = types.FunctionType(function.__code__, scope, function.__name__, defaults, closure or None)
        twin.__kwdefaults__ = kwdefaults
        twin.__dict__.update(function.__dict__)
        twin.__qualname__ = function.__qualname__
        self.done[id(function)] = twin
        return twin


@dataclasses.dataclass(frozen=True)
class Captured:
    """A value (a function, usually) split into the arrays it reads and a hashable key for the rest.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.closures import capture
        >>> target = jnp.array([1.0, 2.0])
        >>> loss = lambda p: jnp.sum((p - target) ** 2)
        >>> captured = capture(loss)
        >>> [a.tolist() for a in captured.arrays]
        [[1.0, 2.0]]
        >>> float(captured.rebuild([jnp.zeros(2)])(jnp.ones(2)))   # reads the replacement instead
        2.0
    """

    value: Any
    key: Any
    arrays: tuple[Any, ...]

    def rebuild(self, arrays: list[Any] | tuple[Any, ...]) -> Any:
        """The value, reading ``arrays`` (one per entry of :attr:`arrays`, in order) where it read those."""
        return _Rebuild(list(arrays)).value(self.value, 0)


def capture(value: Any) -> Captured:
    """Walk ``value`` (a function, a method, a partial, an optimiser...) for the arrays it reads and its key.

    Two calls give equal keys exactly when the program the value stands for is
    the same: the same code, equal numbers and strings, the same objects, and
    arrays of the same shapes and dtypes (whose values then come in as inputs).
    """
    walk = _Walk()
    key = _key(value, walk, 0)
    return Captured(value, key, tuple(walk.arrays))

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

Instances of the user's own classes (dataclasses, frozen or not, ``__slots__``
classes and ``types.SimpleNamespace`` included) are walked through their
attributes (a model whose ``W`` attribute is an array has ``W`` passed in;
``copy.copy`` makes the replacement), unless they hash by value (then they key
by value). Other objects (a jitted function, an instance of a library class)
key by identity, and whatever arrays they hold stay constants of the program.
So do arrays stored on a class (``Model.SCALE``, or ``self.SCALE`` where
``SCALE`` is a class attribute): classes key by identity, and their attributes
are read when the program is traced. Keep arrays that change on instances, in
globals or in closures.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import dis
import functools
import os
import sys
import types
import weakref
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from toolkit import _effects
from toolkit.cache import Key
from toolkit.params import Param, Params

__all__ = ["Captured", "capture", "holding"]

_LIBRARIES = (
    *("jax", "jaxlib", "numpy", "optax", "flax", "chex", "scipy", "colour", "builtins", "functools", "toolkit"),
    *("pytest", "_pytest", "pluggy"),  # what pytest's assertion rewriting has a test's functions read
)
_DEPTH = 12  # how deep the walk goes (containers and functions reached through each other)
_MOST_LEAVES = 10_000  # a container with more leaves than this is keyed by identity, not walked


def _is_library(thing: Any) -> bool:
    """Library code (JAX, NumPy, optax, toolkit itself, ...): its globals are constants, and it has no side effects.

    A function is judged by the file its code is in (a doctest's lambda is the
    user's even inside a toolkit module), anything else by its module's name.
    """
    if isinstance(thing, types.ModuleType):  # first: a module's getattr may run its lazy __getattr__
        return thing.__name__.split(".")[0] in _LIBRARIES
    code = getattr(thing, "__code__", None)
    if code is not None:
        return _is_library_file(code.co_filename)
    module = getattr(thing, "__module__", None) or ""
    return module.split(".")[0] in _LIBRARIES


@functools.lru_cache(maxsize=4096)
def _is_library_file(filename: str) -> bool:
    """Whether the file belongs to one of the libraries' packages (those imported so far; a file is seen after)."""
    for name in _LIBRARIES:
        module = sys.modules.get(name)
        folder = os.path.dirname(getattr(module, "__file__", None) or "")
        if folder and filename.startswith(folder + os.sep):
            return True
    return False


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


@functools.lru_cache(maxsize=4096)
def _module_attributes(code: types.CodeType) -> tuple[tuple[str, str], ...]:
    """``(name, attribute)`` for every ``name.attribute`` the code (and code nested in it) reads off a global
    or a closure variable (which may be a module: ``import mymodel`` inside a function)."""
    found: set[tuple[str, str]] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        instructions = list(dis.get_instructions(current))
        for ins, following in zip(instructions, instructions[1:]):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF") and following.opname in _ATTRIBUTE_LOADS:
                found.add((ins.argval, following.argval))
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return tuple(sorted(found))


_ATTRIBUTE_LOADS = ("LOAD_ATTR", "LOAD_METHOD")


def _module_named(function: types.FunctionType, name: str) -> types.ModuleType | None:
    """The user's own module (not a library's) that ``name`` is in the function's closure or globals, if any."""
    names = function.__code__.co_freevars
    if name in names and function.__closure__:
        try:
            value = function.__closure__[names.index(name)].cell_contents
        except ValueError:
            return None
    else:
        value = function.__globals__.get(name)
    return value if type(value) is types.ModuleType and not _is_library(value) else None


def _user_modules(function: types.FunctionType) -> tuple[tuple[str, str, types.ModuleType], ...]:
    """The ``module.attribute`` reads of the function's code off the user's own modules."""
    found = []
    for name, attribute in _module_attributes(function.__code__):
        module = _module_named(function, name)
        if module is not None:
            found.append((name, attribute, module))
    return tuple(found)


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
    effects: list[_effects.Effect] = dataclasses.field(default_factory=list)
    # Whether it read what the user may change between calls (a user function's globals or cells, a box, an
    # object's attributes): then a library tuple it went through is not remembered.
    mutable: bool = False

    def array(self, value: Any) -> tuple:
        self.arrays.append(value)
        return ("array", value.shape, value.dtype, bool(getattr(value, "weak_type", False)))


_PLAIN = (bool, int, float, complex, str, bytes, type(None))  # keyed by value at once (the common case, kept fast)


_PLAIN_TYPES = frozenset(_PLAIN)
_ARRAY_TYPES: set[type] = set()  # the types of JAX arrays met so far (for the fast path)


def _key(value: Any, walk: _Walk, depth: int) -> Any:
    """The key part for ``value``, recording the arrays it holds in ``walk``."""
    kind = type(value)
    if kind in _PLAIN_TYPES:  # the common cases first, by type alone (this runs on every eager call)
        return (kind, value)
    if kind in _ARRAY_TYPES:
        walk.arrays.append(value)
        return ("array", value.shape, value.dtype, value.weak_type)
    if kind is np.ndarray and value.dtype.kind in "biufc":
        walk.arrays.append(value)
        return ("array", value.shape, value.dtype, False)
    if depth <= _DEPTH:
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return handler(value, walk, depth)
    return _any_key(value, walk, depth)


def _sequence_key(value: Any, walk: _Walk, depth: int) -> Any:
    return (type(value), tuple([_key(item, walk, depth + 1) for item in value]))


def _dict_key(value: dict, walk: _Walk, depth: int) -> Any:
    return (dict, tuple([(name, _key(item, walk, depth + 1)) for name, item in value.items()]))


def _box_key(value: Param, walk: _Walk, depth: int) -> Any:  # a box: by identity, and the value it holds now
    walk.mutable = True
    return ("box", _Identity(value), _key(value.value, walk, depth + 1))


def _boxes_key(value: Params, walk: _Walk, depth: int) -> Any:
    return ("boxes", *(_key(box, walk, depth + 1) for box in value))


def _method_key(value: types.MethodType, walk: _Walk, depth: int) -> Any:
    return ("method", _key(value.__func__, walk, depth + 1), _key(value.__self__, walk, depth + 1))


def _any_key(value: Any, walk: _Walk, depth: int) -> Any:
    """:func:`_key` for what its fast path does not know by type."""
    if type(value) in _PLAIN or isinstance(value, np.generic):  # NumPy scalars: immutable, and typed as constants
        return (type(value), value)
    if _is_input(value):
        if isinstance(value, jax.Array) and hasattr(value, "weak_type"):
            _ARRAY_TYPES.add(type(value))
        return walk.array(value)
    if depth > _DEPTH:
        return ("opaque", _Identity(value))
    if isinstance(value, types.FunctionType):  # subclasses of the types the fast path knows
        return _function_key(value, walk, depth)
    if isinstance(value, Param):
        return _box_key(value, walk, depth)
    if isinstance(value, Params):
        return _boxes_key(value, walk, depth)
    if isinstance(value, functools.partial):
        parts = (value.func, value.args, dict(value.keywords))
        return ("partial", *(_key(part, walk, depth + 1) for part in parts))
    if _is_library_tuple(value):
        _HANDLERS[type(value)] = _library_tuple_key  # an optax state or optimiser type: known by type from now on
        return _library_tuple_key(value, walk, depth)
    return _tree_or_object_key(value, walk, depth)


_LIBRARY_TUPLES: collections.OrderedDict = collections.OrderedDict()  # an optimiser -> its key and arrays


def _is_library_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and type(value) is not tuple and _is_library(type(value))


def _library_tuple_key(value: tuple, walk: _Walk, depth: int) -> Any:
    """A library's named tuple (an optax optimiser, a tk rule): walked once, then remembered by identity.

    Such objects are immutable (a tuple of functions whose closures hold the
    hyperparameters), so their key and arrays do not change; walking an optax
    chain costs tens of microseconds, remembering it a dictionary lookup. (By
    identity, not equality: equal rules may hold a number in one and an array in
    the other.) Tuples that hold arrays themselves (optimiser states) are walked,
    and so is one whose walk reads what the user may change (a schedule of the
    user's that reads a global, a box or an object's attribute), every time.
    """
    if not value:  # optax's EmptyState(), made anew by every step: its type says it all
        return ("empty", type(value))
    hit = _LIBRARY_TUPLES.get(id(value))
    if hit is None or hit[0] is not value:
        if _holds_inputs(value):  # an optimiser state, new each step: walked, not remembered
            return _tree_or_object_key(value, walk, depth)
        inner = _Walk()  # a walk of its own, from depth 0, so that what is remembered holds wherever it is met
        key = _tree_or_object_key(value, inner, 0)
        if inner.mutable:  # its arrays and key may differ next time: walked again then
            walk.arrays.extend(inner.arrays)
            walk.effects.extend(inner.effects)
            walk.mutable = True
            return key
        key = Key(key)  # hashed once: an optax chain's key is deep
        hit = (value, key, tuple(inner.arrays), tuple(inner.effects))
        _LIBRARY_TUPLES[id(value)] = hit  # holds the value, so its id is not reused while remembered
        if len(_LIBRARY_TUPLES) > 64:
            _LIBRARY_TUPLES.popitem(last=False)
    walk.arrays.extend(hit[2])
    walk.effects.extend(hit[3])
    return hit[1]


def _holds_inputs(value: tuple) -> bool:
    """Whether arrays are among the tuple's leaves (an optimiser state's ``TraceState(trace=(array,))``)."""
    flat = _flatten(value)
    items = flat[0] if flat is not None else value
    return any(_is_input(item) for item in items)


def _tree_or_object_key(value: Any, walk: _Walk, depth: int) -> Any:
    """A container or registered pytree (a struct, say) by structure and leaves; anything else as an object."""
    flat = _flatten(value)
    if flat is not None and len(flat[0]) > _MOST_LEAVES:  # a dataset, say: by identity (its arrays stay constants)
        return ("identity", _Identity(value))
    if flat is not None:
        leaves, treedef = flat
        return ("tree", treedef, tuple(_key(leaf, walk, depth + 1) for leaf in leaves))
    return _scalar_or_object_key(value, walk, depth)


def _is_input(value: Any) -> bool:
    """An array a compiled program takes as an input: any JAX array, a NumPy array of numbers or booleans."""
    return isinstance(value, jax.Array) or (isinstance(value, np.ndarray) and value.dtype.kind in "biufc")


def _flatten(value: Any) -> tuple[list[Any], Any] | None:
    """``value``'s leaves and structure if it is a pytree node (not a leaf); ``None`` for a leaf or an odd node."""
    try:
        leaves, treedef = jax.tree.flatten(value)
    except (TypeError, ValueError):  # e.g. a dict whose keys do not sort (classes as keys): keyed as an object
        return None
    return None if len(leaves) == 1 and leaves[0] is value else (leaves, treedef)


def _walks_into(value: Any) -> bool:
    """An instance of a user's class with attributes (a ``__dict__``, ``__slots__`` or both) that does not hash by
    value: its attributes are walked (and copied to replace). A dataclass (unhashable: ``__eq__`` without
    ``__hash__``) is one, and so is a ``types.SimpleNamespace``; an object that hashes by value keys by value."""
    kind = type(value)
    if isinstance(value, type) or _is_library(kind):
        return False
    if not (isinstance(getattr(value, "__dict__", None), dict) or _slots(kind)):
        return False
    if kind.__hash__ is object.__hash__ or kind.__hash__ is None:
        return True
    try:
        hash(value)
    except TypeError:  # a frozen dataclass holding an array, say
        return True
    return False


@functools.lru_cache(maxsize=1024)
def _slots(kind: type) -> tuple[str, ...]:
    """The attribute names the ``__slots__`` of ``kind`` and its bases declare, in the order of the bases."""
    names: dict[str, None] = {}
    for base in reversed(kind.__mro__):
        declared = vars(base).get("__slots__", ())
        for name in (declared,) if isinstance(declared, str) else declared:
            if name not in ("__dict__", "__weakref__"):
                names[name] = None
    return tuple(names)


def attributes_of(value: Any) -> dict[str, Any]:
    """An object's attributes as the walk reads them: its ``__dict__``, then its slots (:data:`MISSING` if unset)."""
    found = dict(getattr(value, "__dict__", None) or {})
    for name in _slots(type(value)):
        found[name] = getattr(value, name, _MISSING)
    return found


def _scalar_or_object_key(value: Any, walk: _Walk, depth: int) -> Any:
    if isinstance(value, (type, types.ModuleType, types.BuiltinFunctionType)):
        return ("identity", _Identity(value))
    if _walks_into(value):
        walk.mutable = True
        if id(value) in walk.seen:  # met before in this walk (a cycle, or shared): its arrays are in already
            return ("seen object", _Identity(value))
        walk.seen[id(value)] = value
        attributes = _key(attributes_of(value), walk, depth + 1)  # then the methods: the order rebuild walks in
        methods = tuple(_key(method, walk, depth + 1) for _, method in _methods(type(value)))
        return ("object", type(value), _Identity(value), attributes, methods)
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
    cells = tuple([_cell_key(cell, walk, depth + 1) for cell in function.__closure__ or ()])
    defaults = function.__defaults__, function.__kwdefaults__
    defaults = None if defaults == (None, None) else _key(defaults, walk, depth + 1)
    scope = function.__globals__
    if _is_library_file(function.__code__.co_filename):
        globals_: tuple = ()
    else:
        walk.mutable = True
        globals_ = tuple([(name, _key(scope[name], walk, depth + 1)) for name in _global_names(function)])
        modules = _user_modules(function)  # `mymodel.loss(p)`: what it reads off the user's module, walked too
        if modules:
            globals_ += tuple(
                (name, attribute, _key(getattr(module, attribute, _MISSING), walk, depth + 1))
                for name, attribute, module in modules
            )
        if _effects.may_have(function.__code__):
            walk.effects.extend(_effects.of(function))
    return ("function", function.__code__, _scope_identity(scope), cells, defaults, globals_)


_SCOPES: dict[int, _Identity] = {}  # a module's globals dict -> its identity key part (made once)


def _scope_identity(scope: dict) -> _Identity:
    identity = _SCOPES.get(id(scope))
    if identity is None or identity.strong is not scope:
        identity = _SCOPES[id(scope)] = _Identity(scope)
        if len(_SCOPES) > 1024:
            _SCOPES.pop(next(iter(_SCOPES)))
    return identity


def _cell_key(cell: types.CellType, walk: _Walk, depth: int) -> Any:
    try:
        contents = cell.cell_contents
    except ValueError:  # an empty cell (a name assigned later in the enclosing function)
        return ("empty cell",)
    return _key(contents, walk, depth)


@functools.lru_cache(maxsize=1024)
def _methods(kind: type) -> tuple[tuple[str, types.FunctionType], ...]:
    """The functions a user's class defines for its instances (its own and its user-defined bases'), by name.

    Walked with an instance, so that a method the function calls (``model.loss(x)``) has its
    globals read as well; the class is assumed not to be redefined while it is in use.
    """
    found: dict[str, types.FunctionType] = {}
    for base in reversed(kind.__mro__):
        if base is object or _is_library(base):
            continue
        found.update((n, v) for n, v in vars(base).items() if isinstance(v, types.FunctionType) and n != "__init__")
    return tuple(sorted(found.items()))


def _global_names(function: types.FunctionType) -> tuple[str, ...]:
    """The globals the function's code names that exist in its module (modules themselves aside)."""
    scope = function.__globals__
    return tuple(n for n in _code_names(function.__code__) if n in scope and type(scope[n]) is not types.ModuleType)


_HANDLERS: dict[type, Any] = {
    tuple: _sequence_key,
    list: _sequence_key,
    dict: _dict_key,
    types.FunctionType: _function_key,
    Param: _box_key,
    Params: _boxes_key,
    types.MethodType: _method_key,
}


# --- rebuilding with replacement arrays --------------------------------------------------------------


class _Rebuild:
    """Replacement arrays, handed out in the order the walk found the originals."""

    def __init__(self, arrays: list[Any]):
        self.arrays = iter(arrays)
        self.taken = 0  # arrays handed out so far
        self.done: dict[int, Any] = {}
        self.boxes: list[tuple[Param, Any]] = []  # boxes met, with the values they should hold while read

    def value(self, value: Any, depth: int) -> Any:
        if type(value) in _PLAIN or isinstance(value, np.generic):
            return value
        if _is_input(value):
            self.taken += 1
            return next(self.arrays)
        if depth > _DEPTH:
            return value
        kind = type(value)
        if kind is tuple or kind is list:
            return kind(self.value(item, depth + 1) for item in value)
        if kind is dict:
            return {name: self.value(item, depth + 1) for name, item in value.items()}
        if isinstance(value, types.FunctionType):
            return self.function(value, depth)
        if isinstance(value, Param):
            self.boxes.append((value, self.value(value.value, depth + 1)))
            return value
        if isinstance(value, Params):
            for box in value:
                self.value(box, depth + 1)
            return value
        if isinstance(value, types.MethodType):
            return types.MethodType(self.value(value.__func__, depth + 1), self.value(value.__self__, depth + 1))
        if _is_library_tuple(value) and not _holds_inputs(value):  # as remembered: walked on its own, from depth 0
            done, self.done = self.done, {}
            try:
                return self.tree_or_object(value, 0)
            finally:
                self.done = done
        if isinstance(value, functools.partial):
            func, args, keywords = (
                self.value(part, depth + 1) for part in (value.func, value.args, dict(value.keywords))
            )
            return functools.partial(func, *args, **keywords)
        return self.tree_or_object(value, depth)

    def tree_or_object(self, value: Any, depth: int) -> Any:
        flat = _flatten(value)
        if flat is not None and len(flat[0]) <= _MOST_LEAVES:
            leaves, treedef = flat
            return jax.tree.unflatten(treedef, [self.value(leaf, depth + 1) for leaf in leaves])
        return self.object(value, depth)

    def object(self, value: Any, depth: int) -> Any:
        if not _walks_into(value):
            return value
        if id(value) in self.done:  # met before (the walk's "seen object"): the same copy
            return self.done[id(value)]
        self.done[id(value)] = value  # until copied: a cycle back to it keeps the original
        taken = self.taken
        attributes = self.value(attributes_of(value), depth + 1)
        methods = {name: self.function(method, depth + 1) for name, method in _methods(type(value))}
        changed = {name: m for name, m in methods.items() if m is not dict(_methods(type(value)))[name]}
        if self.taken == taken:
            return value
        twin = copy.copy(value)
        slots = _slots(type(value))
        for name, attribute in attributes.items():  # object.__setattr__: a frozen dataclass is copied too
            if attribute is not _MISSING or name not in slots:
                object.__setattr__(twin, name, attribute)
        if changed and not isinstance(getattr(twin, "__dict__", None), dict):
            raise TypeError(  # nowhere to bind them, and left alone they would read the globals' old arrays
                f"{type(value).__name__} has __slots__ and no __dict__, and its methods "
                f"{', '.join(sorted(changed))} read arrays from globals; toolkit cannot pass those in. "
                f"Pass the arrays as arguments or attributes instead, or add '__dict__' to its __slots__."
            )
        for name, method in changed.items():  # methods reading replaced globals: bound on the copy itself
            twin.__dict__[name] = types.MethodType(method, twin)
        self.done[id(value)] = twin
        return twin

    def cell(self, cell: types.CellType, depth: int) -> types.CellType:
        try:
            contents = cell.cell_contents
        except ValueError:
            return types.CellType()
        return types.CellType(self.value(contents, depth))

    def module_views(self, function: types.FunctionType, depth: int) -> dict[str, Any]:
        """Stand-ins for the user's modules the function reads attributes of, with those attributes rebuilt."""
        views: dict[str, dict[str, Any]] = {}
        modules: dict[str, types.ModuleType] = {}
        for name, attribute, module in _user_modules(function):
            value = getattr(module, attribute, _MISSING)
            views.setdefault(name, {})[attribute] = self.value(value, depth + 1)
            modules[name] = module
        return {name: _ModuleView(modules[name], attributes) for name, attributes in views.items()}

    def function(self, function: types.FunctionType, depth: int) -> types.FunctionType:
        if id(function) in self.done:
            return self.done[id(function)]
        self.done[id(function)] = function  # until rebuilt: a recursive reference keeps the original
        taken = self.taken
        closure = tuple(self.cell(c, depth + 1) for c in function.__closure__ or ())
        defaults, kwdefaults = self.value((function.__defaults__, function.__kwdefaults__), depth + 1)
        scope = function.__globals__
        names = () if _is_library(function) else _global_names(function)
        replaced = {name: self.value(scope[name], depth + 1) for name in names}
        views = {} if _is_library(function) else self.module_views(function, depth)
        free = function.__code__.co_freevars
        closure = tuple(types.CellType(views.pop(n)) if n in views else c for n, c in zip(free, closure))
        replaced.update(views)  # the rest are globals
        if any(replaced[name] is not scope.get(name) for name in replaced):
            scope = {**scope, **replaced}
        if self.taken == taken:  # it reads no replaced array: the function itself
            self.done[id(function)] = function
            return function
        twin = types.FunctionType(function.__code__, scope, function.__name__, defaults, closure or None)
        twin.__kwdefaults__ = kwdefaults
        twin.__dict__.update(function.__dict__)
        twin.__qualname__ = function.__qualname__
        self.done[id(function)] = twin
        return twin


class _ModuleView:
    """A user's module as a rebuilt function sees it: some attributes replaced, the rest the module's own."""

    def __init__(self, module: types.ModuleType, attributes: dict[str, Any]):
        self._module = module
        self.__dict__.update({k: v for k, v in attributes.items() if v is not _MISSING})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class _Missing:
    """An attribute the module does not have (yet): keyed as such, so its arrival compiles anew."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


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
    effects: tuple[_effects.Effect, ...] = ()

    def rebuild(self, arrays: list[Any] | tuple[Any, ...]) -> Any:
        """The value, reading ``arrays`` (one per entry of :attr:`arrays`, in order) where it read those.

        ``tk.Param`` boxes it reads keep their current values; :meth:`reading` puts the replacements in them.
        """
        return _Rebuild(list(arrays)).value(self.value, 0)

    def rebuilt(self, arrays: list[Any] | tuple[Any, ...]) -> tuple[Any, tuple[tuple[Param, Any], ...]]:
        """:meth:`rebuild`, and the ``tk.Param`` boxes it reads, each with the replacement it should hold while the
        value runs (see :func:`holding`)."""
        rebuild = _Rebuild(list(arrays))
        value = rebuild.value(self.value, 0)
        return value, tuple(rebuild.boxes)

    @contextlib.contextmanager
    def reading(self, arrays: list[Any] | tuple[Any, ...]) -> Iterator[Any]:
        """:meth:`rebuild`, with the ``tk.Param`` boxes it reads holding their replacements until the block ends."""
        value, boxes = self.rebuilt(arrays)
        with holding(boxes):
            yield value


@contextlib.contextmanager
def holding(boxes: tuple[tuple[Param, Any], ...]) -> Iterator[None]:
    """Within the block, each ``tk.Param`` box of ``boxes`` holds the value paired with it; the old values come back
    after it, even on an error."""
    saved = [(box, box.value) for box, _ in boxes]
    try:
        for box, replacement in boxes:
            box.value = replacement
        yield
    finally:
        for box, old in reversed(saved):
            box.value = old


def capture(value: Any) -> Captured:
    """Walk ``value`` (a function, a method, a partial, an optimiser...) for the arrays it reads and its key.

    Two calls give equal keys exactly when the program the value stands for is
    the same: the same code, equal numbers and strings, the same objects, and
    arrays of the same shapes and dtypes (whose values then come in as inputs).
    """
    walk = _Walk()
    key = _key(value, walk, 0)
    return Captured(value, key, tuple(walk.arrays), tuple(walk.effects))


# --- what toolkit.guards replays the walk with ----------------------------------------------------------

identity = _Identity
is_library = _is_library
slots = _slots
methods = _methods
global_names = _global_names
user_modules = _user_modules
module_named = _module_named
code_names = _code_names
MISSING = _MISSING


def is_library_code(code: types.CodeType) -> bool:
    """Whether the walk treats a function with this code as library code (its globals constants, no effects)."""
    return _is_library_file(code.co_filename)


def remembered(value: tuple) -> tuple[Key, tuple[Any, ...]] | None:
    """The key and arrays the walk remembers a library tuple (an optimiser) by, walking it first if it is new;
    ``None`` if it is not remembered (an optimiser state, or one with side effects)."""
    walk = _Walk()
    key = _library_tuple_key(value, walk, 0)
    return (key, tuple(walk.arrays)) if isinstance(key, Key) and not walk.effects else None

"""Guard plans: a capture walk's decisions, replayed on the next call without building its key.

:func:`toolkit.closures.capture` walks everything a call reads and builds a deep
hashable key; a plain loop calls ``tk.gradient`` with a new lambda every step,
so the key is built, hashed and compared every step (most of a step's time)
although nothing in it changes but the arrays' values. A plan turns the key
into checks on the new call's values: "this is a function with that code and
those globals, its first cell holds that ``tk.Param`` box, which holds a
``float32[3, 3]`` array, its second a ``float32[3]`` NumPy array, ...". Replayed,
it checks each and collects the arrays in the walk's order.

A plan is one generated Python function of straight-line checks (a call per
check, as nested matchers would make, costs more than the checks themselves).
Any exception inside it (a cell emptied, an ``==`` that raises) means "no match".

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
import itertools
import operator
import types
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from toolkit import _effects, closures, structs
from toolkit.cache import Key
from toolkit.params import Param, Params

__all__ = ["Match", "plan"]

Match = Callable[[Any, list], bool]  # (value, arrays found so far) -> whether the value keys as planned


class _NoPlan(Exception):
    """The key has a part whose check would depend on more than the values a plan looks at."""


def plan(value: Any, key: Any) -> Match | None:
    """The checks that ``value``'s capture key ``key`` stands for, or ``None`` where a plan cannot be made."""
    code = _Code()
    try:
        code.emit("v0", value, key)
    except _NoPlan:
        return None
    return code.compiled()


_EMPTY = object()  # what an empty closure cell holds, for the checks


def _contents(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY


class _Code:
    """The generated checks: lines of Python, the constants they name, and fresh variable names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {
            "FunctionType": types.FunctionType,
            "MethodType": types.MethodType,
            "EMPTY": _EMPTY,
            "MISSING": closures.MISSING,
            "contents": _contents,
            "flatten": jax.tree.flatten,
            "module_named": closures.module_named,
        }
        self.names = itertools.count(1)
        self.box_arrays: dict[int, str] = {}  # per box met whose value is an array: the variable holding it

    def compiled(self) -> Match:
        source = "\n".join(
            [
                "def match(v0, arrays):",
                "    append = arrays.append",
                "    try:",
                *("        " + line for line in self.lines),
                "    except Exception:",
                "        return False",
                "    return True",
            ]
        )
        scope = dict(self.constants)
        exec(compile(source, "<toolkit.guards plan>", "exec"), scope)  # noqa: S102  our own generated checks
        return scope["match"]

    def const(self, value: Any) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    def var(self) -> str:
        return f"v{next(self.names)}"

    def check(self, condition: str) -> None:
        self.lines.append(f"if not ({condition}): return False")

    def emit(self, var: str, value: Any, key: Any) -> None:
        """The checks that ``var`` (holding a value like ``value`` now) keys as ``key``."""
        if isinstance(key, Key):  # a library tuple (an optimiser), remembered by identity with its arrays
            return self.remembered(var, value, key)
        head = key[0]
        if type(head) is str:
            return _TAGGED[head](self, var, value, key)
        if head in (tuple, list) and type(value) is head:
            return self.sequence(var, head, list(value), list(key[1]))
        if head is dict and type(value) is dict:
            return self.dictionary(var, value, key)
        return self.plain(var, head, key[1])

    def plain(self, var: str, kind: type, expected: Any) -> None:
        c = self.const(expected)
        self.check(f"type({var}) is {self.const(kind)} and ({var} is {c} or {var} == {c})")

    def array(self, var: str, value: Any, key: Any) -> None:
        _, shape, dtype, weak = key
        kind = type(value)
        exact = f"{var}.shape == {shape!r} and {var}.dtype == {self.const(dtype)}"
        aval = None if kind is np.ndarray else getattr(value, "aval", None)
        if kind is not np.ndarray:
            exact += f" and {var}.weak_type == {weak!r}"
        if aval is None:
            self.check(f"type({var}) is {self.const(kind)} and {exact}")
        else:  # JAX shares one abstract value among arrays alike: the same one is a fifth of the three reads' cost
            self.check(f"type({var}) is {self.const(kind)} and ({var}.aval is {self.const(aval)} or ({exact}))")
        self.lines.append(f"append({var})")

    def unpack(self, var: str, count: int) -> list[str]:
        names = [self.var() for _ in range(count)]
        if names:
            self.lines.append(f"{', '.join(names)}, = {var}")
        return names

    def sequence(self, var: str, kind: type, items: list, keys: list) -> None:
        self.check(f"type({var}) is {self.const(kind)} and len({var}) == {len(items)}")
        for name, item, k in zip(self.unpack(var, len(items)), items, keys):
            self.emit(name, item, k)

    def dictionary(self, var: str, value: dict, key: Any) -> None:
        self.check(f"type({var}) is dict and tuple({var}) == {self.const(tuple(value))}")
        names = self.unpack(f"{var}.values()", len(value))
        for name, item, (_, k) in zip(names, value.values(), key[1]):
            self.emit(name, item, k)

    def same(self, var: str, value: Any, key: Any = None) -> None:
        """The very object (held weakly where Python allows)."""
        self.check(f"{var} is {self.const(closures.identity(value).alive)}()")

    def remembered(self, var: str, value: Any, key: Key) -> None:
        arrays = (closures.remembered(value) or (None, ()))[1]
        extend = f"arrays.extend({self.const(arrays)})" if arrays else "pass"
        self.lines.append(f"if {var} is {self.const(value)}: {extend}")
        self.lines.append(f"elif not {self.const(_equal_remembered(type(value), key))}({var}, arrays): return False")

    def empty(self, var: str, value: Any, key: Any) -> None:
        self.check(f"type({var}) is {self.const(key[1])} and not {var}")

    def value(self, var: str, value: Any, key: Any) -> None:
        self.plain(var, key[1], key[2])

    def box(self, var: str, value: Param, key: Any) -> None:
        self.same(var, value)
        seen = self.box_arrays.get(id(value))
        if seen is not None:  # the same box again (a closure's and the Params'): the same array, checked already
            self.lines.append(f"append({seen})")
            return
        inner = self.var()
        self.lines.append(f"{inner} = {var}.value")
        self.emit(inner, value.value, key[2])
        if _tag(key[2]) == "array":
            self.box_arrays[id(value)] = inner

    def boxes(self, var: str, value: Params, key: Any) -> None:
        self.check(f"type({var}) is {self.const(type(value))} and len({var}) == {len(value)}")
        for name, box, k in zip(self.unpack(var, len(value)), value, key[1:]):
            self.emit(name, box, k)

    def method(self, var: str, value: types.MethodType, key: Any) -> None:
        self.check(f"type({var}) is MethodType")
        function, receiver = self.var(), self.var()
        self.lines.append(f"{function}, {receiver} = {var}.__func__, {var}.__self__")
        self.emit(function, value.__func__, key[1])
        self.emit(receiver, value.__self__, key[2])

    def partial(self, var: str, value: functools.partial, key: Any) -> None:
        self.check(f"type({var}) is {self.const(type(value))}")
        func, args, keywords = self.var(), self.var(), self.var()
        self.lines.append(f"{func}, {args}, {keywords} = {var}.func, {var}.args, dict({var}.keywords)")
        self.emit(func, value.func, key[1])
        self.emit(args, value.args, key[2])
        self.emit(keywords, dict(value.keywords), key[3])

    def tree(self, var: str, value: Any, key: Any) -> None:
        leaves, structure = self.var(), self.var()
        kind = type(value)
        self.check(f"type({var}) is {self.const(kind)}")
        fields = structs.getters(kind)
        if fields is not None and _flat_struct(value, key, fields[0]):
            # Its fields are its leaves, each checked by type below: read straight off it, without flatten (a
            # tenth of the time), and its static fields compared as its treedef would compare them.
            data_of, static_of = fields
            self.lines.append(f"{leaves} = {self.const(data_of)}({var})")
            if static_of(value):
                self.check(f"{self.const(static_of)}({var}) == {self.const(static_of(value))}")
        else:
            self.lines.append(f"{leaves}, {structure} = flatten({var})")
            self.check(f"{structure} == {self.const(key[1])} and len({leaves}) == {len(key[2])}")
        for name, leaf, k in zip(self.unpack(leaves, len(key[2])), jax.tree.leaves(value), key[2]):
            self.emit(name, leaf, k)

    def object(self, var: str, value: Any, key: Any) -> None:
        self.same(var, value)
        attributes = self.var()
        if closures.slots(type(value)):  # read as the walk reads them: the __dict__, then each slot
            self.lines.append(f"{attributes} = {self.const(closures.attributes_of)}({var})")
        else:
            self.lines.append(f"{attributes} = {var}.__dict__")
        self.emit(attributes, closures.attributes_of(value), key[3])
        for (_, method), k in zip(closures.methods(type(value)), key[4]):  # the class's: constants, walked
            name = self.var()
            self.lines.append(f"{name} = {self.const(method)}")
            self.emit(name, method, k)

    def empty_cell(self, var: str, value: Any, key: Any) -> None:
        self.check(f"{var} is EMPTY")

    def function(self, var: str, value: types.FunctionType, key: Any) -> None:
        _, code, _, cell_keys, defaults_key, globals_key = key
        scope, library = value.__globals__, closures.is_library_code(code)
        if not library and not all(map(_constant_attributes, _effects.read_through_attributes(value))):
            raise _NoPlan  # its side-effect verdict reads attributes that nothing checks: judged by the walk each call
        s = self.const(scope)
        self.check(f"type({var}) is FunctionType and {var}.__code__ is {self.const(code)} and {var}.__globals__ is {s}")
        cells = value.__closure__ or ()
        if cells:
            closure = self.var()
            self.lines.append(f"{closure} = {var}.__closure__")
            for i, (cell, k) in enumerate(zip(cells, cell_keys)):
                contents = self.var()
                if _tag(k) == "empty cell":
                    self.lines.append(f"{contents} = contents({closure}[{i}])")
                else:  # an empty cell raises here: no match
                    self.lines.append(f"{contents} = {closure}[{i}].cell_contents")
                self.emit(contents, _contents(cell), k)
        if defaults_key is None:
            self.check(f"{var}.__defaults__ is None and {var}.__kwdefaults__ is None")
        else:
            defaults = self.var()
            self.lines.append(f"{defaults} = ({var}.__defaults__, {var}.__kwdefaults__)")
            self.emit(defaults, (value.__defaults__, value.__kwdefaults__), defaults_key)
        if library:
            return
        names = closures.global_names(value)
        for name, (_, k) in zip(names, globals_key):
            read = self.var()
            self.lines.append(f"{read} = {s}.get({name!r}, EMPTY)")
            self.emit(read, scope[name], k)
        for name in closures.code_names(code):  # absent names stay absent, modules stay the same modules
            if name not in names:
                self.check(f"{s}.get({name!r}, EMPTY) is {self.const(scope.get(name, _EMPTY))}")
        modules = closures.user_modules(value)
        for (name, attribute, module), k in zip(modules, globals_key[len(names) :]):  # `mymodel.w`
            m, read = self.const(module), self.var()
            self.check(f"module_named({var}, {name!r}) is {m}")
            self.lines.append(f"{read} = getattr({m}, {attribute!r}, MISSING)")
            self.emit(read, getattr(module, attribute, closures.MISSING), k[2])


def _tag(key: Any) -> Any:
    """What kind of value a key part stands for (``"array"``, ``"empty cell"``, a type, ...), if it is a tuple."""
    return key[0] if type(key) is tuple and key else None


def _equal_remembered(kind: type, key: Key) -> Callable[[Any, list], bool]:
    """For an optimiser other than the planned one: whether it is of the same type and keys alike (an equal
    ``tk.Momentum()`` made anew each step), its arrays collected if so."""

    def match(v: Any, arrays: list) -> bool:
        other = closures.remembered(v) if type(v) is kind else None
        if other is None or other[0] != key:
            return False
        arrays.extend(other[1])
        return True

    return match


def _flat_struct(value: Any, key: Any, data_of: Callable[[Any], tuple]) -> bool:
    """Whether the struct ``value``'s data fields are its leaves, one each, and each is keyed as an array or a
    number (whose checks start with the type: a field that later holds a subtree, or None, fails them)."""
    fields, leaves = data_of(value), jax.tree.leaves(value)
    return (
        len(fields) == len(leaves) == len(key[2])
        and all(map(operator.is_, fields, leaves))
        and all(map(_checked_by_type, key[2]))
    )


def _checked_by_type(key: Any) -> bool:
    """Whether a leaf's checks (:meth:`_Code.array`, :meth:`_Code.plain`) start with its type."""
    tag = _tag(key)
    return tag in ("array", "value") or (isinstance(tag, type) and tag not in (tuple, list, dict))


def _constant_attributes(value: Any) -> bool:
    """A library's module (``jax`` of ``jax.random.uniform``): its attributes are taken as constants."""
    return type(value) is types.ModuleType and closures.is_library(value)


_TAGGED: dict[str, Callable[..., None]] = {
    "array": _Code.array,
    "function": _Code.function,
    "recursive": _Code.same,  # the key has the code only (the walk met the function before): the same object
    "box": _Code.box,
    "boxes": _Code.boxes,
    "method": _Code.method,
    "partial": _Code.partial,
    "empty": _Code.empty,
    "tree": _Code.tree,
    "identity": _Code.same,
    "seen object": _Code.same,  # an object the walk met before: the same one
    "opaque": _Code.same,
    "object": _Code.object,
    "value": _Code.value,
    "empty cell": _Code.empty_cell,
}

"""Side effects a function's code shows: what a compiled call would do once, when traced, instead of every call.

A compiled program runs the Python function once, to trace it; after that only
the program runs. Printing, appending to an outer list, assigning a global or a
``nonlocal``, setting an attribute on an outside object, or drawing from NumPy's
or Python's random state would then happen once instead of every call. So
toolkit reads the function's bytecode (and that of every function it reaches,
as ``toolkit.closures`` walks them) for these, and runs a function that has one
eagerly instead. What is looked for, exactly:

* calls of the builtins ``print``, ``input``, ``open``, ``breakpoint``;
* ``global`` and ``nonlocal`` assignments (``STORE_GLOBAL``, ``STORE_DEREF`` of a free variable);
* attribute assignment on an argument, a closure variable or a global (``self.last = loss``);
* item assignment on a closure variable or a global that is a list, dict, set or NumPy array;
* mutating methods (``append``, ``extend``, ``insert``, ``pop``, ``remove``, ``clear``, ``update``,
  ``add``, ``discard``, ``setdefault``, ``popitem``, ``write``, ...) of a closure variable or a global
  that is a list, dict, set, deque, bytearray or file, reached directly or through attributes;
* any call into ``numpy.random``'s global state (``np.random.rand``, a ``Generator`` or
  ``RandomState`` object's methods), Python's ``random`` module or ``random.Random`` objects,
  and ``time``'s clocks.

``jax.debug.print`` and ``jax.debug.callback`` run on every call of the compiled
program and are the compiled way to print. Effects inside library code (a NumPy
function that prints, say) are not looked for.
"""

from __future__ import annotations

import collections
import dataclasses
import dis
import functools
import io
import random
import time
import types
from typing import Any

import numpy as np

__all__ = ["Effect", "of", "may_have"]

_BUILTINS = frozenset({"print", "input", "open", "breakpoint"})
_MUTATORS = frozenset(
    {"append", "extend", "insert", "pop", "remove", "clear", "update", "add", "discard", "setdefault", "popitem"}
    | {"write", "writelines", "appendleft", "extendleft", "popleft", "sort", "reverse", "put", "flush", "close"}
)
_CONTAINERS = (list, dict, set, collections.deque, bytearray, io.IOBase)
_STATEFUL = (np.random.Generator, np.random.RandomState, random.Random)
_PURE_NP_RANDOM = frozenset({"default_rng", "Generator", "RandomState", "SeedSequence", "BitGenerator"})
_PURE_NP_RANDOM |= {"PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"}
_CLOCKS = frozenset({"time", "time_ns", "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns"})
_CLOCKS |= {"process_time", "process_time_ns", "sleep"}
_STATEFUL_MODULES = (np.random, random, time)
_LOADS = ("LOAD_GLOBAL", "LOAD_DEREF", "LOAD_FAST", "LOAD_NAME", "LOAD_FAST_CHECK", "LOAD_CLASSDEREF")
_ATTRS = ("LOAD_ATTR", "LOAD_METHOD")


@dataclasses.dataclass(frozen=True)
class Effect:
    """One side effect: where it is (``file:line in function``) and what it does."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.what} ({self.where})"


@dataclasses.dataclass(frozen=True, eq=False)  # by identity: one per instruction of a (cached) code object
class _Candidate:
    """What the bytecode alone shows: a load of ``name`` (from ``scope``) then attributes ``chain``, and the act."""

    act: str  # "call builtin", "store global", "store nonlocal", "store attribute", "store item", "attribute"
    scope: str  # "global", "closure", "argument", "local"
    name: str
    chain: tuple[str, ...]
    line: int


def of(function: types.FunctionType) -> tuple[Effect, ...]:
    """The side effects ``function``'s own code has (not those of functions it calls; walk those separately)."""
    found = []
    for candidate in _candidates(function.__code__):
        what = _judge(candidate, function)
        if what is not None:
            where = f"{function.__code__.co_filename}:{candidate.line} in {function.__qualname__}"
            found.append(Effect(where, what))
    return tuple(found)


def may_have(code: types.CodeType) -> bool:
    """Whether the code has anything :func:`of` would judge (most loss functions have attribute loads)."""
    return bool(_candidates(code))


def read_through_attributes(function: types.FunctionType) -> list[Any]:
    """The outside objects whose attributes :func:`of` reads to judge the function (``log`` of
    ``log.items.append(x)``, ``jax`` of ``jax.random.uniform``): its verdict depends on those attributes' values,
    where for every other candidate the types (or, for modules, the identity) of what it loads are enough."""
    found = []
    for c in _candidates(function.__code__):
        if c.scope in ("global", "closure") and (len(c.chain) > 1 if c.act == "attribute" else c.act == "store item"):
            present, value = _resolve(c, function)
            if present and (c.act == "attribute" or c.chain):
                found.append(value)
    return found


@functools.lru_cache(maxsize=4096)
def _candidates(code: types.CodeType) -> tuple[_Candidate, ...]:
    """Every instruction sequence of ``code`` that may be a side effect, judged later against the values."""
    found: list[_Candidate] = []
    arguments = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    instructions = list(dis.get_instructions(code))
    line = code.co_firstlineno
    for i, ins in enumerate(instructions):
        line = ins.positions.lineno if ins.positions and ins.positions.lineno else line
        if ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            found.append(_Candidate("store global", "global", ins.argval, (), line))
        elif ins.opname in ("STORE_DEREF", "DELETE_DEREF") and ins.argval in code.co_freevars:
            found.append(_Candidate("store nonlocal", "closure", ins.argval, (), line))
        elif ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval in _BUILTINS:
            found.append(_Candidate("call builtin", "global", ins.argval, (), line))
        elif ins.opname in ("STORE_ATTR", "STORE_SUBSCR"):
            receiver = _receiver(instructions, i, arguments)
            if receiver is not None:
                act = "store attribute" if ins.opname == "STORE_ATTR" else "store item"
                attr = (ins.argval,) if ins.opname == "STORE_ATTR" else ()
                found.append(_Candidate(act, receiver[0], receiver[1], receiver[2] + attr, line))
        elif ins.opname in _LOADS and i + 1 < len(instructions) and instructions[i + 1].opname in _ATTRS:
            chain = []
            for following in instructions[i + 1 :]:
                if following.opname not in _ATTRS:
                    break
                chain.append(following.argval)
            found.append(
                _Candidate("attribute", _scope(ins.opname, ins.argval, arguments), ins.argval, tuple(chain), line)
            )
    return tuple(found)


def _scope(opname: str, name: str, arguments: set[str]) -> str:
    if opname in ("LOAD_GLOBAL", "LOAD_NAME"):
        return "global"
    if opname in ("LOAD_DEREF", "LOAD_CLASSDEREF"):
        return "closure"
    return "argument" if name in arguments else "local"


def _receiver(instructions: list[Any], i: int, arguments: set[str]) -> tuple[str, str, tuple[str, ...]] | None:
    """The outside object a ``STORE_ATTR`` / ``STORE_SUBSCR`` at ``i`` writes into, if its load is plain."""
    j = i - 1
    if instructions[i].opname == "STORE_SUBSCR":  # value, container, key: the key's load comes first (back)
        if instructions[j].opname not in (*_LOADS, "LOAD_CONST"):
            return None
        j -= 1
    chain: list[str] = []
    while j >= 0 and instructions[j].opname in _ATTRS:
        chain.insert(0, instructions[j].argval)
        j -= 1
    if j < 0 or instructions[j].opname not in _LOADS:
        return None
    scope = _scope(instructions[j].opname, instructions[j].argval, arguments)
    return None if scope == "local" else (scope, instructions[j].argval, tuple(chain))


def _resolve(candidate: _Candidate, function: types.FunctionType) -> tuple[bool, Any]:
    """``(found, value)`` of the name the candidate loads, where the function's closure or globals say."""
    if candidate.scope == "global":
        if candidate.name in function.__globals__:
            return True, function.__globals__[candidate.name]
        builtins = function.__globals__.get("__builtins__")
        scope = builtins if isinstance(builtins, dict) else vars(builtins) if builtins is not None else {}
        return (candidate.name in scope), scope.get(candidate.name)
    if candidate.scope == "closure" and function.__closure__:
        names = function.__code__.co_freevars
        if candidate.name in names:
            try:
                return True, function.__closure__[names.index(candidate.name)].cell_contents
            except ValueError:
                return False, None
    return False, None


def _judge(candidate: _Candidate, function: types.FunctionType) -> str | None:
    """What the candidate does to the world, or ``None`` if it is harmless for these values."""
    if candidate.act == "store global":
        return f"assigns the global {candidate.name}"
    if candidate.act == "store nonlocal":
        return f"assigns the nonlocal {candidate.name}"
    if candidate.act == "call builtin":
        found, value = _resolve(candidate, function)
        return f"calls {candidate.name}()" if found and getattr(value, "__module__", None) == "builtins" else None
    if candidate.act == "store attribute":
        return f"sets {'.'.join((candidate.name, *candidate.chain))} on an object from outside the function"
    found, value = _resolve(candidate, function)
    if not found:
        return None
    if candidate.act == "attribute" and len(candidate.chain) == 1:  # `z.value`, `jnp.sum`: the usual, memoised
        return _attribute_verdict(candidate, value)
    *path, last = candidate.chain or ("",)
    for attribute in path:
        value = getattr(value, attribute, None)
    if candidate.act == "store item":
        target = getattr(value, last, None) if candidate.chain else value
        if isinstance(target, (*_CONTAINERS, np.ndarray)):
            return f"writes into {'.'.join((candidate.name, *candidate.chain))}[...], from outside the function"
        return None
    what = _stateful_call(value, last)
    return None if what is None else f"calls {'.'.join((candidate.name, *candidate.chain))}(), {what}"


_VERDICTS: dict[tuple[_Candidate, Any], str | None] = {}  # (candidate, module or receiver type) -> verdict


def _attribute_verdict(candidate: _Candidate, receiver: Any) -> str | None:
    """:func:`_judge` of ``receiver.attribute(...)``: it depends on the receiver's identity if it is a module, else
    on its type only (see :func:`_stateful_call`), so it is remembered by those (modules live as long as Python)."""
    key = (candidate, receiver if type(receiver) is types.ModuleType else type(receiver))  # both always hash
    if key not in _VERDICTS:
        if len(_VERDICTS) >= 4096:  # bounded: it holds the types (and modules) it has seen
            _VERDICTS.clear()
        _VERDICTS[key] = _verdict(candidate, receiver)
    return _VERDICTS[key]


def _verdict(candidate: _Candidate, receiver: Any) -> str | None:
    what = _stateful_call(receiver, candidate.chain[0])
    return None if what is None else f"calls {'.'.join((candidate.name, *candidate.chain))}(), {what}"


def _stateful_call(receiver: Any, method: str) -> str | None:
    """Whether ``receiver.method`` mutates or reads outside state (a list's ``append``, ``np.random.rand``)."""
    if type(receiver) is types.ModuleType and receiver not in _STATEFUL_MODULES:  # the usual: jnp.sum, tk.mse
        return None
    if isinstance(receiver, _CONTAINERS) and method in _MUTATORS:
        return "which changes an object from outside the function"
    if isinstance(receiver, _STATEFUL):
        return "which draws from a random state outside JAX"
    if receiver is np.random and method not in _PURE_NP_RANDOM:
        return "which draws from NumPy's global random state"
    if receiver is random and method != "Random":
        return "which draws from Python's global random state"
    if receiver is time and method in _CLOCKS:
        return "which reads the clock"
    return None

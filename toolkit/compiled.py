"""Eager calls run compiled: ``tk.gradient``, ``tk.update`` and friends find a cached compiled program.

JAX re-traces a function on every eager ``jax.grad`` call (milliseconds), so a
plain Python loop of ``tk.gradient`` + ``tk.update_`` would crawl. Instead each
call is taken apart by ``toolkit.closures``: the arrays it reads (arguments,
closures, globals, ``tk.Param`` boxes, optimiser hyperparameters) become the
inputs of a compiled program, and everything else (the function's code, numbers,
strings, structure, shapes and dtypes, other objects by weak identity) is the key
it is cached under (``toolkit.cache``). A call whose key was seen before runs
that program, on the arrays' current values, so nothing is ever stale: a
changed array is read as an input, a changed number or function compiles anew.
The next call like it does not build the key again: it replays the key's checks
on its values (``toolkit.guards``) and runs the program they lead to.
``tk.gradient(f, ps)`` + ``tk.update_`` run as one program (``toolkit.deferred``), and so do
``tk.gradient(f, z)`` + ``tk.update(opt, state, z, g)`` once a step has shown the pattern (``toolkit.ahead``).

A call runs eagerly (as plain JAX, re-tracing each time) instead when

* it is made under an outer transformation (``jax.jit``, ``jax.vmap``,
  ``jax.grad``): it is then simply traced into the outer program;
* ``with tk.eager():`` is in force;
* the function has a side effect that a compiled program would do only once,
  when traced (printing, appending to an outer list, ...; see
  ``toolkit._effects`` for exactly what is looked for), with a warning, once;
* tracing it needs a concrete value (Python ``if`` on a value, ``.item()``,
  ``float(x)``, NumPy on a value): with a warning naming the line, once; the
  function is remembered and not traced again.

The warnings are :class:`EagerFallbackWarning` (filter them like any warning).
"""

from __future__ import annotations

import contextlib
import os
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from toolkit import closures, filters, guards
from toolkit.cache import Cache, Key

__all__ = ["EagerFallbackWarning", "eager", "call"]


class EagerFallbackWarning(UserWarning):
    """A function runs eagerly (re-traced on every call) because it cannot run compiled as it is."""


class _Local(threading.local):
    """Per thread: the depth of ``with tk.eager()`` blocks, and what the call under way reads (for its trace)."""

    eager = 0  # class defaults: an attribute a thread has not set reads fast (getattr with a default raises inside)
    values: tuple[Any, ...] | None = None


_LOCAL = _Local()
_CACHE: Cache[_Entry] = Cache(256)
NEEDS_VALUES = (  # what JAX raises where tracing needs a concrete value
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
    jax.errors.NonConcreteBooleanIndexError,
)
_OURS = tuple(os.path.dirname(m.__file__ or "") + os.sep for m in (jax, np, closures))
_CONCRETE: set[type] = set()  # concrete JAX arrays, PRNG keys and NumPy arrays (made on first use)


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Within the block, ``tk.gradient`` & co. run eagerly, as plain JAX, without compiling or caching.

    For debugging (a breakpoint or a print inside the function then runs every
    call) or to compare against the compiled result.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> with tk.eager():
        ...     tk.gradient(lambda x: jnp.sum(x**2), jnp.array([1.0, 2.0]))
        (Array([2., 4.], dtype=float32),)
    """
    _LOCAL.eager += 1
    try:
        yield
    finally:
        _LOCAL.eager -= 1


class _Entry:
    """One cached program: the jitted function, and whether the call runs eagerly instead."""

    __slots__ = ("key", "float64", "function", "program", "runs_eagerly", "static", "plans", "after")

    def __init__(self, key: Key, body: Callable[..., Any], float64: Any):
        self.key = key  # what it is cached under: a trace checks that the values it reads still key so
        self.float64 = float64  # the default float type of the x64 mode it was made in (part of the key)
        self.runs_eagerly = False
        self.plans = 0  # plans made for calls that found this entry (see _add_plan)
        self.after: dict[Any, Any] = {}  # toolkit.deferred: per body called after this one, their fused programs
        self.static: tuple[Any, list[Any], list[bool] | None] | None = (
            None  # the output's structure and non-array leaves
        )
        self.function = _program(self, body)  # traceable: toolkit.deferred calls it inside a program of its own
        self.program = jax.jit(self.function)


class StaleValues(RuntimeError):
    """A deferred call's program is traced after what its function reads changed (see ``toolkit.deferred``)."""


def _program(entry: _Entry, body: Callable[..., Any]) -> Callable[..., Any]:
    """The traced function: the call rebuilt from its parts' replacement arrays; array outputs only."""

    def program(arrays: tuple[Any, ...]) -> list[Any]:
        captured = closures.capture(_LOCAL.values)
        if Key((body, captured.key, jax.dtypes.canonicalize_dtype(np.float64))) != entry.key:
            raise StaleValues(
                "a deferred tk.gradient result was read after what its function reads changed its structure, "
                "shapes or dtypes, and JAX's caches were cleared in between, so its program cannot be traced again; "
                "read the gradient (gs[p]) before changing them."
            )
        with captured.reading(arrays) as values:
            out = body(*values)
        leaves, treedef = jax.tree.flatten(out)
        dynamic = [isinstance(leaf, jax.Array) for leaf in leaves]
        static = [None if d else leaf for leaf, d in zip(leaves, dynamic)]
        entry.static = (treedef, static, None if all(dynamic) else dynamic)
        return [leaf for leaf, d in zip(leaves, dynamic) if d]

    program.__name__ = program.__qualname__ = getattr(body, "__name__", "program")
    return program


def call(caller: str, named: Any, body: Callable[..., Any], *values: Any) -> Any:
    """``body(*values)``, compiled and cached; ``caller`` (the public function) and ``named`` (the user's function
    or optimiser) name what runs in warnings.

    ``body`` must be a toolkit function (it is part of the key); ``values`` are
    whatever it needs (functions, pytrees, optimisers). Its output may be any
    pytree: array leaves come out of the compiled program, other leaves as the
    trace left them (they cannot depend on the arrays' values).
    """
    if _LOCAL.eager:
        return body(*values)
    float64 = float64_now()  # float32 without x64: part of every key
    found = find(body, values, float64)
    if found is not None:
        return run(caller, named, found[0], found[1], body, values)
    return first_call(caller, named, body, values, float64)


MISS = object()  # what a first_call runner returns where it did not run the call


def first_call(
    caller: str,
    named: Any,
    body: Callable[..., Any],
    values: tuple[Any, ...],
    float64: Any,
    runner: Callable[[_Entry, tuple[Any, ...]], Any] | None = None,
) -> Any:
    """``call``'s work for a call no plan finds: the entry (made if new), run, and a plan made for the next call
    like it. ``runner(entry, arrays)``, where given, runs it instead (a program that does more, see
    ``toolkit.ahead``); where that returns :data:`MISS`, the entry's own program does."""
    made = entry_for(caller, named, body, values, float64)
    if made is None:
        return body(*values)
    entry, captured = made
    result = MISS if runner is None else runner(entry, captured.arrays)
    if result is MISS:
        result = run(caller, named, entry, captured.arrays, body, values)
    if not entry.runs_eagerly:
        _add_plan(body, values, captured.key, entry)
    return result


def entry_for(
    caller: str, named: Any, body: Callable[..., Any], values: tuple[Any, ...], float64: Any
) -> tuple[_Entry, closures.Captured] | None:
    """The entry ``body(*values)`` runs compiled with (made if new; traced when first run) and the walk that
    found it; ``None`` where the call runs eagerly: under an outer transformation, with side effects (warned
    once), or reading something that does not hash."""
    captured = closures.capture(values)
    if not _all_concrete(captured.arrays):  # under an outer transformation: traced into it, nothing cached
        return None
    try:
        key = Key((body, captured.key, float64))
    except TypeError:  # something in the key does not hash: not cached
        return None
    entry = _CACHE.get(key) or _CACHE.put(key, _Entry(key, body, float64))
    if entry.runs_eagerly:
        return None
    if captured.effects:
        entry.runs_eagerly = True
        _warn_effects(caller, _name(named), captured.effects)
        return None
    return entry, captured


class _Plan:
    """A call's key as checks (``toolkit.guards``) and the entry cached under it."""

    __slots__ = ("match", "entry")

    def __init__(self, match: guards.Match, entry: _Entry):
        self.match, self.entry = match, entry


def find(body: Callable[..., Any], values: tuple[Any, ...], float64: Any) -> tuple[_Entry, tuple[Any, ...]] | None:
    """The entry of ``body(*values)`` and the arrays it reads, found by a plan (``toolkit.guards``), or ``None``."""
    plans = _PLANS.get(body)
    if plans:
        for i, plan in enumerate(plans):
            arrays: list[Any] = []
            if plan.entry.float64 is float64 and plan.match(values, arrays):
                if i:
                    _to_front(plans, plan)
                return plan.entry, tuple(arrays)
    return None


def _to_front(plans: list[_Plan], plan: _Plan) -> None:
    try:
        plans.remove(plan)
    except ValueError:  # another thread moved or dropped it meanwhile
        return
    plans.insert(0, plan)


def eager_mode() -> bool:
    """Whether ``with tk.eager():`` is in force in this thread."""
    return _LOCAL.eager > 0


_FLOAT64, _FLOAT32 = np.dtype(np.float64), np.dtype(np.float32)


def float64_now() -> np.dtype:
    """``jax.dtypes.canonicalize_dtype(np.float64)`` (the same dtype object: float64 with x64 on, float32 without),
    read from the one flag it depends on: a call of every step reads it, and the flag costs a third as much."""
    return _FLOAT64 if getattr(jax.config, "jax_enable_x64", False) else _FLOAT32


_PLANS: dict[Callable[..., Any], list[_Plan]] = {}  # per toolkit body: the plans of recent calls, latest first
_PLANS_PER_BODY = 8
_PLANS_PER_ENTRY = 4  # an entry whose calls keep failing their plans (an object made anew each call) stops making them


def _add_plan(body: Callable[..., Any], values: tuple[Any, ...], key: Any, entry: _Entry) -> None:
    if entry.plans >= _PLANS_PER_ENTRY:
        return
    match = guards.plan(values, key)
    if match is None:
        entry.plans = _PLANS_PER_ENTRY  # the key has a part no plan checks: never again for this entry
        return
    entry.plans += 1
    plans = _PLANS.setdefault(body, [])
    plans.insert(0, _Plan(match, entry))
    del plans[_PLANS_PER_BODY:]


def _name(named: Any) -> str:
    if hasattr(named, "init") and hasattr(named, "update"):
        return f"the step of {type(named).__name__}"
    return getattr(named, "__qualname__", None) or getattr(named, "__name__", None) or type(named).__name__


def run(caller: str, named: Any, entry: _Entry, arrays: Any, body: Callable, values: tuple) -> Any:
    """The entry's program on ``arrays`` (what ``values`` read), its output rebuilt; eagerly if tracing needs values."""
    previous = _LOCAL.values
    _LOCAL.values = values  # what a trace (the first call, or after jax.clear_caches()) captures anew
    try:
        leaves = entry.program(arrays)
    except NEEDS_VALUES as error:
        result = body(*values)  # eagerly: an error here is the one an eager call gives, and propagates
        entry.runs_eagerly = True
        _warn_needs_values(caller, _name(named), error)
        return result
    finally:
        _LOCAL.values = previous
    return output(entry, leaves)


def output(entry: _Entry, leaves: list[Any]) -> Any:
    """The call's output from its program's array leaves (with the non-array leaves the trace left)."""
    assert entry.static is not None  # set when traced, which the first call did
    treedef, static, dynamic = entry.static
    if dynamic is None:  # every output leaf an array
        return treedef.unflatten(leaves)
    produced = iter(leaves)
    return treedef.unflatten([next(produced) if d else s for s, d in zip(static, dynamic)])


@contextlib.contextmanager
def reading(values: tuple[Any, ...]) -> Iterator[None]:
    """Within the block, a trace of an entry's function reads ``values`` (what the call it stands for reads)."""
    previous, _LOCAL.values = _LOCAL.values, values
    try:
        yield
    finally:
        _LOCAL.values = previous


def _all_concrete(arrays: tuple[Any, ...]) -> bool:
    if not _CONCRETE:
        _CONCRETE.update({np.ndarray, filters.concrete_array_type(), filters.concrete_key_type()})
    return all(type(a) in _CONCRETE for a in arrays)


def _user_line(error: BaseException) -> str:
    """``file:line`` of the last frame of the traceback outside JAX, NumPy and toolkit (the user's line)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(_OURS)]
    if not frames:
        return "a line inside a library"
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno} ({(frame.line or '').strip()})"


def _warn_needs_values(caller: str, name: str, error: BaseException) -> None:
    warnings.warn(
        f"{caller} runs {name} eagerly from now on (re-traced on every call, about 100x slower): "
        f"{_user_line(error)} needs a concrete value ({type(error).__name__}). To run it compiled, use "
        f"jnp.where or jax.lax.cond instead of a Python `if` on values, and keep values as arrays (no .item(), "
        f"float(x) or NumPy calls on them). Inside `with tk.eager():` it runs eagerly without this warning.",
        EagerFallbackWarning,
        stacklevel=4,
    )


def _warn_effects(caller: str, name: str, effects: tuple[Any, ...]) -> None:
    shown = "; ".join(map(str, effects[:3])) + ("; ..." if len(effects) > 3 else "")
    warnings.warn(
        f"{caller} runs {name} eagerly (re-traced on every call, about 100x slower) because it has side effects "
        f"that a compiled program would do only once, when traced: {shown}. To run it compiled, print with "
        f"jax.debug.print and return values instead of storing them. Inside `with tk.eager():` it runs "
        f"eagerly without this warning.",
        EagerFallbackWarning,
        stacklevel=4,
    )

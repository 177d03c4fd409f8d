"""Deferred calls: a cached call whose program runs when its result is read, or inside the next call's program.

The plain loop ``gs = tk.gradient(loss, ps); tk.update_(opt, ps, gs)`` runs two
compiled programs a step, and the first one's result only ever goes into the
second. So ``tk.gradient(f, ps)``, when its program is cached already, returns
``Grads`` holding the call (its program, and the arrays it read, as they were at
the call) instead of its result, and ``tk.update_`` given such ``Grads`` runs one
program that computes the gradient and takes the step: one dispatch a step
instead of two. That program is built once per pair of programs, from the two
programs' own traced functions, so it computes what they compute.

``Grads`` read before that (``gs[z]``, printing them, ``tk.update`` of them) run
the gradient's own program then, on the arrays as they were at the call, so a
box or closure changed in between does not change them. NumPy arrays the call
read are copied (they can change in place); a call that reads a large one, or
runs with ``jax_debug_nans``/``jax_debug_infs`` on (whose errors belong at the
call), runs at once instead.

Example:
    >>> import jax.numpy as jnp, toolkit as tk
    >>> z = tk.Param(jnp.array([1.0, 2.0]))
    >>> ps, opt = tk.Params([z]), tk.Descent(0.25)
    >>> for _ in range(3):   # from the second call on, each step is one program
    ...     tk.update_(opt, ps, tk.gradient(lambda: jnp.sum(z.value ** 2), ps))
    >>> z.value              # halved each step: z - 0.25 * 2z
    Array([0.125, 0.25 ], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from toolkit import closures, compiled, filters, guards, structs

__all__ = [
    "Deferred",
    "Fusion",
    "MISS",
    "MOST_KEPT",
    "arrays_of",
    "call_after",
    "checking_nans",
    "closes",
    "exact_copy",
    "plus_minus_zero",
    "execute",
    "frozen",
    "fused",
    "judge_frozen",
    "later",
    "learn",
    "matching",
    "may_try",
    "pair_of",
    "remember",
]

_MOST_COPIED = 1 << 20  # bytes of NumPy arrays a deferred call copies; above this it runs at once
_UNSET = object()


class Deferred:
    """A call, with its entry and the arrays it read, whose program has not run yet (or, without an entry, its
    result: a call that could not be deferred)."""

    __slots__ = ("caller", "named", "body", "values", "entry", "arrays", "_result")

    def __init__(self, caller: str, named: Any, body: Callable, values: tuple, entry: Any, arrays: tuple):
        self.caller, self.named, self.body, self.values = caller, named, body, values
        self.entry, self.arrays, self._result = entry, arrays, _UNSET

    def result(self) -> Any:
        """What the call returns: its program run now (once), on the arrays as they were at the call (and in the
        x64 mode it was made in)."""
        if self._result is _UNSET:
            mode = self.entry.float64
            if compiled.float64_now() is mode:
                self._result = self._run()
            else:
                with jax.enable_x64(mode == np.float64):
                    self._result = self._run()
        return self._result

    def _run(self) -> Any:
        return compiled.run(self.caller, self.named, self.entry, self.arrays, self.body, self.values)


def checking_nans() -> bool:
    """Whether JAX's NaN/Inf checks are on (read as JAX documents its flags): their errors belong at the call that
    makes them, so nothing is deferred or run ahead."""
    config = jax.config
    return bool(getattr(config, "jax_debug_nans", False) or getattr(config, "jax_debug_infs", False))


def _done(result: Any) -> Deferred:
    """A call run at once, as a ``Deferred`` with its result (and no entry: nothing to fuse it into)."""
    deferred = Deferred("", None, _done, (), None, ())
    deferred._result = result
    return deferred


def later(caller: str, named: Any, body: Callable[..., Any], *values: Any) -> Deferred:
    """``compiled.call(caller, named, body, *values)``, deferred where it runs compiled (its first call, which
    compiles it, runs at once as well); run at once otherwise (its result is then in the ``Deferred``)."""
    if compiled.eager_mode() or checking_nans():
        return _done(compiled.call(caller, named, body, *values))
    float64 = compiled.float64_now()
    found = compiled.find(body, values, float64)
    result = _UNSET
    if found is None:  # not seen before (or no plan for it): compiled now, and deferred if a plan was made
        result = compiled.call(caller, named, body, *values)
        found = compiled.find(body, values, float64)
        if found is None:
            return _done(result)
    entry, arrays = found
    numpy = [a for a in arrays if type(a) is np.ndarray]
    if numpy:  # NumPy arrays can change in place: copied, if small
        if sum([a.nbytes for a in numpy]) > _MOST_COPIED:
            return _done(compiled.call(caller, named, body, *values) if result is _UNSET else result)
        arrays = tuple([a.copy() if type(a) is np.ndarray else a for a in arrays])
    deferred = Deferred(caller, named, body, values, entry, arrays)
    deferred._result = result
    return deferred


class Fusion:
    """One program: a call's program, then a call that reads (part of) its result as its last value; it returns
    the second call's output array leaves, or with ``keep_first`` the leaves of both (first's, then second's).
    ``then`` is an entry of ``toolkit.compiled``, or any object with its ``function(arrays)`` (with a true
    ``reads_first``: ``function(arrays, first_arrays, zero)``, also given the first program's input arrays and the
    ``-0.0`` of :func:`exact_copy`; and its ``hand_on(tree, zero)``, where it has one, instead of
    :func:`exact_copy`). With ``keep_first``, the second call reads the first's result through
    :func:`exact_copy`, so each result is the bits its own program gives."""

    __slots__ = ("prefix", "first", "entry", "key", "program", "frozen", "closed", "used", "wasted", "skipped")

    def __init__(self, prefix: guards.Match, first: Any, then: Any, key: tuple, keep_first: bool = False):
        self.prefix, self.first, self.entry, self.key = prefix, first, then, key  # key: (body, pick) in first.after
        self.program = jax.jit(_fused(first, then, key[1], keep_first))
        # What a loop that feeds the program its own outputs may skip (see closes()): whether what its checks let
        # through cannot change in place, and whether its own outputs are known to pass its checks.
        self.frozen: bool | None = None
        self.closed = False
        self.used = self.wasted = 0  # run ahead (toolkit.ahead): how often its second result was taken, or not
        self.skipped = 0  # and how often it was not run ahead since (because too much was wasted)


def closes(fusion: Fusion, chained: bool) -> None:
    """After ``fusion``'s checks passed on values that ``chained`` says were its own outputs: every output of it
    passes them from now on. (What passes the checks has their shapes, dtypes and types; the program makes
    outputs of fixed kinds from inputs of those kinds; so once its outputs passed, they always will.) A loop that
    feeds it its outputs then collects their arrays without the checks."""
    if chained:
        fusion.closed = True


MOST_KEPT = 1 << 20  # bytes of a fused program's outputs a loop may keep (strongly) to feed back to it


def judge_frozen(fusion: Fusion, opt: Any, state: Any, params: Any, arrays: Any) -> bool:
    """Set (and return) ``fusion.frozen`` from the first values its checks let through: the optimiser ``opt`` is
    remembered by identity (its arrays are its own), ``state`` and ``params`` cannot change in place, and
    ``arrays`` (what a loop would keep to feed back) are at most :data:`MOST_KEPT` bytes."""
    small = sum(a.nbytes for a in arrays) <= MOST_KEPT
    fusion.frozen = small and closures.remembered(opt) is not None and frozen(state) and frozen(params)
    return fusion.frozen


def frozen(x: Any) -> bool:
    """Whether nothing in ``x`` can change in place: JAX arrays, numbers, strings and ``None``, in tuples (optax's
    states) and structs (frozen dataclasses). What a plan lets through has the same node and leaf types."""
    if x is None or type(x) is filters.concrete_array_type() or isinstance(x, (bool, int, float, complex, str)):
        return True
    if isinstance(x, tuple):
        return all(map(frozen, x))
    if structs.is_struct(x):
        return all(frozen(getattr(x, f.name)) for f in dataclasses.fields(x))
    return False


def arrays_of(x: Any) -> list[Any]:
    """The concrete JAX arrays among ``x``'s leaves, in order: what a plan collects from a frozen ``x``."""
    kind = filters.concrete_array_type()
    return [leaf for leaf in jax.tree.leaves(x) if type(leaf) is kind]


class _Pair:
    """What one pair of calls (a deferred call's entry, then a body) has: its fused programs, latest first, and
    how often building one failed (then it stops trying: each try walks the values)."""

    __slots__ = ("fusions", "failures")

    def __init__(self) -> None:
        self.fusions: list[Fusion] = []
        self.failures = 0


_FUSIONS_PER_PAIR = 4  # kept on the first call's entry (``entry.after``)
_FAILURES_PER_PAIR = 4


def _fused(first: Any, then: Any, pick: Callable, keep_first: bool) -> Callable:
    reads_first = getattr(then, "reads_first", False)  # a second call that reads the first one's arrays too
    # How what the first call made reaches the second. Where both results are handed back, each must be what its
    # own program gives; where only the second's is, the pair is one step, fused as under jax.jit (and every step
    # of a loop runs this same program, read in between or not).
    hand_on = getattr(then, "hand_on", exact_copy if keep_first else _as_is)

    def fused(first_arrays: tuple, prefix_arrays: tuple, zero: Any) -> Any:
        first_values, prefix = _TRACING.values  # traced once: the calls' Python values, set around each call
        prefix_values: Any = prefix() if callable(prefix) else prefix  # a function: made only now, where traced
        with compiled.reading(first_values):
            first_leaves = first.function(first_arrays)
        picked = hand_on(pick(compiled.output(first, first_leaves)), zero)
        with compiled.reading((*prefix_values, picked)):
            then_arrays = (*prefix_arrays, *jax.tree.leaves(picked))
            if reads_first:
                then_leaves = then.function(then_arrays, first_arrays, zero)
            else:
                then_leaves = then.function(then_arrays)
        return (first_leaves, then_leaves) if keep_first else then_leaves

    return fused


def exact_copy(tree: Any, zero: Any) -> Any:
    """``tree``'s arrays, as they are, but out of reach of XLA's fusion: what made them can no longer be fused
    with what reads them. XLA contracts ``a * b + c`` into one fused multiply-add, which rounds once instead of
    twice, across ``jax.lax.optimization_barrier`` too (on CPU); so a program that computes a gradient and then an
    update of it would differ in the last bit from the two programs run one after the other. A conditional on an
    input of the program (``zero``, ``-0.0``: XLA cannot know which branch runs) hands them on as they are, in
    buffers of their own. (Cheaper disguises, adding ``zero`` or XOR-ing the bits with an unknown 0, keep the two
    parts in one fusion, and Adam's moments still came out rounded differently.)"""
    leaves, treedef = jax.tree.flatten(tree)
    if not leaves:
        return tree
    kept = jax.lax.cond(
        jax.numpy.signbit(zero), lambda xs: xs, lambda xs: [jax.numpy.zeros_like(x) for x in xs], leaves
    )
    return jax.tree.unflatten(treedef, kept)


def _as_is(tree: Any, zero: Any) -> Any:
    return tree


def plus_minus_zero(tree: Any, zero: Any) -> Any:
    """``tree`` with ``zero`` (``-0.0``, an input of the program) added to its float and complex arrays: the same
    bits (``x + -0.0`` is ``x`` for every ``x``), and cheaper than :func:`exact_copy`, but it only keeps a multiply
    that made a value from being contracted with an add or subtract that reads it (``a * b + -0.0`` becomes a fused
    multiply-add that rounds ``a * b`` once, as the multiply alone does). Enough between single elementwise
    operations (struct arithmetic); not between whole programs (XLA may then contract other pairs)."""

    def plus(x: Any) -> Any:
        dtype = getattr(x, "dtype", None)
        if dtype is None or not jax.numpy.issubdtype(dtype, jax.numpy.inexact):
            return x
        if jax.numpy.issubdtype(dtype, jax.numpy.complexfloating):
            return x + jax.lax.complex(zero, zero)  # -0.0 in both parts: + 0.0 would turn an imaginary -0.0 into 0.0
        return x + zero  # a weak zero: x keeps its dtype and its weak type

    return jax.tree.map(plus, tree)


@functools.cache
def _minus_zero() -> Any:
    """A weakly typed float32 ``-0.0``: added to an array it takes that array's dtype and weak type, as the plain
    operations' results would have them (a strong zero would make a weak result strong, and later calls retrace)."""
    with jax.enable_x64(False):
        return jax.numpy.asarray(-0.0)


class _Tracing(threading.local):
    values: tuple[Any, Any] = ((), ())  # per thread: the Python values of the calls a fused program stands for


_TRACING = _Tracing()


def fused(deferred: Deferred, pick: Callable[[Any], Any], body: Callable[..., Any], prefix: tuple) -> Any:
    """:func:`call_after`'s result where its program for these values was built before; :data:`MISS` otherwise."""
    found = matching(deferred, pick, body, prefix)
    return MISS if found is None else _run(found[0], deferred, pick, body, prefix, found[1])


def matching(deferred: Deferred, pick: Callable, body: Callable, prefix: tuple) -> tuple[Fusion, tuple] | None:
    """The fused program built before for ``body(*prefix, pick(deferred.result()))`` and the arrays its checks
    collected from ``prefix``; ``None`` if there is none for these values (or for this x64 mode)."""
    if deferred.entry is None:
        return None
    pair = deferred.entry.after.get((body, pick))
    if pair is not None and deferred.entry.float64 is compiled.float64_now():
        arrays: list[Any] = []
        for fusion in pair.fusions:
            if fusion.prefix(prefix, arrays):
                return fusion, tuple(arrays)
            arrays.clear()
    return None


MISS = compiled.MISS  # what fused() returns where it has no program for the values


def call_after(
    deferred: Deferred, pick: Callable[[Any], Any], caller: str, named: Any, body: Callable[..., Any], *prefix: Any
) -> Any:
    """``compiled.call(caller, named, body, *prefix, pick(deferred.result()))``, as one program with the deferred
    call's wherever the deferred call has a program: every step of a loop then runs the same program (and gives
    the same numbers) whether or not its first result was read in between."""
    result = fused(deferred, pick, body, prefix)
    if result is not MISS:
        return result
    entry = deferred.entry
    same_mode = entry is not None and entry.float64 is compiled.float64_now()
    pair = pair_of(entry, (body, pick)) if entry is not None and same_mode else None
    if pair is not None and may_try(pair):
        fusion = learn(entry, pick(deferred.result()), (body, pick), caller, named, prefix)
        arrays: list[Any] = []
        if fusion is not None and fusion.prefix(prefix, arrays):
            remember(pair, fusion)
            result = _run(fusion, deferred, pick, body, prefix, tuple(arrays))
        else:
            pair.failures += 1
    if result is MISS:
        return compiled.call(caller, named, body, *prefix, pick(deferred.result()))
    return result


def _run(fusion: Fusion, deferred: Deferred, pick: Callable, body: Callable, prefix: tuple, arrays: tuple) -> Any:
    leaves = execute(fusion, deferred.values, deferred.arrays, prefix, arrays)
    return MISS if leaves is MISS else compiled.output(fusion.entry, leaves)


def execute(fusion: Fusion, first_values: tuple, first_arrays: tuple, prefix: Any, arrays: tuple) -> Any:
    """The fused program's leaves for these calls (``first_values`` read ``first_arrays``, ``prefix`` read
    ``arrays``; ``prefix`` may be a function making it, called only if the program is traced); :data:`MISS` where
    tracing it failed (then it is dropped, and counted against its pair)."""
    _TRACING.values = (first_values, prefix)
    try:
        return fusion.program(first_arrays, arrays, _minus_zero())
    except (*compiled.NEEDS_VALUES, compiled.StaleValues):  # tracing it failed: never again (one by one instead)
        pair = fusion.first.after.get(fusion.key)
        if pair is not None and fusion in pair.fusions:
            pair.fusions.remove(fusion)
            pair.failures += 1
        return MISS
    finally:
        _TRACING.values = ((), ())


def remember(pair: _Pair, fusion: Fusion) -> None:
    """``fusion`` first in ``pair``'s programs (the oldest dropped past the bound)."""
    pair.fusions.insert(0, fusion)
    del pair.fusions[_FUSIONS_PER_PAIR:]


def may_try(pair: _Pair) -> bool:
    """Whether building a fused program for ``pair`` has not failed too often yet (each try walks the values)."""
    return pair.failures < _FAILURES_PER_PAIR


def pair_of(first: Any, key: tuple) -> _Pair:
    """What the pair of ``first`` (an entry) and ``key`` (the second call's body, and what it picks) has."""
    return first.after.setdefault(key, _Pair())


def learn(
    first: Any, picked: Any, key: tuple, caller: str, named: Any, prefix: tuple, keep_first: bool = False
) -> Fusion | None:
    """The fused program for the entry ``first`` and the call ``key[0](*prefix, picked)``, where ``picked``
    (``key[1]`` of first's result) is read last by that call, as whole arrays, and it runs compiled."""
    body = key[0]
    made = compiled.entry_for(caller, named, body, (*prefix, picked), first.float64)
    if made is None:
        return None
    entry, captured = made
    leaves = jax.tree.leaves(picked)
    tail = captured.arrays[len(captured.arrays) - len(leaves) :]
    if len(tail) != len(leaves) or not all(a is b for a, b in zip(tail, leaves)):
        return None  # the result is not read last, as whole arrays: no fused program for it
    match = guards.plan(prefix, (tuple, captured.key[1][:-1]))
    return None if match is None else Fusion(match, first, entry, key, keep_first)

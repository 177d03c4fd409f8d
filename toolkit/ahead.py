"""Updates run ahead: a gradient's program also takes the ``tk.update`` that the loop will make of it.

The explicit loop ``(g,) = tk.gradient(loss, z); z, state = tk.update(opt, state, z, g)``
returns real arrays from ``tk.gradient`` (nothing can be deferred, as
``toolkit.deferred`` does for ``Params``), so each step would run two programs.
But after one step it is known what the next update will be: the same optimiser,
the state the last update returned, the parameters the gradient was taken at and
the gradient itself. So where the last step's ``tk.update`` took exactly those
(by identity) from the gradient before it, the next gradient call runs one program
that computes the gradient and, after it, that update; the gradient is returned,
the update kept. The ``tk.update`` that follows, given those very objects, returns
the update kept instead of running a program; given anything else (another state,
parameters or gradient, or the same containers with other contents) it runs its
own program as always, and the update worked out ahead is dropped (where that
keeps happening, as with a new optimiser object each step, it stops working
updates out ahead for that pair of programs).

The gradient handed back is the one the kept update used, bit for bit (the fused
program's, read through an optimisation barrier, and the same bits as the
gradient's own program gives); the update is what ``tk.update`` computes on
those values. Nothing runs ahead for NumPy parameters or state (they change in
place), above ``deferred.MOST_KEPT`` bytes of state and parameters (a large step is not
worth keeping twice; below it, a thread keeps its last step's state and
parameters until its next call), under ``jax_debug_nans``/``jax_debug_infs``
(their errors belong at the call that makes them), or inside ``tk.eager()``.

Example:
    >>> import jax.numpy as jnp, toolkit as tk
    >>> opt = tk.Descent(0.25)
    >>> z = jnp.array([1.0, 2.0]); state = tk.setup(opt, z)
    >>> for _ in range(3):   # from the second step on, one program a step
    ...     (g,) = tk.gradient(lambda z: jnp.sum(z ** 2), z)
    ...     z, state = tk.update(opt, state, z, g)
    >>> z                    # halved each step: z - 0.25 * 2z
    Array([0.125, 0.25 ], dtype=float32)
"""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from toolkit import compiled, deferred, filters

__all__ = ["MISS", "call", "learn", "taken"]

MISS = deferred.MISS  # what taken() returns where no update was worked out ahead for its values


class _Last:
    """The latest compiled gradient call of a thread: its entry, and the ids of its gradients and arguments
    (ids only: nothing of the user's is kept; a stale id only makes a program that the next call checks)."""

    __slots__ = ("entry", "grads", "args")

    def __init__(self, entry: Any, result: Any, args: tuple):
        self.entry, self.grads, self.args = entry, tuple(map(id, result[1])), tuple(map(id, args))


class _Ahead:
    """What the next gradient call of the entry ``fusion.first`` computes the update of: ``caller(opt, state,
    args[index], its gradient)``. ``known``, where ``state`` is the fusion's own output (a loop going on) and it is
    frozen (``toolkit.deferred.frozen``): the optimiser's arrays, the state's, and the parameters the fusion made
    with theirs, which a closed fusion takes without its checks (other parameters are flattened: the gradient's own
    checks just checked them)."""

    __slots__ = ("fusion", "index", "caller", "opt", "state", "known")

    def __init__(self, fusion: Any, index: int, caller: str, opt: Any, state: Any, known: tuple | None = None):
        self.fusion, self.index, self.caller, self.opt, self.state = fusion, index, caller, opt, state
        self.known = known


class _Kept:
    """An update worked out ahead: the objects it was worked out for, its result, the gradient call's result and
    arguments (to learn from, if the update that follows is another), and the arrays of what it made."""

    __slots__ = ("ahead", "params", "grads", "leaves", "result", "first", "args", "opt_arrays", "out", "n_state")

    def __init__(self, ahead: _Ahead, params: Any, result: Any, first: Any, args: tuple, arrays: tuple):
        self.ahead, self.params, self.grads, self.result = ahead, params, first[1][ahead.index], result
        self.first, self.args = first, args
        self.opt_arrays, self.out, self.n_state = arrays  # the optimiser's arrays; the update's (new, then state)
        # Their contents now, where they can change in place (a dict of arrays): the same objects may hold others later.
        self.leaves = None if ahead.fusion.frozen else jax.tree.flatten((ahead.state, params))


class _Slot(threading.local):
    last: _Last | None = None  # per thread; class defaults read fast
    ahead: _Ahead | None = None
    kept: _Kept | None = None


_SLOT = _Slot()


@functools.cache
def _pick(index: int) -> Callable[[Any], Any]:
    """The gradient of argument ``index`` from what a gradient body returns (``(value, grads, aux)``)."""
    get = operator.itemgetter(index)
    return lambda out: get(out[1])


def call(caller: str, named: Any, body: Callable[..., Any], *values: Any) -> Any:
    """``compiled.call(caller, named, body, *values)`` for a gradient body (``values`` = ``(caller, f, args,
    has_aux)``), computing the update that will follow it as well where the last step showed which one."""
    slot = _SLOT
    if compiled.eager_mode() or deferred.checking_nans():
        slot.last = slot.ahead = slot.kept = None
        return compiled.call(caller, named, body, *values)
    float64 = jax.dtypes.canonicalize_dtype(np.float64)
    found = compiled.find(body, values, float64)
    if found is None:  # not seen before (or no plan for it): compiled now
        result = compiled.call(caller, named, body, *values)
        found = compiled.find(body, values, float64)
        slot.last = None if found is None else _Last(found[0], result, values[2])
        return result
    entry, arrays = found
    ahead = slot.ahead
    if ahead is not None and ahead.fusion.first is entry:
        result = _run_ahead(slot, ahead, entry, values, arrays)
        if result is not MISS:
            return result
    slot.kept = None
    result = compiled.run(caller, named, entry, arrays, body, values)
    slot.last = _Last(entry, result, values[2])
    return result


def _run_ahead(slot: _Slot, ahead: _Ahead, entry: Any, values: tuple, arrays: tuple) -> Any:
    args, fusion, known = values[2], ahead.fusion, ahead.known
    if ahead.index >= len(args):
        return MISS
    params = args[ahead.index]
    prefix = (ahead.caller, ahead.opt, ahead.state, params)
    if known is not None and fusion.closed:
        opt_arrays, state_arrays, made, made_arrays = known
        more = (*opt_arrays, *state_arrays, *(made_arrays if params is made else deferred.arrays_of(params)))
    else:
        checked: list[Any] = []
        if not fusion.prefix(prefix, checked):
            return MISS
        deferred.closes(fusion, chained=known is not None)
        more = tuple(checked)
    leaves = deferred.execute(fusion, values, arrays, prefix, more)
    if leaves is MISS:
        return MISS
    first_leaves, then_leaves = leaves
    result = compiled.output(entry, first_leaves)
    if known is not None:
        opt_arrays, n_state = known[0], len(known[1])
    elif fusion.frozen:  # what the checks collect: the optimiser's arrays, then the state's, then the parameters'
        n_state = len(deferred.arrays_of(ahead.state))
        opt_arrays = more[: len(more) - n_state - len(deferred.arrays_of(params))]
    else:
        opt_arrays, n_state = (), 0
    made = compiled.output(fusion.entry, then_leaves)
    slot.kept = _Kept(ahead, params, made, result, args, (opt_arrays, then_leaves, n_state))
    slot.last = None  # made from slot.kept if the update that follows is not the one kept
    return result


def taken(caller: str, opt: Any, state: Any, params: Any, grads: Any) -> Any:
    """The result of ``caller``'s update of these very objects if it was worked out ahead; :data:`MISS` if not."""
    slot = _SLOT
    kept = slot.kept
    if kept is None:
        return MISS
    slot.kept, ahead = None, kept.ahead
    fusion = ahead.fusion
    if not (
        grads is kept.grads
        and params is kept.params
        and state is ahead.state
        and opt is ahead.opt
        and caller == ahead.caller
        and fusion.first.float64 is jax.dtypes.canonicalize_dtype(np.float64)
        and (kept.leaves is None or _same_contents(jax.tree.flatten((state, params)), kept.leaves))
    ):
        slot.last = _Last(fusion.first, kept.first, kept.args)
        fusion.wasted += 1
        return MISS
    fusion.used += 1
    known = None
    if fusion.frozen:  # the update's output arrays: the new parameters', then the new state's
        out, cut = kept.out, len(kept.out) - kept.n_state
        known = (kept.opt_arrays, tuple(out[cut:]), kept.result[0], tuple(out[:cut]))
    ahead.state, ahead.known = kept.result[1], known  # the loop goes on (this thread's own object)
    slot.ahead = ahead
    return kept.result


def _same_contents(now: tuple[list, Any], then: tuple[list, Any]) -> bool:
    return now[1] == then[1] and len(now[0]) == len(then[0]) and all(map(operator.is_, now[0], then[0]))


def learn(caller: str, named: Any, body: Callable[..., Any], prefix: tuple, grads: Any, result: Any) -> None:
    """After ``caller`` ran ``body(*prefix, grads)`` (``prefix`` = ``(caller, opt, state, params)``) one by one:
    if ``grads`` and ``params`` are a gradient and its argument from the thread's last gradient call, its next
    gradient call computes the next such update ahead (``result[1]`` is the state it will take)."""
    slot = _SLOT
    last, slot.last, slot.ahead = slot.last, None, None
    if last is None:
        return
    index = _index(last, id(grads), id(prefix[3]))
    if index is None:
        return
    key = (body, _pick(index))
    pair = deferred.pair_of(last.entry, key)
    arrays: list[Any] = []
    for fusion in pair.fusions:
        if fusion.prefix(prefix, arrays):
            break
        arrays.clear()
    else:
        if not deferred.may_try(pair) or last.entry.float64 is not jax.dtypes.canonicalize_dtype(np.float64):
            return
        fusion = deferred.learn(last.entry, grads, key, caller, named, prefix, keep_first=True)
        if fusion is None or not fusion.prefix(prefix, arrays) or not _worth_keeping(arrays):
            pair.failures += 1
            return
        deferred.remember(pair, fusion)
        deferred.judge_frozen(fusion, prefix[1], prefix[2], prefix[3], arrays)
    if fusion.wasted <= _WASTE_ALLOWED + fusion.used // 8:  # while it pays (a new optimiser object each step: not)
        slot.ahead = _Ahead(fusion, index, caller, prefix[1], result[1])


_WASTE_ALLOWED = 4  # updates worked out ahead and not taken, before it stops (plus one for every 8 taken)


def _index(last: _Last, grads: int, params: int) -> int | None:
    for i, (g, a) in enumerate(zip(last.grads, last.args)):
        if g == grads and a == params:
            return i
    return None


def _worth_keeping(arrays: list[Any]) -> bool:
    """Only JAX arrays (NumPy ones change in place), and not too many bytes of them."""
    kind = filters.concrete_array_type()
    return all(type(a) is kind for a in arrays) and sum(a.nbytes for a in arrays) <= deferred.MOST_KEPT

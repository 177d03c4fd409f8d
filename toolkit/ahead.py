"""Work run ahead: a gradient's program also computes what the loop will make of the gradient next.

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
updates out ahead for that pair of programs, and tries again after a while).

The same holds for struct arithmetic on the gradient, the seed's colour loop
``colour = colour - eta * g``: once a step has shown that the arithmetic it did
on its gradient and argument made the next step's argument, the next gradient's
program computes that arithmetic too, and each struct operation that follows,
given the very operands (and equal numbers: ``-0.0`` is not ``0.0``), returns
what it made; any other operation is computed as always.

The gradient handed back is the one the kept update used, bit for bit, and the
same bits as the gradient's own program gives; the update (or arithmetic) is what
``tk.update`` (or the struct operation) computes on those values, bit for bit:
the fused program hands the gradient on through ``deferred.exact_copy``, since XLA
would otherwise fuse the two and round some sums differently (a multiply and an
add contracted into one fused multiply-add). Nothing runs ahead for NumPy
parameters or state (they change in place), above ``deferred.MOST_KEPT`` bytes of
state and parameters (a large step is not worth keeping twice; below it, a thread
keeps its last step's state and parameters until its next call), under
``jax_debug_nans``/``jax_debug_infs`` (their errors belong at the call that makes
them), or inside ``tk.eager()``.

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
import math
import operator
import threading
from collections.abc import Callable
from typing import Any

import jax

from toolkit import compiled, deferred, filters, structs

__all__ = ["MISS", "call", "learn", "passed_over", "taken"]

MISS = deferred.MISS  # what taken() returns where no update was worked out ahead for its values


class _Last:
    """The latest compiled gradient call of a thread: its entry, and the ids of its gradients and arguments
    (ids only: nothing of the user's is kept; a stale id only makes a program that the next call checks)."""

    __slots__ = ("entry", "grads", "args", "kinds")

    def __init__(self, entry: Any, result: Any, args: tuple):
        self.entry, self.grads, self.args = entry, tuple(map(id, result[1])), tuple(map(id, args))
        self.kinds = tuple(map(type, args))


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
    ops: _Ops | None = None  # the struct arithmetic since the latest gradient call (see the section below)
    made: _Made | None = None
    arithmetic: Any = None  # the fused program of the last arithmetic taken (found without its key)


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
    ops, slot.ops = slot.ops, None  # the struct arithmetic since the last gradient call
    if slot.made is not None:  # arithmetic worked out with the last gradient and not all taken
        _drop_made(slot)
    if compiled.eager_mode() or deferred.checking_nans():
        slot.last = slot.ahead = slot.kept = None
        return compiled.call(caller, named, body, *values)
    float64 = compiled.float64_now()
    found = compiled.find(body, values, float64)
    if found is None:  # not seen before (or no plan for it): compiled now
        return _first_call(slot, ops, caller, named, body, values, float64)
    entry, arrays = found
    ahead = slot.ahead
    if ahead is not None and ahead.fusion.first is entry:
        result = _run_ahead(slot, ahead, entry, values, arrays)
        if result is not MISS:
            return result
    elif (
        ops is not None
        and _continues(ops, values[2])
        and (ops.last.entry is entry or _same_kinds(ops, values[2]))  # (the first step's had number fields)
    ):
        result = _arithmetic_ahead(slot, ops, entry, arrays, values)
        if result is not MISS:
            return result
    slot.kept = None
    result = compiled.run(caller, named, entry, arrays, body, values)
    slot.last = _Last(entry, result, values[2])
    return result


def _first_call(
    slot: _Slot, ops: _Ops | None, caller: str, named: Any, body: Callable, values: tuple, float64: Any
) -> Any:
    """A gradient call no plan finds, compiled now. Where it goes on from the last step's struct arithmetic (a
    loop whose first argument had number fields, or whose shapes changed), it runs straight away the program that
    works that arithmetic out too: one compile, not the gradient's own and then that one."""
    runner = None
    if ops is not None and _continues(ops, values[2]) and _same_kinds(ops, values[2]):
        runner = functools.partial(_arithmetic_ahead, slot, ops, values=values)
    slot.last = None
    result = compiled.first_call(caller, named, body, values, float64, runner)
    if slot.made is None:  # not run ahead: the gradient's own program (or eagerly)
        found = compiled.find(body, values, float64)
        slot.last = None if found is None else _Last(found[0], result, values[2])
    return result


def _same_kinds(ops: _Ops, args: tuple) -> bool:
    """Whether the arguments the arithmetic ``ops`` reads (and so their gradients) are structs of the classes it
    was seen on (and so have its field counts)."""
    kinds = ops.last.kinds
    return all(i < len(args) and i < len(kinds) and type(args[i]) is kinds[i] for _, i in ops.sizes)


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
        and fusion.first.float64 is compiled.float64_now()
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


def passed_over() -> None:
    """The update after this thread's last gradient call is one not worked out ahead (``tk.update`` with extra
    arguments): stop working one out, which the next gradient call would otherwise do for nothing."""
    slot = _SLOT
    slot.last = slot.ahead = slot.kept = None


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
        if not deferred.may_try(pair) or last.entry.float64 is not compiled.float64_now():
            return
        fusion = deferred.learn(last.entry, grads, key, caller, named, prefix, keep_first=True)
        if fusion is None or not fusion.prefix(prefix, arrays) or not _worth_keeping(arrays):
            pair.failures += 1
            return
        deferred.remember(pair, fusion)
        deferred.judge_frozen(fusion, prefix[1], prefix[2], prefix[3], arrays)
    if _pays(fusion):  # (a new optimiser object each step: not)
        slot.ahead = _Ahead(fusion, index, caller, prefix[1], result[1])


_WASTE_ALLOWED = 4  # updates worked out ahead and not taken, before it stops (plus one for every 8 taken)
_RETRY_AFTER = 64  # chances skipped after it stopped, before it tries again (the loop may have changed)


def _pays(fusion: Any) -> bool:
    """Whether working out ahead with ``fusion`` pays: not where what it works out keeps being thrown away (a new
    optimiser object, or a new step size, each step); after a while it is tried again."""
    if fusion.wasted <= _WASTE_ALLOWED + fusion.used // 8:
        return True
    fusion.skipped += 1
    if fusion.skipped >= _RETRY_AFTER:
        fusion.skipped = fusion.wasted = fusion.used = 0
    return False


def _index(last: _Last, grads: int, params: int) -> int | None:
    for i, (g, a) in enumerate(zip(last.grads, last.args)):
        if g == grads and a == params:
            return i
    return None


def _worth_keeping(arrays: list[Any]) -> bool:
    """Only JAX arrays (NumPy ones change in place), and not too many bytes of them."""
    kind = filters.concrete_array_type()
    return all(type(a) is kind for a in arrays) and sum(a.nbytes for a in arrays) <= deferred.MOST_KEPT


# --- struct arithmetic worked out ahead ------------------------------------------
# The seed's colour loop, ``(g,) = tk.gradient(loss, colour); colour = colour - eta * g``,
# runs a gradient program and then two of struct arithmetic a step (each operation is
# one call, see toolkit.structs). Each step's arithmetic is on that step's gradient and
# argument, and what it makes is the next step's argument. Once a step has shown that,
# the next gradient call runs one program that computes the same arithmetic on its own
# gradient and argument too, and the struct operations that follow, given those very
# operands (numbers: equal ones), return what it made; any other operation on them
# drops what was made (counted as wasted, as for updates).

_MOST_OPS = 8  # struct operations after one gradient call that are followed


class _Ops:
    """The struct arithmetic a thread did after its gradient call ``last``, on that call's gradients and arguments
    and on what that made: each operation as ``(op, reflected, a, b)``, its operands named by where they came from
    (``("g", i)``: gradient i; ``("x", i)``: argument i; ``("r", j)``: operation j's result; ``("c", k)``: the k-th
    number or array it read), the numbers and arrays read, the results' ids, and the named structs' field counts."""

    __slots__ = ("last", "pattern", "consts", "made", "sizes")

    def __init__(self, last: _Last):
        self.last = last
        self.pattern: list[tuple] = []
        self.consts: list[Any] = []
        self.made: list[int] = []
        self.sizes: dict[tuple[str, int], int] = {}

    def where(self, x: Any) -> tuple[str, int] | None:
        i = id(x)
        for name, ids in (("g", self.last.grads), ("x", self.last.args), ("r", self.made)):
            if i in ids:
                at = (name, ids.index(i))
                if name != "r" and at not in self.sizes:
                    self.sizes[at] = len(structs.data_of(x))
                return at
        return None


def _seen(op: Callable, reflected: bool, a: Any, b: Any, result: Any) -> None:
    """``structs`` computed ``a op b`` (``b op a`` if ``reflected``) as ``result``: noted if it is arithmetic on
    the thread's last gradient call."""
    slot = _SLOT
    last = slot.last
    if last is None:
        return
    ops = slot.ops
    if ops is None or ops.last is not last:
        ops = slot.ops = _Ops(last)
    if len(ops.pattern) >= _MOST_OPS:
        return
    first = ops.where(a)
    if first is None:
        return
    second = ops.where(b) if structs.is_struct(b) else None
    if second is None:
        if type(b) not in (int, float) and type(b) is not filters.concrete_array_type():
            return
        second = ("c", len(ops.consts))
        ops.consts.append(b)
    ops.pattern.append((op, reflected, first, second))
    ops.made.append(id(result))


def _continues(ops: _Ops, args: tuple) -> bool:
    """Whether a gradient call on ``args`` goes on from the arithmetic ``ops``: an argument is what it made."""
    made = ops.made
    for a in args:
        if id(a) in made:
            return True
    return False


class _Arithmetic:
    """A pattern of struct arithmetic, as the second part of a fused program (``deferred.Fusion``): a function of
    the numbers and arrays it reads, then the gradients' fields (and the gradient program's inputs, among which
    are the arguments' fields, at ``positions``) to every result's fields, in order. What one operation makes is
    read by the next through ``deferred.plus_minus_zero`` (and so are the gradients), so XLA computes each as the
    operation's own program does."""

    __slots__ = ("pattern", "args", "grads", "n_consts", "named", "sizes", "positions", "consts")
    reads_first = True
    hand_on = staticmethod(deferred.plus_minus_zero)

    def __init__(self, pattern: tuple, sizes: dict[tuple[str, int], int], n_consts: int):
        self.pattern, self.n_consts = pattern, n_consts
        self.args = sorted(at for at in sizes if at[0] == "x")
        self.grads = sorted(at for at in sizes if at[0] == "g")
        self.named = dict(sizes)  # the field counts of the gradients and arguments it reads
        self.sizes = dict(sizes)
        for j, (_, _, a, _) in enumerate(pattern):
            self.sizes["r", j] = self.sizes[a]
        self.positions: tuple[int, ...] = ()  # where the arguments' fields are among the gradient program's inputs
        self.consts: tuple[tuple, tuple] = ((), ())  # the last numbers read, and them as arrays

    def function(self, flat: tuple, first_arrays: tuple, zero: Any) -> list[Any]:
        values: dict[tuple[str, int], Any] = {}
        position = 0
        for at in self.args:
            values[at] = tuple(first_arrays[k] for k in self.positions[position : position + self.sizes[at]])
            position += self.sizes[at]
        for k in range(self.n_consts):
            values["c", k] = flat[k]
        position = self.n_consts
        for at in self.grads:
            values[at] = tuple(flat[position : position + self.sizes[at]])
            position += self.sizes[at]
        out: list[Any] = []
        for j, (op, reflected, a, b) in enumerate(self.pattern):
            apply = structs.fields_arithmetic if b[0] == "c" else structs.pairs_arithmetic
            made = apply(op, reflected, values[a], values[b])
            out.extend(made)
            values["r", j] = deferred.plus_minus_zero(made, zero)
        return out

    def fields(self, args: tuple) -> list[Any]:
        """The fields of the arguments the arithmetic reads, in the order of :attr:`positions`."""
        return [a for _, i in self.args for a in structs.data_of(args[i])]

    def reads(self, args: tuple, arrays: tuple) -> bool:
        """Whether the arguments' fields are at :attr:`positions` among the gradient program's inputs."""
        fields = self.fields(args)
        positions = self.positions
        return len(fields) == len(positions) and all(arrays[k] is a for k, a in zip(positions, fields))

    def constants(self, consts: tuple) -> tuple:
        """The numbers and arrays read, numbers as the (weakly typed) arrays a jitted call makes of them, made once
        while the numbers stay the same (only numbers are kept: arrays are the user's)."""
        numbers, made = self.consts
        if len(numbers) == len(consts) and all(
            a is b or _same_number(a, b) for a, b in zip(consts, numbers) if b is not None
        ):
            return tuple(c if m is None else m for c, m in zip(consts, made))
        number = [type(c) in (int, float) for c in consts]
        made = tuple(jax.numpy.asarray(c) if n else None for c, n in zip(consts, number))
        self.consts = (tuple(c if n else None for c, n in zip(consts, number)), made)
        return tuple(c if m is None else m for c, m in zip(consts, made))


@functools.cache
def _pick_fields(grads: tuple[int, ...]) -> Callable[[Any], Any]:
    """The fields of the gradients ``grads`` (indices) from what a gradient body returns."""
    return lambda out: tuple(structs.data_of(out[1][i]) for i in grads)


def _arithmetic_fusion(entry: Any, ops: _Ops, args: tuple, arrays: tuple) -> Any:
    """The fused program of ``entry``'s gradient and the arithmetic ``ops`` (made if new); ``None`` if none."""
    pattern = tuple(ops.pattern)
    recent = _SLOT.arithmetic
    if recent is not None and recent.first is entry and recent.entry.pattern == pattern:
        return recent
    program = _Arithmetic(pattern, ops.sizes, len(ops.consts))
    key = (("arithmetic", pattern), _pick_fields(tuple(i for _, i in program.grads)))
    pair = deferred.pair_of(entry, key)
    if pair.fusions:
        return pair.fusions[0]
    if not deferred.may_try(pair):
        return None
    fields = program.fields(args)
    where = {id(a): k for k, a in enumerate(arrays)}
    program.positions = tuple(where.get(id(a), -1) for a in fields)
    kept = [c for c in ops.consts if type(c) not in (int, float)]
    if not (
        -1 not in program.positions  # (an argument's number fields are not among them)
        and program.reads(args, arrays)
        and all(deferred.frozen(args[i]) for _, i in program.args)
        and _worth_keeping([*fields, *kept])
    ):
        pair.failures += 1
        return None
    fusion = deferred.Fusion(_no_prefix, entry, program, key, keep_first=True)
    deferred.remember(pair, fusion)
    return fusion


def _no_prefix(values: Any, arrays: list) -> bool:
    """The checks of what comes before the gradient in arithmetic worked out ahead: nothing does (never asked)."""
    return False


class _Made:
    """Struct arithmetic worked out with the gradient call ``last``: each operation expected next (``(op,
    reflected, a, b)`` with its operands), what it made, and how many of them were taken so far."""

    __slots__ = ("fusion", "expect", "made", "taken", "last", "consts")

    def __init__(self, fusion: Any, expect: list[tuple], made: list[Any], last: _Last, consts: tuple):
        self.fusion, self.expect, self.made, self.taken = fusion, expect, made, 0
        self.last, self.consts = last, consts

    def knows(self, x: Any) -> bool:
        """Whether ``x`` is an operand or a result of the arithmetic."""
        return any(x is m for m in self.made) or any(x is a or x is b for _, _, a, b in self.expect)

    def ops(self) -> _Ops:
        """The operations taken so far, as the thread's arithmetic since the gradient call."""
        program: _Arithmetic = self.fusion.entry
        ops, taken = _Ops(self.last), self.taken
        ops.made = [id(m) for m in self.made[:taken]]
        if taken == len(program.pattern):  # all of them (a loop going on)
            ops.pattern, ops.consts, ops.sizes = list(program.pattern), list(self.consts), dict(program.named)
            return ops
        ops.pattern = list(program.pattern[:taken])
        used = {at for _, _, a, b in ops.pattern for at in (a, b)}
        ops.consts = [c for k, c in enumerate(self.consts) if ("c", k) in used]
        ops.sizes = {at: size for at, size in program.named.items() if at in used}
        return ops


def _arithmetic_ahead(slot: _Slot, ops: _Ops, entry: Any, arrays: tuple, values: tuple) -> Any:
    args = values[2]
    fusion = _arithmetic_fusion(entry, ops, args, arrays)
    if fusion is None or not _pays(fusion):
        return MISS
    program: _Arithmetic = fusion.entry
    if not program.reads(args, arrays):
        return MISS
    consts = tuple(ops.consts)
    leaves = deferred.execute(fusion, values, arrays, (), program.constants(consts))
    if leaves is MISS:
        return MISS
    first_leaves, then_leaves = leaves
    result = compiled.output(entry, first_leaves)
    grads = result[1]
    made: list[Any] = []
    expect: list[tuple] = []
    position = 0
    for j, (op, reflected, a, b) in enumerate(program.pattern):
        operands = []
        for name, i in (a, b):
            operands.append(
                grads[i] if name == "g" else args[i] if name == "x" else consts[i] if name == "c" else made[i]
            )
        size = program.sizes["r", j]
        expect.append((op, reflected, *operands))
        made.append(structs.like(operands[0], then_leaves[position : position + size]))
        position += size
    slot.last = last = _Last(entry, result, args)
    slot.made = _Made(fusion, expect, made, last, consts)
    return result


def _kept(op: Callable, reflected: bool, a: Any, b: Any) -> Any:
    """What ``structs`` should return for ``a op b`` (``b op a`` if ``reflected``) if it was worked out with the
    last gradient; ``None`` if not."""
    slot = _SLOT
    made = slot.made
    if made is None:
        return None
    j = made.taken
    want_op, want_reflected, want_a, want_b = made.expect[j]
    if (
        a is want_a
        and op is want_op
        and reflected is want_reflected
        and (b is want_b or _same_number(b, want_b))
        and made.fusion.first.float64 is compiled.float64_now()
    ):
        made.taken = j + 1
        if j + 1 == len(made.made):  # all taken: the next gradient call goes on from them
            slot.made, slot.arithmetic, slot.ops = None, made.fusion, made.ops()
            made.fusion.used += 1
        return made.made[j]
    if made.knows(a) or made.knows(b):  # the loop does something else with them now
        slot.ops = made.ops()
        _drop_made(slot)
    return None


def _same_number(b: Any, want: Any) -> bool:
    """Whether ``b`` is the number ``want``: same type, equal, and the same sign where zero (``-0.0``)."""
    kind = type(b)
    if kind is not type(want) or kind not in (int, float) or b != want:
        return False
    return b != 0 or math.copysign(1.0, b) == math.copysign(1.0, want)


def _drop_made(slot: _Slot) -> None:
    made, slot.made = slot.made, None
    if made is not None:
        made.fusion.wasted += 1


structs.watch_arithmetic(_kept, _seen)

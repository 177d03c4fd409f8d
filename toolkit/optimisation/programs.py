"""What a compiled ``tk.optimise`` loop is a program of: the loss, the sampler and the optimiser of one call.

Each is split by ``toolkit.closures`` into the arrays it reads (passed to the
compiled loop as inputs, so a changed array in a closure or a global is seen on
the next call) and a key for everything else (the code, numbers, strings,
objects by identity). The compiled loop is cached on the keys, never on object
identity: ``tk.optimise(model.loss, ...)`` (a new bound method every time) or a
new ``tk.Adam(0.01)`` each call reuse the compiled loop, and the cache holds no
user object alive.

toolkit's own optimisers are taken apart further: their numeric
hyperparameters (``eta``, ``rho``, ``beta``, ``epsilon``) are inputs too, so
``tk.Adam(0.01)`` and then ``tk.Adam(0.02)`` run the same compiled loop.
"""

from __future__ import annotations

import functools
import types
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

from toolkit import closures, compiled, filters, guards
from toolkit.cache import Cache, Key
from toolkit.optimisation import rules

__all__ = ["Part", "Program", "function_part", "optimiser_part"]

Boxes = tuple[tuple[Any, Any], ...]  # tk.Param boxes a part reads, each with the value it holds while the part runs


class Part(NamedTuple):  # a named tuple: made on every call, at a fraction of a frozen dataclass's cost
    """One part of the program: its key, the arrays it reads now, and how to rebuild it reading others.

    ``rebuild(arrays)`` gives the part reading ``arrays`` and the ``tk.Param`` boxes it reads, each with the
    replacement it must hold while the part runs (a box is read when the part runs, not when it is rebuilt).
    """

    key: Any
    arrays: tuple[Any, ...]
    rebuild: Callable[[tuple[Any, ...]], tuple[Any, Boxes]]


def function_part(f: Any) -> Part:
    """A loss or a sampler (``None`` for none), or any value that stands for a program (an optax transformation).

    A function like one seen before (the same code, reading values of the same kinds) is not walked again: the
    walk's key, turned into checks (``toolkit.guards``), is replayed on it and collects its arrays."""
    if f is None:
        return _NO_PART
    code = _code_of(f)
    plans = _PLANS.get(code) if code is not None else None
    if plans:
        for match, key in plans:
            arrays: list[Any] = []
            if match(f, arrays):
                return Part(key, tuple(arrays), _rebuilder(f, key))
    captured = closures.capture(f)
    if code is not None and len(plans or ()) < _PLANS_PER_CODE:
        match = guards.plan(f, captured.key)
        if match is not None:
            _PLANS.put(code, [(match, captured.key), *(plans or ())])
    return Part(captured.key, captured.arrays, captured.rebuilt)


_NO_PART = Part(None, (), lambda arrays: (None, ()))
_PLANS: Cache[list] = Cache(128)  # per code object of a loss or sampler: (checks, key) of calls seen, latest first
_PLANS_PER_CODE = 4  # more calls of one code whose checks keep failing (an object made anew each call) walk it


def _code_of(f: Any) -> Any:
    """The code object of a function or bound method (what its plans are filed under), else ``None``."""
    if type(f) is types.MethodType:
        f = f.__func__
    return f.__code__ if type(f) is types.FunctionType else None


def _rebuilder(f: Any, key: Any) -> Callable[[tuple[Any, ...]], tuple[Any, Boxes]]:
    """``f`` rebuilt reading other arrays, walked only if it is needed (when the loop is traced)."""

    def rebuild(arrays: tuple[Any, ...]) -> tuple[Any, Boxes]:
        captured = closures.capture(f)
        if captured.key != key:  # changed between the call and its trace (another thread): not silently mixed
            raise RuntimeError(
                "tk.optimise: what the loss or sampler reads changed while its loop was being compiled; "
                "do not change its closures or globals from another thread during a call."
            )
        return captured.rebuilt(arrays)

    return rebuild


_RULES = {"Descent": rules.Descent, "Momentum": rules.Momentum, "Nesterov": rules.Nesterov, "Adam": rules.Adam}
_OPTIMISERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # optax objects, walked once each


def optimiser_part(opt: Any) -> Part:
    """The optimiser: a toolkit rule by its name and hyperparameters (numbers as inputs), anything else walked."""
    if isinstance(opt, rules.Rule) and opt.rule in _RULES:
        widest = compiled.float64_now()  # the inputs are arrays of this x64 mode
        memo = opt.__dict__.get("_part")
        if memo is not None and memo[0] is widest:
            return memo[1]
        values = opt.hyperparameters.values()
        if any(callable(value) for value in values):
            return _rule_part(opt)  # a schedule may read what changes between calls (a global array): walked
        try:  # rules are immutable and hash by value: build the inputs once (per x64 mode: they are its arrays)
            part = _cached_rule_part(opt, widest)
        except TypeError:  # a rule made of traced values does not hash
            return _rule_part(opt)
        if all(map(_immutable, values)):  # kept on the rule itself: found without hashing it
            opt.__dict__["_part"] = (widest, part)
        return part
    try:
        if opt in _OPTIMISERS:
            return _OPTIMISERS[opt]
    except TypeError:  # not weakly referenceable, or unhashable: walk it every time
        return function_part(opt)
    part = function_part(opt)  # an optax transformation: its closures hold its hyperparameters
    if not isinstance(part.key, Key):  # not remembered by the walk: it reads what may change (a user's schedule)
        return part
    try:
        _OPTIMISERS[opt] = part
    except TypeError:
        pass
    return part


def _immutable(value: Any) -> bool:
    """Whether a hyperparameter can never change: a number, a tuple of them, or a JAX array (not a NumPy array)."""
    if isinstance(value, tuple):
        return all(map(_immutable, value))
    return isinstance(value, (float, int, np.number)) or type(value) is filters.concrete_array_type()


@functools.lru_cache(maxsize=64)
def _cached_rule_part(opt: rules.Rule, widest: Any) -> Part:
    return _rule_part(opt)


def _rule_part(opt: rules.Rule) -> Part:
    names, kinds, arrays, schedules = [], [], [], []
    for name, value in opt.hyperparameters.items():
        names.append(name)
        if callable(value):  # an optax schedule: its code in the key, its arrays as inputs
            schedule = function_part(value)
            kinds.append(("schedule", len(schedules), len(schedule.arrays), schedule.key))
            schedules.append(schedule)
            arrays.extend(schedule.arrays)
        else:
            numbers = tuple(value) if isinstance(value, (tuple, list)) else (value,)
            kinds.append(("numbers", len(numbers), isinstance(value, (tuple, list))))
            arrays.extend(_as_array(number) for number in numbers)
    make = _RULES[str(opt.rule)]

    def rebuild(values: tuple[Any, ...]) -> tuple[rules.Rule, Boxes]:
        taken = iter(values)
        hyperparameters, boxes = {}, []
        for name, kind in zip(names, kinds):
            if kind[0] == "schedule":
                schedule, read = schedules[kind[1]].rebuild(tuple(next(taken) for _ in range(kind[2])))
                hyperparameters[name] = schedule
                boxes.extend(read)
            else:
                numbers = tuple(next(taken) for _ in range(kind[1]))
                hyperparameters[name] = numbers if kind[2] else numbers[0]
        return make(**hyperparameters), tuple(boxes)

    key = ("tk rule", opt.rule, tuple(names), tuple(kinds), tuple((a.shape, a.dtype) for a in arrays))
    return Part(key, tuple(arrays), rebuild)


def _as_array(number: Any) -> Any:
    """A hyperparameter as an input array: a Python number stays weakly typed, as it would be as a constant."""
    return number if filters.is_array(number) else jnp.asarray(number)


class Program(NamedTuple):
    """One call's loss, sampler and optimiser, taken apart; what a compiled chunk is built from when traced.

    ``make_objective(loss, source)`` turns a (rebuilt) loss into the loop's
    objective; ``source.with_sample(f)`` gives the source drawing with a
    (rebuilt) sampler. A ``Program`` lives for one call only.
    """

    loss: Part
    sample: Part
    opt: Part
    source: Any
    make_objective: Callable[[Callable, Any], Callable]

    @classmethod
    def of(cls, loss: Callable, source: Any, opt: Any, make_objective: Callable[[Callable, Any], Callable]) -> Program:
        sample = function_part(source.sample_function())
        source = source.known_as(sample.key)  # a sampler's shapes are filed under its key, not the function
        return cls(function_part(loss), sample, optimiser_part(opt), source, make_objective)

    @property
    def key(self) -> Any:
        return (self.loss.key, self.sample.key, self.opt.key, type(self.source).__name__, self.source.cache_settings())

    @property
    def arrays(self) -> tuple[Any, ...]:
        return (self.loss.arrays, self.sample.arrays, self.opt.arrays)

    def build(self, arrays: tuple[Any, ...]) -> tuple[Callable, Any, Any]:
        loss_arrays, sample_arrays, opt_arrays = arrays
        sample, sample_boxes = self.sample.rebuild(sample_arrays)
        source = self.source.with_sample(_holding(sample_boxes, sample))
        loss, loss_boxes = self.loss.rebuild(loss_arrays)
        # Held around the whole objective: in implicit mode it puts the optimised values in their own boxes inside.
        objective = _holding(loss_boxes, self.make_objective(loss, source))
        opt, opt_boxes = self.opt.rebuild(opt_arrays)
        return objective, _holding_optimiser(opt_boxes, opt), source


def _holding(boxes: Boxes, f: Any) -> Any:
    """``f`` (a function, or ``None``), with each of ``boxes`` holding its replacement during every call."""
    if not boxes or f is None:
        return f

    @functools.wraps(f)
    def held(*args: Any, **kwargs: Any) -> Any:
        with closures.holding(boxes):
            return f(*args, **kwargs)

    return held


def _holding_optimiser(boxes: Boxes, opt: Any) -> Any:
    """The optax transformation ``opt``, with ``boxes`` (read by its schedules) held while it initialises and
    updates."""
    if not boxes:
        return opt
    extra = isinstance(opt, optax.GradientTransformationExtraArgs)
    kind = optax.GradientTransformationExtraArgs if extra else optax.GradientTransformation
    return kind(_holding(boxes, opt.init), _holding(boxes, opt.update))

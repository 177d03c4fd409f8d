"""The compiled part of ``tk.optimise``: one chunk of optimiser steps as a single XLA program.

A chunk runs global steps ``t0 … end-1`` in **segments** of at most ``block``
steps. A source's :meth:`~toolkit.optimisation.data.Source.prefetch` draws a
segment's samples in one vectorised call.

**The guard costs almost nothing on the way.** Every step must either be
applied or, if its loss, gradient or new parameters are not finite, stop the
run with the last finite iterate. Checking every element each step and
selecting between the old and the new state costs as much as the step itself
at 10^6 parameters, so a single problem's segment runs *unguarded* steps and
only watches two numbers it has anyway: the loss, and the squared norm of the
gradient (which ``gtol`` needs). It stops at the first step where one of them
is not finite (or where ``tol``/``gtol`` is met), and at the end of a segment
checks the parameters once. Only when something looked wrong does the chunk
run the segment again from its start, this time with every step guarded
exactly (every element of the loss, gradient and new parameters checked, the
state kept where a step is not finite), which gives exactly the answer of a
loop guarded at every step. A squared norm that overflows while the gradient
is finite is therefore not mistaken for a divergence.

With ``batched=True`` problems stop independently, so every step is guarded
(and vmapped over the problems).

Compiled chunks are cached by the objects that define them (loss, optimiser,
data source, ...), so calling ``tk.optimise`` again with the same objects and
the same shapes reuses the compiled loop without tracing anything.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toolkit._jaxprs import dependents, depends
from toolkit.cache import Cache, Key
from toolkit.grad import zygote_convention
from toolkit.optimisation.data import Source
from toolkit.optimisation.result import DIVERGED, GTOL, RUNNING, TOL

__all__ = ["Progress", "Chunk", "BLOCK", "cached_chunk"]

BLOCK = 256  # the longest segment: enough steps to amortise a sampler's vectorised draw and the segment's checks

_SUSPECT = -1  # a fast segment's signal: the loss or the gradient norm was not finite at some step
_FAST, _GUARDED = 0, 1  # how the next segment runs


class Progress(NamedTuple):
    """Everything that changes from step to step, for one problem (or, batched, one per problem)."""

    params: Any  # the float leaves of the parameters (None elsewhere)
    opt_state: Any
    status: jax.Array  # RUNNING, TOL, GTOL or DIVERGED
    steps: jax.Array  # completed steps
    last_loss: jax.Array  # the loss at the last completed step (for tol; NaN before the first)


def _finite(*trees: Any) -> jax.Array:
    """True when every element of every leaf is finite (x * 0 is 0 for finite x, NaN otherwise)."""
    total = sum(jnp.sum(leaf * 0) for leaf in jax.tree.leaves(trees))
    return jnp.isfinite(total)


def _squared_norm(grads: Any) -> jax.Array:
    """Σ|g|² over every leaf, in float32 at least (so that half-precision gradients do not overflow it).

    One ``vdot`` per leaf: a single kernel each, where squaring and summing would be two.
    """
    parts = []
    for g in jax.tree.leaves(grads):
        g = jnp.ravel(g)
        if jnp.finfo(g.dtype).bits < 32:
            g = g.astype(jnp.promote_types(g.dtype, jnp.float32))
        parts.append(jnp.real(jnp.vdot(g, g)))
    return sum(parts[1:], parts[0])


def _where(condition: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


def _make_step(objective: Callable, opt: optax.GradientTransformation) -> Callable:
    """One unguarded step: ``(params, opt_state, rest, sample) -> (params, opt_state, loss, grads)``."""
    value_and_grad = jax.value_and_grad(objective)
    extra_args = isinstance(opt, optax.GradientTransformationExtraArgs)

    def step(params: Any, opt_state: Any, rest: Any, sample: Any) -> tuple[Any, Any, jax.Array, Any]:
        loss, grads = value_and_grad(params, rest, sample)
        grads = zygote_convention(grads)  # tk.gradient's convention: complex parameters step downhill too
        if extra_args:  # e.g. optax.lbfgs: its line search needs the value, the gradient and the function
            extra = {"value": loss, "grad": grads, "value_fn": lambda p: objective(p, rest, sample)}
            updates, opt_state = opt.update(grads, opt_state, params, **extra)
        else:
            updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, grads

    return step


def _stop(loss: jax.Array, squared: jax.Array, last: jax.Array, tol: jax.Array, gtol: jax.Array, on: tuple) -> Any:
    """RUNNING, TOL or GTOL after a step with this loss and squared gradient norm (NaN ``last`` compares false)."""
    tol_on, gtol_on = on
    status = jnp.asarray(RUNNING, jnp.int32)
    if tol_on:
        status = jnp.where(jnp.abs(loss - last) <= tol, TOL, status)
    if gtol_on:
        status = jnp.where(jnp.sqrt(squared) <= gtol, GTOL, status)
    return status


def _guarded(step: Callable, on: tuple) -> Callable:
    """One step guarded exactly: applied only while running and where the loss, gradient and update are finite."""

    def guarded(p: Progress, rest: Any, sample: Any, tol: jax.Array, gtol: jax.Array) -> tuple[Progress, jax.Array]:
        running = p.status == RUNNING
        params, opt_state, loss, grads = step(p.params, p.opt_state, rest, sample)
        finite = jnp.isfinite(loss) & _finite(grads, params)
        status = jnp.where(finite, _stop(loss, _squared_norm(grads), p.last_loss, tol, gtol, on), DIVERGED)
        commit = running & finite
        new = Progress(
            params=_where(commit, params, p.params),
            opt_state=_where(commit, opt_state, p.opt_state),
            status=jnp.where(running, status, p.status),
            steps=p.steps + commit.astype(p.steps.dtype),
            last_loss=jnp.where(commit, loss, p.last_loss),
        )
        return new, jnp.where(commit, loss, jnp.nan).astype(loss.dtype)

    return guarded


def _segment_losses(p: Progress, block: int) -> jax.Array:
    """A segment's own loss buffer (NaN where no step is committed): small, so branches never copy the chunk's."""
    return jnp.full((block, *p.status.shape), jnp.nan, p.last_loss.dtype)


def _entry(pre: Any, k: jax.Array) -> Any:
    return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, k, keepdims=False), pre)


class _Segment(NamedTuple):
    """The arguments every segment takes."""

    rest: Any
    data: Any
    key: Any
    offset: jax.Array  # where the segment's first step is in ``pre``
    n: jax.Array  # how many steps it may run
    pre: Any  # the source's prefetched entries, one per step, from the step the draw began at
    tol: jax.Array
    gtol: jax.Array


def _fast_segment(step: Callable, source: Source, on: tuple, block: int) -> Callable:
    """Unguarded steps from ``p`` until ``n`` are done or one stops the run (or looks non-finite).

    Only numbers the step has anyway are watched: the loss, and the gradient norm
    if ``gtol`` needs it (one more pass over the gradient). A non-finite gradient
    with a finite loss makes the next step's loss or the segment's parameters
    non-finite, which sends the segment to the guarded rerun. The watching is
    done in the loop's condition, from the carried loss, so that the step itself
    has nothing more to compute than a hand-written loop's.
    """

    def signal(carry: tuple, a: _Segment) -> jax.Array:
        _, _, _, last, previous, squared, _ = carry
        stop = _stop(last, squared, previous, a.tol, a.gtol, on)
        return jnp.where(jnp.isfinite(last + squared), stop, _SUSPECT)  # squared >= 0: no inf - inf

    def segment(p: Progress, a: _Segment) -> tuple[jax.Array, Progress, jax.Array, jax.Array]:
        def unfinished(carry):
            return (carry[0] < a.n) & ((carry[0] == 0) | (signal(carry, a) == RUNNING))

        def one(carry):
            k, params, opt_state, last, _, _, losses = carry
            sample = source.fetch(a.data, a.key, _entry(a.pre, a.offset + k))
            params, opt_state, loss, grads = step(params, opt_state, a.rest, sample)
            squared = _squared_norm(grads).astype(wide) if on[1] else jnp.zeros((), wide)
            loss = loss.astype(losses.dtype)
            losses = jax.lax.dynamic_update_index_in_dim(losses, loss, k, axis=0)
            return k + 1, params, opt_state, loss, last, squared, losses

        wide = jnp.promote_types(p.last_loss.dtype, jnp.float32)  # the squared norm's dtype: it must not overflow
        zero = jnp.zeros((), wide)
        start = (jnp.zeros_like(a.n), p.params, p.opt_state, p.last_loss, p.last_loss, zero, _segment_losses(p, block))
        carry = jax.lax.while_loop(unfinished, one, start)
        k, params, opt_state, last = carry[:4]
        stopped = jnp.where(k > 0, signal(carry, a), RUNNING)
        new = Progress(params, opt_state, jnp.maximum(stopped, RUNNING), p.steps + k.astype(p.steps.dtype), last)
        return k, new, carry[-1], (stopped != _SUSPECT) & _finite(params)

    return segment


def _guarded_segment(guarded: Callable, source: Source, block: int) -> Callable:
    """Guarded steps from ``p`` until ``n`` are done or every problem has stopped."""

    def segment(p: Progress, a: _Segment) -> tuple[jax.Array, Progress, jax.Array]:
        def unfinished(carry):
            k, p, _ = carry
            return (k < a.n) & jnp.any(p.status == RUNNING)

        def one(carry):
            k, p, losses = carry
            p, loss = guarded(p, a.rest, source.fetch(a.data, a.key, _entry(a.pre, a.offset + k)), a.tol, a.gtol)
            losses = jax.lax.dynamic_update_index_in_dim(losses, loss, k, axis=0)
            return k + 1, p, losses

        return jax.lax.while_loop(unfinished, one, (jnp.zeros_like(a.n), p, _segment_losses(p, block)))

    return segment


class Program(Protocol):
    """What one call compiles: built, inside the trace, from the arrays it reads (see ``programs``)."""

    @property
    def arrays(self) -> tuple[Any, ...]:
        """The arrays the call's loss, sampler and optimiser read (the compiled chunk's inputs)."""
        ...

    def build(self, arrays: tuple[Any, ...]) -> tuple[Callable, Any, Source]:
        """``(objective, optimiser, source)`` reading ``arrays`` (tracers) where the call's own read its arrays."""
        ...


_CURRENT = threading.local()  # the Program of the call under way in this thread (what a trace builds from)


class Chunk:
    """A compiled chunk and the state before step 1, for one key; what the driver remembers between calls.

    The jitted functions take the arrays a program reads as inputs and build
    the program from :data:`_CURRENT` when JAX traces them, which is only during
    a call: between calls the chunk holds no user object.
    """

    def __init__(self, run: Callable, fresh: Callable, block: int, buffer: int):
        self._run, self._fresh = run, fresh
        self.block, self.buffer = block, buffer  # segment length; the most steps one call may run
        self.memo: dict = {}  # per input signature: the loss's dtype; "rate": steps/s

    def run(self, program: Program, *args: Any) -> Any:
        """``(progress, losses, [t, *status, *steps])`` after steps ``t0 … end - 1``.

        ``args``: progress, rest, data, key, ``[t0, end]`` (int32), ``[tol, gtol]`` (the loss's dtype).
        """
        with _current(program):
            return self._run(*args, program.arrays)

    def fresh(self, program: Program, diff: Any, loss_dtype: Any) -> Progress:
        """The state before step 1 for the float parameters ``diff``.

        Most optimisers start from zeros whatever the parameters (Momentum's
        velocity, Adam's moments): that state is made once, by one compiled call,
        and reused (JAX arrays are immutable), which saves a call each run.
        """
        signature = ("fresh", jax.tree.structure(diff), tuple((a.shape, a.dtype) for a in jax.tree.leaves(diff)))
        signature += (np.dtype(loss_dtype), jax.tree.structure(program.arrays))
        with _current(program):
            constant = self.memo.get(signature)
            if constant is None:
                constant = self.memo[signature] = self._constant_start(diff, program.arrays, loss_dtype)
            if isinstance(constant, Progress):
                return constant._replace(params=diff)
            return self._fresh(diff, program.arrays, loss_dtype)

    def _constant_start(self, diff: Any, arrays: tuple[Any, ...], loss_dtype: Any) -> Progress | bool:
        """The state before step 1 if it depends on neither the parameters nor the program's arrays, else False."""
        raw = getattr(self._fresh, "__wrapped__", self._fresh)  # the function, not its jit (whose one call hides all)
        closed, shape = jax.make_jaxpr(raw, static_argnums=2, return_shape=True)(diff, arrays, loss_dtype)
        on_inputs = dependents(closed.jaxpr)
        params = len(jax.tree.leaves(shape.params))
        if any(depends(v, on_inputs) for v in closed.jaxpr.outvars[params:]):
            return False
        return self._fresh(diff, arrays, loss_dtype)


@contextlib.contextmanager
def _current(program: Program) -> Iterator[None]:
    previous = getattr(_CURRENT, "program", None)
    _CURRENT.program = program
    try:
        yield
    finally:
        _CURRENT.program = previous


def _built(arrays: tuple[Any, ...]) -> tuple[Callable, Any, Source]:
    return _CURRENT.program.build(arrays)


def _advance_single(fast: Callable, guarded: Callable) -> Callable:
    """One segment of a single problem: fast, or guarded after a fast one looked wrong (then fast again)."""

    def advance(p: Progress, mode: jax.Array, a: _Segment):
        def run_fast(p):
            k, new, losses, clean = fast(p, a)
            p = _where(clean, new, p)  # a suspect segment is run again from its start, guarded
            return jnp.where(clean, k, 0), p, losses, jnp.where(clean, _FAST, _GUARDED).astype(jnp.int32)

        def run_guarded(p):
            k, p, losses = guarded(p, a)
            return k, p, losses, jnp.asarray(_FAST, jnp.int32)

        return jax.lax.cond(mode == _FAST, run_fast, run_guarded, p)

    return advance


def _make_run(batched: bool, on: tuple, sizes: tuple[int, int, int]) -> Callable:
    block, ahead, buffer = sizes

    def segments(
        advance: Callable, p: Progress, mode: jax.Array, losses: jax.Array, t0: Any, t: Any, stop: Any, a: _Segment
    ):
        """The segments of one draw: steps ``t … stop - 1``, at most ``block`` at a time (``losses[s - t0]``: step s)."""

        def unfinished(carry):
            t, p, _, _ = carry
            return (t < stop) & jnp.any(p.status == RUNNING)

        def segment(carry):
            s, p, losses, mode = carry
            k, p, written, mode = advance(p, mode, a._replace(offset=s - t, n=jnp.minimum(stop - s, block)))
            losses = jax.lax.dynamic_update_slice_in_dim(losses, written, s - t0, axis=0)
            return s + k, p, losses, mode

        return jax.lax.while_loop(unfinished, segment, (t, p, losses, mode))

    def run(progress, rest, data, key, span, tolerances, arrays):
        t0, end = span[0], span[1]  # one array each, so a call moves two small arrays, not four scalars
        tol, gtol = tolerances[0], tolerances[1]
        objective, opt, source = _built(arrays)
        advance = _advance(_make_step(objective, opt), source, batched, on, block)
        # One segment's worth of room past the end, as each segment writes its whole buffer.
        losses = jnp.full((buffer + block, *progress.status.shape), jnp.nan, progress.last_loss.dtype)

        def unfinished(carry):
            t, p, _, _, _ = carry
            return (t < end) & jnp.any(p.status == RUNNING)

        def draw(carry):  # the source draws many steps' entries at once (cheaper per step), then segments run
            t, p, local, losses, mode = carry
            pre, local = source.prefetch(data, key, t, ahead, local)
            a = _Segment(rest, data, key, jnp.zeros_like(t), jnp.asarray(block, t.dtype), pre, tol, gtol)
            stop = jnp.minimum(end, source.draw_stop(data, t, ahead))
            t, p, losses, mode = segments(advance, p, mode, losses, t0, t, stop, a)
            return t, p, local, losses, mode

        start = (t0, progress, source.start(data, key, t0), losses, jnp.asarray(_FAST, jnp.int32))
        t, progress, _, losses, _ = jax.lax.while_loop(unfinished, draw, start)
        counts = [jnp.minimum(t, end)[None], progress.status.ravel(), progress.steps.ravel().astype(jnp.int32)]
        return progress, losses, jnp.concatenate(counts)

    return jax.jit(run)


def _advance(step: Callable, source: Source, batched: bool, on: tuple, block: int) -> Callable:
    """``(p, mode, segment) -> (k, p, losses, mode)``: one segment, fast (then guarded if need be), or guarded."""
    guarded = _guarded(step, on)
    if batched:  # problems stop independently: every step guarded, vmapped over them
        guarded_segment = _guarded_segment(jax.vmap(guarded, in_axes=(0, 0, None, None, None)), source, block)
        return lambda p, mode, a: (*guarded_segment(p, a), mode)
    return _advance_single(_fast_segment(step, source, on, block), _guarded_segment(guarded, source, block))


def _make_fresh(batched: bool) -> Callable:
    def fresh(diff: Any, arrays: tuple[Any, ...], loss_dtype: Any) -> Progress:
        _, opt, _ = _built(arrays)
        shape = jax.tree.leaves(diff)[0].shape[:1] if batched else ()
        return Progress(
            params=diff,
            opt_state=(jax.vmap(opt.init) if batched else opt.init)(diff),
            status=jnp.full(shape, RUNNING, jnp.int32),
            steps=jnp.zeros(shape, jnp.int32),
            last_loss=jnp.full(shape, jnp.nan, loss_dtype),
        )

    return jax.jit(fresh, static_argnums=2)


_CACHE: Cache[Chunk] = Cache(32)


def cached_chunk(key: Any, *, batched: bool, tol_on: bool, gtol_on: bool, block: int, ahead: int, buffer: int) -> Chunk:
    """The chunk for ``key`` (what the program is, see ``programs``; nothing in it keeps a user object alive).

    Built on first use; ``buffer`` (the most steps per call) must be a multiple of ``block``.
    """
    settings = (batched, tol_on, gtol_on, block, ahead, buffer)

    def make() -> Chunk:
        return Chunk(_make_run(batched, (tol_on, gtol_on), (block, ahead, buffer)), _make_fresh(batched), block, buffer)

    return _CACHE.get_or_make(Key((key, settings)), make)

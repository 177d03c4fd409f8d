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

import collections
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

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


def _entry(pre: Any, k: jax.Array) -> Any:
    return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, k, keepdims=False), pre)


class _Segment(NamedTuple):
    """The arguments every segment takes."""

    rest: Any
    data: Any
    key: Any
    t: jax.Array  # the global step the segment starts at
    n: jax.Array  # how many steps it may run
    pre: Any  # the source's prefetched entries for steps t … t + block - 1
    t0: jax.Array  # the chunk's first step (losses[s - t0] is step s's loss)
    tol: jax.Array
    gtol: jax.Array


def _fast_segment(step: Callable, source: Source, on: tuple) -> Callable:
    """Unguarded steps from ``p`` until ``n`` are done or one stops the run (or looks non-finite)."""

    def segment(p: Progress, losses: jax.Array, a: _Segment) -> tuple[jax.Array, Progress, jax.Array, jax.Array]:
        def unfinished(carry):
            k, _, _, _, _, signal = carry
            return (k < a.n) & (signal == RUNNING)

        def one(carry):
            k, params, opt_state, last, losses, _ = carry
            sample = source.fetch(a.data, a.key, _entry(a.pre, k))
            params, opt_state, loss, grads = step(params, opt_state, a.rest, sample)
            # Only numbers the step has anyway are watched: the loss, and the gradient norm if gtol needs it
            # (one more pass over the gradient). A non-finite gradient with a finite loss makes the next
            # step's loss or the segment's parameters non-finite, which sends the segment to the guarded rerun.
            squared = _squared_norm(grads) if on[1] else jnp.zeros((), loss.dtype)
            signal = _stop(loss, squared, last, a.tol, a.gtol, on)
            signal = jnp.where(jnp.isfinite(loss + squared), signal, _SUSPECT)  # squared >= 0: no inf - inf
            loss = loss.astype(losses.dtype)
            losses = jax.lax.dynamic_update_index_in_dim(losses, loss, a.t + k - a.t0, axis=0)
            return k + 1, params, opt_state, loss, losses, signal

        start = (jnp.zeros_like(a.n), p.params, p.opt_state, p.last_loss, losses, jnp.asarray(RUNNING, jnp.int32))
        k, params, opt_state, last, losses, signal = jax.lax.while_loop(unfinished, one, start)
        new = Progress(params, opt_state, jnp.maximum(signal, RUNNING), p.steps + k.astype(p.steps.dtype), last)
        return k, new, losses, (signal != _SUSPECT) & _finite(params)

    return segment


def _guarded_segment(guarded: Callable, source: Source) -> Callable:
    """Guarded steps from ``p`` until ``n`` are done or every problem has stopped."""

    def segment(p: Progress, losses: jax.Array, a: _Segment) -> tuple[jax.Array, Progress, jax.Array]:
        def unfinished(carry):
            k, p, _ = carry
            return (k < a.n) & jnp.any(p.status == RUNNING)

        def one(carry):
            k, p, losses = carry
            p, loss = guarded(p, a.rest, source.fetch(a.data, a.key, _entry(a.pre, k)), a.tol, a.gtol)
            losses = jax.lax.dynamic_update_index_in_dim(losses, loss, a.t + k - a.t0, axis=0)
            return k + 1, p, losses

        return jax.lax.while_loop(unfinished, one, (jnp.zeros_like(a.n), p, losses))

    return segment


class Chunk(NamedTuple):
    """A compiled chunk function and what the driver remembers about it between calls."""

    run: Callable  # (progress, rest, data, key, t0, end, tol, gtol) -> (t, progress, losses)
    objective: Callable  # (float params, other array leaves, sample) -> loss, as the loop sees it
    block: int  # steps per segment at most
    buffer: int  # the most steps one call may run (a multiple of block)
    memo: dict  # per input signature: the loss's dtype; ("fresh", dtype): the initial state; "rate": steps/s


def _advance_single(fast: Callable, guarded: Callable) -> Callable:
    """One segment of a single problem: fast, or guarded after a fast one looked wrong (then fast again)."""

    def advance(p: Progress, losses: jax.Array, mode: jax.Array, a: _Segment):
        def run_fast(p, losses):
            k, new, losses, clean = fast(p, losses, a)
            p = _where(clean, new, p)  # a suspect segment is run again from its start, guarded
            return jnp.where(clean, k, 0), p, losses, jnp.where(clean, _FAST, _GUARDED).astype(jnp.int32)

        def run_guarded(p, losses):
            k, p, losses = guarded(p, losses, a)
            return k, p, losses, jnp.asarray(_FAST, jnp.int32)

        return jax.lax.cond(mode == _FAST, run_fast, run_guarded, p, losses)

    return advance


def _make_chunk(objective: Callable, opt: Any, source: Source, batched: bool, on: tuple, block: int, buffer: int):
    step = _make_step(objective, opt)
    guarded = _guarded(step, on)
    if batched:
        guarded = jax.vmap(guarded, in_axes=(0, 0, None, None, None))
    guarded_segment = _guarded_segment(guarded, source)
    advance = None if batched else _advance_single(_fast_segment(step, source, on), guarded_segment)

    def run(progress, rest, data, key, t0, end, tol, gtol):
        losses = jnp.full((buffer, *progress.status.shape), jnp.nan, progress.last_loss.dtype)

        def unfinished(carry):
            t, p, _, _, _ = carry
            return (t < end) & jnp.any(p.status == RUNNING)

        def segment(carry):
            t, p, local, losses, mode = carry
            pre, local = source.prefetch(data, key, t, block, local)
            a = _Segment(rest, data, key, t, jnp.minimum(end - t, block), pre, t0, tol, gtol)
            if advance is None:
                k, p, losses = guarded_segment(p, losses, a)
            else:
                k, p, losses, mode = advance(p, losses, mode, a)
            return t + k, p, local, losses, mode

        start = (t0, progress, source.start(data, key, t0), losses, jnp.asarray(_FAST, jnp.int32))
        t, progress, _, losses, _ = jax.lax.while_loop(unfinished, segment, start)
        return jnp.minimum(t, end), progress, losses

    return jax.jit(run)


_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 32


def cached_chunk(
    objects: tuple[Any, ...],
    settings: tuple[Any, ...],
    make_objective: Callable[[], Callable],
    opt: optax.GradientTransformation,
    source: Source,
    *,
    batched: bool,
    tol_on: bool,
    gtol_on: bool,
    block: int,
    buffer: int,
) -> Chunk:
    """The compiled chunk for these ``objects`` (compared by identity) and hashable ``settings``.

    It is built on first use, ``make_objective()`` making the loss function then.
    ``buffer`` (the most steps per call) must be a multiple of ``block``.
    """
    objects = (*objects, opt, *source.cache_objects())
    key = (
        tuple(map(id, objects)),
        settings,
        type(source).__name__,
        source.cache_settings(),
        (batched, tol_on, gtol_on, block, buffer),
    )
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key][1]
    objective = make_objective()
    run = _make_chunk(objective, opt, source, batched, (tol_on, gtol_on), block, buffer)
    chunk = Chunk(run, objective, block, buffer, {})
    _CACHE[key] = (objects, chunk)  # holding the objects keeps their ids from being reused
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return chunk

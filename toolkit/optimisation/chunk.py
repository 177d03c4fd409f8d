"""The compiled part of ``tk.optimise``: one chunk of optimiser steps as a single XLA loop.

A chunk runs steps ``t0 … end-1`` (global step numbers, from 0) as a
``lax.while_loop`` over blocks of ``BLOCK`` steps, each block a ``lax.scan``.
Blocks let a sampler draw a block's samples in one vectorised call; the while
loop lets the chunk end early once every problem has stopped. Each step is
guarded: a step whose loss, gradient or new parameters are not finite is not
applied and marks its problem diverged, and stopped problems are frozen, so a
batch of problems can stop independently.

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

from toolkit import tree
from toolkit.grad import zygote_convention
from toolkit.optimisation.data import Source
from toolkit.optimisation.result import DIVERGED, GTOL, RUNNING, TOL

__all__ = ["Progress", "Chunk", "BLOCK", "cached_chunk"]

BLOCK = 256  # the longest block: enough steps to amortise a sampler's vectorised draw, few to waste at a chunk's end


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


def _where(condition: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


class _Inner(NamedTuple):
    """What one step changes; step counts and the last loss are tallied once per block."""

    params: Any
    opt_state: Any
    status: jax.Array
    previous_loss: Any  # the last committed loss, carried step to step only when tol is on


def _make_step(objective: Callable, opt: optax.GradientTransformation, tol_on: bool, gtol_on: bool) -> Callable:
    value_and_grad = jax.value_and_grad(objective)

    def step(inner: _Inner, rest: Any, sample: Any, in_range: jax.Array, tol: jax.Array, gtol: jax.Array):
        running = (inner.status == RUNNING) & in_range
        loss, grads = value_and_grad(inner.params, rest, sample)
        grads = zygote_convention(grads)  # tk.gradient's convention: complex parameters step downhill too
        updates, opt_state = opt.update(grads, inner.opt_state, inner.params)
        params = optax.apply_updates(inner.params, updates)
        finite = _finite(loss, grads, params)
        status = jnp.asarray(RUNNING, inner.status.dtype)
        if tol_on:  # NaN (no step yet) compares false
            status = jnp.where(jnp.abs(loss - inner.previous_loss) <= tol, TOL, status)
        if gtol_on:
            status = jnp.where(tree.norm(grads) <= gtol, GTOL, status)
        status = jnp.where(finite, status, DIVERGED)
        commit = running & finite
        new = _Inner(
            params=_where(commit, params, inner.params),
            opt_state=_where(commit, opt_state, inner.opt_state),
            status=jnp.where(running, status, inner.status),
            previous_loss=jnp.where(commit, loss, inner.previous_loss) if tol_on else None,
        )
        return new, jnp.where(commit, loss, jnp.nan).astype(loss.dtype)

    return step


def _tally(progress: Progress, inner: _Inner, block_losses: jax.Array) -> Progress:
    """Fold a block's results into ``progress``: committed steps are a prefix of the block, their losses finite."""
    committed = jnp.sum(jnp.isfinite(block_losses), axis=0, dtype=progress.steps.dtype)
    last = jnp.take_along_axis(block_losses, jnp.maximum(committed - 1, 0)[None, ...], axis=0)[0]
    return Progress(
        params=inner.params,
        opt_state=inner.opt_state,
        status=inner.status,
        steps=progress.steps + committed,
        last_loss=jnp.where(committed > 0, last, progress.last_loss),
    )


class Chunk(NamedTuple):
    """A compiled chunk function and what the driver remembers about it between calls."""

    run: Callable  # (progress, rest, data, key, t0, end, tol, gtol) -> (t, progress, losses)
    objective: Callable  # (float params, other array leaves, sample) -> loss, as the loop sees it
    block: int  # steps per block
    buffer: int  # the most steps one call may run (a multiple of block)
    memo: dict  # per input signature: the loss's dtype; ("fresh", dtype): the initial state; "rate": steps/s


def _make_chunk(step: Callable, source: Source, batched: bool, tol_on: bool, block: int, buffer: int) -> Callable:
    if batched:
        step = jax.vmap(step, in_axes=(0, 0, None, None, None, None))

    def run(progress, rest, data, key, t0, end, tol, gtol):
        losses = jnp.full((buffer, *progress.status.shape), jnp.nan, progress.last_loss.dtype)

        def unfinished(carry):
            t, progress, _, _ = carry
            return (t < end) & jnp.any(progress.status == RUNNING)

        def run_block(carry):
            t, progress, local, losses = carry
            offsets = jnp.arange(block, dtype=t.dtype)
            pre = source.prefetch(data, key, t + offsets)

            def one(carry, xs):
                inner, local = carry
                offset, pre_s = xs
                s = t + offset
                sample, local = source.fetch(data, key, s, pre_s, local)
                inner, loss = step(inner, rest, sample, s < end, tol, gtol)
                return (inner, local), loss

            inner = _Inner(progress.params, progress.opt_state, progress.status, progress.last_loss if tol_on else None)
            (inner, local), block_losses = jax.lax.scan(one, (inner, local), (offsets, pre))
            losses = jax.lax.dynamic_update_slice_in_dim(losses, block_losses, t - t0, axis=0)
            return t + block, _tally(progress, inner, block_losses), local, losses

        start = (t0, progress, source.start(data, key, t0), losses)
        t, progress, _, losses = jax.lax.while_loop(unfinished, run_block, start)
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
    step = _make_step(objective, opt, tol_on, gtol_on)
    chunk = Chunk(_make_chunk(step, source, batched, tol_on, block, buffer), objective, block, buffer, {})
    _CACHE[key] = (objects, chunk)  # holding the objects keeps their ids from being reused
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return chunk

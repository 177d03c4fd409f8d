"""The compiled part of ``tk.optimise``: one chunk of optimiser steps as a single XLA program.

A chunk runs global steps ``t0 … end-1``, a **draw** at a time: a source's
:meth:`~toolkit.optimisation.data.Source.prefetch` draws many steps' samples in
one vectorised call, then the steps of that draw run.

**The guard costs almost nothing on the way.** Every step must either be
applied or, if its loss, gradient or new parameters are not finite, stop the
run with the last finite iterate. Checking every element each step and
selecting between the old and the new state costs as much as the step itself
at 10^6 parameters, so a single problem's draw runs *unguarded* steps and
only watches two numbers it has anyway: the loss, and the squared norm of the
gradient (which ``gtol`` needs). It stops at the first step where one of them
is not finite (or where ``tol``/``gtol`` is met), and at the end of the draw
checks the parameters once. Only when something looked wrong is the draw
undone: the chunk ends at the draw's first step, flagged *suspect*, and the
driver runs those steps again with a second program in which every step is
guarded exactly (every element of the loss, gradient and new parameters
checked, the state kept where a step is not finite), which gives exactly the
answer of a loop guarded at every step; then it goes on fast. A squared norm
that overflows while the gradient is finite is therefore not mistaken for a
divergence. The guarded program is compiled only if it is ever needed, so a
first call compiles one copy of the step, not two.

With ``batched=True`` problems stop independently, so every step is guarded
(and vmapped over the problems).

Compiled chunks are cached by the objects that define them (loss, optimiser,
data source, ...), so calling ``tk.optimise`` again with the same objects and
the same shapes reuses the compiled loop without tracing anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toolkit._jaxprs import dependents, depends
from toolkit.cache import Cache, Key
from toolkit.grad import zygote_convention
from toolkit.optimisation.data import Source, shapes_signature
from toolkit.optimisation.result import DIVERGED, GTOL, RUNNING, TOL

__all__ = ["Progress", "Chunk", "BLOCK", "cached_chunk"]

BLOCK = 256  # chunk lengths are whole multiples of this (the fewest steps a chunk is sized for)

_SUSPECT = -1  # a fast draw's signal: the loss or the gradient norm was not finite at some step


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


class _Draw(NamedTuple):
    """What the steps of one draw read: the arguments, the source's prefetched entries (``pre[k]``: step
    ``first + k``) and the steps to run, ``first … stop - 1``; ``t0`` is the chunk's first step (``losses[s - t0]``)."""

    rest: Any
    data: Any
    key: Any
    pre: Any
    first: jax.Array
    stop: jax.Array
    t0: jax.Array
    tol: jax.Array
    gtol: jax.Array


def _fast_draw(step: Callable, source: Source, on: tuple) -> Callable:
    """``(p, a, losses) -> (t, p, losses, suspect_at)``: unguarded steps of one draw.

    They run until the draw ends or a step stops the run (``tol``/``gtol``) or
    looks non-finite. Only numbers the step has anyway are watched: the loss, and
    the gradient norm if ``gtol`` needs it. A non-finite gradient with a finite
    loss makes the next step's loss or the draw's parameters non-finite. The
    watching is done in the loop's condition, which reads the last two losses
    back from the loss buffer (carrying them too compiles to two more kernels
    in the step's body than a hand-written scan has; no difference in time was
    measurable), so the step itself has nothing more to compute than a
    hand-written loop's. If anything looked wrong, nothing of the draw is
    applied (``t`` is its first step) and ``suspect_at`` is the last step run;
    otherwise it is -1.
    """

    def run(p: Progress, a: _Draw, losses: jax.Array) -> tuple[jax.Array, Progress, jax.Array, jax.Array]:
        def loss_at(losses: jax.Array, s: jax.Array) -> jax.Array:  # step s's loss (before the draw: p's last)
            slot = jnp.maximum(s - a.t0, 0)
            return jnp.where(s >= a.first, jax.lax.dynamic_index_in_dim(losses, slot, keepdims=False), p.last_loss)

        def signal(carry: tuple) -> jax.Array:  # after step s - 1 of the draw (s > first)
            s, _, _, squared, losses = carry
            last = loss_at(losses, s - 1)
            stop = _stop(last, squared, loss_at(losses, s - 2), a.tol, a.gtol, on)
            return jnp.where(jnp.isfinite(last + squared), stop, _SUSPECT)  # squared >= 0: no inf - inf

        def unfinished(carry):
            return (carry[0] < a.stop) & ((carry[0] == a.first) | (signal(carry) == RUNNING))

        def one(carry):
            s, params, opt_state, _, losses = carry
            sample = source.fetch(a.data, a.key, _entry(a.pre, s - a.first))
            params, opt_state, loss, grads = step(params, opt_state, a.rest, sample)
            squared = _squared_norm(grads).astype(wide) if on[1] else jnp.zeros((), wide)
            losses = jax.lax.dynamic_update_index_in_dim(losses, loss.astype(losses.dtype), s - a.t0, axis=0)
            return s + 1, params, opt_state, squared, losses

        wide = jnp.promote_types(p.last_loss.dtype, jnp.float32)  # the squared norm's dtype: it must not overflow
        carry = jax.lax.while_loop(unfinished, one, (a.first, p.params, p.opt_state, jnp.zeros((), wide), losses))
        s, params, opt_state, _, losses = carry
        k = s - a.first
        stopped = jnp.where(k > 0, signal(carry), RUNNING)
        clean = (stopped != _SUSPECT) & _finite(params)
        last = loss_at(losses, s - 1)
        new = Progress(params, opt_state, jnp.maximum(stopped, RUNNING), p.steps + k.astype(p.steps.dtype), last)
        return jnp.where(clean, s, a.first), _where(clean, new, p), losses, jnp.where(clean, -1, s - 1)

    return run


def _guarded_draw(guarded: Callable, source: Source) -> Callable:
    """``(p, a, losses) -> (t, p, losses, -1)``: guarded steps of one draw, until it ends or every problem stopped."""

    def run(p: Progress, a: _Draw, losses: jax.Array) -> tuple[jax.Array, Progress, jax.Array, jax.Array]:
        def unfinished(carry):
            s, p, _ = carry
            return (s < a.stop) & jnp.any(p.status == RUNNING)

        def one(carry):
            s, p, losses = carry
            sample = source.fetch(a.data, a.key, _entry(a.pre, s - a.first))
            p, loss = guarded(p, a.rest, sample, a.tol, a.gtol)
            return s + 1, p, jax.lax.dynamic_update_index_in_dim(losses, loss, s - a.t0, axis=0)

        s, p, losses = jax.lax.while_loop(unfinished, one, (a.first, p, losses))
        return s, p, losses, jnp.asarray(-1, s.dtype)

    return run


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

    def __init__(self, run: Callable, guarded: Callable, fresh: Callable, block: int, buffer: int):
        self._run, self._guarded, self._fresh = run, guarded, fresh
        self.block, self.buffer = block, buffer  # what chunk lengths are multiples of; the most steps one call may run
        self.memo: dict = {}  # per input signature: the loss's dtype; "rate": steps/s

    def run(self, program: Program, *args: Any, guarded: bool = False) -> Any:
        """``(progress, losses, [t, *status, *steps, suspect_at])`` after steps ``t0 … end - 1``.

        ``args``: progress, rest, data, key, ``[t0, end]`` (int32), ``[tol, gtol]`` (the loss's dtype).
        A single problem's chunk runs fast draws and stops at one that looked
        wrong: nothing of it is applied, ``t`` is its first step and ``suspect_at``
        the last step it ran (-1 when nothing looked wrong). The caller runs those
        steps again with ``guarded=True`` (every step checked exactly), a program
        of its own, so it is compiled only if it is ever needed.
        """
        with _current(program):
            return (self._guarded if guarded else self._run)(*args, program.arrays)

    def fresh(self, program: Program, diff: Any, loss_dtype: Any) -> Progress:
        """The state before step 1 for the float parameters ``diff``.

        Most optimisers start from zeros whatever the parameters (Momentum's
        velocity, Adam's moments): that state is made once, by one compiled call,
        and reused (JAX arrays are immutable), which saves a call each run.
        """
        with _current(program):
            constant = self._constant(program, diff, loss_dtype)
            if isinstance(constant, Progress):
                return constant._replace(params=diff)
            return self._fresh(diff, program.arrays, loss_dtype)

    def starts_alike(self, program: Program, diff: Any, loss_dtype: Any) -> bool:
        """Whether the state before step 1 is the same whatever the parameters' values and the program's arrays."""
        with _current(program):
            return isinstance(self._constant(program, diff, loss_dtype), Progress)

    def _constant(self, program: Program, diff: Any, loss_dtype: Any) -> Progress | bool:
        signature = ("fresh", shapes_signature(diff))
        signature += (np.dtype(loss_dtype), jax.tree.structure(program.arrays))
        constant = self.memo.get(signature)
        if constant is None:
            constant = self.memo[signature] = self._constant_start(diff, program.arrays, loss_dtype)
        return constant

    def _constant_start(self, diff: Any, arrays: tuple[Any, ...], loss_dtype: Any) -> Progress | bool:
        """The state before step 1 if it depends on neither the parameters nor the program's arrays, else False."""
        raw = getattr(self._fresh, "__wrapped__", self._fresh)  # the function, not its jit (whose one call hides all)
        closed, shape = jax.make_jaxpr(raw, static_argnums=2, return_shape=True)(diff, arrays, loss_dtype)
        on_inputs = dependents(closed.jaxpr)
        params = len(jax.tree.leaves(shape.params))
        if any(depends(v, on_inputs) for v in closed.jaxpr.outvars[params:]):
            return False
        return self._fresh(diff, arrays, loss_dtype)


class _current:  # noqa: N801 (used as `with _current(program):`; a class, as contextmanager costs microseconds)
    """The program the thread's traces build from, for the block."""

    __slots__ = ("program", "previous")

    def __init__(self, program: Program):
        self.program = program

    def __enter__(self) -> None:
        self.previous = getattr(_CURRENT, "program", None)
        _CURRENT.program = self.program

    def __exit__(self, *exc: object) -> None:
        _CURRENT.program = self.previous


def _built(arrays: tuple[Any, ...]) -> tuple[Callable, Any, Source]:
    return _CURRENT.program.build(arrays)


def _make_run(batched: bool, on: tuple, sizes: tuple[int, int, int], guarded: bool) -> Callable:
    """The jitted chunk: fast draws (one problem, ``guarded=False``) or every step guarded."""
    _, ahead, buffer = sizes

    def run(progress, rest, data, key, span, tolerances, arrays):
        t0, end = span[0], span[1]  # one array each, so a call moves two small arrays, not four scalars
        tol, gtol = tolerances[0], tolerances[1]
        objective, opt, source = _built(arrays)
        advance = _advance(_make_step(objective, opt), source, batched or guarded, on, batched)
        losses = jnp.full((buffer, *progress.status.shape), jnp.nan, progress.last_loss.dtype)

        def unfinished(carry):
            t, p, _, _, suspect_at = carry
            return (t < end) & jnp.any(p.status == RUNNING) & (suspect_at < 0)

        def draw(carry):  # the source draws many steps' entries at once (cheaper per step), then they run
            t, p, local, losses, _ = carry
            pre, local = source.prefetch(data, key, t, ahead, local)
            stop = jnp.minimum(end, source.draw_stop(data, t, ahead))
            t, p, losses, suspect_at = advance(p, _Draw(rest, data, key, pre, t, stop, t0, tol, gtol), losses)
            return t, p, local, losses, suspect_at

        start = (t0, progress, source.start(data, key, t0), losses, jnp.asarray(-1, t0.dtype))
        t, progress, _, losses, suspect_at = jax.lax.while_loop(unfinished, draw, start)
        counts = [
            jnp.minimum(t, end)[None],
            progress.status.ravel(),
            progress.steps.ravel().astype(jnp.int32),
            suspect_at.astype(jnp.int32)[None],
        ]
        return progress, losses, jnp.concatenate(counts)

    run.__name__ = run.__qualname__ = "run_guarded" if guarded else "run"  # as compile logs show them
    return jax.jit(run)


def _advance(step: Callable, source: Source, guarded: bool, on: tuple, batched: bool) -> Callable:
    """The steps of one draw: fast (one problem) or guarded (vmapped over the problems when batched)."""
    if not guarded:
        return _fast_draw(step, source, on)
    one = _guarded(step, on)
    if batched:  # problems stop independently: every step guarded, vmapped over them
        one = jax.vmap(one, in_axes=(0, 0, None, None, None))
    return _guarded_draw(one, source)


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
        on = (tol_on, gtol_on)
        fast, guarded = (_make_run(batched, on, (block, ahead, buffer), g) for g in (False, True))
        return Chunk(fast, guarded, _make_fresh(batched), block, buffer)

    return _CACHE.get_or_make(Key((key, settings)), make)

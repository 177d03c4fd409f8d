"""``tk.optimise``: a whole optimisation loop, compiled, with what a long run needs around it.

The steps run inside XLA in chunks (see ``toolkit.optimisation.chunk``); between
chunks Python only updates the progress bar, calls the callback, writes
checkpoints and notices Ctrl-C. Chunks aim at about 0.2 s each, so the bar stays
live and an interrupt is answered promptly, while a fast loop still runs tens of
thousands of steps per chunk.
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import numbers
import os
import sys
import time
import types
import warnings
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from toolkit import filters
from toolkit._show import describe
from toolkit.cache import Cache, Key
from toolkit.optimisation import checkpoint as checkpoints
from toolkit.optimisation import plans, programs
from toolkit.optimisation.chunk import BLOCK, Chunk, Progress, cached_chunk
from toolkit.optimisation.data import Sampler, Source, shapes_signature, source_for
from toolkit.optimisation.result import RUNNING, Result, stop_reason
from toolkit.optimisation.update import check_optimiser, trainable
from toolkit.params import Params

__all__ = ["optimise"]

_TARGET_SECONDS = 0.2  # aimed-for chunk duration
_MAX_STEPS_PER_CHUNK = 2**17
_MAX_LOSSES_PER_CHUNK = 2**20
_DRAW_BYTES = 2**22  # what a source's draw of many steps' samples may take (4 MiB)
_MOST_AHEAD = (
    2**14
)  # a vectorised random draw costs as little per sample at 2^14 as at 2^16 (CPU)  # batched runs: caps the (steps x problems) loss buffer
_MAX_STEPS = 2**31 - BLOCK  # steps are counted in int32, and a block may run past the last step


def optimise(
    loss: Callable[..., Any],
    params: Any,
    opt: optax.GradientTransformation,
    *,
    steps: int,
    data: Any = None,
    key: jax.Array | None = None,
    batch_size: int | None = None,
    tol: float | None = None,
    gtol: float | None = None,
    batched: bool = False,
    progress: bool | None = None,
    log_every: int | None = None,
    callback: Callable[[int, Any, Any], Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike | None = None,
) -> Result:
    """Minimise ``loss`` from ``params`` with the optimiser ``opt``, the whole loop compiled.

    Args:
        loss: ``loss(params)``, or ``loss(params, sample)`` when ``data`` is given;
            it must return a real scalar. With implicit ``tk.Params``, ``loss()``
            or ``loss(sample)``, reading the boxes.
        params: any pytree or ``@tk.struct`` (only float leaves are optimised), or
            a ``tk.Params`` (read once; the final values are written back).
        opt: any optax transformation, e.g. ``tk.Momentum()``.
        steps: the maximum number of steps (counting resumed ones).
        data: ``None``; a function ``sample(key)`` drawn fresh each step from
            ``jax.random.fold_in(key, step)``; or a pytree of arrays with a leading
            example axis, used in order (``batch_size``: shuffled minibatches).
            See ``toolkit.optimisation.data`` for the exact sampling rules.
        key: the random key for a sampler or for shuffling.
        batch_size: minibatch size when ``data`` holds arrays of examples.
        tol: stop after step ``N >= 2`` if ``|L_N - L_{N-1}| <= tol``, where ``L_k`` is
            the loss at step ``k`` (evaluated before that step's update, on that
            step's sample); the update of step ``N`` is applied.
        gtol: stop after step ``N`` if the 2-norm of step ``N``'s gradient, over all
            float leaves together, is ``<= gtol``; the update of step ``N`` is applied.
        batched: every leaf of ``params`` has a leading axis of independent
            problems, optimised together in one compiled run; all see the same
            samples, and each stops on its own (``tol``, ``gtol``, divergence).
        progress: show a tqdm bar (steps/s and the loss); default: when stderr is a terminal.
            When the run spans processes (``jax.distributed``), only process 0 draws it.
        log_every: with ``callback``, call ``callback(step, params, loss)`` after
            steps 1, 1 + k, 1 + 2k, … (the seed's ``idx % k == 1``), ``loss`` being
            that step's loss; without a callback, print those losses (process 0 only).
            With several processes the callback is called on every process, as the rest of
            the program runs on every one (it gets the global arrays, and computing on them
            takes all processes); guard its printing with ``jax.process_index() == 0``.
        checkpoint: a file to save the run to every ``checkpoint_every`` steps and
            when it ends (also on Ctrl-C or divergence). Its folder must exist and be
            writable (checked before compiling). The losses go beside it, appended
            to ``<checkpoint>.losses.<token>``, so a save costs what the parameters
            and optimiser state take, however long the run (copy both files to
            move a checkpoint). Saves are atomic (a crash or kill leaves the last
            complete one); a save that fails (a full disk, ...) is a
            ``RuntimeWarning`` and the run goes on, and the Result is returned
            whatever happens to the final save.
        resume: a checkpoint file to continue from (with the same loss, optimiser
            and data; ``key`` may be left out, the saved one is used); the
            continued run is bitwise identical (on CPU) to one that never stopped.
            ``resume="if-exists"`` continues from ``checkpoint`` if that file exists
            and starts fresh if not, so a script that can be killed and rerun is
            ``tk.optimise(..., checkpoint="run.ckpt", checkpoint_every=k, resume="if-exists")``.
            A file written for other parameters (shapes, dtypes, struct classes,
            static fields), another optimiser or other hyperparameters, or with
            fields out of range, is an error naming what differs; a path that is
            not a regular file is refused unread.

    Returns:
        A :class:`~toolkit.optimisation.result.Result` with ``params``, ``state``,
        ``losses``, ``steps`` and ``stop_reason``.

    A step whose loss, gradient or new parameters are not finite is not applied:
    the run stops with ``stop_reason == "diverged at step N"``, ``params`` holding
    the last finite iterate, and a ``RuntimeWarning``. Ctrl-C returns the result
    at the last completed chunk instead of raising. Calling again with a loss,
    sampler and optimiser of the same code and the same shapes reuses the compiled
    loop (nothing is traced again), even where they are new objects (a new lambda,
    a bound method, a new ``tk.Adam(0.01)``, or ``tk.Adam(0.02)``: toolkit's
    hyperparameters are inputs). Unlike ``jax.jit``, arrays the loss or sampler
    reads from outside (closures, globals, attributes of objects) are inputs of the
    compiled loop, read at each call, so a changed target is never stale; other
    values they read (Python numbers, strings, functions) are part of the cache
    key, so changing one compiles anew (see ``toolkit.closures``).
    ``tk.optimise`` drives the loop from Python, so it is not itself traced by
    ``jax.jit``/``jax.vmap``: for many problems at once use ``batched=True``.

    Example:
        >>> import jax, jax.numpy as jnp, toolkit as tk
        >>> target = jnp.array([1.0, -2.0])
        >>> result = tk.optimise(lambda p: tk.mse(p, target), jnp.zeros(2), tk.Momentum(0.1), steps=500)
        >>> result.stop_reason, bool(tk.tree.isapprox(result.params, target))
        ('reached steps=500', True)
    """
    _check_kinds(loss, progress, batched, checkpoint, resume)
    _check_settings(opt, steps, tol, gtol, log_every, callback, checkpoint, checkpoint_every)
    writer = None if checkpoint is None else checkpoints.Writer(checkpoint, opt)  # its folder checked before compiling
    saved = None if resume is None else checkpoints.read(resume, checkpoint, params, opt, batched)  # None: fresh
    if saved is not None and key is None:
        key = saved.key
    values = params.values() if isinstance(params, Params) else params
    signature = plans.signature(values, values is not params, data, key, batch_size, batched)
    source, problem, key = _prepare(params, values, data, batch_size, key, batched, signature)
    _check_arity(loss, problem.implicit is not None, source.takes_sample)
    program = programs.Program.of(loss, source, opt, problem.objective)
    data_arg = None if data is None or callable(data) else data  # arrays of examples go in as arguments
    period = min((k for k in (log_every, checkpoint_every) if k), default=None)
    plan = _compiled(program, problem, data_arg, key, signature, (steps, period, tol is not None, gtol is not None))
    chunk, loss_dtype = plan.chunk, plan.loss_dtype
    fresh = (
        _fresh(chunk, problem, program, loss_dtype) if plan.fresh is None else plan.fresh._replace(params=problem.diff)
    )
    run, key = _start(fresh, problem, loss_dtype, saved, key, steps)
    driver = _Driver(chunk, problem, program, data_arg, key, steps, tol, gtol, loss_dtype)
    run, interrupted = driver.drive(run, _show_progress(progress), log_every, callback, writer, checkpoint_every)
    if writer is not None:
        writer.save(run.snapshot, driver.key, final=True)  # a failure (even Ctrl-C) warns: the Result comes back
    return _result(problem, run, steps, interrupted, tol, gtol)


# --- set-up, or what a repeat call takes from its plan (see ``plans``) ---------------------------


def _prepare(
    params: Any, values: Any, data: Any, batch_size: Any, key: Any, batched: bool, signature: Any
) -> tuple[Source, _Problem, Any]:
    """The checked data source, the parameters split for the loop, and the key (None if the source needs none)."""
    prepared = None if signature is None else plans.PREPARED.get(signature)
    if prepared is None:
        source = source_for(data, batch_size, key)
        _check_placement(values, None if callable(data) else data)
        problem = _Problem.of(params, batched)
        if signature is not None and problem.all_float:
            sampled = isinstance(source, Sampler)
            rest = problem.rest_arrays
            prepared = plans.Prepared(
                None if sampled else source, source.needs_key, rest, problem.batch, problem.placements
            )
            plans.PREPARED.put(signature, prepared)
        return source, problem, key if source.needs_key else None  # an unused key is not saved in checkpoints
    source = Sampler(data) if prepared.source is None else prepared.source
    implicit = params if isinstance(params, Params) else None
    rest, batch, placements = prepared.rest, prepared.batch, prepared.placements
    problem = _Problem(implicit, values, values, rest, rest, batch, True, placements)
    return source, problem, key if prepared.needs_key else None


def _compiled(
    program: programs.Program, problem: _Problem, data: Any, key: Any, signature: Any, settings: tuple
) -> plans.Run:
    """The compiled chunk for the call, the loss's dtype and (when it is the same each call) the state before step 1.

    ``settings``: ``(steps, the callback's or checkpoint's period, tol on, gtol on)``. The sampler and the loss are
    traced for their shapes once per program and input signature, whatever the settings.
    """
    x64 = jax.dtypes.canonicalize_dtype(np.float64)
    filed = None if signature is None else Key((program.key, signature, x64))
    plan = None if filed is None else plans.COMPILED.get(filed)
    if plan is None:
        source = program.source
        entry_bytes, most_ahead = source.entry_bytes(data, key), source.most_ahead(data)
        loss_dtype = None if filed is None else _loss_dtype({}, problem, program, data, key)
        plan = plans.Compiled(entry_bytes, most_ahead, loss_dtype, {})
        if filed is not None:
            plans.COMPILED.put(filed, plan)
    run = plan.runs.get(settings)
    if run is not None:
        return run
    steps, period, tol_on, gtol_on = settings
    block, ahead, buffer = _sizes(steps, period, problem.batch, plan.entry_bytes, plan.most_ahead)
    chunk = cached_chunk(
        (program.key, problem.settings, x64),  # the last: x64 on or off
        batched=problem.batch is not None,
        tol_on=tol_on,
        gtol_on=gtol_on,
        block=block,
        ahead=ahead,
        buffer=buffer,
    )
    loss_dtype = plan.loss_dtype
    if loss_dtype is None:  # a call without a signature: checked once per compiled chunk
        loss_dtype = _loss_dtype(chunk.memo, problem, program, data, key)
    if filed is None:
        return plans.Run(chunk, loss_dtype, None)
    constant = chunk.starts_alike(program, problem.diff, loss_dtype)
    fresh = _fresh(chunk, problem, program, loss_dtype)._replace(params=None) if constant else None
    run = plans.Run(chunk, loss_dtype, fresh)
    if len(plan.runs) < plans.RUNS_PER_PROGRAM:
        plan.runs[settings] = run
    return run


# --- checks made before anything is compiled -----------------------------------------------------


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"tk.optimise: {name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_kinds(loss: Any, progress: Any, batched: Any, checkpoint: Any, resume: Any) -> None:
    """The arguments that must be of one kind: a function, flags, file names."""
    filters.check_callable("tk.optimise", "loss", loss, "lambda params: jnp.sum(params ** 2)")
    if not (progress is None or isinstance(progress, (bool, np.bool_))):
        raise TypeError(f"tk.optimise: progress must be True, False or None, got {progress!r}.")
    if not isinstance(batched, (bool, np.bool_)):
        raise TypeError(f"tk.optimise: batched must be True or False, got {batched!r}.")
    if checkpoint is None and resume is None:  # the usual call: nothing more to check
        return
    for name, value in (("checkpoint", checkpoint), ("resume", resume)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(
                f"tk.optimise: {name} must be a file name (a str or path) such as 'run.ckpt', got {value!r}."
            )
    if isinstance(resume, str) and resume == checkpoints.IF_EXISTS and checkpoint is None:
        raise ValueError(
            f"tk.optimise: resume={checkpoints.IF_EXISTS!r} resumes from the checkpoint file if it exists; "
            f"pass checkpoint='run.ckpt' as well."
        )


def _check_settings(opt, steps, tol, gtol, log_every, callback, checkpoint, checkpoint_every) -> None:
    check_optimiser(opt, "tk.optimise")
    if _count("steps", steps) > _MAX_STEPS:
        raise ValueError(
            f"tk.optimise: steps must be at most {_MAX_STEPS} (the compiled loop counts steps in int32), got {steps}. "
            f"For a longer run, call tk.optimise again from the previous result.params."
        )
    for name, value in (("tol", tol), ("gtol", gtol)) if tol is not None or gtol is not None else ():
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if value is not None and not (number and 0 <= float(value) < math.inf):
            raise ValueError(
                f"tk.optimise: {name} must be a finite number >= 0 (or None to disable it), got {value!r}."
            )
    if log_every is not None:
        _count("log_every", log_every)
    if callback is not None:
        if not callable(callback):
            raise TypeError(f"tk.optimise: callback must be a function callback(step, params, loss), got {callback!r}.")
        if log_every is None:
            raise ValueError(
                "tk.optimise: a callback needs log_every=k (it is called after steps 1, 1 + k, 1 + 2k, ...)."
            )
    if checkpoint_every is not None:
        _count("checkpoint_every", checkpoint_every)
        if checkpoint is None:
            raise ValueError(
                "tk.optimise: checkpoint_every needs a file to write to; pass checkpoint='run.ckpt' as well."
            )


_ARITY_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # function -> the call forms it accepts


def _check_arity(loss: Callable, implicit: bool, takes_sample: bool) -> None:
    args = (() if implicit else ("params",)) + (("sample",) if takes_sample else ())
    target, form = getattr(loss, "__func__", loss), (isinstance(loss, types.MethodType), args)
    try:
        if form in _ARITY_CHECKED.get(target, ()):
            return
    except TypeError:  # not weakly referenceable
        pass
    _check_signature(loss, args, takes_sample)
    try:
        _ARITY_CHECKED.setdefault(target, set()).add(form)
    except TypeError:
        pass


def _check_signature(loss: Callable, args: tuple[str, ...], takes_sample: bool) -> None:
    signature = filters.call_signature(loss)
    if signature is None:
        return  # a builtin or an object without a signature: let the call itself tell
    try:
        signature.bind(*args)
    except TypeError:
        name, signature = getattr(loss, "__name__", "loss"), inspect.signature(loss)
        raise TypeError(
            f"tk.optimise: loss is called as loss({', '.join(args)}), but {name}{signature} does not accept that. "
            + (
                "With data=..., the loss takes the step's sample as its last argument."
                if takes_sample
                else "Without data, the loss takes no sample argument."
            )
        ) from None


def _spread(leaf: Any) -> bool:
    """Whether ``leaf`` is an array placed over more than one device (sharded or replicated on a mesh)."""
    return isinstance(leaf, jax.Array) and len(leaf.sharding.device_set) > 1


def _explicit(leaf: Any) -> bool:
    """Whether ``leaf`` is laid out on a mesh with Explicit axes (``jax.make_mesh``'s default)."""
    sharding = leaf.sharding
    if not isinstance(sharding, jax.sharding.NamedSharding):
        return False
    return any(kind == jax.sharding.AxisType.Explicit for kind in sharding.mesh.axis_types)


def _devices(sharding: jax.sharding.Sharding) -> str:
    return "devices " + ", ".join(str(d.id) for d in sorted(sharding.device_set, key=lambda d: d.id))


def _check_placement(values: Any, data: Any) -> None:
    """Arrays of ``params`` and ``data`` that span several devices must span the same ones (one mesh).

    Costs one look at each leaf's sharding; labels are made only for the error.
    """
    leaves = [leaf for leaf in jax.tree.leaves((values, data)) if _spread(leaf)]
    if any(map(_explicit, leaves)):
        label, leaf = next((label, leaf) for label, leaf in filters.labelled_leaves((values, data)) if _explicit(leaf))
        raise ValueError(
            f"tk.optimise: {_root(label)} is placed on {leaf.sharding}, a mesh with Explicit axes "
            f"({leaf.sharding.mesh.axis_types}); tk.optimise's compiled loop needs Auto axes (XLA chooses the layouts "
            f"inside it, and the result comes back laid out as it went in). Make the mesh with "
            f"jax.make_mesh(shape, names, axis_types=(jax.sharding.AxisType.Auto,) * len(shape))."
        )
    if all(leaf.sharding.device_set == leaves[0].sharding.device_set for leaf in leaves[1:]):
        return
    reference = leaves[0].sharding.device_set
    spread = [(label, leaf) for label, leaf in filters.labelled_leaves((values, data)) if _spread(leaf)]
    first, a = spread[0]
    other, b = next((label, leaf) for label, leaf in spread if leaf.sharding.device_set != reference)
    raise ValueError(
        f"tk.optimise: {_root(first)} is placed on {a.sharding} ({_devices(a.sharding)}), but {_root(other)} on "
        f"{b.sharding} ({_devices(b.sharding)}): parameters and data spread over several devices must be on the "
        f"same devices (one mesh). Place both on one mesh, e.g. jax.device_put(x, NamedSharding(mesh, spec)) "
        f"with the mesh of {_root(first)}."
    )


def _root(label: str) -> str:
    """A leaf of ``(params, data)`` labelled as ``params…`` or ``data…``."""
    for index, root in (("[0]", "params"), ("[1]", "data")):
        if label.startswith(index):
            return root + label[len(index) :]
    return label


def _placements(diff: Any) -> list[Any] | None:
    """The sharding of each float leaf placed over several devices (None for the others); None if there are none."""
    shardings = [leaf.sharding if _spread(leaf) else None for leaf in jax.tree.leaves(diff)]
    return shardings if any(s is not None for s in shardings) else None


def _placed(params: Any, placements: list[Any] | None) -> Any:
    """``params`` with each leaf the user spread over several devices back on its own sharding.

    The partitioner may choose another layout for a loop's carried parameters (a
    replicated bias coming back split over a ``model`` axis); putting them back
    keeps ``result.params`` and what the callback sees where the caller put them,
    and the next chunk's inputs as the first's (one compile). A no-op, with no
    transfer, when the layout is already that.
    """
    if placements is None:
        return params
    leaves, treedef = jax.tree.flatten(params)
    leaves = [
        leaf if s is None or leaf.sharding.is_equivalent_to(s, leaf.ndim) else jax.device_put(leaf, s)
        for leaf, s in zip(leaves, placements)
    ]
    return jax.tree.unflatten(treedef, leaves)


def _state_placed(state: Any, diff: Any, placements: list[Any] | None) -> Any:
    """The optimiser state with each part shaped like the parameters (momenta, moments) placed as they are."""
    if placements is None:
        return state
    treedef, shapes = jax.tree.structure(diff), [np.shape(leaf) for leaf in jax.tree.leaves(diff)]

    def like_params(node: Any) -> bool:
        return jax.tree.structure(node) == treedef and [np.shape(x) for x in jax.tree.leaves(node)] == shapes

    return jax.tree.map(lambda n: _placed(n, placements) if like_params(n) else n, state, is_leaf=like_params)


def _loss_dtype(memo: dict, problem: _Problem, program: programs.Program, data: Any, key: Any) -> np.dtype:
    """The loss's dtype, after checking it returns a real scalar (traced once per input signature in ``memo``)."""
    source = program.source
    signature = (*map(shapes_signature, (problem.diff, problem.rest_arrays)), type(source))
    signature += (source.example_signature(data, key),)
    if signature not in memo:
        sample = source.example(data, key)
        one = problem.one_problem
        objective, _, _ = program.build(program.arrays)  # the call's own loss and sampler, reading their arrays
        out = jax.eval_shape(objective, one(problem.diff), one(problem.rest_arrays), sample)
        if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != () or not jnp.issubdtype(out.dtype, jnp.floating):
            raise _not_a_scalar(describe(out) if hasattr(out, "shape") else type(out).__name__)
        memo[signature] = np.dtype(out.dtype)
    return memo[signature]


def _not_a_scalar(shown: str) -> TypeError:
    return TypeError(
        f"tk.optimise: loss must return a real floating-point scalar, but it returned {shown}. "
        f"Reduce it to one number, e.g. with jnp.mean(...) or tk.mse(ŷ, y)."
    )


def _show_progress(progress: bool | None) -> bool:
    """Whether to draw the bar: only process 0 does, when the run spans processes (they all run in step)."""
    return (sys.stderr.isatty() if progress is None else bool(progress)) and jax.process_index() == 0


def _sizes(
    steps: int, period: int | None, batch: int | None, entry_bytes: int, most_ahead: int | None
) -> tuple[int, int, int]:
    """What chunk lengths are multiples of, the steps a source draws at once, and the most steps per chunk.

    All are powers of two fitted to ``steps``, so a short run neither draws
    samples it never reaches nor fills and copies a loss buffer for 10^5 steps (a
    different power of two of ``steps`` is a different compiled loop). A source
    draws as many steps as fit in ``_DRAW_BYTES`` (a vectorised random draw is
    several times cheaper per sample at 10^4 samples than at 10^2), up to ``_MOST_AHEAD``.
    """
    fitted = 1 << max(0, int(steps) - 1).bit_length()  # the power of two >= steps
    block = min(BLOCK, fitted, period or BLOCK)
    ahead = 1 << max(1, _DRAW_BYTES // max(1, entry_bytes)).bit_length() - 1  # the power of two <= that
    ahead = max(block, min(ahead, _MOST_AHEAD, fitted, most_ahead or _MOST_AHEAD))
    most = _MAX_STEPS_PER_CHUNK if batch is None else max(block, _MAX_LOSSES_PER_CHUNK // batch)
    return block, ahead, max(block, min(most, fitted) // block * block)


# --- the problem as the compiled loop sees it ----------------------------------------------------


def _strong(leaf: Any) -> jax.Array:
    """A float leaf as an array with a definite dtype (a Python float would be weakly typed)."""
    if isinstance(leaf, jax.Array) and not leaf.weak_type:
        return leaf
    dtype = leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf)
    return jnp.asarray(leaf, dtype=jax.dtypes.canonicalize_dtype(dtype))


class _Problem(NamedTuple):  # made on every call: a named tuple costs a fraction of a frozen dataclass
    """Parameters split the way the compiled loop needs them."""

    implicit: Params | None  # the Params being optimised, in implicit mode
    values: Any  # the parameters (the boxes' values in implicit mode)
    diff: Any  # float leaves, as arrays (None elsewhere): what is optimised
    rest_arrays: Any  # other array leaves: passed to the compiled loop, unchanged
    statics: Any  # every other leaf (ints, strings, ...): baked into the compiled loop
    batch: int | None  # the number of problems with batched=True
    all_float: bool  # every leaf is optimised (``diff`` is the whole tree)
    placements: list[Any] | None  # see _placements

    @classmethod
    def of(cls, params: Any, batched: bool) -> _Problem:
        implicit = params if isinstance(params, Params) else None
        if implicit is not None and batched:
            raise ValueError("tk.optimise: batched=True needs explicit parameters (a pytree), not tk.Params.")
        values = implicit.values() if implicit is not None else params
        leaves, treedef = jax.tree.flatten(values)
        if filters.all_float_arrays(leaves):  # the usual case: everything is optimised, nothing else to split off
            diff, rest = values, treedef.unflatten([None] * len(leaves))
            rest_arrays, statics = rest, rest
        else:
            diff, rest = trainable(values, "tk.optimise")
            diff = jax.tree.map(_strong, diff)
            rest_arrays, statics = filters.partition(rest, filters.is_array)
        for path, leaf in jax.tree_util.tree_flatten_with_path(statics)[0]:
            try:
                hash(leaf)
            except TypeError:
                raise TypeError(
                    f"tk.optimise: the parameter leaf at {filters.keystr(path, 'params')} is an unhashable "
                    f"{type(leaf).__name__}; make it an array or a hashable value (e.g. a tuple)."
                ) from None
        batch = _batch_size(values) if batched else None
        return cls(implicit, values, diff, rest_arrays, statics, batch, not jax.tree.leaves(rest), _placements(diff))

    @property
    def settings(self) -> tuple[Any, ...]:
        """What the compiled loop depends on by value: the tree's shape and its non-array leaves."""
        return (jax.tree.structure(self.values), tuple(jax.tree.leaves(self.statics)))

    def objective(self, loss: Callable, source: Source) -> Callable:
        """``loss`` as a function of (float leaves, other array leaves, sample)."""
        statics, implicit = self.statics, self.implicit

        def objective(diff: Any, rest_arrays: Any, sample: Any) -> jax.Array:
            values = filters.combine(diff, rest_arrays, statics)
            args = (sample,) if source.takes_sample else ()
            out = implicit.call_with(values, loss, *args) if implicit is not None else loss(values, *args)
            if not filters.is_numeric(out):
                raise _not_a_scalar(describe(out))
            return jnp.asarray(out)  # a Python float is a loss too

        return objective

    def one_problem(self, x: Any) -> Any:
        """Abstract values of one problem's slice of ``x`` (``x`` itself unless batched)."""
        drop = 1 if self.batch is not None else 0
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[drop:], a.dtype), x)

    def full(self, diff: Any) -> Any:
        return diff if self.all_float else filters.combine(diff, self.rest_arrays, self.statics)


def _batch_size(values: Any) -> int:
    leaves, _ = jax.tree_util.tree_flatten_with_path(values)
    sizes: dict[str, int | None] = {
        filters.keystr(p, "params"): (np.shape(leaf)[:1] or (None,))[0] for p, leaf in leaves
    }
    counts = {n for n in sizes.values() if n is not None}
    if None in sizes.values() or len(counts) != 1:
        listing = ", ".join(f"{where}: {'no axis' if n is None else n}" for where, n in sizes.items())
        raise ValueError(
            f"tk.optimise: batched=True needs every parameter leaf to have the same leading (problem) axis; got {listing}."
        )
    return counts.pop()


# --- running chunks --------------------------------------------------------------------------------


class _Pieces(collections.abc.Sequence):
    """The loss history as the pieces the chunks returned: append-only, shared by successive runs.

    Each :class:`_Run` sees its own prefix, so adding a chunk's losses costs O(1)
    (a tuple would be copied whole each chunk: quadratic in the number of
    chunks), and a run replaced by Ctrl-C halfway still sees exactly its pieces.
    """

    def __init__(self, store: list[np.ndarray], count: int):
        self._store, self._count = store, count

    def plus(self, piece: np.ndarray) -> _Pieces:
        store = self._store if len(self._store) == self._count else self._store[: self._count]
        store.append(piece)
        return _Pieces(store, self._count + 1)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._store[i] for i in range(*index.indices(self._count))]
        if not -self._count <= index < self._count:
            raise IndexError("loss piece index out of range")
        return self._store[index % self._count]


class _Run(NamedTuple):
    """The run at a chunk boundary; replaced whole after each chunk, so Ctrl-C never sees half an update."""

    t: int  # steps taken on the global clock (the sample index of the next step)
    progress: Progress  # on the device
    status: np.ndarray
    steps: np.ndarray
    losses: _Pieces

    def history(self) -> np.ndarray:
        pieces = [piece for piece in self.losses[:] if len(piece)]  # a slice: one list, not a Sequence walk
        if len(pieces) == 1:  # the usual short run: one chunk's losses (copied: the caller's to write to)
            return np.array(pieces[0])
        return np.concatenate(list(self.losses))  # the first entry fixes the shape and dtype, even when empty

    def snapshot(self, key: Any) -> checkpoints.Snapshot:
        # the state as it is on the devices: the writer fetches it (one device) or has each process write its shards
        return checkpoints.Snapshot(self.t, self.progress, self.losses, key)  # pieces: saves append new ones


def _fresh(chunk: Chunk, problem: _Problem, program: programs.Program, loss_dtype: np.dtype) -> Progress:
    """The state before step 1 (built by one compiled call, reused across calls), on the parameters' devices.

    A state reused from an earlier call may sit on that call's devices (one
    device, or another mesh): parts shaped like the parameters take their
    layout, the rest (step counts, ...) is replicated on the parameters' devices.
    """
    fresh = chunk.fresh(program, problem.diff, np.dtype(loss_dtype))
    leaves = jax.tree.leaves(problem.diff)
    if not leaves or not isinstance(leaves[0], jax.Array):
        return fresh
    home = leaves[0].sharding
    state = _state_placed(fresh.opt_state, problem.diff, problem.placements)
    elsewhere = [
        x
        for x in jax.tree.leaves((state, fresh[2:]))
        if x.sharding != home and x.sharding.device_set != home.device_set
    ]
    if not elsewhere:
        return fresh._replace(opt_state=state)
    replicated = _replicated_on(home)
    moved = jax.tree.map(
        lambda x: x if x.sharding.device_set == home.device_set else jax.device_put(x, replicated),
        fresh._replace(opt_state=state, params=None),
    )
    return moved._replace(params=fresh.params)


def _replicated_on(sharding: jax.sharding.Sharding) -> jax.sharding.Sharding:
    """A sharding that keeps a whole copy on each of ``sharding``'s devices."""
    if isinstance(sharding, jax.sharding.NamedSharding):
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    devices = sorted(sharding.device_set, key=lambda d: d.id)
    if len(devices) == 1:
        return jax.sharding.SingleDeviceSharding(devices[0])
    return jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), ("devices",)), jax.sharding.PartitionSpec())


def _start(
    fresh: Progress,
    problem: _Problem,
    loss_dtype: np.dtype,
    resume: checkpoints.Saved | None,
    key: Any,
    max_steps: int,
) -> tuple[_Run, Any]:
    """The run to continue from (``fresh``, or the checkpoint read for ``resume``, checked here) and its key."""
    shape = () if problem.batch is None else (problem.batch,)
    if resume is None:
        no_losses = np.zeros((0, *shape), loss_dtype)
        status = np.full(shape, RUNNING) if shape else np.array(RUNNING)  # (np.full costs more than the rest here)
        return _Run(0, fresh, status, np.zeros(shape, np.int32), _Pieces([no_losses], 1)), key
    saved = checkpoints.load(resume, fresh, key, max_steps, loss_dtype)
    status, steps = jax.device_get((saved.progress.status, saved.progress.steps))
    pieces = _Pieces(list(saved.losses), len(saved.losses))
    return _Run(saved.t, saved.progress, np.asarray(status), np.asarray(steps), pieces), saved.key


class _Driver:
    """Runs chunks until the run ends; knows where chunks must stop (callbacks, checkpoints)."""

    def __init__(
        self,
        chunk: Chunk,
        problem: _Problem,
        program: programs.Program,
        data: Any,
        key: Any,
        steps: int,
        tol: float | None,
        gtol: float | None,
        loss_dtype: np.dtype,
    ):
        self.chunk, self.problem, self.program, self.data, self.steps = chunk, problem, program, data, steps
        self.key = key if program.source.needs_key else None
        tolerances = (0 if tol is None else tol, 0 if gtol is None else gtol)
        self.tolerances = _on_device((tolerances, loss_dtype), lambda: np.array(tolerances, loss_dtype))
        self.batched = problem.batch is not None
        self.placements = problem.placements

    def drive(
        self,
        run: _Run,
        show: bool,
        log_every: int | None,
        callback: Callable | None,
        checkpoint: checkpoints.Writer | None,
        checkpoint_every: int | None,
    ) -> tuple[_Run, bool]:
        """Run chunks from ``run`` to the end; ``(the run at its last chunk boundary, whether Ctrl-C ended it)``."""
        length = self._first_length()
        bar = tqdm(total=self.steps, initial=run.t, unit="step", dynamic_ncols=True) if show else _NoBar(run.t)
        interrupted = False
        try:
            while run.t < self.steps and (run.status == RUNNING).any():
                end = self._end(run.t, length, log_every, checkpoint_every)
                began = time.perf_counter()
                new = self._chunk(run, end)
                length = self._next_length(length, new.t - run.t, time.perf_counter() - began)
                bar.update(new.t - bar.n)
                run = new
                if new.t != end:  # every problem stopped inside the chunk
                    break
                last = run.losses[-1][-1]
                if show:  # the loss as text only for a bar that shows it
                    bar.set_postfix(loss=_short(last), refresh=False)
                if log_every and (end - 1) % log_every == 0:
                    self._log(end, run, last, callback)
                if checkpoint is not None and checkpoint_every and end % checkpoint_every == 0:
                    checkpoint.save(run.snapshot, self.key)  # a failure warns and the run goes on
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
        return run, interrupted

    def _chunk(self, run: _Run, end: int) -> _Run:
        """The run after steps ``run.t … end - 1`` (or where every problem stopped).

        Steps that looked wrong in the fast program end it where their draw began;
        they are run again guarded (every step checked), then the chunk goes on
        fast. Each time that happens again in the chunk, the guarded stretch doubles
        (a gradient norm that overflows at every step costs a few calls, not two a step).
        """
        span = self.chunk.block
        while True:
            run, suspect_at = self._call(run, end, guarded=False)
            if suspect_at < 0:
                return run
            run, _ = self._call(run, min(max(suspect_at + 1, run.t + span), end), guarded=True)
            if run.t >= end or not (run.status == RUNNING).any():
                return run
            span *= 2

    def _call(self, run: _Run, end: int, guarded: bool) -> tuple[_Run, int]:
        progress, losses, counts = self.chunk.run(
            self.program,
            run.progress,
            self.problem.rest_arrays,
            self.data,
            self.key,
            _on_device((run.t, end), lambda: np.array([run.t, end], np.int32)),
            self.tolerances,
            guarded=guarded,
        )
        if self.placements is not None:
            progress = progress._replace(
                params=_placed(progress.params, self.placements),
                opt_state=_state_placed(progress.opt_state, self.problem.diff, self.placements),
            )
        # t, every status and every step count in one array; np.asarray, not jax.device_get (10 µs more a call)
        counts, losses = np.asarray(counts), np.asarray(losses)
        n = (len(counts) - 2) // 2
        t, status, steps, suspect_at = int(counts[0]), counts[1 : 1 + n], counts[1 + n : 1 + 2 * n], int(counts[-1])
        shape = run.status.shape
        status, steps = status.reshape(shape), steps.reshape(shape)
        if self.batched:
            rows = t - run.t
        else:
            t = int(steps)  # one problem: its clock is its step count (the chunk may end mid-block)
            rows = int(steps) - int(run.steps)
        return _Run(t, progress, status, steps, run.losses.plus(np.asarray(losses[:rows]))), suspect_at

    def _first_length(self) -> int:
        rate = self.chunk.memo.get("rate")  # measured by an earlier call with this compiled loop
        return _agreed(
            self._clip(4 * self.chunk.block if rate is None else int(rate * _TARGET_SECONDS), limit=self.chunk.buffer)
        )

    def _next_length(self, previous: int, ran: int, seconds: float) -> int:
        rate = ran / max(seconds, 1e-9)
        self.chunk.memo["rate"] = rate
        return _agreed(self._clip(int(rate * _TARGET_SECONDS), limit=8 * previous))

    def _clip(self, length: int, limit: int) -> int:
        block = self.chunk.block
        return max(block, min(length, limit, self.chunk.buffer) // block * block)

    def _end(self, t: int, length: int, log_every: int | None, checkpoint_every: int | None) -> int:
        end = min(t + length, self.steps)
        if log_every:
            end = min(end, -(-t // log_every) * log_every + 1)  # the next step ≡ 1 (mod log_every)
        if checkpoint_every:
            end = min(end, (t // checkpoint_every + 1) * checkpoint_every)
        return end

    def _log(self, step: int, run: _Run, loss: Any, callback: Callable | None) -> None:
        if callback is None:
            if jax.process_index() == 0:  # one line per step, not one per process
                tqdm.write(f"step {step}: loss {_short(loss)}")
            return
        # the callback runs on every process, as the rest of the program does: it gets the global arrays,
        # and whatever it computes from them takes every process (guard its printing with jax.process_index())
        values = self.problem.full(run.progress.params)
        if self.problem.implicit is not None:
            self.problem.implicit.assign(values)
            values = self.problem.implicit
        callback(step, values, loss)


_SMALL: Cache[Any] = Cache(256)  # the chunks' small inputs (steps, tolerances) on the device, by value


def _on_device(key: tuple[Any, ...], make: Callable[[], np.ndarray]) -> Any:
    """The small array ``make()`` (what ``key`` says it holds) on the device, made once per value and reused.

    A jitted call copies a NumPy argument in every time, which made a chunk's
    call 30-40 µs slower than with the same values already on the device. The
    array is uncommitted, so a chunk on other devices takes it there as it would
    a NumPy array. A run over several processes keeps NumPy (each process holds it whole).
    """
    placed = _SMALL.get(key)
    if placed is None:
        placed = make() if jax.process_count() > 1 else jax.device_put(make())
        _SMALL.put(key, placed)
    return placed


def _agreed(length: int) -> int:
    """Process 0's chunk length on every process: the chunks' steps hold collectives, so all must run the same ones.

    Each process times its own chunks, so left alone their lengths would drift apart.
    """
    if jax.process_count() == 1:
        return length
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int32(length)))


class _NoBar:
    """What the driver asks of a tqdm bar, doing nothing (a disabled tqdm still costs tens of µs to make)."""

    def __init__(self, n: int):
        self.n = n

    def update(self, k: int) -> None:
        self.n += k

    def set_postfix(self, **_: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _short(loss: Any) -> str:
    loss = np.asarray(loss)
    if loss.ndim == 0:
        return f"{float(loss):.6g}"
    running = loss[np.isfinite(loss)]
    return f"min {running.min():.6g} over {running.size} running" if running.size else "all stopped"


def _divergence_message(problem: _Problem, run: _Run, where: str) -> str:
    """Why the run stopped, and the likely fix: a smaller η, unless no step was ever taken."""
    if int(np.max(run.steps)) > 0:
        return (
            f"tk.optimise: {where}: the loss, gradient or parameters became non-finite, so the run stopped and "
            f"returned the last finite parameters. Try a smaller learning rate eta (η)."
        )
    for label, leaf in filters.labelled_leaves(problem.diff, "params"):
        if leaf is not None and not np.all(np.isfinite(np.asarray(leaf))):
            return f"tk.optimise: {where}: the starting parameters are not finite ({label}); no step was taken."
    return (
        f"tk.optimise: {where}: the loss or its gradient is not finite at the starting parameters, or the first "
        f"update overflowed; no step was taken. Evaluate the loss and tk.gradient at the start to see which."
    )


def _result(problem: _Problem, run: _Run, steps: int, interrupted: bool, tol: Any, gtol: Any) -> Result:
    if problem.batch is None:
        reasons: tuple[str, ...] = (stop_reason(int(run.status), int(run.steps), steps, interrupted, tol, gtol),)
    else:
        reasons = tuple(
            stop_reason(int(s), int(n), steps, interrupted, tol, gtol)
            for s, n in zip(run.status.ravel(), run.steps.ravel())
        )
    losses = run.history()
    params = problem.full(run.progress.params)
    if problem.implicit is not None:
        problem.implicit.assign(params)
        params = problem.implicit
    diverged = [r for r in reasons if r.startswith("diverged")]
    if diverged:
        where = (
            diverged[0]
            if problem.batch is None
            else f"{len(diverged)} of {problem.batch} problems diverged, first {diverged[0]}"
        )
        warnings.warn(_divergence_message(problem, run, where), RuntimeWarning, stacklevel=3)
    if problem.batch is None:
        return Result(params, run.progress.opt_state, losses, int(run.steps), reasons[0])
    return Result(params, run.progress.opt_state, losses[: int(run.steps.max())], run.steps, reasons)

"""One optimiser step on any pytree or struct: ``setup``/``update``, and ``update_`` for implicit ``Params``.

Only floating-point (and complex) leaves are optimised; integer, boolean and
static leaves pass through unchanged, and their gradients may be ``None`` (as
``tk.gradient`` returns them). No per-type code is needed: a ``@tk.struct`` is
updated field by field because it is a pytree.

Gradients are taken in ``tk.gradient``'s convention: for a complex parameter
``z = x + iy`` the gradient is ``∂L/∂x + i ∂L/∂y`` (Zygote's, the conjugate of
``jax.grad``'s), so every optimiser steps complex parameters downhill, as it does
real ones. Pass ``jnp.conj(jax.grad(loss)(z))`` if the gradient comes from ``jax.grad``.
"""

from __future__ import annotations

import collections
import numbers
import operator
import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toolkit import ahead, compiled, deferred, filters
from toolkit._show import describe
from toolkit.params import Grads, Params

__all__ = ["setup", "update", "update_"]


def check_optimiser(opt: Any, caller: str) -> None:
    """Raise a ``TypeError`` unless ``opt`` is an optax ``GradientTransformation`` (an init/update pair)."""
    if isinstance(opt, optax.GradientTransformation) or (hasattr(opt, "init") and hasattr(opt, "update")):
        return
    hint = f" Did you mean {getattr(opt, '__name__', 'it')}() (call it)?" if callable(opt) else ""
    raise TypeError(
        f"{caller}: opt must be an optax.GradientTransformation such as tk.Momentum() or optax.adam(1e-3), "
        f"got {opt!r}.{hint}"
    )


def trainable(params: Any, caller: str) -> tuple[Any, Any]:
    """Split ``params`` into its float leaves and the rest; an error if there are no float leaves (or opaque ones)."""
    if any(map(filters.is_opaque, jax.tree.leaves(params))):  # labelled only then: labels cost more than the check
        filters.refuse_opaque(caller, filters.labelled_leaves(params, "params"))
    diff, rest = filters.partition(params)
    if not jax.tree.leaves(diff):
        raise ValueError(
            f"{caller}: params have no floating-point leaves to optimise (got {_leaf_summary(params)}). "
            f"Use float arrays for the parameters, e.g. jnp.asarray(x, dtype=jnp.float32)."
        )
    return diff, rest


def _leaf_summary(params: Any) -> str:
    leaves = jax.tree.leaves(params)
    if not leaves:
        return "an empty tree"
    shown = ", ".join(describe(leaf) for leaf in leaves[:4])
    return f"leaves {shown}{', …' if len(leaves) > 4 else ''}"


def float_grads(params: Any, grads: Any, caller: str) -> Any:
    """``grads`` restricted to the float leaves of ``params`` (``None`` elsewhere), after checking they match."""
    labelled, structure = jax.tree_util.tree_flatten_with_path(params)
    matched = filters.leaves_like(structure, grads)
    if matched is None:
        raise ValueError(
            f"{caller}: grads must have the structure of params (None allowed where params hold no floats);\n"
            f"  params: {structure}\n  grads:  {jax.tree.structure(grads)}"
        )
    picked = []
    for (path, p), g in zip(labelled, matched):
        picked.append(_float_grad(caller, filters.keystr(path), p, g))
    return jax.tree.unflatten(structure, picked)


def _float_grad(caller: str, where: str, p: Any, g: Any) -> Any:
    if not filters.is_inexact(p):
        return None
    if g is None:
        raise ValueError(
            f"{caller}: the gradient at {where} is None but the parameter there is {describe(p)}; "
            f"pass zeros (tk.tree.zero) for parameters that get no gradient."
        )
    if not filters.is_numeric(g) or isinstance(g, (list, tuple)):
        what = filters.non_numeric(g)[0] if not filters.is_numeric(g) else f"a {type(g).__name__}"
        raise TypeError(
            f"{caller}: the gradient at {where} is {what}; it must be an array like {describe(p)}, the parameter there."
        )
    if np.shape(g) != np.shape(p):
        raise ValueError(
            f"{caller}: the gradient at {where} is {describe(g)} but the parameter is {describe(p)}; "
            f"pass a gradient shaped like the parameter."
        )
    if jnp.iscomplexobj(g) and not jnp.iscomplexobj(p):
        raise TypeError(
            f"{caller}: the gradient at {where} is complex ({describe(g)}) but the parameter is {describe(p)}; "
            f"pass a real gradient for a real parameter."
        )
    return jnp.asarray(g) if isinstance(g, numbers.Number) else g  # optax reads each gradient's dtype


def setup(opt: optax.GradientTransformation, params: Any) -> Any:
    """The optimiser state for ``params`` (Optimisers.jl's ``setup``): ``opt.init`` on the float leaves.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> state = tk.setup(tk.Momentum(), {"w": jnp.ones(2), "n": 3})
        >>> state[1].trace
        {'n': None, 'w': Array([0., 0.], dtype=float32)}
    """
    check_optimiser(opt, "tk.setup")
    diff, _ = trainable(params, "tk.setup")
    return opt.init(diff)


def update(
    opt: optax.GradientTransformation, state: Any, params: Any, grads: Any, **extra_args: Any
) -> tuple[Any, Any]:
    """One step: new ``(params, state)`` from the gradient ``grads`` (Flux's ``update!``, without mutation).

    Works on arrays, nested containers and ``@tk.struct`` values alike; leaves
    that are not floating point are returned unchanged. ``state`` must be what
    ``tk.setup(opt, params)`` made (or the state a previous ``update`` returned):
    another optimiser's state, or one for other shapes, is an error naming the leaf. Composes with ``jax.jit``,
    ``jax.vmap`` and ``jax.grad``. In a loop of ``(g,) = tk.gradient(f, params)`` and this, from the second step
    on the step is worked out in the gradient's program (``toolkit.ahead``): one program a step.

    ``extra_args`` go to optimisers that ask for more than the gradient (an
    ``optax.GradientTransformationExtraArgs`` such as ``optax.lbfgs()``, whose line
    search needs ``value=``, ``grad=`` and ``value_fn=``): ``value_fn`` takes
    ``params`` as given here, and ``grad`` is read as ``grads`` is. ``tk.optimise``
    passes them itself.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> params = {"w": jnp.array([1.0, 2.0]), "n": 3}
        >>> opt = tk.Descent(0.125)
        >>> (g,) = tk.gradient(lambda p: jnp.sum(p["w"] ** 2) * p["n"], params)
        >>> params, state = tk.update(opt, tk.setup(opt, params), params, g)
        >>> params   # w - 0.125 * 6w; the integer leaf n is left alone
        {'n': 3, 'w': Array([0.25, 0.5 ], dtype=float32)}
    """
    check_optimiser(opt, "tk.update")
    if extra_args:  # not worked out ahead: the gradient's program never sees them
        _check_extra_args(opt, extra_args)
        ahead.passed_over()
        out = compiled.call("tk.update", opt, _step, "tk.update", opt, state, params, grads, extra_args)
    else:
        out = ahead.taken("tk.update", opt, state, params, grads)  # worked out with the gradient (toolkit.ahead)?
        if out is ahead.MISS:
            out = compiled.call("tk.update", opt, _step, "tk.update", opt, state, params, grads)
            ahead.learn("tk.update", opt, _step, ("tk.update", opt, state, params), grads, out)
    new, state, others = out
    return (new if others is None else filters.combine(new, filters.partition(params)[1])), state


def _step(
    caller: str, opt: Any, state: Any, params: Any, grads: Any, extra_args: dict | None = None
) -> tuple[Any, Any, bool | None]:
    """The float leaves of ``params`` after one step, the new state, and whether ``params`` has other leaves
    (``None`` if not: then the first is all of them): the compiled program of ``update``."""
    diff, rest = trainable(params, caller)
    _check_state(caller, opt, state, diff)
    extra = {} if extra_args is None else _extra_for_float_leaves(caller, params, rest, extra_args)
    try:
        updates, state = opt.update(float_grads(params, grads, caller), state, diff, **extra)
    except TypeError as error:
        if extra_args is None and isinstance(opt, optax.GradientTransformationExtraArgs):
            error.add_note(
                f"{caller}: if this optimiser needs the loss's value or function (as optax.lbfgs() does), pass "
                f"them to the explicit form: tk.update(opt, state, params, g, value=loss_value, grad=g, "
                f"value_fn=loss), or let tk.optimise pass them."
            )
        raise
    return optax.apply_updates(diff, updates), state, (True if jax.tree.leaves(rest) else None)


def _check_extra_args(opt: Any, extra_args: dict) -> None:
    if not isinstance(opt, optax.GradientTransformationExtraArgs):
        names = ", ".join(f"{name}=..." for name in extra_args)
        raise TypeError(
            f"tk.update: {names} go to optimisers that take extra arguments (optax.GradientTransformationExtraArgs, "
            f"e.g. optax.lbfgs()), and this one does not; leave them out, or wrap it: "
            f"optax.with_extra_args_support(opt)."
        )


def _extra_for_float_leaves(caller: str, params: Any, rest: Any, extra_args: dict) -> dict:
    """``extra_args`` as the optimiser sees the parameters: only their float leaves (``diff``)."""
    extra = dict(extra_args)
    if "grad" in extra:
        extra["grad"] = float_grads(params, extra["grad"], caller)
    function = extra.get("value_fn")
    if callable(function) and jax.tree.leaves(rest):  # called on the float leaves: give it whole parameters
        extra["value_fn"] = lambda diff: function(filters.combine(diff, rest))
    return extra


_STATE_SHAPES: collections.OrderedDict = collections.OrderedDict()  # (opt, params' shapes) -> the state's shapes


def _expected_state(opt: Any, diff: Any) -> tuple[Any, tuple[tuple[int, ...], ...]]:
    """The structure and leaf shapes of ``opt.init(diff)`` (traced once per optimiser and parameter shapes)."""
    leaves, treedef = jax.tree.flatten(diff)
    key = (opt, treedef, tuple((np.shape(leaf), jnp.result_type(leaf)) for leaf in leaves))

    def trace() -> tuple[Any, tuple[tuple[int, ...], ...]]:
        state = jax.eval_shape(opt.init, jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(*k) for k in key[2]]))
        state_leaves, state_tree = jax.tree.flatten(state)
        return state_tree, tuple(leaf.shape for leaf in state_leaves)

    try:
        hit = _STATE_SHAPES.get(key)
    except TypeError:  # an unhashable optimiser object
        return trace()
    if hit is None:
        hit = _STATE_SHAPES[key] = trace()
        if len(_STATE_SHAPES) > 64:
            _STATE_SHAPES.popitem(last=False)
    return hit


def _check_state(caller: str, opt: Any, state: Any, params: Any) -> None:
    """A clear error unless ``state`` has the structure and shapes ``tk.setup(opt, params)`` gives."""
    expected_tree, expected_shapes = _expected_state(opt, params)
    leaves, treedef = jax.tree.flatten(state)
    fix = "make it with state = tk.setup(opt, params), for this opt and these params"
    if not leaves and not expected_shapes:
        return  # a stateless optimiser (Descent): any empty state does
    if treedef != expected_tree:
        raise ValueError(
            f"{caller}: state does not have the structure opt makes for params ({describe(state)} with structure "
            f"{treedef}, expected {expected_tree}); {fix}."
        )
    if tuple(np.shape(leaf) for leaf in leaves) == expected_shapes:
        return
    labelled = jax.tree_util.tree_flatten_with_path(state)[0]
    for (path, leaf), shape in zip(labelled, expected_shapes, strict=True):
        if np.shape(leaf) != shape:
            raise ValueError(
                f"{caller}: {filters.keystr(path, 'state')} has shape {np.shape(leaf)} where opt makes {shape} "
                f"for these params; {fix}."
            )


def _signature(values: Any) -> tuple[Any, ...]:
    leaves, treedef = jax.tree.flatten(values)
    return (treedef, *map(_leaf_signature, leaves))


def _leaf_signature(leaf: Any) -> Any:
    """Shape and dtype as JAX holds the leaf, so a Python float or a NumPy float64 array (in float32 mode)
    matches the float32 array that ``update`` turns it into; the type for leaves that are not numbers."""
    if isinstance(leaf, jax.Array):  # the common case, kept fast (result_type costs microseconds)
        return leaf.shape, leaf.dtype
    try:
        return np.shape(leaf), jnp.result_type(leaf)
    except TypeError:
        return type(leaf)


def update_(opt: optax.GradientTransformation, ps: Params, gs: Grads) -> None:
    """In-place step for implicit parameters (Flux's ``update!(opt, ps, gs)``): every box in ``ps`` changes.

    The optimiser state (momenta, Adam moments) lives with ``ps`` and is keyed by
    the ``opt`` object, so reuse the same ``opt`` across steps, as in Flux.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> z = tk.Param(jnp.array([1.0, 2.0]))
        >>> ps, opt = tk.Params([z]), tk.Descent(0.5)
        >>> tk.update_(opt, ps, tk.gradient(lambda: jnp.sum(z.value ** 2), ps))
        >>> z.value
        Array([0., 0.], dtype=float32)
    """
    check_optimiser(opt, "tk.update_")
    if not isinstance(ps, Params):
        raise TypeError(
            f"tk.update_ updates tk.Params in place, got a {type(ps).__name__}. "
            f"For a pytree or struct use the functional form: params, state = tk.update(opt, state, params, grads)."
        )
    if not isinstance(gs, Grads):
        raise TypeError(f"tk.update_: gs must be the tk.Grads from tk.gradient(f, ps), got a {type(gs).__name__}.")
    pending, values = gs.pending(ps), ps.values()
    states = ps.optimiser_states  # kept with the boxes, as Flux keeps it with the optimiser
    record = states.get(id(opt))
    if pending is not None and record is not None:  # the usual step: one program, found at once
        if _fused_step(ps, record, pending, values):
            return
    grads = gs.in_order(ps) if pending is None else None
    if grads is None and pending is None:
        raise ValueError(
            "tk.update_: gs has no gradient for some boxes of ps (it was taken with other Params); "
            "take it as gs = tk.gradient(f, ps) with this ps."
        )
    if record is None:
        float_leaves = all(map(filters.is_inexact, jax.tree.leaves(values)))
        record = _Record(opt, setup(opt, values), _signature(values), float_leaves)
    elif not _same_objects(values, record.assigned) and _signature(values) != record.signature:
        raise ValueError(
            "tk.update_: the boxes in ps changed structure, shape or dtype since this optimiser's state was made; "
            "use a fresh optimiser object (e.g. tk.Momentum()) for the new shapes."
        )
    if pending is None:
        new, record.state, _ = compiled.call("tk.update_", opt, _step, "tk.update_", opt, record.state, values, grads)
    else:  # the gradient not worked out yet: one program computes it and takes the step (toolkit.deferred)
        later, grads_of = pending
        new, record.state, _ = deferred.call_after(
            later, grads_of, "tk.update_", opt, _step, "tk.update_", opt, record.state, values
        )
    _write(ps, record, new, values)
    states[id(opt)] = record


def _fused_step(ps: Params, record: _Record, pending: tuple, values: tuple) -> bool:
    """The step as one program with the deferred gradient (``toolkit.deferred``), if one was built for these
    values: then its checks (or, for a closed program fed its own outputs, just their arrays) stand for the
    shape checks. Whether it ran."""
    later, grads_of = pending
    chain = record.chain
    if chain is not None and chain.fusion.closed and chain.fusion.first is later.entry and _same(values, chain.new):
        fusion, arrays = chain.fusion, (*chain.opt_arrays, *chain.state_arrays, *chain.new)
        prefix: Any = lambda: ("tk.update_", record.opt, record.state, values)  # noqa: E731  built if traced again
    else:
        prefix = ("tk.update_", record.opt, record.state, values)
        found = deferred.matching(later, grads_of, _step, prefix)
        if found is None:
            return False
        fusion, arrays = found
        deferred.closes(fusion, chained=chain is not None and chain.fusion is fusion and _same(values, chain.new))
    leaves = deferred.execute(fusion, later.values, later.arrays, prefix, arrays)
    if leaves is deferred.MISS:
        return False
    if chain is not None and chain.fusion is fusion:  # the boxes' new values, then the new state's arrays
        cut = len(leaves) - len(chain.state_arrays)
        new = tuple(leaves[:cut])
        record.later_state(chain.state_tree, leaves[cut:])
    else:
        new, record.state, _ = compiled.output(fusion.entry, leaves)
    _write(ps, record, new, values, remember=False)  # its checks (or the chain's) stand for the shape check
    record.chain = _chain(fusion, record, values, new, arrays, leaves, chain)
    return True


class _Chain:
    """A fused step's program and the arrays it made, for the next step to feed it without its checks where the
    boxes still hold its new values (all of them arrays) and the state is the one it made."""

    __slots__ = ("fusion", "opt_arrays", "state_tree", "state_arrays", "new")

    def __init__(self, fusion: Any, opt_arrays: tuple, state_tree: Any, state_arrays: tuple, new: tuple):
        self.fusion, self.opt_arrays, self.state_tree = fusion, opt_arrays, state_tree
        self.state_arrays, self.new = state_arrays, new


def _chain(
    fusion: Any, record: _Record, values: tuple, new: tuple, arrays: tuple, leaves: list, chain: _Chain | None
) -> _Chain | None:
    if chain is not None and chain.fusion is fusion:  # the same program again: its new arrays, in place
        chain.state_arrays, chain.new = tuple(leaves[len(new) :]), new
        return chain
    if fusion.frozen is None:  # what its checks let through: JAX arrays in tuples (optax's states) and structs
        deferred.judge_frozen(fusion, record.opt, record.state, values, leaves)  # leaves: what the record keeps
    kind = filters.concrete_array_type()
    if not (fusion.frozen and record.all_float and all(type(v) is kind for v in new)):
        return None
    state_leaves, state_tree = jax.tree.flatten(record.state)
    if len(new) + len(state_leaves) != len(leaves):  # a state leaf that is not an array: built each step
        return None
    opt_arrays = arrays[: len(arrays) - len(values) - len(state_leaves)]  # what its checks collected first
    return _Chain(fusion, opt_arrays, state_tree, tuple(state_leaves), new)


def _same(values: tuple[Any, ...], written: tuple[Any, ...]) -> bool:
    return len(values) == len(written) and all(map(operator.is_, values, written))


def _write(ps: Params, record: _Record, new: tuple[Any, ...], values: tuple[Any, ...], remember: bool = True) -> None:
    """The step's values into the boxes (the leaves it does not optimise as they were)."""
    written = new if record.all_float else filters.combine(new, filters.partition(values)[1])
    for box, value in zip(ps, written):
        box.value = value
    # What the boxes hold after this step, if nothing else writes to them: the next step's shape check is skipped.
    record.assigned = _references(written) if remember else None


def _references(values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Weak references to the values (nothing kept alive), or ``None`` if one of them cannot have one."""
    try:
        return tuple(map(weakref.ref, values))
    except TypeError:
        return None


def _same_objects(values: tuple[Any, ...], assigned: tuple[Any, ...] | None) -> bool:
    """Whether the boxes still hold what the last step wrote (so their shapes and dtypes are the record's)."""
    return assigned is not None and len(values) == len(assigned) and all(v is a() for v, a in zip(values, assigned))


class _Record:
    """What ``update_`` keeps per ``Params`` and optimiser: the optimiser (so its id is not reused) and its state."""

    __slots__ = ("opt", "_state", "_later", "signature", "all_float", "assigned", "chain")

    def __init__(self, opt: Any, state: Any, signature: tuple[Any, ...], all_float: bool):
        self.opt, self._state, self.signature, self.all_float = opt, state, signature, all_float
        self._later: tuple[Any, list[Any]] | None = None  # the state as a structure and arrays, built when read
        self.assigned: tuple[Any, ...] | None = None  # weak references to what the last step wrote into the boxes
        self.chain: _Chain | None = None  # the last fused step's program and arrays (see _fused_step)

    @property
    def state(self) -> Any:
        if self._later is not None:
            tree, leaves = self._later
            self._state, self._later = jax.tree.unflatten(tree, leaves), None
        return self._state

    @state.setter
    def state(self, state: Any) -> None:
        self._state, self._later = state, None

    def later_state(self, tree: Any, leaves: list[Any]) -> None:
        """The state ``tree`` with these array leaves, built when first read (a loop step may not read it)."""
        self._later = (tree, leaves)

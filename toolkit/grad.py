"""Zygote's differentiation API on JAX: ``gradient``, ``withgradient``, ``pullback``, ``jacobian``, ``hessian``.

Every positional argument is differentiated at once and each gets a result with
its own structure: a struct argument gets a struct, a dict a dict. Arguments
with nothing to differentiate (ints, strings, bools, integer arrays, ``None``)
get ``None`` in their slot, as Zygote gives ``nothing``; inside a struct, such
leaves come back as ``None`` too. If no argument holds a float at all, that is
an error saying so. An instance of a plain class or dataclass is refused
(JAX would see it as one opaque constant): decorate its class with ``@tk.struct``.

**Complex numbers** follow Zygote's convention: the gradient of a real ``f``
with respect to ``z = x + iy`` is ``∂f/∂x + i ∂f/∂y``, so that ``z - η·g``
descends, as ``tk.update`` and ``tk.optimise`` apply it. This is the complex
conjugate of what ``jax.grad`` returns. ``pullback`` follows the same
convention (``back(Δ) = conj(vjp(conj(Δ)))``); ``jacobian`` and ``hessian``
refuse complex arguments.

All of these are pure functions of their arguments, so they compose with
``jax.jit``, ``jax.vmap`` and ``jax.grad``.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import ahead, compiled, deferred, filters
from toolkit._show import describe
from toolkit.params import Grads, Param, Params

__all__ = ["gradient", "withgradient", "pullback", "jacobian", "hessian"]


class _Split:
    """The arguments of a call split into their differentiable leaves and everything else."""

    def __init__(self, caller: str, f: Callable, args: tuple[Any, ...]):
        self.arguments = filters.Arguments.of(f, args)
        labelled = self.arguments.labelled_leaves()
        _refuse_boxes(caller, labelled)
        filters.refuse_opaque(caller, labelled)
        parts = [filters.partition(arg) for arg in args]
        self.diff = tuple(part[0] for part in parts)
        self.rest = tuple(part[1] for part in parts)
        self.has_grad = tuple(bool(jax.tree.leaves(d)) for d in self.diff)
        if args and not any(self.has_grad):
            raise _nothing_to_differentiate(caller, labelled)

    def closed(self, f: Callable) -> Callable:
        """``f`` as a function of the differentiable parts alone."""

        def g(*diff: Any) -> Any:
            return f(*(filters.combine(d, r) for d, r in zip(diff, self.rest)))

        return g

    def slots(self, results: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(r if has else None for r, has in zip(results, self.has_grad))

    def refuse_complex(self, caller: str) -> None:
        for path, leaf in jax.tree_util.tree_flatten_with_path(self.arguments.tree)[0]:
            if filters.is_inexact(leaf) and jnp.iscomplexobj(leaf):
                raise TypeError(
                    f"{caller}: argument {path[1].idx + 1} is complex ({describe(jnp.asarray(leaf))}): "
                    f"{self.arguments.label(path)} must be real, as {caller} takes real arguments. Differentiate "
                    f"the real and imaginary parts as two real arrays, or use "
                    f"jax.jacrev/jax.jacfwd(..., holomorphic=True) for a holomorphic function."
                )


def _refuse_boxes(caller: str, labelled: list[tuple[str, Any]]) -> None:
    for label, leaf in labelled:
        if isinstance(leaf, Params):
            raise TypeError(
                f"{caller}: {label} is a tk.Params; implicit parameters work with tk.gradient, tk.withgradient and "
                f"tk.pullback (as their only argument). Pass the boxes' values instead: {caller}(f, z.value)."
            )
        if isinstance(leaf, Param):
            raise TypeError(
                f"{caller}: {label} is a tk.Param box. Differentiate with respect to boxes through a tk.Params "
                f"(implicit form: {caller}(lambda: loss(z.value), tk.Params([z]))), or pass the value itself: "
                f"{caller}(loss, z.value)."
            )


def _nothing_to_differentiate(caller: str, labelled: list[tuple[str, Any]]) -> TypeError:
    shown = ", ".join(f"{label} is {describe(leaf)}" for label, leaf in labelled[:4]) or "they hold no arrays"
    return TypeError(
        f"{caller}: no argument holds floating-point values, so there is nothing to differentiate ({shown}). "
        f"Pass floats: jnp.array([1., 2., 3.]) rather than jnp.array([1, 2, 3]), or x.astype(jnp.float32)."
    )


def _explicit_only(caller: str, args: tuple[Any, ...]) -> None:
    """A clear error for a ``tk.Params`` passed where only explicit arguments are taken."""
    for i, arg in enumerate(args):
        if isinstance(arg, Params):
            raise TypeError(
                f"{caller}: argument {i + 1} is a tk.Params; implicit parameters work with tk.gradient, "
                f"tk.withgradient and tk.pullback (as their only argument). Pass the boxes' values instead: "
                f"{caller}(f, z.value)."
            )


def _check_f(caller: str, f: Any, count: int, implicit: bool = False) -> None:
    """A clear error unless ``f`` is a function that accepts ``count`` positional arguments."""
    filters.check_callable(caller, "f", f, "lambda x: jnp.sum(x ** 2)")
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):
        return  # a builtin without a signature: the call itself tells
    try:
        signature.bind(*range(count))
    except TypeError:
        name = getattr(f, "__name__", "f")
        if implicit:
            raise TypeError(
                f"{caller}: with a tk.Params, f is called with no arguments (it reads the boxes' .value), but "
                f"{name}{signature} does not accept that; write {caller}(lambda: loss(z.value), ps)."
            ) from None
        raise TypeError(
            f"{caller}: f is called with the {count} argument{'s' if count != 1 else ''} given after it, but "
            f"{name}{signature} does not accept {count}; pass one value per parameter of f (bind others with "
            f"functools.partial or a lambda)."
        ) from None


def _float_outputs(caller: str, g: Callable) -> Callable:
    """``g`` checked to return real floating-point arrays (or a pytree of them)."""

    def checked(*args: Any) -> Any:
        out = g(*args)
        labelled = filters.labelled_leaves(out, "output")
        if not labelled:
            raise TypeError(
                f"{caller}: the output of f is {describe(out)}, with no arrays; f must return real "
                f"floating-point arrays (or a pytree of them)."
            )
        for where, leaf in labelled:
            if not filters.is_inexact(leaf) or jnp.iscomplexobj(leaf):
                raise TypeError(
                    f"{caller}: the {where} of f is {describe(leaf)}; f must return real floating-point arrays "
                    f"(or a pytree of them): cast with .astype(jnp.float32), or return other results separately."
                )
        return out

    return checked


def _check_cotangent(where: str, d: Any, o: Any) -> None:
    """A clear error unless the cotangent leaf ``d`` suits the output leaf ``o``."""
    like = f"pass a Δ shaped like f's output ({describe(o)}), e.g. jnp.ones_like(y)"
    if not filters.is_numeric(d):
        what, _ = filters.non_numeric(d)
        raise TypeError(f"tk.pullback: {where} is {what}, not an array; {like}.")
    if np.shape(d) != np.shape(o):
        raise ValueError(f"tk.pullback: {where} has shape {np.shape(d)} where f's output has {describe(o)}; {like}.")
    if jnp.iscomplexobj(d) and not jnp.iscomplexobj(o):  # the cast would drop the imaginary part
        raise TypeError(f"tk.pullback: {where} is {describe(jnp.asarray(d))}, but f's output is {describe(o)}; {like}.")


def zygote_convention(tree: Any) -> Any:
    """Complex leaves conjugated, which turns JAX's gradient convention into Zygote's (and back); others as they are."""
    return jax.tree.map(lambda leaf: jnp.conj(leaf) if jnp.iscomplexobj(leaf) else leaf, tree)


def _real_scalar(caller: str, f: Callable, has_aux: bool = False) -> Callable:
    """Wrap ``f`` so that a non-scalar or non-real output is a clear error; a Python float is accepted.

    The wrapped function returns ``(value, aux)``, with ``aux`` ``None`` unless ``has_aux``.
    """

    def checked(*args: Any) -> Any:
        out = f(*args)
        aux = None
        if has_aux:
            if not isinstance(out, tuple) or len(out) != 2:
                raise TypeError(
                    f"{caller}: with has_aux=True, f must return a pair (loss, aux), but it returned "
                    f"{describe(out)}; return e.g. (loss, {{'accuracy': acc}})."
                )
            out, aux = out
        is_array = isinstance(out, (jax.Array, np.ndarray, np.generic, float)) and not isinstance(out, bool)
        if not is_array or np.shape(out) != () or not jnp.issubdtype(jnp.result_type(out), jnp.floating):
            raise TypeError(
                f"{caller}: f must return a real floating-point scalar{' as its first output' if has_aux else ''}, "
                f"but it returned {describe(out)}. Reduce the output first (e.g. tk.tree.sum(...) or jnp.mean(...)), "
                f"or use tk.jacobian / tk.pullback for non-scalar functions."
            )
        return jnp.asarray(out), aux

    return checked


def _implicit(caller: str, args: tuple[Any, ...]) -> Params | None:
    """The ``Params`` of Zygote's implicit form ``caller(f, ps)``, or ``None`` for explicit arguments."""
    if len(args) == 1 and type(args[0]) is Params:  # the usual implicit call, told at once
        return args[0]
    for arg in args:
        if isinstance(arg, Params):
            break
    else:
        return None
    if len(args) != 1:
        raise TypeError(
            f"{caller}: a tk.Params must be the only argument (implicit form: {caller}(() -> loss, ps)); "
            f"pass other values through the closure, or use the explicit form {caller}(f, x, y) without Params."
        )
    return args[0]


def _of_boxes(caller: str, f: Callable, params: Params) -> Callable:
    """The zero-argument ``f`` reading ``params`` as a function of the boxes' values (the explicit form)."""
    _check_f(caller, f, 0, implicit=True)

    def of_boxes(*ps: Any) -> Any:  # named so that errors call the boxes' values ps[0], ps[1], ...
        return params.call_with(ps, f)

    return of_boxes


def _explicit_value_and_gradient(caller: str, f: Callable, args: tuple[Any, ...], has_aux: bool) -> Any:
    """``(value, slots, aux)`` for explicit arguments: what the compiled program of ``withgradient`` computes."""
    _check_f(caller, f, len(args))
    split = _Split(caller, f, args)
    g = _real_scalar(caller, split.closed(f), has_aux)
    if not args:
        value, aux = g()
        return value, (), aux
    (value, aux), grads = jax.value_and_grad(g, argnums=tuple(range(len(args))), has_aux=True)(*split.diff)
    return value, split.slots(zygote_convention(grads)), aux


def _explicit_gradient(caller: str, f: Callable, args: tuple[Any, ...], has_aux: bool) -> Any:
    """``(None, slots, aux)``: what the compiled program of ``gradient`` computes (no value to hand back)."""
    _, slots, aux = _explicit_value_and_gradient(caller, f, args, has_aux)
    return None, slots, aux


def _implicit_value_and_gradient(caller: str, f: Callable, params: Params, has_aux: bool) -> Any:
    # The boxes' values are read here: compiled, the boxes hold the program's inputs while it is traced.
    return _explicit_value_and_gradient(caller, _of_boxes(caller, f, params), params.values(), has_aux)


_SLOTS = operator.itemgetter(1)  # the gradients, one per box, of what _implicit_value_and_gradient returns


def _value_and_gradient(caller: str, f: Callable[..., Any], args: tuple[Any, ...], has_aux: bool) -> Any:
    """``(value, grads, aux)``, compiled and cached (``toolkit.compiled``); ``caller`` names the public function."""
    params = _implicit(caller, args)
    if params is not None:  # Zygote's implicit form: gradient(() -> loss, ps)
        body = _implicit_value_and_gradient
        if caller == "tk.gradient" and not has_aux:  # only Grads come back: worked out when read, or by tk.update_
            return None, Grads.later(params, deferred.later(caller, f, body, caller, f, params, has_aux), _SLOTS), None
        value, grads, aux = compiled.call(caller, f, body, caller, f, params, has_aux)
        return value, Grads(params, grads), aux
    body = _explicit_gradient if caller == "tk.gradient" else _explicit_value_and_gradient
    return ahead.call(caller, f, body, caller, f, args, has_aux)  # with the update that follows, once it is known


def withgradient(f: Callable[..., Any], *args: Any, has_aux: bool = False) -> tuple[Any, tuple[Any, ...] | Grads]:
    """Value of ``f(*args)`` and its gradient with respect to every argument.

    As with :func:`gradient`, ``tk.withgradient(f, ps)`` with a ``tk.Params``
    takes the zero-argument ``f`` and gives the gradient as a ``tk.Grads``. With
    ``has_aux=True``, ``f`` returns ``(loss, aux)`` and the result is
    ``((loss, aux), grads)``, as from ``jax.value_and_grad``. Runs compiled and
    cached (see :func:`gradient`).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> value, (dx, n) = tk.withgradient(lambda x, n: jnp.sum(x**n), jnp.array([1.0, 2.0]), 2)
        >>> value, dx, n
        (Array(5., dtype=float32), Array([2., 4.], dtype=float32), None)
        >>> (value, aux), grads = tk.withgradient(lambda x: (jnp.sum(x**2), {"max": jnp.max(x)}), jnp.ones(2), has_aux=True)
        >>> float(value), float(aux["max"]), grads
        (2.0, 1.0, (Array([2., 2.], dtype=float32),))
    """
    value, grads, aux = _value_and_gradient("tk.withgradient", f, args, has_aux)
    return ((value, aux), grads) if has_aux else (value, grads)


def gradient(f: Callable[..., Any], *args: Any, has_aux: bool = False) -> Any:
    """Gradient of the real scalar ``f(*args)``: a tuple with one entry per argument.

    Each entry has its argument's structure (a struct gets a struct); arguments
    that cannot be differentiated get ``None``. ``tk.gradient(f, ps)`` with a
    ``tk.Params`` differentiates the zero-argument ``f`` with respect to the boxes
    it reads and returns a ``tk.Grads`` (see ``toolkit.params``). For a complex
    argument the gradient is ``∂f/∂x + i∂f/∂y`` (Zygote's; ``jax.grad``'s conjugate).
    With ``has_aux=True``, ``f`` returns ``(loss, aux)`` and the result is ``(grads, aux)``.

    Called eagerly, it runs compiled: the first call with a function compiles it,
    later calls with the same code (a new lambda each time is fine) and the same
    shapes run the compiled program on the current values of everything the
    function reads (see ``toolkit.compiled`` for what falls back to eager).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.gradient(lambda x, y: jnp.sum(x * y), jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
        (Array([3., 4.], dtype=float32), Array([1., 2.], dtype=float32))
    """
    _, grads, aux = _value_and_gradient("tk.gradient", f, args, has_aux)
    return (grads, aux) if has_aux else grads


def _pullback_forward(f: Callable, args: tuple[Any, ...]) -> Any:
    """``(out, vjp, has_grad)``: what the compiled program of ``pullback`` computes (``vjp`` is a pytree)."""
    _check_f("tk.pullback", f, len(args))
    split = _Split("tk.pullback", f, args)
    out, vjp = jax.vjp(split.closed(f), *split.diff)
    return out, vjp, split.has_grad


def _apply(vjp: Callable, Δ: Any) -> Any:
    return vjp(Δ)


def pullback(f: Callable[..., Any], *args: Any) -> tuple[Any, Callable[[Any], tuple[Any, ...] | Grads]]:
    """Value of ``f(*args)`` and ``back``, which maps an output cotangent to one per argument.

    ``f`` may return any pytree; ``back(Δ)`` takes a ``Δ`` of that structure and
    shape and returns a tuple with one cotangent per argument (``None`` for those
    without a gradient). With a ``tk.Params`` as the only argument, ``f`` takes
    no arguments and ``back(Δ)`` returns a ``tk.Grads``. Both run compiled.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> y, back = tk.pullback(lambda x: 3 * x, jnp.array([1.0, 2.0]))
        >>> back(jnp.array([1.0, 10.0]))
        (Array([ 3., 30.], dtype=float32),)
    """
    params = _implicit("tk.pullback", args)
    if params is not None:  # Zygote's implicit form: pullback(() -> y, ps); back(Δ) gives Grads
        out, back_values = pullback(_of_boxes("tk.pullback", f, params), *params.values())
        return out, lambda Δ: Grads(params, back_values(Δ))
    out, vjp, has_grad = compiled.call("tk.pullback", f, _pullback_forward, f, args)
    out_leaves, out_tree = jax.tree.flatten(out)

    def back(Δ: Any) -> tuple[Any, ...]:
        labelled, Δ_tree = jax.tree_util.tree_flatten_with_path(Δ)
        if Δ_tree != out_tree:
            raise ValueError(f"tk.pullback: Δ must have the structure of f's output:\n  {out_tree}\ngot\n  {Δ_tree}")
        leaves = [d for _, d in labelled]
        for o, (path, d) in zip(out_leaves, labelled, strict=True):
            _check_cotangent(filters.keystr(path, "Δ"), d, o)
        cast = zygote_convention(
            jax.tree.unflatten(out_tree, [jnp.asarray(d, jnp.result_type(o)) for o, d in zip(out_leaves, leaves)])
        )
        cotangents = compiled.call("tk.pullback", back, _apply, vjp, cast)
        return tuple(c if has else None for c, has in zip(zygote_convention(cotangents), has_grad))

    return out, back


def jacobian(f: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """Jacobian of ``f`` with respect to each argument, as a tuple (Zygote's ``jacobian``).

    For an output of shape ``S`` and an argument leaf of shape ``A`` the block has
    shape ``S + A``; the blocks are nested output structure first, argument second.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.jacobian(lambda x: x**2, jnp.array([1.0, 2.0]))
        (Array([[2., 0.],
               [0., 4.]], dtype=float32),)
    """
    _explicit_only("tk.jacobian", args)
    return compiled.call("tk.jacobian", f, _jacobian, f, args)


def _jacobian(f: Callable, args: tuple[Any, ...]) -> tuple[Any, ...]:
    _check_f("tk.jacobian", f, len(args))
    split = _Split("tk.jacobian", f, args)
    split.refuse_complex("tk.jacobian")
    g = _float_outputs("tk.jacobian", split.closed(f))
    return tuple(jax.jacrev(g, argnums=i)(*split.diff) if has else None for i, has in enumerate(split.has_grad))


def hessian(f: Callable[..., Any], x: Any) -> Any:
    """Hessian of the real scalar ``f(x)`` (one argument, as in Zygote).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.hessian(lambda x: jnp.sum(x**3), jnp.array([1.0, 2.0]))
        Array([[ 6.,  0.],
               [ 0., 12.]], dtype=float32)
    """
    _explicit_only("tk.hessian", (x,))
    return compiled.call("tk.hessian", f, _hessian, f, x)


def _hessian(f: Callable, x: Any) -> Any:
    _check_f("tk.hessian", f, 1)
    split = _Split("tk.hessian", f, (x,))
    split.refuse_complex("tk.hessian")
    scalar = _real_scalar("tk.hessian", split.closed(f))
    return jax.hessian(lambda d: scalar(d)[0])(split.diff[0])

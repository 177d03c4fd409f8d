"""``@tk.adjoint``: Zygote's one-line custom gradients on JAX.

A rule returns its value and a pullback, as in Zygote::

    @tk.adjoint
    def sqrt(x):
        y = jnp.sqrt(x)
        return y, lambda Δ: (Δ / (2 * y),)

The decorated function computes ``sqrt(x)`` and JAX differentiates it with the
rule. Two thin wrappers around JAX's own custom-derivative machinery do the work.

**Linear pullbacks (almost every rule): a ``jax.custom_jvp``.** A pullback is the
transpose of the rule's Jacobian, so when JAX can transpose it (every use of Δ is
linear: sums, scaling by saved values, dots, reshapes, ``jnp.where`` on residuals)
the JVP rule runs the user's forward once and pushes tangents forward with
``jax.linear_transpose(pullback)``. Reverse mode is JAX transposing that linear
map again, which gives back the pullback applied to the values it closes over:
the forward runs once, the pullback runs once, nothing is recomputed, and
``jax.jvp``, ``jax.jacfwd`` and ``jax.hessian`` work as well.

**Non-linear pullbacks: a ``jax.custom_vjp``.** A pullback that clips Δ, branches
on it, or calls back to Python has no transpose, so no push-forward exists and
forward mode is impossible. Such a rule becomes a ``custom_vjp`` whose residuals
are exactly what the pullback closes over (``jax.closure_convert``). Reverse mode,
grad-of-grad and ``jax.hessian`` (forward over reverse, when the pullback is
differentiable) work; ``jax.jvp``/``jax.jacfwd`` raise an error that names the rule
and the operation that could not be transposed. (Where the rule was staged by
``jax.jit`` before forward mode is applied, as in ``jax.jvp(jax.jit(f))``, and
under ``jax.linearize``, JAX reports its own "can't apply forward-mode autodiff
(jvp) to a custom_vjp function" instead.)

Which case applies is decided the first time the rule meets a new argument
signature, by tracing the rule and its pullback abstractly (nothing is computed)
and trying to transpose the pullback. The answer is cached per signature. The
same trace checks what the pullback returns, so a malformed rule fails on its
first call with an error that names it.

A rule is traced, as ``jax.jit`` traces code: branch on values with
``jnp.where`` or ``jax.lax.cond``, not with Python ``if``. Its gradient is only
what its pullback returns, so a rule must not capture a value that an enclosing
``jax.grad``/``jax.jvp`` is differentiating (pass it as an argument); doing so
raises an error naming the rule. Capturing a value that ``jax.jit`` or
``jax.vmap`` traces is fine.

A pullback must be linear in Δ. A cotangent computed without Δ at all (a
forgotten ``Δ *``: ``lambda Δ: (1 / (2 * y),)``) is an error on the rule's first
call, naming the argument. An affine one (``Δ * s + c``) cannot be told apart
when the rule is traced: JAX's transpose keeps only the part that involves Δ,
so it acts as ``Δ * s``; ``tk.check_adjoint`` shows whether that is right.

**Arguments** are read from the signature (``inspect.signature``), never from
``nondiff_argnums``. Floating-point arrays and Python floats, and pytrees or
structs of them, are differentiable. Python ints, bools, strings, callables and
``None`` are passed through untouched; integer and boolean arrays are passed as
plain (traced, non-differentiated) values.

**What a pullback returns:** a tuple with one cotangent per positional parameter
of the signature, in order, whether the caller passed it by position or by name
(defaults count; each extra ``*args`` value gets its own entry). ``None`` means a
zero cotangent; an entry for a non-differentiable argument is ignored. A struct
argument gets a struct cotangent (a pytree gets the same pytree). Keyword-only
arguments that hold floats get their cotangents in a dict that ends the tuple::

    @tk.adjoint
    def scale(x, *, factor):
        return x * factor, lambda Δ: (Δ * factor, {"factor": jnp.sum(Δ * x)})
"""

from __future__ import annotations

import collections
import functools
import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.interpreters import ad

from toolkit import tree
from toolkit._show import describe

__all__ = ["adjoint", "is_adjoint", "forward_mode_problem"]

_ARRAYS = (jax.Array, np.ndarray, np.generic)
_CACHE_SIZE = 128
_RULE = "__tk_adjoint_rule__"


def adjoint(rule: Callable[..., tuple[Any, Callable[[Any], tuple[Any, ...]]]]) -> Callable[..., Any]:
    """Make ``rule`` — returning ``(value, pullback)`` — a function JAX differentiates with that pullback.

    ``pullback(Δ)`` gets a cotangent shaped like ``value`` and returns a tuple with
    one cotangent per positional argument (``None`` for zero), plus a trailing
    dict for keyword-only float arguments. The result works under ``jax.jit``,
    ``jax.vmap``, ``jax.lax.scan``, ``jax.grad`` (also nested), ``tk.gradient``
    and, when the pullback is linear in Δ, ``jax.jvp``, ``jax.jacfwd`` and
    ``jax.hessian``. See the module docstring for the details.

    Example:
        >>> import jax, jax.numpy as jnp, toolkit as tk
        >>> @tk.adjoint
        ... def sqrt(x):
        ...     y = jnp.sqrt(x)
        ...     return y, lambda Δ: (Δ / (2 * y),)
        >>> sqrt(4.0), jax.grad(sqrt)(4.0), jax.jvp(sqrt, (4.0,), (1.0,))[1]
        (Array(2., dtype=float32, weak_type=True), Array(0.25, dtype=float32, weak_type=True), Array(0.25, dtype=float32, weak_type=True))
    """
    name = getattr(rule, "__qualname__", None) or repr(rule)
    if not callable(rule):
        raise TypeError(f"tk.adjoint: expected a function returning (value, pullback), got {describe(rule)}")
    try:
        signature = inspect.signature(rule)
    except (TypeError, ValueError):
        raise TypeError(
            f"tk.adjoint: cannot read the signature of {name}; decorate a Python function "
            f"(def or lambda) so that its arguments can be sorted by name."
        ) from None
    linearity = _LinearityCache()

    @functools.wraps(rule)
    def decorated(*args: Any, **kwargs: Any) -> Any:
        call = _Call(rule, name, signature, args, kwargs)
        problem = linearity.problem(call)
        return call.via_vjp(problem) if problem else call.via_jvp()

    setattr(decorated, _RULE, (rule, name, signature, linearity))
    return decorated


def is_adjoint(f: Any) -> bool:
    """True for a function made by ``@tk.adjoint``.

    Example:
        >>> import toolkit as tk
        >>> from toolkit.adjoints import is_adjoint
        >>> is_adjoint(tk.adjoint(lambda x: (x, lambda Δ: (Δ,)))), is_adjoint(abs)
        (True, False)
    """
    return hasattr(f, _RULE)


def forward_mode_problem(f: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """Why forward mode is unavailable for the ``@tk.adjoint`` function ``f`` at these arguments; ``None`` if it works.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> from toolkit.adjoints import forward_mode_problem
        >>> clip = tk.adjoint(lambda x: (x, lambda Δ: (jnp.clip(Δ, -1.0, 1.0),)))
        >>> forward_mode_problem(clip, 1.0)
        "Transpose rule (for reverse-mode differentiation) for 'min' not implemented"
    """
    if not is_adjoint(f):
        raise TypeError(f"forward_mode_problem: {getattr(f, '__qualname__', f)!r} is not a @tk.adjoint function")
    rule, name, signature, linearity = getattr(f, _RULE)
    return linearity.problem(_Call(rule, name, signature, args, kwargs))


# --- one call of a rule -----------------------------------------------------------


def _is_operand(leaf: Any) -> bool:
    """Leaves JAX must see as values: arrays (any dtype) and Python floats."""
    return isinstance(leaf, _ARRAYS) or tree.is_differentiable(leaf)


class _Call:
    """The arguments of one call, split into JAX operands and pass-through values."""

    def __init__(self, rule: Callable, name: str, signature: inspect.Signature, args: tuple, kwargs: dict):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{name}(): {error}") from None
        bound.apply_defaults()
        self.rule, self.name = rule, name
        self.labels = _positional_labels(signature, bound)
        self.operands, self.statics = tree.partition((tuple(bound.args), dict(bound.kwargs)), _is_operand)
        self.differentiable = [tree.is_differentiable(leaf) for leaf in jax.tree.leaves(self.operands)]

    def arguments(self, operands: Any) -> tuple[tuple, dict]:
        return tree.combine(operands, self.statics)

    def run(self, operands: Any) -> tuple[Any, Callable]:
        """Call the user's rule on ``operands`` and check it returned ``(value, pullback)``."""
        positional, keywords = self.arguments(operands)
        out = self.rule(*positional, **keywords)
        if not (isinstance(out, tuple) and len(out) == 2 and callable(out[1])):
            raise TypeError(
                f"tk.adjoint rule `{self.name}` must return (value, pullback), but it returned "
                f"{_describe_tree(out)}.\n"
                f"  wrong: return jnp.sqrt(x)\n"
                f"  right: y = jnp.sqrt(x); return y, lambda Δ: (Δ / (2 * y),)"
            )
        value, pullback = out
        _check_value(self.name, value)
        return value, pullback

    def flat_pullback(self, pullback: Callable, operands: Any) -> Callable[[Any], list]:
        """``pullback`` checked and flattened: Δ -> one cotangent (or ``None``) per operand leaf."""
        positional, keywords = self.arguments(operands)
        cotangents = _Cotangents(self.name, self.labels, positional, keywords)
        return lambda Δ: cotangents.flatten(pullback(Δ))

    def via_jvp(self) -> Any:
        @jax.custom_jvp
        def primal(operands):
            return self.run(operands)[0]

        def pushforward(primals, tangents):
            (operands,), (dots,) = primals, tangents
            value, pullback = self.run(operands)
            flat = self.flat_pullback(pullback, operands)
            dots = jax.tree.leaves(dots)
            moving = [i for i, d in enumerate(dots) if self.differentiable[i] and not isinstance(d, SymbolicZero)]
            if not moving:
                return value, jax.tree.map(jnp.zeros_like, value)
            push = jax.linear_transpose(_select(flat, moving), value)
            (dot_value,) = push([dots[i] for i in moving])
            return value, dot_value

        primal.defjvp(pushforward, symbolic_zeros=True)
        return self._bind(primal)

    def via_vjp(self, problem: str) -> Any:
        saved: dict[str, Callable] = {}

        @jax.custom_vjp
        def primal(operands):
            return self.run(operands)[0]

        def forward(operands):
            value, pullback = self.run(operands)
            back, residuals = jax.closure_convert(self.flat_pullback(pullback, operands), value)
            saved["back"] = back
            return value, residuals

        def backward(residuals, Δ):
            cotangents = saved["back"](Δ, *residuals)
            return (jax.tree.unflatten(jax.tree.structure(self.operands), cotangents),)

        primal.defvjp(forward, backward)
        if _pushed_forward(self.operands):
            raise _forward_mode_error(self.name, problem)
        try:
            return self._bind(primal)
        except TypeError as error:
            if "forward-mode" not in str(error):
                raise
            raise _forward_mode_error(self.name, problem) from error

    def _bind(self, primal: Callable) -> Any:
        try:
            return primal(self.operands)
        except jax.errors.UnexpectedTracerError as error:
            raise _closure_error(self.name) from error


def _select(flat: Callable[[Any], list], indices: list[int]) -> Callable[[Any], list]:
    """``flat`` keeping only the cotangents at ``indices``."""

    def selected(Δ):
        cotangents = flat(Δ)
        return [cotangents[i] for i in indices]

    return selected


def _positional_labels(signature: inspect.Signature, bound: inspect.BoundArguments) -> list[str]:
    labels = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            labels.append(parameter.name)
        elif parameter.kind is parameter.VAR_POSITIONAL:
            extra = bound.arguments.get(parameter.name, ())
            labels.extend(f"{parameter.name}[{k}]" for k in range(len(extra)))
    return labels[: len(bound.args)]


def _pushed_forward(operands: Any) -> bool:
    """True when ``jax.jvp`` (rather than ``jax.grad``) is differentiating ``operands``.

    Checked before binding a ``custom_vjp`` so that forward mode under ``jax.jit``
    fails here, naming the rule, rather than when XLA compiles. With direct
    linearisation (JAX's default) reverse mode never hands a rule JVP tracers.
    """
    if not getattr(jax.config, "jax_use_direct_linearize", False):
        return False
    return any(
        isinstance(leaf, ad.JVPTracer) and not isinstance(leaf.tangent, ad.Zero) for leaf in jax.tree.leaves(operands)
    )


def _forward_mode_error(name: str, problem: str) -> TypeError:
    return TypeError(
        f"tk.adjoint rule `{name}`: forward mode (jax.jvp, jax.jacfwd) needs the pullback to be "
        f"linear in Δ, so that JAX can transpose it into a push-forward, and this one is not ({problem}). "
        f"Use reverse mode (jax.grad, tk.gradient, jax.vjp, jax.jacrev), or make the pullback linear in Δ: "
        f"scale, add and sum Δ, and keep comparisons and clipping to the saved values."
    )


def _closure_error(name: str) -> TypeError:
    return TypeError(
        f"tk.adjoint rule `{name}` closes over a value that an enclosing transformation differentiates "
        f"(jax.grad, jax.jvp, ...). A rule's gradient is only what its pullback returns, so a captured "
        f"traced value would get no gradient. Pass it as an argument instead:\n"
        f"  wrong: def outer(c): return tk.adjoint(lambda x: (x * c, lambda Δ: (Δ * c,)))(x)\n"
        f"  right: scale = tk.adjoint(lambda x, c: (x * c, lambda Δ: (Δ * c, Δ * x)))  # then scale(x, c)"
    )


def _describe_tree(x: Any) -> str:
    if isinstance(x, tuple):
        return f"a tuple of {len(x)}: (" + ", ".join(describe(v) for v in x) + ")"
    return describe(x)


def _check_value(name: str, value: Any) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
        if not (isinstance(leaf, _ARRAYS + (float,)) and jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)):
            where = jax.tree_util.keystr(path) or "the value"
            raise TypeError(
                f"tk.adjoint rule `{name}`: every leaf of the value must be a floating-point array, but "
                f"{where} is {describe(leaf)}. Return integer or other results from a separate function."
            )


# --- checking what a pullback returns ---------------------------------------------


def _has_floats(value: Any) -> bool:
    return any(map(tree.is_differentiable, jax.tree.leaves(value)))


class _Cotangents:
    """Checks a pullback's result against the arguments and flattens it to one entry per operand leaf."""

    def __init__(self, name: str, labels: list[str], positional: tuple, keywords: dict):
        self.name, self.labels = name, labels
        self.positional, self.keywords = positional, keywords
        self.float_keywords = sorted(k for k, v in keywords.items() if _has_floats(v))

    def flatten(self, result: Any) -> list:
        positional, by_keyword = self._split(result)
        flat = []
        for label, value, cotangent in zip(self.labels, self.positional, positional):
            flat.extend(self._argument(label, value, cotangent))
        for key in sorted(self.keywords):  # the order JAX flattens a dict in
            flat.extend(self._argument(key, self.keywords[key], by_keyword.get(key)))
        return flat

    def _split(self, result: Any) -> tuple[tuple, dict]:
        n = len(self.labels)
        names = ", ".join(self.labels) or "none"
        if not isinstance(result, tuple):
            raise TypeError(
                f"tk.adjoint rule `{self.name}`: the pullback must return a tuple with one cotangent per "
                f"positional argument ({names}), but it returned {_describe_tree(result)}.\n"
                f"  wrong: lambda Δ: Δ / (2 * y)\n"
                f"  right: lambda Δ: (Δ / (2 * y),)"
            )
        has_dict = len(result) == n + 1 and isinstance(result[-1], dict) and bool(self.keywords)
        if len(result) != n and not has_dict:
            expected = f"{n} (one per positional argument: {names})"
            if self.float_keywords:
                expected += f", then a dict for the keyword arguments {', '.join(self.float_keywords)}"
            raise TypeError(
                f"tk.adjoint rule `{self.name}`: the pullback returned {_describe_tree(result)}, expected "
                f"{expected}. Return None for an argument without a gradient."
            )
        by_keyword = result[-1] if has_dict else {}
        unknown = sorted(set(by_keyword) - set(self.keywords))
        if unknown:
            raise TypeError(
                f"tk.adjoint rule `{self.name}`: the pullback's keyword cotangents name "
                f"{', '.join(map(repr, unknown))}, not keyword arguments of this call "
                f"(those are: {', '.join(sorted(self.keywords)) or 'none'})."
            )
        missing = [k for k in self.float_keywords if k not in by_keyword]
        if missing:
            raise TypeError(
                f"tk.adjoint rule `{self.name}`: keyword argument{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} hold{'' if len(missing) > 1 else 's'} floats, so the pullback must end "
                f"with a dict of their cotangents, e.g. (..., {{{', '.join(f'{k!r}: None' for k in missing)}}}) "
                f"(None means zero)."
            )
        return (result[:-1] if has_dict else result), by_keyword

    def _argument(self, label: str, value: Any, cotangent: Any) -> list:
        leaves, structure = jax.tree_util.tree_flatten_with_path(value)
        if cotangent is None:
            matched = [None] * len(leaves)
        else:
            try:
                matched = structure.flatten_up_to(cotangent)
            except (ValueError, TypeError):
                raise TypeError(
                    f"tk.adjoint rule `{self.name}`: the cotangent for argument `{label}` must have the "
                    f"argument's structure (a struct gets the same struct; None means zero).\n"
                    f"  expected: {structure}\n"
                    f"  got:      {jax.tree.structure(cotangent)}"
                ) from None
        flat = []
        for (path, leaf), leaf_cotangent in zip(leaves, matched):
            if not _is_operand(leaf):
                continue
            if not tree.is_differentiable(leaf):
                flat.append(None)
                continue
            flat.append(self._leaf(label + jax.tree_util.keystr(path), leaf, leaf_cotangent))
        return flat

    def _leaf(self, where: str, primal: Any, cotangent: Any) -> jax.Array:
        primal = jnp.asarray(primal)
        if cotangent is None:
            return jnp.zeros_like(primal)
        if not isinstance(cotangent, _ARRAYS + (float, int)) or isinstance(cotangent, bool):
            raise TypeError(
                f"tk.adjoint rule `{self.name}`: the cotangent for `{where}` must be an array like "
                f"{describe(primal)}, but it is {describe(cotangent)}."
            )
        cotangent = jnp.asarray(cotangent)
        if cotangent.shape != primal.shape:
            raise ValueError(
                f"tk.adjoint rule `{self.name}`: the cotangent for `{where}` has shape {cotangent.shape}, but "
                f"`{where}` is {describe(primal)}. A cotangent has its argument's shape: sum over the "
                f"dimensions the forward broadcast."
            )
        if cotangent.dtype == primal.dtype:
            return cotangent
        if jnp.issubdtype(cotangent.dtype, jnp.inexact) and jax.typeof(cotangent).weak_type:
            return cotangent.astype(primal.dtype)
        raise TypeError(
            f"tk.adjoint rule `{self.name}`: the cotangent for `{where}` is {describe(cotangent)}, but "
            f"`{where}` is {describe(primal)}; a cotangent has its argument's dtype. "
            f"Cast it with .astype({where.split('[')[0].split('.')[0]}.dtype)."
        )


# --- is the pullback transposable? --------------------------------------------------


class _LinearityCache:
    """Per rule: for each argument signature, why the pullback cannot be transposed (``None`` if it can)."""

    def __init__(self):
        self._answers: collections.OrderedDict = collections.OrderedDict()

    def problem(self, call: _Call) -> str | None:
        key = _signature_key(call)
        if key is not None and key in self._answers:
            self._answers.move_to_end(key)
            return self._answers[key]
        answer = _transpose_problem(call)
        if key is not None:
            self._answers[key] = answer
            if len(self._answers) > _CACHE_SIZE:
                self._answers.popitem(last=False)
        return answer


def _signature_key(call: _Call) -> Any:
    leaves, structure = jax.tree.flatten(call.operands)
    types = tuple(jax.typeof(leaf) for leaf in leaves)
    key = (structure, types, jax.tree.structure(call.statics), tuple(jax.tree.leaves(call.statics)))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _transpose_problem(call: _Call) -> str | None:
    """Trace the rule abstractly, check its pullback's result, and try to transpose the pullback."""
    found: list[str | None] = [None]

    def probe(operands):
        value, pullback = call.run(operands)
        flat = call.flat_pullback(pullback, operands)
        flat(value)  # raises the rule's own errors (count, structure, shape, dtype)
        moving = [i for i, d in enumerate(call.differentiable) if d]
        for i in _ignoring_delta(_select(flat, moving), value):
            raise _constant_cotangent_error(call, moving[i])
        try:
            push = jax.linear_transpose(_select(flat, moving), value)
            push([jnp.zeros_like(leaf) for i, leaf in enumerate(jax.tree.leaves(operands)) if call.differentiable[i]])
        except Exception as error:  # any failure to transpose means: no push-forward
            found[0] = _transpose_reason(error)
        return value

    jax.eval_shape(probe, call.operands)
    return found[0]


_ZERO_PRESERVING = {"broadcast_in_dim", "convert_element_type", "reshape", "squeeze", "expand_dims", "transpose", "copy"}


def _ignoring_delta(flat: Callable[[Any], list], value: Any) -> list[int]:
    """Positions of cotangents computed without Δ that are not plain zeros.

    A pullback is linear in Δ, so such a cotangent is a mistake (usually a
    forgotten ``Δ *``); transposing would silently drop it. Found by following
    which variables of the pullback's jaxpr depend on Δ.
    """
    jaxpr = jax.make_jaxpr(flat)(value).jaxpr
    depends, zeros = set(jaxpr.invars), set()

    def is_zero(v: Any) -> bool:
        return v in zeros if not isinstance(v, jax.extend.core.Literal) else bool(np.all(np.asarray(v.val) == 0))

    for eqn in jaxpr.eqns:
        variables = [v for v in eqn.invars if not isinstance(v, jax.extend.core.Literal)]
        if any(v in depends for v in variables):
            depends.update(eqn.outvars)
        elif (eqn.primitive.name in _ZERO_PRESERVING and is_zero(eqn.invars[0])) or (
            eqn.primitive.name == "mul" and any(map(is_zero, eqn.invars))
        ):
            zeros.update(eqn.outvars)
    def uses_delta(v: Any) -> bool:
        return not isinstance(v, jax.extend.core.Literal) and v in depends

    return [i for i, v in enumerate(jaxpr.outvars) if not uses_delta(v) and not is_zero(v)]


def _constant_cotangent_error(call: _Call, leaf: int) -> TypeError:
    path, _ = jax.tree_util.tree_flatten_with_path(call.operands)[0][leaf]
    group, index, *rest = path  # (positional args, keyword args)[index]...
    key = getattr(index, "idx", getattr(index, "key", None))
    label = call.labels[key] if group.idx == 0 else str(key)
    where = label + jax.tree_util.keystr(tuple(rest))
    return TypeError(
        f"tk.adjoint rule `{call.name}`: the cotangent for `{where}` does not depend on Δ. A pullback is "
        f"linear in Δ: it scales, adds and sums Δ (return None for a zero cotangent).\n"
        f"  wrong: lambda Δ: (1 / (2 * y),)\n"
        f"  right: lambda Δ: (Δ / (2 * y),)"
    )


def _transpose_reason(error: Exception) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, AssertionError) or not message:
        return "Δ is used non-linearly, e.g. multiplied by itself or selected on with jnp.where"
    return message

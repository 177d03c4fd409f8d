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
differentiable) work; ``jax.jvp``/``jax.jacfwd`` raise JAX's ``TypeError`` "can't
apply forward-mode autodiff (jvp) to a custom_vjp function".
``tk.adjoints.forward_mode_problem(f, *args)`` and ``tk.check_adjoint`` name the
rule and the operation in its pullback that could not be transposed.

**Nested differentiation sees the rule.** The value a rule returns is, to every
enclosing transformation, the rule's function again, so ``jax.grad`` of
``jax.value_and_grad(f)(x)[0]`` differentiates ``f`` with its rule too (JAX's
own invariance requirement for custom derivatives).

Which case applies is decided the first time the rule meets a new argument
signature (the structure, shapes and dtypes of its array arguments and the
values of the others), by tracing the rule and its pullback abstractly (nothing
is computed) and trying to transpose the pullback. The ``custom_jvp`` or
``custom_vjp`` is built then, once, and reused for every later call with that
signature. The same trace checks what the pullback returns, so a malformed rule
fails on its first call with an error that names it.

A rule is traced, as ``jax.jit`` traces code: branch on values with
``jnp.where`` or ``jax.lax.cond``, not with Python ``if``. Its gradient is only
what its pullback returns, so a rule must not capture a value that an enclosing
``jax.grad``/``jax.jvp`` is differentiating (pass it as an argument); doing so
raises an error naming the rule. Capturing a value that ``jax.vmap`` traces is
fine, and so is one that ``jax.jit`` traces when the differentiation happens
inside that jit (``jax.jit(jax.grad(g))``); differentiating a jitted function
from outside (``jax.grad(jax.jit(g))``) whose rule captures one of the jit's
traced values fails with JAX's ``TypeError``, as it does for ``jax.custom_jvp``:
pass such a value as an argument.

A pullback must be linear in Δ. A cotangent computed without Δ at all (a
forgotten ``Δ *``: ``lambda Δ: (1 / (2 * y),)``) is an error on the rule's first
call, naming the argument. An affine one (``Δ * s + c``) cannot be told apart
when the rule is traced: JAX's transpose keeps only the part that involves Δ,
so it acts as ``Δ * s``; ``tk.check_adjoint`` shows whether that is right.

**Arguments** are read from the signature (``inspect.signature``), never from
``nondiff_argnums``. Real floating-point arrays and Python floats, and pytrees or
structs of them, are differentiable (complex arguments are refused: split them
into real and imaginary parts). Python ints, bools, strings, callables and
``None`` are passed through untouched; integer and boolean arrays are passed as
plain (traced, non-differentiated) values.

**What a pullback returns:** a tuple with one cotangent per positional parameter
of the signature, in order, whether the caller passed it by position or by name
(defaults count; each extra ``*args`` value gets its own entry). ``None`` means a
zero cotangent; an entry for a non-differentiable argument is ignored. A
cotangent is cast to its argument's dtype, as JAX's own differentiation of
mixed-precision code does: a Python float argument takes any floating
cotangent, and a float16 ``x`` scaled by a float32 factor gets its float32
cotangent back in float16. A struct
argument gets a struct cotangent (a pytree gets the same pytree). Keyword-only
arguments that hold floats get their cotangents in a dict that ends the tuple::

    @tk.adjoint
    def scale(x, *, factor):
        return x * factor, lambda Δ: (Δ * factor, {"factor": jnp.sum(Δ * x)})
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from toolkit import filters
from toolkit._pullbacks import Cotangents, check_value, closure_error, describe_tree, select, transpose_problem
from toolkit._show import describe
from toolkit.cache import Cache

__all__ = ["adjoint", "is_adjoint", "forward_mode_problem"]

_CACHE_SIZE = 128  # built wrappers kept per rule, least recently used dropped first
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
    if not callable(rule):
        raise TypeError(f"tk.adjoint: expected a function returning (value, pullback), got {describe(rule)}")
    name = getattr(rule, "__qualname__", None) or repr(rule)
    try:
        signature = inspect.signature(rule)
    except (TypeError, ValueError):
        raise TypeError(
            f"tk.adjoint: cannot read the signature of {name}; decorate a Python function "
            f"(def or lambda) so that its arguments can be sorted by name."
        ) from None
    built = _Rule(rule, name, signature)

    @functools.wraps(rule)
    def decorated(*args: Any, **kwargs: Any) -> Any:
        return built(args, kwargs)

    setattr(decorated, _RULE, built)
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
        raise TypeError(
            f"tk.adjoints.forward_mode_problem: {getattr(f, '__qualname__', f)!r} is not a @tk.adjoint function; "
            f"pass a function decorated with @tk.adjoint."
        )
    rule: _Rule = getattr(f, _RULE)
    call = rule.bind(args, kwargs)
    return rule.built(call).problem


# --- one call: its arguments split into JAX operands and Python constants -------------------------


class _Call:
    """The arguments of one call, bound to the rule's signature and split into operands and constants."""

    def __init__(self, name: str, signature: inspect.Signature, args: tuple, kwargs: dict):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            short = name.rsplit(".", 1)[-1]
            raise TypeError(f"{short}(): {error}; call it as its signature says: {short}{signature}") from None
        bound.apply_defaults()
        self.arguments = filters.Arguments.bound(signature, bound)
        self.operands, self.layout = filters.split(self.arguments.tree, filters.is_operand)
        for label, leaf in self.arguments.labelled_leaves():
            if filters.is_inexact(leaf) and jnp.iscomplexobj(leaf):
                raise TypeError(
                    f"tk.adjoint rule `{name}`: argument `{label}` is complex ({describe(jnp.asarray(leaf))}); "
                    f"rules take real arguments. Pass the real and imaginary parts as two real arrays."
                )

    def key(self) -> Any:
        """What the built wrapper depends on: operand structure and types, constants by value; ``None`` if unhashable."""
        key = (
            self.layout.treedef,
            self.layout.chosen,
            self.layout.others,
            tuple(jax.typeof(leaf) for leaf in self.operands),
            jax.dtypes.canonicalize_dtype(np.float64),  # x64 on or off
        )
        try:
            hash(key)
        except TypeError:
            return None
        return key


class _Rule:
    """A user's rule with the wrappers built for it, one per argument signature."""

    def __init__(self, rule: Callable, name: str, signature: inspect.Signature):
        self.rule, self.name, self.signature = rule, name, signature
        self._built: Cache[_Built] = Cache(_CACHE_SIZE)
        self._building: set[Any] = set()

    def bind(self, args: tuple, kwargs: dict) -> _Call:
        return _Call(self.name, self.signature, args, kwargs)

    def built(self, call: _Call) -> _Built:
        key = call.key()
        if key is None:  # unhashable constants: build for this call alone
            return _Built(self.rule, self.name, call)
        built = self._built.get(key)
        if built is not None:
            return built
        self._building.add(key)
        try:
            return self._built.put(key, _Built(self.rule, self.name, call))
        finally:
            self._building.discard(key)

    def __call__(self, args: tuple, kwargs: dict) -> Any:
        call = self.bind(args, kwargs)
        if self._building and call.key() in self._building:
            # The pullback calls its own rule while the rule is being probed (``lambda Δ: (f(Δ),)``):
            # the probe only traces shapes, so the plain forward stands in for the rule here.
            positional, keywords = call.layout.rebuild(call.operands)
            return self.rule(*positional, **keywords)[0]
        built = self.built(call)
        try:
            return built.function(call.operands)
        except jax.errors.UnexpectedTracerError as error:
            raise closure_error(self.name) from error
        except TypeError as error:
            if built.problem is None:  # the rule has a forward mode: the error is not about that
                raise
            raise TypeError(
                f"tk.adjoint rule `{self.name}`: can't apply forward-mode autodiff (jax.jvp, jax.jacfwd) to it, "
                f"because its pullback is not linear in Δ ({built.problem}). Use reverse mode (jax.grad, "
                f"jax.vjp, tk.gradient), or make the pullback linear in Δ."
            ) from error


# --- the custom_jvp or custom_vjp built once per signature ----------------------------------------


class _Residuals:
    """What a non-linear rule's backward pass needs: the closure-converted pullback and its hoisted arrays.

    A pytree whose children are the arrays and whose auxiliary data is the
    function, so the function travels from the forward to the backward pass with
    the residuals JAX saves, without any state kept between calls.
    """

    def __init__(self, back: Callable, arrays: list):
        self.back, self.arrays = back, arrays

    def tree_flatten(self) -> tuple[list, Callable]:
        return self.arrays, self.back

    @classmethod
    def tree_unflatten(cls, back: Callable, arrays: list) -> _Residuals:
        return cls(back, list(arrays))


jax.tree_util.register_pytree_node_class(_Residuals)


class _Built:
    """The JAX function for one argument signature of a rule: a ``custom_jvp``, or a ``custom_vjp``.

    The forward runs once per differentiation: its value and the pullback's
    residuals come from one call of the rule. An enclosing transformation must
    still see that value as the rule's (JAX's invariance requirement), so it is
    returned through ``through(value, operands)``: the identity, whose own custom
    derivative runs the rule at the enclosing level and uses its pullback there.
    Without an enclosing transformation nothing runs twice.
    """

    def __init__(self, rule: Callable, name: str, call: _Call):
        self.rule, self.name = rule, name
        self.arguments, self.layout = call.arguments, call.layout
        self.differentiable = [filters.is_inexact(leaf) for leaf in call.operands]
        self.problem = transpose_problem(self, call.operands)
        self.function = self._custom_vjp() if self.problem else self._custom_jvp()

    def run(self, operands: Any) -> tuple[Any, Callable]:
        """Call the user's rule on ``operands`` and check it returned ``(value, pullback)``."""
        positional, keywords = self.layout.rebuild(operands)
        out = self.rule(*positional, **keywords)
        if not (isinstance(out, tuple) and len(out) == 2 and callable(out[1])):
            raise TypeError(
                f"tk.adjoint rule `{self.name}` must return (value, pullback), but it returned "
                f"{describe_tree(out)}.\n"
                f"  wrong: return jnp.sqrt(x)\n"
                f"  right: y = jnp.sqrt(x); return y, lambda Δ: (Δ / (2 * y),)"
            )
        value, pullback = out
        check_value(self.name, value)
        return value, pullback

    def flat_pullback(self, pullback: Callable, operands: Any) -> Callable[[Any], list]:
        """``pullback`` checked and flattened: Δ -> one cotangent (or ``None``) per operand leaf."""
        positional, keywords = self.layout.rebuild(operands)
        cotangents = Cotangents(self.name, self.arguments.names, positional, keywords)
        return lambda Δ: cotangents.flatten(pullback(Δ))

    def moving(self, dots: list) -> list[int]:
        return [i for i, d in enumerate(dots) if self.differentiable[i] and not isinstance(d, SymbolicZero)]

    def _custom_jvp(self) -> Callable:
        @jax.custom_jvp
        def function(operands: Any) -> Any:
            return self.run(operands)[0]

        @jax.custom_jvp
        def through(value: Any, operands: Any) -> Any:
            """``value`` itself, which an enclosing transformation differentiates with the rule (see _Built)."""
            return value

        def pushforward(value: Any | None, operands: Any, dots: Any) -> tuple[Any, Any]:
            computed, pullback = self.run(operands)
            value = computed if value is None else value
            moving = self.moving(dots)
            if not moving:
                return through(value, operands), jax.tree.map(jnp.zeros_like, value)
            push = jax.linear_transpose(select(self.flat_pullback(pullback, operands), moving), computed)
            (dot_value,) = push([dots[i] for i in moving])
            return through(value, operands), dot_value

        function.defjvp(lambda primals, tangents: pushforward(None, primals[0], tangents[0]), symbolic_zeros=True)
        through.defjvp(lambda primals, tangents: pushforward(primals[0], primals[1], tangents[1]), symbolic_zeros=True)
        return function

    def _custom_vjp(self) -> Callable:
        @jax.custom_vjp
        def function(operands: Any) -> Any:
            return self.run(operands)[0]

        @jax.custom_vjp
        def through(value: Any, operands: Any) -> Any:
            """``value`` itself, which an enclosing transformation differentiates with the rule (see _Built)."""
            return value

        def forward(operands: Any) -> tuple[Any, _Residuals]:
            value, pullback = self.run(operands)
            back, arrays = jax.closure_convert(self.flat_pullback(pullback, operands), value)
            return through(value, operands), _Residuals(back, arrays)

        def backward(residuals: _Residuals, Δ: Any) -> tuple[Any]:
            return (residuals.back(Δ, *residuals.arrays),)

        def through_forward(value: Any, operands: Any) -> tuple[Any, _Residuals]:
            return through(value, operands), forward(operands)[1]

        function.defvjp(forward, backward)
        through.defvjp(through_forward, lambda residuals, Δ: (None, *backward(residuals, Δ)))
        return function

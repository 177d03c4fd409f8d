"""What a ``@tk.adjoint`` pullback returns, checked: the cotangents, linearity in Δ, and the errors that name the rule.

``toolkit.adjoints`` builds the JAX function; this module answers its questions
about the user's pullback: does it return one cotangent per argument, shaped and
typed like the argument (:class:`Cotangents`); does every cotangent depend on Δ
(a forgotten ``Δ *`` is an error); and can JAX transpose it into a push-forward
(:func:`transpose_problem`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import filters
from toolkit._jaxprs import dependents, depends, is_literal
from toolkit._show import describe

__all__ = ["Cotangents", "check_value", "closure_error", "describe_tree", "select", "transpose_problem"]


def select(flat: Callable[[Any], list], indices: list[int]) -> Callable[[Any], list]:
    """``flat`` keeping only the cotangents at ``indices``."""

    def selected(Δ: Any) -> list:
        cotangents = flat(Δ)
        return [cotangents[i] for i in indices]

    return selected


def closure_error(name: str) -> TypeError:
    return TypeError(
        f"tk.adjoint rule `{name}` closes over a value that an enclosing transformation differentiates "
        f"(jax.grad, jax.jvp, ...). A rule's gradient is only what its pullback returns, so a captured "
        f"traced value would get no gradient. Pass it as an argument instead:\n"
        f"  wrong: def outer(c): return tk.adjoint(lambda x: (x * c, lambda Δ: (Δ * c,)))(x)\n"
        f"  right: scale = tk.adjoint(lambda x, c: (x * c, lambda Δ: (Δ * c, Δ * x)))  # then scale(x, c)"
    )


def describe_tree(x: Any) -> str:
    if isinstance(x, tuple):
        return f"a tuple of {len(x)}: (" + ", ".join(describe(v) for v in x) + ")"
    return describe(x)


def check_value(name: str, value: Any) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
        if not (isinstance(leaf, filters.ARRAYS + (float,)) and jnp.issubdtype(jnp.result_type(leaf), jnp.floating)):
            where = jax.tree_util.keystr(path) or "the value"
            raise TypeError(
                f"tk.adjoint rule `{name}`: every leaf of the value must be a real floating-point array, but "
                f"{where} is {describe(leaf)}. Return integer or other results from a separate function."
            )


# --- checking what a pullback returns ---------------------------------------------------


def _has_floats(value: Any) -> bool:
    return any(map(filters.is_inexact, jax.tree.leaves(value)))


class Cotangents:
    """Checks a pullback's result against the arguments and flattens it to one entry per operand leaf."""

    def __init__(self, name: str, labels: Sequence[str], positional: tuple, keywords: dict):
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
                f"positional argument ({names}), but it returned {describe_tree(result)}.\n"
                f"  wrong: lambda Δ: Δ / (2 * y)\n"
                f"  right: lambda Δ: (Δ / (2 * y),)"
            )
        has_dict = len(result) == n + 1 and isinstance(result[-1], dict) and bool(self.keywords)
        if len(result) != n and not has_dict:
            expected = f"{n} (one per positional argument: {names})"
            if self.float_keywords:
                expected += f", then a dict for the keyword arguments {', '.join(self.float_keywords)}"
            raise TypeError(
                f"tk.adjoint rule `{self.name}`: the pullback returned {describe_tree(result)}, expected "
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
        matched = [None] * len(leaves) if cotangent is None else filters.leaves_like(structure, cotangent)
        if matched is None:
            raise TypeError(
                f"tk.adjoint rule `{self.name}`: the cotangent for argument `{label}` must have the "
                f"argument's structure (a struct gets the same struct; None means zero).\n"
                f"  expected: {structure}\n"
                f"  got:      {jax.tree.structure(cotangent)}"
            )
        flat = []
        for (path, leaf), leaf_cotangent in zip(leaves, matched):
            if not filters.is_operand(leaf):
                continue
            if not filters.is_inexact(leaf):
                flat.append(None)
                continue
            flat.append(self._leaf(filters.keystr(path, label), leaf, leaf_cotangent))
        return flat

    def _leaf(self, where: str, primal: Any, cotangent: Any) -> jax.Array:
        primal = jnp.asarray(primal)
        if cotangent is None:
            return jnp.zeros_like(primal)
        if not isinstance(cotangent, filters.ARRAYS + (float, int)) or isinstance(cotangent, bool):
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
        return _cast(self.name, where, primal, cotangent)


def _cast(name: str, where: str, primal: jax.Array, cotangent: jax.Array) -> jax.Array:
    """The cotangent in the argument's dtype, as JAX's own differentiation of mixed-precision code gives it.

    A forward that promotes (a float16 ``x`` times a float32 factor) makes a wider
    cotangent, which JAX's transpose of that promotion casts back to ``x``'s dtype;
    so does this. Only a complex cotangent for a real argument is an error: the
    cast would drop its imaginary part.
    """
    if cotangent.dtype == primal.dtype:
        return cotangent
    if jnp.issubdtype(cotangent.dtype, jnp.complexfloating) or jnp.issubdtype(cotangent.dtype, jnp.bool_):
        raise TypeError(
            f"tk.adjoint rule `{name}`: the cotangent for `{where}` is {describe(cotangent)}, but "
            f"`{where}` is {describe(primal)}; a cotangent must be real like its argument."
        )
    return cotangent.astype(primal.dtype)


def transpose_problem(built: Any, operands: Any) -> str | None:
    """Trace ``built``'s rule abstractly, check its pullback's result, and try to transpose the pullback.

    ``built`` runs the rule (``run``), flattens its pullback (``flat_pullback``) and
    knows which operand leaves are differentiable. Returns why the pullback cannot
    be transposed, or ``None`` when it can (the rule then has a forward mode).
    """
    found: list[str | None] = [None]
    moving = [i for i, d in enumerate(built.differentiable) if d]

    def probe(operands: Any) -> Any:
        value, pullback = built.run(operands)
        flat = built.flat_pullback(pullback, operands)
        flat(value)  # raises the rule's own errors (count, structure, shape, dtype)
        for i in _ignoring_delta(select(flat, moving), value):
            raise _constant_cotangent_error(built, operands, moving[i])
        try:
            push = jax.linear_transpose(select(flat, moving), value)
            push([jnp.zeros_like(operands[i]) for i in moving])
        except Exception as error:  # JAX raises several types here; each means: no push-forward
            found[0] = _transpose_reason(error)
        return value

    jax.eval_shape(probe, operands)
    return found[0]


_ZERO_PRESERVING = {
    "broadcast_in_dim",
    "convert_element_type",
    "reshape",
    "squeeze",
    "expand_dims",
    "transpose",
    "copy",
}


def _ignoring_delta(flat: Callable[[Any], list], value: Any) -> list[int]:
    """Positions of cotangents computed without Δ that are not plain zeros.

    A pullback is linear in Δ, so such a cotangent is a mistake (usually a
    forgotten ``Δ *``); transposing would silently drop it. Found by following
    which variables of the pullback's jaxpr depend on Δ.
    """
    jaxpr = jax.make_jaxpr(flat)(value).jaxpr
    on_delta, zeros = dependents(jaxpr), set()

    def is_zero(v: Any) -> bool:
        return bool(np.all(np.asarray(v.val) == 0)) if is_literal(v) else v in zeros

    for eqn in jaxpr.eqns:
        if any(depends(v, on_delta) for v in eqn.invars):
            continue
        zero_preserving = eqn.primitive.name in _ZERO_PRESERVING and is_zero(eqn.invars[0])
        if zero_preserving or (eqn.primitive.name == "mul" and any(map(is_zero, eqn.invars))):
            zeros.update(eqn.outvars)
    return [i for i, v in enumerate(jaxpr.outvars) if not depends(v, on_delta) and not is_zero(v)]


def _constant_cotangent_error(built: Any, operands: Any, leaf: int) -> TypeError:
    flat = jax.tree_util.tree_flatten_with_path(built.arguments.tree)[0]
    paths = [path for (path, _), chosen in zip(flat, built.layout.chosen) if chosen]  # one per operand
    where = built.arguments.label(paths[leaf])
    return TypeError(
        f"tk.adjoint rule `{built.name}`: the cotangent for `{where}` does not depend on Δ. A pullback is "
        f"linear in Δ: it scales, adds and sums Δ (return None for a zero cotangent).\n"
        f"  wrong: lambda Δ: (1 / (2 * y),)\n"
        f"  right: lambda Δ: (Δ / (2 * y),)"
    )


def _transpose_reason(error: Exception) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, AssertionError) or not message:
        return "Δ is used non-linearly, e.g. multiplied by itself or selected on with jnp.where"
    return message

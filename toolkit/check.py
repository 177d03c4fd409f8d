"""Check derivatives against central finite differences in float64: ``tk.check_grad`` and ``tk.check_adjoint``.

The JAX counterparts of ChainRulesTestUtils' ``test_rrule`` and
``torch.autograd.gradcheck``. Method, for a function ``f`` at a point ``x``:

* Every float argument leaf (arrays, Python floats, the fields of structs, keyword
  arguments too) is cast to float64 and ``f`` runs with 64-bit types enabled; the
  other arguments are held fixed. The point must be finite (a NaN or inf element is
  an error naming it: finite differences there mean nothing).
* The reference is the finite-difference Jacobian ``J``, one central difference
  per input element: ``(f(x + h e_j) - f(x - h e_j)) / 2h`` with
  ``h = step * max(1, |x_j|)``. ``f`` is vmapped over the perturbations, so it
  must be vmappable. Checks are for small inputs:
  ``elements(x) * elements(f(x))`` is limited to 2·10^7.
* **Reverse mode**: ``jax.vjp`` with one random output cotangent ``u`` must equal
  ``uᵀJ``. One random ``u`` catches a wrong rule with probability one and still
  points at the input element that is wrong.
* **Forward mode**: for each input leaf, ``jax.jvp`` with a random tangent on that
  leaf alone must equal ``J t``, so a wrong push-forward is traced to its leaf.
* Each mode runs as written (eagerly), under ``jax.jit``, and under ``jax.vmap``
  (compiled) over a leading batch axis holding two points, ``x`` and ``x``
  scaled elementwise by ``1 ± 1%``, each compared with its own finite differences.

An element passes when ``|got - expected| <= atol + rtol * |expected|``. On
failure an ``AssertionError`` lists, per mode and per argument leaf, the largest
absolute and relative errors and the worst element with both values.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import filters
from toolkit._show import describe
from toolkit.adjoints import forward_mode_problem, is_adjoint

__all__ = ["check_grad", "check_adjoint"]

_MAX_JACOBIAN = 2 * 10**7
_FD_BATCH = 1024  # perturbed points evaluated at once (memory: _FD_BATCH x inputs)


@dataclasses.dataclass(frozen=True)
class _Options:
    """The options ``check_grad`` and ``check_adjoint`` share (documented on :func:`check_grad`)."""

    atol: float = 1e-6
    rtol: float = 1e-5
    step: float = 1e-6
    forward: bool | None = None
    jit: bool = True
    vmap: bool = True
    seed: int = 0

    def validate(self, caller: str, name: str) -> None:
        for option, zero_allowed in (("atol", True), ("rtol", True), ("step", False)):
            value = getattr(self, option)
            bound = ">= 0" if zero_allowed else "> 0"
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{caller}({name}): {option} must be a finite number {bound}, got {option}={value!r}")
            number = float(value)
            if not (math.isfinite(number) and (number > 0 or (zero_allowed and number == 0))):
                raise ValueError(f"{caller}({name}): {option} must be finite and {bound}, got {option}={value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise TypeError(f"{caller}({name}): seed must be an integer >= 0, got seed={self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"{caller}({name}): seed must be an integer >= 0, got seed={self.seed!r}")
        for option in ("forward", "jit", "vmap"):
            value = getattr(self, option)
            if not isinstance(value, (bool, np.bool_)) and not (option == "forward" and value is None):
                allowed = "True, False or None" if option == "forward" else "True or False"
                raise TypeError(f"{caller}({name}): {option} must be {allowed}, got {option}={value!r}")


def check_grad(
    f: Callable[..., Any],
    *args: Any,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    step: float = 1e-6,
    forward: bool | None = None,
    jit: bool = True,
    vmap: bool = True,
    seed: int = 0,
    **kwargs: Any,
) -> None:
    """Check ``f``'s JAX derivatives at ``(args, kwargs)`` against float64 finite differences.

    Keyword arguments other than the options below go to ``f`` (to pass ``f`` a
    keyword that shares an option's name, bind it with ``functools.partial``).

    Args:
        atol, rtol: an element passes when ``|got - expected| <= atol + rtol * |expected|``.
        step: relative finite-difference step (``h = step * max(1, |x|)``).
        forward: check forward mode too; ``None`` checks it where ``f`` supports it
            (where ``jax.jvp`` of ``f`` raises a ``TypeError``, as for a ``jax.custom_vjp``,
            the report notes that forward mode was not checked).
        jit, vmap: also check under ``jax.jit`` and under ``jax.vmap`` (a batch of two points).
        seed: seed for the random cotangents, tangents and second point.

    Raises:
        AssertionError: with a per-mode, per-leaf report, when any check fails.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.check_grad(lambda x, y: jnp.sum(jnp.sin(x) * y), jnp.array([0.1, 0.2]), 3.0)
    """
    _check("tk.check_grad", f, args, kwargs, _Options(atol, rtol, step, forward, jit, vmap, seed))


def check_adjoint(
    f: Callable[..., Any],
    *args: Any,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    step: float = 1e-6,
    forward: bool | None = None,
    jit: bool = True,
    vmap: bool = True,
    seed: int = 0,
    **kwargs: Any,
) -> None:
    """Check a ``@tk.adjoint`` rule's pullback (and push-forward) against float64 finite differences.

    The options are :func:`check_grad`'s. With ``forward=None`` the forward mode
    is checked whenever the rule's pullback is linear in Δ (the rule then supports
    ``jax.jvp``); with ``forward=True`` a rule that does not support it fails the check.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> @tk.adjoint
        ... def sqrt(x):
        ...     y = jnp.sqrt(x)
        ...     return y, lambda Δ: (Δ / (2 * y),)
        >>> tk.check_adjoint(sqrt, jnp.array([1.0, 4.0]))
    """
    if not is_adjoint(f):
        raise TypeError(
            f"tk.check_adjoint: {_name(f)} is not a @tk.adjoint function; decorate the rule with @tk.adjoint, "
            f"or use tk.check_grad to check an ordinary function."
        )
    _check("tk.check_adjoint", f, args, kwargs, _Options(atol, rtol, step, forward, jit, vmap, seed))


def _name(f: Any) -> str:
    return getattr(f, "__qualname__", None) or repr(f)


def _check(caller: str, f: Callable, args: tuple, kwargs: dict, options: _Options) -> None:
    filters.check_callable(caller, "f", f, "lambda x: jnp.sum(jnp.sin(x))")
    name = _name(f)
    options.validate(caller, name)
    with jax.enable_x64(True):
        problem = _Problem(caller, name, f, args, kwargs)
        forward, notes = _forward_decision(problem, options)
        results = _Comparison(problem, options).run(forward)
    _report(problem, options, results, notes)


def _forward_decision(problem: _Problem, options: _Options) -> tuple[bool, list[str]]:
    """Whether to check forward mode, and a note when it is skipped because ``f`` has none."""
    if options.forward is False:
        return False, []
    if is_adjoint(problem.f):
        reason = forward_mode_problem(problem.f, *problem.args, **problem.kwargs)
        if options.forward and reason:
            raise AssertionError(
                f"{problem.caller}({problem.name}): forward=True, but the rule has no forward mode: {reason}"
            )
        return reason is None, []
    if options.forward:
        return True, []
    try:
        jax.block_until_ready(problem.jvp(problem.point, jnp.ones_like(problem.point)))
    except TypeError as error:  # e.g. a jax.custom_vjp inside f: JAX has no forward mode for it
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return False, [f"forward mode: not checked, f supports reverse mode only ({first})"]
    return True, []


# --- the flattened problem ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Leaf:
    """One float leaf, of the inputs or of the output, within the flat float64 vector."""

    label: str
    shape: tuple[int, ...]
    start: int

    @property
    def stop(self) -> int:
        return self.start + int(np.prod(self.shape, dtype=int))

    def element(self, flat_index: int) -> str:
        if not self.shape:
            return self.label
        index = np.unravel_index(flat_index, self.shape)
        return f"{self.label}[{', '.join(map(str, index))}]"


class _Problem:
    """``f`` at a point as a map from one flat float64 vector (its float inputs) to another (its outputs)."""

    def __init__(self, caller: str, name: str, f: Callable, args: tuple, kwargs: dict):
        self.caller, self.name, self.f = caller, name, f
        self.args, self.kwargs = jax.tree.map(lambda leaf: _to_float64(caller, leaf), (args, kwargs))
        call = filters.Arguments.of(f, args, kwargs)
        flat, self.treedef = jax.tree_util.tree_flatten_with_path((self.args, self.kwargs))
        self.leaves = [leaf for _, leaf in flat]
        self.positions = [i for i, (_, leaf) in enumerate(flat) if filters.is_inexact(leaf)]
        self.inputs = _layout([(call.label(flat[i][0]), np.shape(flat[i][1])) for i in self.positions])
        if not self.inputs or self.inputs[-1].stop == 0:
            raise TypeError(
                f"{caller}({name}): no argument has floating-point elements, so there is nothing to check; pass the "
                f"point as floats, e.g. jnp.array([1., 2.])."
            )
        for leaf, position in zip(self.inputs, self.positions, strict=True):
            _refuse_non_finite(f"{caller}({name})", leaf, np.asarray(self.leaves[position]))
        self.point = jnp.concatenate([jnp.ravel(self.leaves[p]) for p in self.positions])
        self.outputs = self._output_layout()

    def _output_layout(self) -> list[_Leaf]:
        out = jax.eval_shape(lambda: _array_output(self.caller, self.name, self.f(*self.args, **self.kwargs)))
        shapes = []
        for where, leaf in filters.labelled_leaves(out, "output"):
            if leaf.dtype != jnp.float64:
                raise TypeError(
                    f"{self.caller}({self.name}): given float64 inputs, f returned {describe(leaf)} at {where}. "
                    f"The check needs every output leaf in float64 (f must compute in its inputs' precision, "
                    f"without casting to float32 or to integers)."
                )
            shapes.append((where, np.shape(leaf)))
        outputs = _layout(shapes)
        size = outputs[-1].stop if outputs else 0
        if size == 0:
            raise TypeError(
                f"{self.caller}({self.name}): f returned no elements, so there is nothing to check; f must return "
                f"float64 arrays (or a pytree of them) given float64 inputs."
            )
        if self.point.size * size > _MAX_JACOBIAN:
            raise ValueError(
                f"{self.caller}({self.name}): {self.point.size} input elements x {size} output elements is too "
                f"large to check by finite differences (limit {_MAX_JACOBIAN:.0e}); check on a smaller slice."
            )
        return outputs

    @property
    def size_out(self) -> int:
        return self.outputs[-1].stop

    def g(self, vector: jax.Array) -> jax.Array:
        """``f`` as a map from the flat float vector to the flat output vector."""
        leaves = list(self.leaves)
        for leaf, position in zip(self.inputs, self.positions, strict=True):
            leaves[position] = vector[leaf.start : leaf.stop].reshape(leaf.shape)
        args, kwargs = jax.tree.unflatten(self.treedef, leaves)
        return jnp.concatenate([jnp.ravel(o) for o in jax.tree.leaves(self.f(*args, **kwargs))])

    def vjp(self, point: jax.Array, cotangent: jax.Array) -> jax.Array:
        return jax.vjp(self.g, point)[1](cotangent)[0]

    def jvp(self, point: jax.Array, tangent: jax.Array) -> jax.Array:
        return jax.jvp(self.g, (point,), (tangent,))[1]


def _refuse_non_finite(where: str, leaf: _Leaf, values: np.ndarray) -> None:
    """A ``ValueError`` naming the first NaN or infinite element of an input leaf."""
    finite = np.isfinite(values).ravel()
    if not finite.all():
        first = int(np.argmin(finite))
        raise ValueError(
            f"{where}: {leaf.element(first)} is {values.ravel()[first]}; derivatives are checked at a finite point, "
            f"so pass finite values."
        )


def _array_output(caller: str, name: str, out: Any) -> Any:
    """``out`` after checking that its leaves are numbers or arrays of numbers (what JAX can return)."""
    for where, leaf in filters.labelled_leaves(out, "output"):
        if not filters.is_numeric(leaf):
            what, _ = filters.non_numeric(leaf)
            raise TypeError(
                f"{caller}({name}): the {where} of f is {what}; f must return float64 arrays (or a pytree of them) "
                f"given float64 inputs."
            )
    return out


def _layout(shapes: list[tuple[str, tuple[int, ...]]]) -> list[_Leaf]:
    leaves, start = [], 0
    for label, shape in shapes:
        leaves.append(_Leaf(label, tuple(shape), start))
        start = leaves[-1].stop
    return leaves


def _to_float64(caller: str, leaf: Any) -> Any:
    if filters.is_inexact(leaf):
        if jnp.iscomplexobj(leaf):
            raise TypeError(
                f"{caller}: complex arguments are not supported (got {describe(jnp.asarray(leaf))}); "
                f"check the real and imaginary parts as two real arguments."
            )
        return jnp.asarray(leaf, dtype=jnp.float64)
    return leaf


# --- running the checks -----------------------------------------------------------------


@dataclasses.dataclass
class _Result:
    """One mode's comparison: per leaf, got and expected."""

    mode: str
    rows: list[tuple[str, _Leaf, np.ndarray, np.ndarray]]  # (row label, leaf that indexes the error, got, expected)


class _Comparison:
    """Every mode's derivatives next to the finite-difference Jacobian, at a point and at a nearby second one."""

    def __init__(self, problem: _Problem, options: _Options):
        self.problem, self.options = problem, options
        rng = np.random.default_rng(options.seed)
        n, m = problem.point.size, problem.size_out
        self.points = jnp.stack([problem.point, problem.point * (1 + 0.01 * rng.uniform(-1, 1, n))])
        self.cotangents = jnp.asarray(rng.standard_normal((2, m)))
        tangents = np.zeros((len(problem.inputs), n))
        for row, leaf in zip(tangents, problem.inputs):
            row[leaf.start : leaf.stop] = rng.standard_normal(leaf.stop - leaf.start)
        self.tangents = jnp.asarray(tangents)

    def run(self, forward: bool) -> list[_Result]:
        point, p = self.points[0], self.problem
        reverse = {"reverse mode (jax.vjp)": p.vjp(point, self.cotangents[0])[None]}
        forwards = (
            {"forward mode (jax.jvp)": jnp.stack([p.jvp(point, t) for t in self.tangents])[None]} if forward else {}
        )
        compiled = jax.jit(functools.partial(self._compiled, forward=forward))
        jacobians, more = compiled(self.points, self.cotangents, self.tangents)
        for mode, got in more.items():
            (reverse if mode.startswith("reverse") else forwards)[mode] = got
        jacobians = np.asarray(jacobians)
        results = [self._reverse(mode, got, jacobians) for mode, got in reverse.items()]
        return results + [self._forward(mode, got, jacobians) for mode, got in forwards.items()]

    def _compiled(self, points, cotangents, tangents, forward: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Finite differences at both points and every jit and vmap mode, in one compilation."""
        p, modes = self.problem, {}
        if self.options.jit:
            modes["reverse mode under jax.jit"] = p.vjp(points[0], cotangents[0])[None]
        if self.options.vmap:
            modes["reverse mode under jax.vmap"] = jax.vmap(p.vjp)(points, cotangents)
        if forward and self.options.jit:
            modes["forward mode under jax.jit"] = jnp.stack([p.jvp(points[0], t) for t in tangents])[None]
        if forward and self.options.vmap:
            k = len(tangents)
            batched = jax.vmap(p.jvp)(jnp.repeat(points, k, axis=0), jnp.tile(tangents, (2, 1)))
            modes["forward mode under jax.vmap"] = batched.reshape(2, k, -1)
        return self._finite_differences(points), modes

    def _finite_differences(self, points: jax.Array) -> jax.Array:
        """Central differences at each point, one row per input element: shape (points, inputs, outputs)."""
        count, n = points.shape
        steps = self.options.step * jnp.maximum(1, jnp.abs(points))
        g = self.problem.g

        def difference_quotient(r):  # r enumerates (point, input element)
            k, j = r // n, r % n
            e = jnp.zeros(n).at[j].set(steps[k, j])
            return (g(points[k] + e) - g(points[k] - e)) / (2 * steps[k, j])

        rows = jnp.arange(count * n)
        if rows.size <= _FD_BATCH:
            quotients = jax.vmap(difference_quotient)(rows)
        else:
            quotients = jax.lax.map(difference_quotient, rows, batch_size=_FD_BATCH)
        return quotients.reshape(count, n, -1)

    def _reverse(self, mode: str, got: Any, jacobians: np.ndarray) -> _Result:
        rows = []
        for k, got_k in enumerate(np.asarray(got)):
            expected = jacobians[k] @ np.asarray(self.cotangents[k])
            suffix = " (second point)" if k else ""
            for leaf in self.problem.inputs:
                part = slice(leaf.start, leaf.stop)
                rows.append((leaf.label + suffix, leaf, got_k[part], expected[part]))
        return _Result(mode, rows)

    def _forward(self, mode: str, got: Any, jacobians: np.ndarray) -> _Result:
        rows = []
        for k, got_k in enumerate(np.asarray(got)):
            expected = np.asarray(self.tangents) @ jacobians[k]
            suffix = " (second point)" if k else ""
            for leaf, g, e in zip(self.problem.inputs, got_k, expected):
                for out in self.problem.outputs:
                    label = f"tangent on {leaf.label}{suffix} -> {out.label}"
                    rows.append((label, out, g[out.start : out.stop], e[out.start : out.stop]))
        return _Result(mode, rows)


# --- the report -------------------------------------------------------------------------


def _report(problem: _Problem, options: _Options, results: list[_Result], notes: list[str]) -> None:
    atol, rtol = options.atol, options.rtol
    failed = [r for r in results if any(not _close(g, e, atol, rtol) for _, _, g, e in r.rows)]
    if not failed:
        return
    lines = [
        f"{problem.caller}({problem.name}): {len(failed)} of {len(results)} checks disagree with central finite "
        f"differences (float64, relative step {options.step:g}; an element passes when "
        f"|got - expected| <= {atol:g} + {rtol:g} * |expected|)."
    ]
    for result in failed:
        lines.append(f"{result.mode}:")
        lines += ["  " + _row(options, *row) for row in result.rows]
    passed = [r.mode for r in results if r not in failed]
    if passed:
        lines.append("passed: " + "; ".join(passed))
    raise AssertionError("\n".join(lines + notes))


def _row(options: _Options, label: str, leaf: _Leaf, got: np.ndarray, expected: np.ndarray) -> str:
    error = np.abs(got - expected)
    if error.size == 0:
        return f"{label}: empty"
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(error == 0, 0, error / np.abs(expected))
        excess = np.where(np.isnan(error), np.inf, error / (options.atol + options.rtol * np.abs(expected)))
    worst = int(np.argmax(excess))
    verdict = "FAIL" if excess[worst] > 1 else "ok"
    hint = "" if np.all(np.isfinite(expected)) else " (finite differences are not finite: is x ± step in f's domain?)"
    return (
        f"{label}: {verdict}, max abs err {_nanmax(error):.2e}, max rel err {_nanmax(relative):.2e}, worst at "
        f"{leaf.element(worst)}: got {got[worst]:.8g}, expected {expected[worst]:.8g}{hint}"
    )


def _nanmax(values: np.ndarray) -> float:
    return float(np.nan) if np.all(np.isnan(values)) else float(np.nanmax(values))


def _close(got: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> bool:
    return bool(np.all(np.abs(got - expected) <= atol + rtol * np.abs(expected)))

"""Check derivatives against central finite differences in float64: ``tk.check_grad`` and ``tk.check_adjoint``.

The JAX counterparts of ChainRulesTestUtils' ``test_rrule`` and
``torch.autograd.gradcheck``. Method, for a function ``f`` at a point ``x``:

* Every float argument leaf (arrays, Python floats, the fields of structs, keyword
  arguments too) is cast to float64 and ``f`` runs with 64-bit types enabled; the
  other arguments are held fixed.
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
import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import tree
from toolkit._show import describe
from toolkit.adjoints import forward_mode_problem, is_adjoint

__all__ = ["check_grad", "check_adjoint"]

_MAX_JACOBIAN = 2 * 10**7
_FD_BATCH = 1024  # perturbed points evaluated at once (memory: _FD_BATCH x inputs)


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
        forward: check forward mode too; ``None`` checks it where ``f`` supports it.
        jit, vmap: also check under ``jax.jit`` and under ``jax.vmap`` (a batch of two points).
        seed: seed for the random cotangents, tangents and second point.

    Raises:
        AssertionError: with a per-mode, per-leaf report, when any check fails.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.check_grad(lambda x, y: jnp.sum(jnp.sin(x) * y), jnp.array([0.1, 0.2]), 3.0)
    """
    _Checker("tk.check_grad", f, args, kwargs, atol, rtol, step, jit, vmap, seed).run(forward)


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

    As :func:`check_grad`, for a function made by ``@tk.adjoint``. With
    ``forward=None`` the forward mode is checked whenever the rule's pullback is
    linear in Δ (the rule then supports ``jax.jvp``); with ``forward=True`` a
    rule that does not support it fails the check.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> @tk.adjoint
        ... def sqrt(x):
        ...     y = jnp.sqrt(x)
        ...     return y, lambda Δ: (Δ / (2 * y),)
        >>> tk.check_adjoint(sqrt, jnp.array([1.0, 4.0]))
    """
    name = getattr(f, "__qualname__", repr(f))
    if not is_adjoint(f):
        raise TypeError(
            f"tk.check_adjoint: {name} is not a @tk.adjoint function; decorate the rule with @tk.adjoint, "
            f"or use tk.check_grad to check an ordinary function."
        )
    checker = _Checker("tk.check_adjoint", f, args, kwargs, atol, rtol, step, jit, vmap, seed)
    if forward is not False:
        with jax.enable_x64(True):
            problem = forward_mode_problem(f, *checker.args, **checker.kwargs)
        if forward and problem:
            raise AssertionError(f"tk.check_adjoint({name}): forward=True, but the rule has no forward mode: {problem}")
        forward = problem is None
    checker.run(forward)


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


@dataclasses.dataclass
class _Result:
    """One mode's comparison: per leaf, got and expected."""

    mode: str
    rows: list[tuple[str, _Leaf, np.ndarray, np.ndarray]]  # (row label, leaf that indexes the error, got, expected)


class _Checker:
    def __init__(self, caller, f, args, kwargs, atol, rtol, step, jit, vmap, seed):
        self.caller, self.f = caller, f
        self.name = getattr(f, "__qualname__", repr(f))
        self.atol, self.rtol, self.step = atol, rtol, step
        self.use_jit, self.use_vmap = jit, vmap
        self.rng = np.random.default_rng(seed)
        self.notes: list[str] = []
        self._check_options()
        with jax.enable_x64(True):
            self.args, self.kwargs = jax.tree.map(_to_float64, (args, kwargs))
            self._flatten_inputs(_argument_labels(f, args, kwargs))
            self._flatten_outputs()

    def _check_options(self) -> None:
        options = (("atol", self.atol, True), ("rtol", self.rtol, True), ("step", self.step, False))
        for option, value, zero_allowed in options:
            if not (np.isfinite(value) and (value > 0 or (zero_allowed and value == 0))):
                bound = ">= 0" if zero_allowed else "> 0"
                raise ValueError(
                    f"{self.caller}({self.name}): {option} must be finite and {bound}, got {option}={value!r}"
                )

    def _flatten_inputs(self, labels: list[str]) -> None:
        leaves, self.treedef = jax.tree_util.tree_flatten_with_path((self.args, self.kwargs))
        self.leaves = [leaf for _, leaf in leaves]
        self.inputs: list[_Leaf] = []
        self.positions: list[int] = []
        start = 0
        for position, (path, leaf) in enumerate(leaves):
            if not tree.is_differentiable(leaf):
                continue
            group, key, rest = path[0].idx, path[1], path[2:]
            head = labels[key.idx] if group == 0 else key.key
            self.inputs.append(_Leaf(head + jax.tree_util.keystr(rest), np.shape(leaf), start))
            self.positions.append(position)
            start = self.inputs[-1].stop
        if not self.inputs or self.inputs[-1].stop == 0:
            raise TypeError(
                f"{self.caller}({self.name}): no argument has floating-point elements, so there is nothing to check."
            )
        self.point = jnp.concatenate([jnp.ravel(self.leaves[p]) for p in self.positions])

    def _flatten_outputs(self) -> None:
        out = jax.eval_shape(lambda: self.f(*self.args, **self.kwargs))
        self.outputs: list[_Leaf] = []
        start = 0
        for path, leaf in jax.tree_util.tree_flatten_with_path(out)[0]:
            where = "output" + jax.tree_util.keystr(path)
            if leaf.dtype != jnp.float64:
                raise TypeError(
                    f"{self.caller}({self.name}): given float64 inputs, f returned {describe(leaf)} at {where}. "
                    f"The check needs every output leaf in float64 (f must compute in its inputs' precision, "
                    f"without casting to float32 or to integers)."
                )
            self.outputs.append(_Leaf(where, np.shape(leaf), start))
            start = self.outputs[-1].stop
        if start == 0:
            raise TypeError(f"{self.caller}({self.name}): f returned no elements, so there is nothing to check.")
        size = self.point.size * start
        if size > _MAX_JACOBIAN:
            raise ValueError(
                f"{self.caller}({self.name}): {self.point.size} input elements x {start} output elements is too "
                f"large to check by finite differences (limit {_MAX_JACOBIAN:.0e}); check on a smaller slice."
            )

    def g(self, vector: jax.Array) -> jax.Array:
        """``f`` as a map from the flat float vector to the flat output vector."""
        leaves = list(self.leaves)
        for leaf, position in zip(self.inputs, self.positions):
            leaves[position] = vector[leaf.start : leaf.stop].reshape(leaf.shape)
        args, kwargs = jax.tree.unflatten(self.treedef, leaves)
        out = jax.tree.leaves(self.f(*args, **kwargs))
        return jnp.concatenate([jnp.ravel(o) for o in out])

    # --- running the checks ----------------------------------------------------------

    def run(self, forward: bool | None) -> None:
        with jax.enable_x64(True):
            n, m = self.point.size, self.outputs[-1].stop if self.outputs else 0
            points = jnp.stack([self.point, self.point * (1 + 0.01 * self.rng.uniform(-1, 1, n))])
            cotangents = jnp.asarray(self.rng.standard_normal((2, m)))
            tangents = np.zeros((len(self.inputs), n))
            for row, leaf in zip(tangents, self.inputs):
                row[leaf.start : leaf.stop] = self.rng.standard_normal(leaf.stop - leaf.start)
            tangents = jnp.asarray(tangents)
            reverse = {"reverse mode (jax.vjp)": self._vjp(points[0], cotangents[0])[None]}
            forward_modes = self._eager_forward(points[0], tangents, forward)
            compiled = jax.jit(functools.partial(self._compiled, forward=forward_modes is not None))
            jacobians, more = compiled(points, cotangents, tangents)
        jacobians = np.asarray(jacobians)
        for mode, got in more.items():
            (reverse if mode.startswith("reverse") else forward_modes)[mode] = got
        results = [self._reverse_result(mode, got, jacobians, cotangents) for mode, got in reverse.items()]
        results += [self._forward_result(mode, got, jacobians, tangents) for mode, got in (forward_modes or {}).items()]
        self._report(results)

    def _vjp(self, point: jax.Array, cotangent: jax.Array) -> jax.Array:
        return jax.vjp(self.g, point)[1](cotangent)[0]

    def _jvp(self, point: jax.Array, tangent: jax.Array) -> jax.Array:
        return jax.jvp(self.g, (point,), (tangent,))[1]

    def _eager_forward(self, point: jax.Array, tangents: jax.Array, forward: bool | None) -> dict | None:
        """Forward mode as written, one tangent per input leaf; ``None`` when skipped or unsupported."""
        if forward is False:
            return None
        try:
            return {"forward mode (jax.jvp)": jnp.stack([self._jvp(point, t) for t in tangents])[None]}
        except TypeError as error:
            if forward or "forward" not in str(error):
                raise
            self.notes.append(f"forward mode: not checked, f supports reverse mode only ({str(error).splitlines()[0]})")
            return None

    def _compiled(self, points, cotangents, tangents, forward: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Finite differences at both points and every jit and vmap mode, in one compilation."""
        jacobians = self._finite_differences(points)
        modes = {}
        if self.use_jit:
            modes["reverse mode under jax.jit"] = self._vjp(points[0], cotangents[0])[None]
        if self.use_vmap:
            modes["reverse mode under jax.vmap"] = jax.vmap(self._vjp)(points, cotangents)
        if forward and self.use_jit:
            modes["forward mode under jax.jit"] = jnp.stack([self._jvp(points[0], t) for t in tangents])[None]
        if forward and self.use_vmap:
            k = len(tangents)
            batched = jax.vmap(self._jvp)(jnp.repeat(points, k, axis=0), jnp.tile(tangents, (2, 1)))
            modes["forward mode under jax.vmap"] = batched.reshape(2, k, -1)
        return jacobians, modes

    def _finite_differences(self, points: jax.Array) -> jax.Array:
        """Central differences at each point, one row per input element: shape (points, inputs, outputs)."""
        count, n = points.shape
        steps = self.step * jnp.maximum(1, jnp.abs(points))

        def difference_quotient(r):  # r enumerates (point, input element)
            k, j = r // n, r % n
            e = jnp.zeros(n).at[j].set(steps[k, j])
            return (self.g(points[k] + e) - self.g(points[k] - e)) / (2 * steps[k, j])

        rows = jnp.arange(count * n)
        if rows.size <= _FD_BATCH:
            quotients = jax.vmap(difference_quotient)(rows)
        else:
            quotients = jax.lax.map(difference_quotient, rows, batch_size=_FD_BATCH)
        return quotients.reshape(count, n, -1)

    def _reverse_result(self, mode: str, got, jacobians: np.ndarray, cotangents) -> _Result:
        rows = []
        for k, got_k in enumerate(np.asarray(got)):
            expected = jacobians[k] @ np.asarray(cotangents[k])
            suffix = " (second point)" if k else ""
            for leaf in self.inputs:
                part = slice(leaf.start, leaf.stop)
                rows.append((leaf.label + suffix, leaf, got_k[part], expected[part]))
        return _Result(mode, rows)

    def _forward_result(self, mode: str, got, jacobians: np.ndarray, tangents) -> _Result:
        rows = []
        for k, got_k in enumerate(np.asarray(got)):
            expected = np.asarray(tangents) @ jacobians[k]
            suffix = " (second point)" if k else ""
            for leaf, g, e in zip(self.inputs, got_k, expected):
                for out in self.outputs:
                    label = f"tangent on {leaf.label}{suffix} -> {out.label}"
                    rows.append((label, out, g[out.start : out.stop], e[out.start : out.stop]))
        return _Result(mode, rows)

    # --- the report --------------------------------------------------------------------

    def _report(self, results: list[_Result]) -> None:
        failed = [r for r in results if any(not _close(g, e, self.atol, self.rtol) for _, _, g, e in r.rows)]
        if not failed:
            return
        lines = [
            f"{self.caller}({self.name}): {len(failed)} of {len(results)} checks disagree with central finite "
            f"differences (float64, relative step {self.step:g}; an element passes when "
            f"|got - expected| <= {self.atol:g} + {self.rtol:g} * |expected|)."
        ]
        for result in failed:
            lines.append(f"{result.mode}:")
            lines += ["  " + self._row(*row) for row in result.rows]
        passed = [r.mode for r in results if r not in failed]
        if passed:
            lines.append("passed: " + "; ".join(passed))
        lines += self.notes
        raise AssertionError("\n".join(lines))

    def _row(self, label: str, leaf: _Leaf, got: np.ndarray, expected: np.ndarray) -> str:
        error = np.abs(got - expected)
        if error.size == 0:
            return f"{label}: empty"
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(error == 0, 0, error / np.abs(expected))
            excess = np.where(np.isnan(error), np.inf, error / (self.atol + self.rtol * np.abs(expected)))
        worst = int(np.argmax(excess))
        verdict = "FAIL" if excess[worst] > 1 else "ok"
        finite = np.all(np.isfinite(expected))
        hint = "" if finite else " (finite differences are not finite: is x ± step in f's domain?)"
        return (
            f"{label}: {verdict}, max abs err {np.nanmax(error) if not np.all(np.isnan(error)) else np.nan:.2e}, "
            f"max rel err {np.nanmax(relative) if not np.all(np.isnan(relative)) else np.nan:.2e}, worst at "
            f"{leaf.element(worst)}: got {got[worst]:.8g}, expected {expected[worst]:.8g}{hint}"
        )


def _close(got: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> bool:
    return bool(np.all(np.abs(got - expected) <= atol + rtol * np.abs(expected)))


def _to_float64(leaf: Any) -> Any:
    if tree.is_differentiable(leaf):
        if jnp.iscomplexobj(leaf):
            raise TypeError(f"check_grad: complex arguments are not supported (got {describe(leaf)})")
        return jnp.asarray(leaf, dtype=jnp.float64)
    return leaf


def _argument_labels(f: Callable, args: tuple, kwargs: dict) -> list[str]:
    """A name for each positional argument, from ``f``'s signature where it has one."""
    try:
        bound = inspect.signature(f).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return [f"args[{i}]" for i in range(len(args))]
    labels = []
    for name, value in bound.arguments.items():
        kind = inspect.signature(f).parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            labels += [f"{name}[{k}]" for k in range(len(value))]
        elif kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            labels.append(name)
    return (labels + [f"args[{i}]" for i in range(len(labels), len(args))])[: len(args)]

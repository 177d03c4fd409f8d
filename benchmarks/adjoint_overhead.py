"""Cost of ``@tk.adjoint``: against ``jax.custom_vjp`` and ``jnp.sqrt``; in ``tk.safe``, against the double-where form.

Part 1 (``--part vjp``). Times ``jax.grad(lambda x: jnp.sum(sqrt(x)))`` on 10^7
float32 elements, jitted (the way gradients run in practice) and, for reference,
eagerly, all in one process. Each variant is timed as the median of R runs after
a warm-up run, in six rounds interleaved with the other variants (in a rotated
order each round) so that load from other processes hits all of them alike; the
table shows each variant's median round (a best round would let one quiet
moment decide the ratio). The target: ``@tk.adjoint`` within 1.1x of the
hand-written ``custom_vjp`` (jitted). Timings on a shared machine are noisy, so
the script also compares the two optimised XLA programs: when they are the
same, any time difference is noise.

Part 2 (``--part safe``). For each ``tk.safe`` function, µs per call of the value
and of ``jax.value_and_grad`` of its sum, eager and jitted, on ``--elements``
float32 elements, for: ``tk.safe`` itself (``sqrt`` and ``cbrt``: the double-where
form under ``jax.jit``, one dispatch per eager call; the others: ``@tk.adjoint``
rules whose forward is one jitted call), the double-where form
``where(bad, fallback, f(where(bad, safe_input, x)))`` as plain unjitted ``jnp``,
the ``@tk.adjoint`` rule ``sqrt`` and ``cbrt`` used to be, and plain ``jnp`` (no
guard: what the safety costs). Medians of interleaved rounds, one process.

Part 3 (``--part agree``). The measurement behind ``tk.safe``'s choice: the
largest difference, in ulps, between the double-where form and the rule, for
values, first derivatives (``jax.grad``, ``jax.jvp``) and second derivatives
(``jax.hessian``, grad of grad), eager and jitted, over singular points (signed
zeros), ordinary points and extremes (1e-30 ... 3e38 in float32, 1e-300 ...
1.7e308 in float64, subnormals included), and the number of points where one
form is finite and the other is not.

Run: python benchmarks/adjoint_overhead.py [--part {all,vjp,safe,agree}] [--size N] [--repeats R] [--elements E]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import re
import statistics
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import toolkit as tk

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/_record.py
from _record import record  # noqa: E402

from toolkit import safe

# --- part 1: @tk.adjoint against jax.custom_vjp ------------------------------------------


@tk.adjoint
def adjoint_sqrt(x):
    y = jnp.sqrt(x)
    return y, lambda Δ: (Δ / (2 * y),)


@jax.custom_vjp
def custom_vjp_sqrt(x):
    return jnp.sqrt(x)


def _forward(x):
    y = jnp.sqrt(x)
    return y, y


def _backward(y, Δ):
    return (Δ / (2 * y),)


custom_vjp_sqrt.defvjp(_forward, _backward)

ROUNDS = 6
SQRTS: dict[str, Callable] = {"@tk.adjoint": adjoint_sqrt, "jax.custom_vjp": custom_vjp_sqrt, "jnp.sqrt": jnp.sqrt}


def compiled_program(sqrt: Callable, size: int) -> str:
    """The optimised XLA program of the jitted gradient, without debug information."""
    x = jax.ShapeDtypeStruct((size,), jnp.float32)
    text = jax.jit(jax.grad(lambda x: jnp.sum(sqrt(x)))).lower(x).compile().as_text()
    body = text[text.index("\n%") :]  # drop the module header and its source-location tables
    return re.sub(r", (metadata|frontend_attributes)=\{[^}]*\}", "", body)


def median_seconds(f: Callable, x: jax.Array, repeats: int) -> float:
    jax.block_until_ready(f(x))  # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(x))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def vjp_table(size: int = 10**7, repeats: int = 11) -> dict[str, dict[str, float]]:
    x = jax.random.uniform(jax.random.key(0), (size,), jnp.float32, 0.5, 2.0)
    results: dict[str, dict[str, float]] = {"jit": {}, "eager": {}}
    names = list(SQRTS)
    for mode in results:
        grads = {}
        for name, sqrt in SQRTS.items():
            grad = jax.grad(lambda x, sqrt=sqrt: jnp.sum(sqrt(x)))
            grads[name] = jax.jit(grad) if mode == "jit" else grad
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(ROUNDS):  # interleaved, each round in a rotated order: noise hits all alike
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                times[name].append(median_seconds(grads[name], x, repeats))
        results[mode] = {name: statistics.median(t) for name, t in times.items()}

    platform = jax.devices()[0].platform
    print(
        f"jax.grad(lambda x: jnp.sum(sqrt(x))), {size:.0e} float32 on {platform}, "
        f"median of {ROUNDS} medians of {repeats}"
    )
    print(f"{'sqrt':<16}{'mode':<7}{'ms':>9}{'vs custom_vjp':>15}{'vs jnp.sqrt':>13}")
    for mode, times in results.items():
        for name, seconds in times.items():
            print(
                f"{name:<16}{mode:<7}{seconds * 1e3:>9.2f}"
                f"{seconds / times['jax.custom_vjp']:>14.2f}x{seconds / times['jnp.sqrt']:>12.2f}x"
            )
    ratio = results["jit"]["@tk.adjoint"] / results["jit"]["jax.custom_vjp"]
    print(f"ratio @tk.adjoint / custom_vjp (jit): {ratio:.3f}  (target <= 1.1): {'met' if ratio <= 1.1 else 'NOT met'}")
    record("@tk.adjoint sqrt gradient / jax.custom_vjp (jit)", ratio, "x", "<= 1.1x", ratio <= 1.1)
    same = compiled_program(adjoint_sqrt, size) == compiled_program(custom_vjp_sqrt, size)
    print(f"XLA compiles both gradients to the same program (debug info aside): {same}")
    return results


# --- part 2: tk.safe, its rule, the double-where form, plain jnp --------------------------
# The rules tk.safe.sqrt and tk.safe.cbrt were before they switched to the double-where form.


@tk.adjoint
def rule_sqrt(x):
    zero = x == 0
    root = jnp.sqrt(jnp.where(zero, 1, x))
    slope = jnp.where(zero, 0, 0.5 / root)
    return jnp.where(zero, 0, root), lambda Δ: (Δ * slope,)


@tk.adjoint
def rule_cbrt(x):
    zero = x == 0
    root = jnp.cbrt(jnp.where(zero, 1, x))
    slope = jnp.where(zero, 0, 1 / (3 * root * root))
    return jnp.where(zero, 0, root), lambda Δ: (Δ * slope,)


# The double-where candidates, one per function (for sqrt and cbrt, tk.safe's own code).


def dw_sqrt(x):
    zero = x == 0
    return jnp.where(zero, 0, jnp.sqrt(jnp.where(zero, 1, x)))


def dw_cbrt(x):
    zero = x == 0
    return jnp.where(zero, 0, jnp.cbrt(jnp.where(zero, 1, x)))


def dw_hypot(x, y):
    origin = (x == 0) & (y == 0)
    return jnp.where(origin, 0, jnp.hypot(jnp.where(origin, 1, x), y))


def dw_norm(x, axis=-1, keepdims=False):  # optax.safe_norm's form
    squares = jnp.sum(x * x, axis=axis, keepdims=True)
    zero = squares == 0
    r = jnp.where(zero, 0, jnp.sqrt(jnp.where(zero, 1, squares)))
    return r if keepdims else jnp.squeeze(r, axis)


def dw_atan2(y, x):
    origin = (x == 0) & (y == 0)
    return jnp.where(origin, 0, jnp.arctan2(y, jnp.where(origin, 1, x)))


def dw_pow(x, p, *, signed=False):
    """Masked at 0 only for p <= 1, where jnp.power's derivatives there are inf or NaN; x itself for p = 1."""
    zero_base = (x == 0) & (p >= 0)
    masked = zero_base & (p <= 1)
    base = jnp.where(masked, 1, x)
    power = jnp.sign(base) * jnp.power(jnp.abs(base), p) if signed else jnp.power(base, p)
    at_zero = jnp.where(p == 1, x, 0 if signed else jnp.where(p == 0, 1, 0))
    return jnp.where(masked, at_zero, power)


def dw_div(x, y):
    both_zero = (x == 0) & (y == 0)
    return jnp.where(both_zero, 0, x / jnp.where(both_zero, 1, y))


def _plain_norm(x):
    return jnp.linalg.norm(x, axis=-1)


def _plain_signed_pow(x, p):
    return jnp.sign(x) * jnp.abs(x) ** p


# name: (the arguments, made from x, y in [0.5, 2); tk.safe; its rule; the double-where form; plain jnp)
FUNCTIONS: dict[str, tuple[Callable, Callable, Callable, Callable, Callable]] = {
    "sqrt": (lambda x, y: (x,), safe.sqrt, rule_sqrt, dw_sqrt, jnp.sqrt),
    "cbrt": (lambda x, y: (x - 1.25,), safe.cbrt, rule_cbrt, dw_cbrt, jnp.cbrt),
    "hypot": (lambda x, y: (x - 1.25, y), safe.hypot, safe.hypot, dw_hypot, jnp.hypot),
    "norm": (lambda x, y: (jnp.stack([x, y, x - y], -1),), safe.norm, safe.norm, dw_norm, _plain_norm),
    "atan2": (lambda x, y: (y - 1.25, x - 1.25), safe.atan2, safe.atan2, dw_atan2, jnp.arctan2),
    "pow": (
        lambda x, y: (x - 1.25, 1 / 2.4),
        functools.partial(safe.pow, signed=True),
        functools.partial(safe.pow, signed=True),
        functools.partial(dw_pow, signed=True),
        _plain_signed_pow,
    ),
    "div": (lambda x, y: (x - 1.25, y), safe.div, safe.div, dw_div, jnp.divide),
}
MODES = ("eager value", "eager value+grad", "jit value", "jit value+grad")
SWITCHED = ("sqrt", "cbrt")  # tk.safe's double-where functions (jitted); the others are @tk.adjoint rules


def _variants(name: str) -> dict[str, Callable]:
    """The rows timed for one function: tk.safe, the double-where form (unjitted), the rule it replaced (if), jnp."""
    _, f_safe, f_rule, f_dw, f_jnp = FUNCTIONS[name]
    if name in SWITCHED:
        return {"tk.safe (jit(dw))": f_safe, "double-where": f_dw, "old @tk.adjoint rule": f_rule, "jnp": f_jnp}
    return {"tk.safe (@tk.adjoint)": f_safe, "double-where": f_dw, "jnp": f_jnp}


def _callables(f: Callable, n_args: int) -> dict[str, Callable]:
    """The timed forms of ``f``: value and ``value_and_grad`` of its sum (wrt the arrays), eager and jitted."""
    argnums = tuple(range(n_args))
    value_and_grad = jax.value_and_grad(lambda *a: jnp.sum(f(*a)), argnums=argnums)
    return {
        "eager value": f,
        "eager value+grad": value_and_grad,
        "jit value": jax.jit(f),
        "jit value+grad": jax.jit(value_and_grad),
    }


def _microseconds(f: Callable, args: tuple, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        out = f(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / number * 1e6


def safe_table(elements: int = 1000, rounds: int = 7, number: int = 20) -> dict[tuple[str, str, str], float]:
    """µs per call, median over ``rounds`` interleaved rounds (rotated order) of ``number`` calls each."""
    key_x, key_y = jax.random.split(jax.random.key(1))
    x = jax.random.uniform(key_x, (elements,), jnp.float32, 0.5, 2.0)
    y = jax.random.uniform(key_y, (elements,), jnp.float32, 0.5, 2.0)
    x = x.at[:2].set(0.0)  # a few singular points, so the guards do real work
    y = y.at[:1].set(0.0)
    results: dict[tuple[str, str, str], float] = {}
    for name, (make, *_) in FUNCTIONS.items():
        args = make(x, y)
        arrays = [a for a in args if isinstance(a, jax.Array)]
        scalars = args[len(arrays) :]
        variants = _variants(name)
        timed = {v: _callables((lambda f: lambda *a: f(*a, *scalars))(f), len(arrays)) for v, f in variants.items()}
        names = list(variants)
        for mode in MODES:
            for v in names:
                jax.block_until_ready(timed[v][mode](*arrays))  # compile, warm the caches
            times: dict[str, list[float]] = {v: [] for v in names}
            for round_ in range(rounds):
                for v in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    times[v].append(_microseconds(timed[v][mode], arrays, number))
            for v in names:
                results[name, v, mode] = statistics.median(times[v])
    platform = jax.devices()[0].platform
    print(
        f"\ntk.safe: µs per call on {elements} float32 elements, {platform} "
        f"(norm: {elements} 3-vectors; pow: signed=True, p = 1/2.4);"
    )
    print(f"median of {rounds} interleaved rounds of {number} calls; value+grad: jax.value_and_grad of the sum")
    print(f"{'function':<9}{'variant':<25}" + "".join(f"{m:>17}" for m in MODES))
    for name in FUNCTIONS:
        for v in _variants(name):
            print(f"{name:<9}{v:<25}" + "".join(f"{results[name, v, m]:>17.1f}" for m in MODES))
    return results


# --- part 3: does the double-where form give the rule's values and derivatives? ------------


def _ordered(a: np.ndarray) -> np.ndarray:
    """Floats mapped to integers in the same order, adjacent floats to adjacent integers."""
    ints, mask = (np.int64, 0x7FFFFFFFFFFFFFFF) if a.dtype == np.float64 else (np.int32, 0x7FFFFFFF)
    bits = a.view(ints).astype(np.int64)
    return np.where(bits < 0, -(bits & mask), bits & mask)


def _ulps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance in ulps (0 where equal, NaN included), and where just one is finite, or just one NaN."""
    a, b = np.atleast_1d(np.asarray(a)), np.atleast_1d(np.asarray(b))
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    special = (~np.isfinite(a) | ~np.isfinite(b)) & ~same
    d = np.abs((_ordered(a) - _ordered(b)).astype(float))
    d[same] = 0
    d[special] = np.inf
    return d, special


def _derivatives(f: Callable, *args: jax.Array) -> list[tuple[str, jax.Array]]:
    n = len(args)
    argnums = tuple(range(n))
    out = [("value", f(*args))]
    out += [("1st", g) for g in jax.grad(f, argnums=argnums)(*args)]
    for i in range(n):
        tangents = tuple(jnp.ones_like(a) if j == i else jnp.zeros_like(a) for j, a in enumerate(args))
        out.append(("1st", jax.jvp(f, args, tangents)[1]))
    out += [("2nd", h) for h in jax.tree.leaves(jax.hessian(f, argnums=argnums)(*args))]
    for i in range(n):
        out += [("2nd", h) for h in jax.grad(lambda *a, i=i: jax.grad(f, argnums=i)(*a), argnums=argnums)(*args)]
    return out


def _grid(dtype) -> list[float]:
    if np.dtype(dtype) == np.float32:
        extremes = [1e-30, 2e-38, 1e-40, 1e30, 3e38]  # 1e-40: subnormal (XLA flushes it to 0)
    else:
        extremes = [1e-300, 3e-308, 1e-310, 1e300, 1.7e308]
    magnitudes = [0.3, 2.0, 9.0, 1e-3, 1e4] + extremes
    return [0.0, -0.0] + magnitudes + [-m for m in magnitudes]


def _agreement(rule: Callable, candidate: Callable, points: list[tuple[float, ...]], dtype) -> tuple[dict, str]:
    """Per kind of result, the largest ulp difference and the number of finite/non-finite mismatches; an example."""
    columns = tuple(jnp.asarray(np.array(c, np.float64), dtype) for c in zip(*points, strict=True))
    labels = [label for label, _ in _derivatives(rule, *(c[0] for c in columns))]
    worst: dict[str, tuple[float, int]] = {label: (0.0, 0) for label in ("value", "1st", "2nd")}
    example = ""
    for jit in (False, True):
        forms = [jax.vmap(lambda *a, f=f: [v for _, v in _derivatives(f, *a)]) for f in (rule, candidate)]
        if jit:
            forms = [jax.jit(f) for f in forms]
        for label, a, b in zip(labels, *(f(*columns) for f in forms), strict=True):
            a, b = np.asarray(a), np.asarray(b)
            d, special = _ulps(a, b)
            finite = d[np.isfinite(d)]
            ulps, count = worst[label]
            worst[label] = (max(ulps, float(finite.max()) if finite.size else 0.0), count + int(special.sum()))
            if special.any() and not example:
                k = int(np.argmax(special))
                point = ", ".join(f"{float(c[k]):.3g}" for c in columns)
                example = f"{label} at ({point}): rule {a[k]:.3g}, double-where {b[k]:.3g}"
    return worst, example


def _cell(ulps: float, count: int) -> str:
    return f"{ulps:.0f}" if ulps <= 1e4 else ">1e4" if np.isfinite(ulps) else "inf", count


def agreement_table() -> None:
    print("\ndouble-where form against the @tk.adjoint rule over singular, ordinary and extreme points, eager and jit:")
    print("largest difference in ulps where both are finite (or both the same inf/NaN) / number of results where")
    print("one is inf or NaN and the other is not; 'same' = at most 2 ulps and no such result")
    print(
        f"{'function':<10}{'dtype':<9}{'points':>7}{'value':>14}{'1st derivs':>14}{'2nd derivs':>14}"
        "  verdict  (first mismatch)"
    )
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            grid = _grid(dtype)
            pairs = list(itertools.product(grid, repeat=2))
            powers = [0.0, 0.3, 0.5, 1.0, 1.5, 2.0, 2.4, 3.0, -1.5, -2.0]
            cases = [
                ("sqrt", rule_sqrt, dw_sqrt, [(v,) for v in grid]),
                ("cbrt", rule_cbrt, dw_cbrt, [(v,) for v in grid]),
                ("hypot", safe.hypot, dw_hypot, pairs),
                ("norm", lambda a, b: safe.norm(jnp.stack([a, b])), lambda a, b: dw_norm(jnp.stack([a, b])), pairs),
                ("atan2", safe.atan2, dw_atan2, pairs),
                ("pow", safe.pow, dw_pow, list(itertools.product(grid, powers))),
                (
                    "pow±",
                    functools.partial(safe.pow, signed=True),
                    functools.partial(dw_pow, signed=True),
                    list(itertools.product(grid, powers)),
                ),
                ("div", safe.div, dw_div, pairs),
            ]
            for name, rule, candidate, points in cases:
                worst, example = _agreement(rule, candidate, points, dtype)
                cells = "".join(f"{'{} / {}'.format(*_cell(*w)):>14}" for w in worst.values())
                same = all(ulps <= 2 and count == 0 for ulps, count in worst.values())
                print(f"{name:<10}{dtype:<9}{len(points):>7}{cells}  {'same' if same else 'differs'}  {example}")


def main(part: str = "all", size: int = 10**7, repeats: int = 11, elements: int = 1000) -> None:
    if part in ("all", "vjp"):
        vjp_table(size, repeats)
    if part in ("all", "safe"):
        safe_table(elements)
    if part in ("all", "agree"):
        agreement_table()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "vjp", "safe", "agree"), default="all")
    parser.add_argument("--size", type=int, default=10**7, help="part 1: elements")
    parser.add_argument("--repeats", type=int, default=11, help="part 1: runs per round")
    parser.add_argument("--elements", type=int, default=1000, help="part 2: elements")
    options = parser.parse_args()
    main(options.part, options.size, options.repeats, options.elements)

"""Cost of ``@tk.adjoint`` against a hand-written ``jax.custom_vjp`` and plain ``jnp.sqrt``.

Times ``jax.grad(lambda x: jnp.sum(sqrt(x)))`` on 10^7 float32 elements, jitted
(the way gradients run in practice) and, for reference, eagerly, all in one
process. Each variant is timed as the median of R runs after a warm-up run, in
six rounds interleaved with the other variants (in a rotated order each round)
so that load from other processes hits all of them alike; the table shows each
variant's median round (a best round would let one quiet moment decide the ratio).
The target: ``@tk.adjoint`` within 1.1x of the hand-written ``custom_vjp`` (jitted).
Timings on a shared machine are noisy, so the script also compares the two
optimised XLA programs: when they are the same, any time difference is noise.

Run: python benchmarks/adjoint_overhead.py [--size N] [--repeats R]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp

import toolkit as tk


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


def main(size: int = 10**7, repeats: int = 11) -> dict[str, dict[str, float]]:
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
    print(f"jax.grad(lambda x: jnp.sum(sqrt(x))), {size:.0e} float32 on {platform}, median of {ROUNDS} medians of {repeats}")
    print(f"{'sqrt':<16}{'mode':<7}{'ms':>9}{'vs custom_vjp':>15}{'vs jnp.sqrt':>13}")
    for mode, times in results.items():
        for name, seconds in times.items():
            print(
                f"{name:<16}{mode:<7}{seconds * 1e3:>9.2f}"
                f"{seconds / times['jax.custom_vjp']:>14.2f}x{seconds / times['jnp.sqrt']:>12.2f}x"
            )
    ratio = results["jit"]["@tk.adjoint"] / results["jit"]["jax.custom_vjp"]
    print(f"ratio @tk.adjoint / custom_vjp (jit): {ratio:.3f}  (target <= 1.1): {'met' if ratio <= 1.1 else 'NOT met'}")
    same = compiled_program(adjoint_sqrt, size) == compiled_program(custom_vjp_sqrt, size)
    print(f"XLA compiles both gradients to the same program (debug info aside): {same}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10**7)
    parser.add_argument("--repeats", type=int, default=11)
    options = parser.parse_args()
    main(options.size, options.repeats)

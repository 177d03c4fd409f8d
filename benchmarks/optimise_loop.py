"""The seed problem as a speed test: ``tk.optimise`` against the loops people write by hand.

The seed problem: a random 3x3 ``z`` moved onto ``z′`` by Flux's Momentum
(η = 0.01, ρ = 0.9), loss ``mse(z·x, z′·x)`` with a fresh ``x = rand(3)`` every
step, 10^5 steps. Contenders, all timed in this one process after compiling:

* ``tk.optimise`` — repeat calls with the same loss, optimiser and sampler
  objects (so the compiled loop is reused) from another starting point each time;
* the straightforward hand-written JAX loop: one jitted ``lax.scan`` whose step
  splits the key and draws ``x`` with ``jax.random.uniform(k, (3,))`` (default key type);
* the same scan with every ``x`` drawn beforehand (the arithmetic alone, a floor);
* a Python ``for`` loop calling a jitted step (fewer steps, timed per step);
* PyTorch eager, ``torch.optim.SGD(momentum=0.9)`` (the same rule at constant η),
  when torch is importable (fewer steps, timed per step).

Each contender is timed in interleaved rounds, so load from other processes hits
all of them alike; a row shows the median wall-clock time over rounds, the best
round, and the median process CPU time (all threads), which a busy machine
inflates less than wall-clock time. Ratios are printed for both.
Targets: tk.optimise >= 5x faster than the hand-written scan, >= 100x faster
than the Python loop; first call (trace + compile + run) < 2 s.

Run: python benchmarks/optimise_loop.py [--steps N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jax
import numpy as np
import optax

import toolkit as tk

K1, K2 = jax.random.split(jax.random.key(1))
Z0 = jax.random.uniform(K1, (3, 3))
Z_TARGET = jax.random.uniform(K2, (3, 3))
KEY = jax.random.key(0)
MOMENTUM = tk.Momentum()


def loss(z: jax.Array, x: jax.Array) -> jax.Array:
    return tk.mse(z @ x, Z_TARGET @ x)


def rand3(key: jax.Array) -> jax.Array:
    return jax.random.uniform(key, (3,))


def hand_written_step(z, state, key):
    key, k = jax.random.split(key)
    x = jax.random.uniform(k, (3,))
    g = jax.grad(loss)(z, x)
    updates, state = MOMENTUM.update(g, state, z)
    return optax.apply_updates(z, updates), state, key


def make_hand_written_scan(steps: int) -> Callable:
    @jax.jit
    def run(z, key):
        def step(carry, _):
            return hand_written_step(*carry), None

        (z, _, _), _ = jax.lax.scan(step, (z, MOMENTUM.init(z), key), length=steps)
        return z

    return run


@jax.jit
def predrawn_scan(z, xs):
    def step(carry, x):
        z, state = carry
        updates, state = MOMENTUM.update(jax.grad(loss)(z, x), state, z)
        return (optax.apply_updates(z, updates), state), None

    return jax.lax.scan(step, (z, MOMENTUM.init(z)), xs)[0][0]


def python_loop(steps: int) -> Callable:
    step = jax.jit(hand_written_step)

    def run(z, key):
        state = MOMENTUM.init(z)
        for _ in range(steps):
            z, state, key = step(z, state, key)
        return z

    return run


def torch_loop(steps: int) -> Callable | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    target = torch.tensor(np.asarray(Z_TARGET))

    def run(z, key):
        z = torch.tensor(np.asarray(z), requires_grad=True)
        opt = torch.optim.SGD([z], lr=0.01, momentum=0.9)
        for _ in range(steps):
            x = torch.rand(3)
            opt.zero_grad()
            torch.mean((z @ x - target @ x) ** 2).backward()
            opt.step()
        return z.detach().numpy()

    return run


def timed(f: Callable, *args) -> float:
    began = time.perf_counter()
    jax.block_until_ready(f(*args))
    return time.perf_counter() - began


def timed_both(f: Callable, *args) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(f(*args))
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10**5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slow-steps", type=int, default=5000, help="steps for the Python and torch loops")
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch row")
    args = parser.parse_args()
    n, slow = args.steps, args.slow_steps

    def optimise(z, key):
        return tk.optimise(loss, z, MOMENTUM, steps=n, data=rand3, key=key).params

    first = timed(optimise, Z0, KEY)
    assert bool(tk.tree.isapprox(optimise(Z0 + 0.5, KEY), Z_TARGET)), "tk.optimise did not converge"
    hand = make_hand_written_scan(n)
    hand_compile = timed(hand, Z0, KEY)
    xs = jax.random.uniform(jax.random.key(2), (n, 3))
    timed(predrawn_scan, Z0, xs)
    contenders: dict[str, tuple[Callable, tuple, int]] = {
        "tk.optimise (repeat call)": (optimise, (Z0 + 0.25, KEY), n),
        "hand-written lax.scan, RNG in step": (hand, (Z0, KEY), n),
        "lax.scan, x pre-drawn (floor)": (predrawn_scan, (Z0, xs), n),
        "Python loop of a jitted step": (python_loop(slow), (Z0, KEY), slow),
    }
    torch_run = None if args.no_torch else torch_loop(slow)
    if torch_run is not None:
        contenders["PyTorch eager, SGD momentum"] = (torch_run, (Z0, KEY), slow)
    for f, a, _ in contenders.values():
        timed(f, *a)  # warm up

    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, (f, a, steps) in contenders.items():
            w, c = timed_both(f, *a)
            wall[name].append(w / steps)
            cpu[name].append(c / steps)

    ours = "tk.optimise (repeat call)"
    ours_wall, ours_cpu = statistics.median(wall[ours]), statistics.median(cpu[ours])
    print(f"Seed problem: 3x3 z, Momentum, fresh x each step; {n} steps (Python/torch loops: {slow} steps, per step)")
    print(f"{jax.devices()}, {args.rounds} interleaved rounds; times in µs per step\n")
    print(f"{'loop':36s} {'wall':>9s} {'best':>9s} {'CPU':>9s} {'tk.optimise faster by':>24s}")
    print(f"{'':36s} {'median':>9s} {'round':>9s} {'median':>9s} {'(wall)':>11s} {'(CPU)':>12s}")
    for name in contenders:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(
            f"{name:36s} {w * 1e6:9.4f} {min(wall[name]) * 1e6:9.4f} {c * 1e6:9.4f} {w / ours_wall:10.1f}x {c / ours_cpu:11.1f}x"
        )
    if torch_run is None:
        print(
            f"{'PyTorch eager, SGD momentum':36s} {'left out (--no-torch)' if args.no_torch else 'torch not installed'}"
        )
    ours_run, hand_run = ours_wall * n, statistics.median(wall["hand-written lax.scan, RNG in step"]) * n
    print("\nCompile / first call (wall seconds; compile = first call minus the median repeat call):")
    print(f"  tk.optimise first call (trace + compile + {n} steps): {first:.2f} s (target < 2 s)")
    print(f"  tk.optimise trace + compile:                          {first - ours_run:.2f} s")
    print(f"  hand-written scan first call (compile + run):        {hand_compile:.2f} s")
    print(f"  hand-written scan compile:                            {hand_compile - hand_run:.2f} s")
    hand = "hand-written lax.scan, RNG in step"
    loop = "Python loop of a jitted step"
    verdict = [
        (
            ">= 5x vs hand-written scan",
            statistics.median(wall[hand]) / ours_wall,
            statistics.median(cpu[hand]) / ours_cpu,
            5,
        ),
        (
            ">= 100x vs Python loop",
            statistics.median(wall[loop]) / ours_wall,
            statistics.median(cpu[loop]) / ours_cpu,
            100,
        ),
    ]
    print("\nTargets:")
    for label, by_wall, by_cpu, target in verdict:
        print(
            f"  {label}: {by_wall:.1f}x wall, {by_cpu:.1f}x CPU -> {'met' if min(by_wall, by_cpu) >= target else 'NOT met'}"
        )
    if torch_run is not None:
        torch = "PyTorch eager, SGD momentum"
        by_wall, by_cpu = statistics.median(wall[torch]) / ours_wall, statistics.median(cpu[torch]) / ours_cpu
        print(
            f"  faster than PyTorch eager: {by_wall:.1f}x wall, {by_cpu:.1f}x CPU -> {'met' if min(by_wall, by_cpu) > 1 else 'NOT met'}"
        )
    print(f"  first call < 2 s: {first:.2f} s -> {'met' if first < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()

"""The Flux way at compiled speed: plain Python loops of ``tk.gradient`` + ``tk.update`` against the alternatives.

The seed's problems, written as plain loops (µs per step, medians of interleaved
rounds, one process):

* implicit: ``gs = tk.gradient(lambda: tk.mse(z.value @ x, target @ x), ps); tk.update_(opt, ps, gs)``
  (Momentum, a 3x3 ``z``, a fresh ``x`` each step, a new lambda each step);
* explicit: ``(g,) = tk.gradient(lambda z: tk.mse(z @ x, target @ x), z); z, state = tk.update(opt, state, z, g)``;
* struct: the seed's ``GG`` struct moved onto another with Momentum;
* colour: the seed's colour loop, ``colour - η * gradient of colordiff(red, colour)``.

Each loop runs as: toolkit (compiled and cached, the default), toolkit inside
``with tk.eager():`` (plain JAX re-traced on every call: what toolkit did before
it compiled), eager ``jax.grad`` + optax, and the hand-written best a user can do
without restructuring into a scan: one ``jax.jit``-ed step function, called in
the same Python loop; and the same with the gradient and the update jitted
separately and called one after the other ("hand-jitted, 2 calls"), the shape
of the plain loop, run as written. Toolkit's loops run one program a step from
the second step on (``tk.gradient(f, ps)`` + ``tk.update_`` through
``toolkit.deferred``; the explicit ``tk.gradient`` + ``tk.update`` through
``toolkit.ahead``), so they can go below that; so does the colour loop, whose struct
arithmetic (``colour - η * g``) is worked out in its gradient's program too
(``toolkit.ahead``). The fresh ``x`` is drawn the same way in every variant, in
two modes: ``numpy`` (rows of a NumPy array drawn up front: the loop's own cost)
and ``jax.random`` (``jax.random.uniform(jax.random.fold_in(key, i), (3,))`` each
step, as the issue's loop does; eager JAX dispatch makes that draw cost about as
much as the step). PyTorch eager is timed too if it is installed.

Targets (issue 10): toolkit ≥ 100x faster than toolkit eager and than eager
``jax.grad`` + optax, and ≤ 2x the hand-jitted loop. Also printed: the fixed
per-call overhead of the compile cache (a ``tk.gradient`` call against the jitted
gradient it runs), and the seed's literal 10^5-step loop, timed whole.

Run: python benchmarks/eager_loop.py [--rounds R] [--steps N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import toolkit as tk
from toolkit.colour import RGB, colordiff

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/_record.py
from _record import record  # noqa: E402

TARGET_KEY, START_KEY, X_KEY = jax.random.split(jax.random.key(0), 3)
TARGET = jax.random.uniform(TARGET_KEY, (3, 3))
Z0 = jax.random.uniform(START_KEY, (3, 3))


@tk.struct
class GG:
    a: jax.Array
    b: jax.Array


GG_START = GG(jax.random.uniform(jax.random.key(1), (3, 3)), jax.random.uniform(jax.random.key(2), (3, 3)))
GG_TARGET = GG(jax.random.uniform(jax.random.key(3), (3, 3)), jax.random.uniform(jax.random.key(4), (3, 3)))
RED, WHITE, ETA = RGB(1.0, 0.0, 0.0), RGB(1.0, 1.0, 1.0), 0.001


class Draws:
    """The fresh ``x`` of step ``i``, the same way for every variant."""

    def __init__(self, mode: str, steps: int):
        self.mode = mode
        self.rows = np.asarray(jax.random.uniform(X_KEY, (steps, 3)))

    def __call__(self, i: int):
        if self.mode == "numpy":
            return self.rows[i]
        return jax.random.uniform(jax.random.fold_in(X_KEY, i), (3,))


def mse_loss(z, x):
    return tk.mse(z @ x, TARGET @ x)


# --- the loops: each returns a function running `steps` steps (state kept across rounds) ----------------


def implicit_tk(draws: Draws) -> Callable[[int, int], None]:
    z = tk.Param(Z0)
    ps, opt = tk.Params([z]), tk.Momentum()

    def run(start: int, steps: int) -> None:
        for i in range(start, start + steps):
            x = draws(i)
            gs = tk.gradient(lambda: tk.mse(z.value @ x, TARGET @ x), ps)
            tk.update_(opt, ps, gs)
        jax.block_until_ready(z.value)

    return run


def explicit_tk(draws: Draws) -> Callable[[int, int], None]:
    opt = tk.Momentum()
    box = {"z": Z0, "state": tk.setup(opt, Z0)}

    def run(start: int, steps: int) -> None:
        z, state = box["z"], box["state"]
        for i in range(start, start + steps):
            x = draws(i)
            (g,) = tk.gradient(lambda z: tk.mse(z @ x, TARGET @ x), z)
            z, state = tk.update(opt, state, z, g)
        box["z"], box["state"] = jax.block_until_ready(z), state

    return run


def struct_tk(draws: Draws) -> Callable[[int, int], None]:
    opt = tk.Momentum()
    box = {"a": GG_START, "state": tk.setup(opt, GG_START)}

    def run(start: int, steps: int) -> None:
        a, state = box["a"], box["state"]
        for _ in range(start, start + steps):
            (g,) = tk.gradient(lambda x: tk.tree.sum((x - GG_TARGET) * (x - GG_TARGET)) / 9, a)
            a, state = tk.update(opt, state, a, g)
        box["a"], box["state"] = jax.block_until_ready(a), state

    return run


def colour_tk(draws: Draws) -> Callable[[int, int], None]:
    box = {"c": WHITE}

    def run(start: int, steps: int) -> None:
        colour = box["c"]
        for i in range(start, start + steps):
            if i % 51 == 0:
                colour = WHITE  # the seed's 51 steps, again and again
            (g,) = tk.gradient(lambda y: colordiff(RED, y, reference_white="space"), colour)
            colour = colour - ETA * g
        box["c"] = jax.block_until_ready(colour)

    return run


def eager(make: Callable) -> Callable:
    def made(draws: Draws) -> Callable[[int, int], None]:
        run = make(draws)

        def eager_run(start: int, steps: int) -> None:
            with tk.eager():
                run(start, steps)

        return eager_run

    return made


def _optax_loop(problem: str, make_step: Callable) -> Callable:
    """A Python loop of ``p, s = step(p, s, x)`` with optax's rule for the problem; ``make_step(loss, opt)``."""
    loss, start = _plain(problem)
    opt = optax.sgd(ETA) if problem == "colour" else optax.sgd(0.01, momentum=0.9)
    step = make_step(loss, opt)

    def made(draws: Draws) -> Callable[[int, int], None]:
        box = {"p": start, "s": opt.init(start)}

        def run(first: int, steps: int) -> None:
            p, s = box["p"], box["s"]
            for i in range(first, first + steps):
                p, s = step(p, s, draws(i))
            box["p"], box["s"] = jax.block_until_ready(p), s

        return run

    return made


def _plain_step(loss: Callable, opt: optax.GradientTransformation) -> Callable:
    def step(p, s, x):
        u, s = opt.update(jax.grad(loss)(p, x), s, p)
        return optax.apply_updates(p, u), s

    return step


def jax_optax_eager(problem: str) -> Callable:
    """Eager ``jax.grad`` + optax: JAX traces the gradient again every step."""
    return _optax_loop(problem, _plain_step)


def hand_jitted(problem: str) -> Callable:
    """One ``jax.jit``-ed step function, called in the Python loop."""
    return _optax_loop(problem, lambda loss, opt: jax.jit(_plain_step(loss, opt)))


def hand_jitted_two(problem: str) -> Callable:
    """The hand-jitted loop with the plain loop's shape: a jitted gradient, then a jitted update (two dispatches,
    as ``tk.gradient`` then ``tk.update`` are two calls), run as written."""

    def make_step(loss: Callable, opt: optax.GradientTransformation) -> Callable:
        gradient = jax.jit(jax.grad(loss))

        @jax.jit
        def update(p, s, g):
            u, s = opt.update(g, s, p)
            return optax.apply_updates(p, u), s

        return lambda p, s, x: update(p, s, gradient(p, x))

    return _optax_loop(problem, make_step)


def _plain(problem: str) -> tuple[Callable, object]:
    if problem in ("implicit", "explicit"):
        return mse_loss, Z0
    if problem == "struct":
        return (lambda a, x: tk.tree.sum((a - GG_TARGET) * (a - GG_TARGET)) / 9), GG_START
    return (lambda c, x: colordiff(RED, c, reference_white="space")), WHITE


def torch_loop(problem: str) -> Callable | None:
    try:
        import torch
    except ImportError:
        return None
    if problem not in ("implicit", "explicit"):
        return None
    z = torch.tensor(np.asarray(Z0), requires_grad=True)
    target = torch.tensor(np.asarray(TARGET))
    opt = torch.optim.SGD([z], lr=0.01, momentum=0.9)

    def made(draws: Draws) -> Callable[[int, int], None]:
        def run(first: int, steps: int) -> None:
            for i in range(first, first + steps):
                x = torch.as_tensor(np.asarray(draws(i)))
                opt.zero_grad()
                torch.mean((z @ x - target @ x) ** 2).backward()
                opt.step()

        return run

    return made


TOOLKIT = {"implicit": implicit_tk, "explicit": explicit_tk, "struct": struct_tk, "colour": colour_tk}


def variants(problem: str) -> dict[str, Callable | None]:
    return {
        "toolkit": TOOLKIT[problem],
        "toolkit eager": eager(TOOLKIT[problem]),
        "jax.grad+optax eager": jax_optax_eager(problem),
        "hand-jitted step": hand_jitted(problem),
        "hand-jitted, 2 calls": hand_jitted_two(problem),
        "pytorch eager": torch_loop(problem),
    }


def measure(problem: str, mode: str, rounds: int, steps: int) -> dict[str, float]:
    """µs per step of each variant: the median over interleaved rounds (eager variants run fewer steps)."""
    draws = Draws(mode, 10**6)
    runs = {name: make(draws) for name, make in variants(problem).items() if make is not None}
    counts = {name: (max(steps // 40, 5) if "eager" in name else steps) for name in runs}
    clock = {name: 0 for name in runs}
    for name, run in runs.items():  # warm-up: compiles
        run(0, 2)
        clock[name] = 2
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        order = list(runs)[r % len(runs) :] + list(runs)[: r % len(runs)]
        for name in order:
            began = time.perf_counter()
            runs[name](clock[name], counts[name])
            times[name].append((time.perf_counter() - began) / counts[name] * 1e6)
            clock[name] += counts[name]
    return {name: statistics.median(t) for name, t in times.items()}


def overhead(rounds: int) -> tuple[float, float]:
    """µs per call of ``tk.gradient(f, x)`` and of the jitted gradient it amounts to."""
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    x = jnp.ones(3)
    jitted = jax.jit(lambda x: jax.grad(f)(x))
    tk.gradient(f, x), jitted(x)
    results: dict[str, list[float]] = {"tk": [], "jit": []}
    for _ in range(rounds):
        for name, call in (("tk", lambda: tk.gradient(f, x)), ("jit", lambda: jitted(x))):
            began = time.perf_counter()
            for _ in range(2000):
                call()
            results[name].append((time.perf_counter() - began) / 2000 * 1e6)
    return statistics.median(results["tk"]), statistics.median(results["jit"])


def seed_literal(steps: int) -> tuple[float, bool]:
    """The seed's first loop as written (NumPy's ``rand(3)`` each step), ``steps`` steps, timed whole."""
    rng = np.random.default_rng(0)
    z = tk.Param(Z0)
    ps, opt = tk.Params([z]), tk.Momentum()
    began = time.perf_counter()
    for _ in range(steps):
        x = rng.random(3, dtype=np.float32)
        gs = tk.gradient(lambda: tk.mse(z.value @ x, TARGET @ x), ps)
        tk.update_(opt, ps, gs)
    jax.block_until_ready(z.value)
    return time.perf_counter() - began, bool(tk.tree.isapprox(z.value, TARGET))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=2000, help="steps per round (eager variants: steps/40)")
    parser.add_argument("--seed-steps", type=int, default=10**5)
    parser.add_argument("--quick", action="store_true", help="a tiny run (for the test suite)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps, args.seed_steps = 2, 40, 200
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"eager-loop benchmark: {jax.devices()}, jax {jax.__version__}, {os.cpu_count()} CPUs, load {load:.2f}")
    print("µs per step, medians of interleaved rounds; ratio = variant / toolkit (so 'toolkit eager' 40x = 40x slower)")
    print()
    header = f"{'problem':9} {'x drawn by':10} {'variant':22} {'µs/step':>9} {'ratio':>8}  target"
    print(header)
    for problem in TOOLKIT:
        for mode in ("numpy", "jax.random"):
            if problem in ("struct", "colour") and mode == "jax.random":
                continue  # no fresh x in these loops
            times = measure(problem, mode, args.rounds, args.steps)
            base = times["toolkit"]
            for name, t in times.items():
                ratio = t / base
                target = _verdict(name, ratio)
                _record(problem, mode, name, t, ratio)
                print(f"{problem:9} {mode:10} {name:22} {t:9.1f} {ratio:7.1f}x  {target}")
        if variants(problem)["pytorch eager"] is None and problem == "implicit":
            print(f"{'':9} {'':10} {'pytorch eager':22} {'(not installed)':>18}")
    print()
    tk_us, jit_us = overhead(args.rounds)
    print(
        f"fixed overhead per call: tk.gradient {tk_us:.1f} µs against the jitted gradient alone {jit_us:.1f} µs: "
        f"{tk_us - jit_us:.1f} µs for capturing the call and finding its program"
    )
    record("tk.gradient: fixed overhead per call", tk_us - jit_us, "µs")
    seconds, close = seed_literal(args.seed_steps)
    print(f"the seed's literal loop, {args.seed_steps} steps: {seconds:.2f} s, z ≈ z′: {close}")
    record(f"the seed's literal loop, {args.seed_steps} steps", seconds, "s", "< 10 s, z ≈ z′", seconds < 10 and close)


def _record(problem: str, mode: str, name: str, t: float, ratio: float) -> None:
    where = f"{problem}, x by {mode}"
    if name in ("toolkit eager", "jax.grad+optax eager"):
        record(f"{where}: {name} / toolkit", ratio, "x", ">= 100x", ratio >= 100)
    elif name == "hand-jitted step":
        record(f"{where}: toolkit / hand-jitted step", 1 / ratio, "x", "<= 2x", 1 / ratio <= 2)
    elif name == "hand-jitted, 2 calls":
        record(f"{where}: toolkit / hand-jitted gradient + update (2 calls)", 1 / ratio, "x")
    elif name == "toolkit":
        record(f"{where}: toolkit", t, "µs/step")


def _verdict(name: str, ratio: float) -> str:
    if name in ("toolkit eager", "jax.grad+optax eager"):
        return f">=100x slower: {'met' if ratio >= 100 else 'NOT met'}"
    if name == "hand-jitted step":
        return f"toolkit <= 2x: {'met' if 1 / ratio <= 2 else 'NOT met'} ({1 / ratio:.2f}x)"
    if name == "hand-jitted, 2 calls":
        return f"(toolkit / it: {1 / ratio:.2f}x; two dispatches a step)"
    return ""


if __name__ == "__main__":
    main()

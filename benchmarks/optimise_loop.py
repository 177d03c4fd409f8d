"""``tk.optimise`` against the loops a JAX expert writes by hand, from 10^2 to 10^7 parameters.

Everything runs in this one process, after compiling. Each contender is timed
with ``time.perf_counter`` around a call ended by ``jax.block_until_ready``, in
rounds that interleave the contenders (alternating their order each round), so
load from other processes hits all of them alike; a row shows medians over
rounds of wall-clock time and of process CPU time (all threads), and the ratio
of ``tk.optimise`` to its competitor in both. Arguments (fresh copies of the
starting parameters) are made outside the timed region. A timed call that
traces or compiles anything is flagged ("recompiled"), since it would no longer
measure the loop alone. Every ``tk.optimise`` call passes ``progress=False``.

Part 1, scaling (``--part scaling``). Parameter counts 10^2, 10^4, 10^6, 10^7:

* least squares: parameters a d x d matrix ``W`` (d = 10, 100, 1000, 3163),
  data ``X``: 2048 examples x d (standard normal), ``Y = X W*``;
  loss ``mse(X_b W, Y_b)``;
* MLP: ``tanh(x W1 + b1) W2 + b2``, d -> h -> d with the same d and data and
  the hidden width h chosen so the count matches (h = 4, 49, 499, 1580);

each with minibatches (``batch_size=8``: each epoch of 256 steps visits a fresh
permutation ``jax.random.permutation(jax.random.fold_in(key, epoch), 2048)`` in
slices of 8, as ``tk.optimise`` documents) and full batch (every step sees all
2048 examples: ``data`` is the arrays with a leading axis of length 1, one
"example" being the whole set), with ``tk.Adam(1e-3)`` (optax.adam) and
``tk.Momentum(0.01, 0.9)``; 256 steps. The competitor, "expert": one
``jax.jit`` of ``opt.init`` and a ``lax.scan`` of ``jax.grad`` + ``opt.update`` +
``optax.apply_updates``, no divergence guard, the parameters donated, the data
passed as arguments, compiled ahead of time (``.lower(...).compile()``, whose
calls dispatch a little faster than a ``jax.jit`` function's); for minibatches
it draws the same per-epoch permutations inside the jitted function (one
``vmap`` over epochs) and gathers each step's rows in the step, so both do the
same work on the same samples. Each row checks
once that the two final parameters agree to float32 tolerance (relative
2-norm <= 1e-4) and prints a warning if not (an unfair comparison). Targets:
<= 1.10x at 10^6 and 10^7, <= 1.2x at 10^2 and 10^4. The number of timed
rounds (at most ``--rounds``, 15) shrinks with the cost of a run to fit about
``--row-seconds`` (8 s) per row, but is at least 1. Full batch at 10^7 (about
50-65 s per run on a 2-core CPU, 3 runs per row) is left out unless ``--all``.
On a loaded machine wall-clock ratios scatter; the CPU-time ratio is steadier.

Part 2, the seed problem (``--part seed``): a random 3x3 ``z`` moved onto ``z′``
by ``tk.Momentum(0.01, 0.9)``, loss ``mse(z·x, z′·x)``, a fresh ``x = uniform(3)``
each step, 10^5 steps, in µs per step:

* ``tk.optimise(loss, z, opt, steps=10**5, data=lambda key: uniform(key, (3,)), key=key)``;
* (a) expert: one jitted function drawing every ``x`` in one vectorised call,
  ``jax.random.uniform(key, (steps, 3))``, then scanning over them;
* (b) the arithmetic floor: the scan alone, over ``x`` drawn before the timed
  call (the very samples ``tk.optimise`` draws, ``uniform(fold_in(key, s), (3,))``,
  so the final ``z`` must match ``tk.optimise``'s);
* (c) the old hand-written scan that splits the key and draws ``x`` in each step;
* (d) a Python ``for`` loop calling a jitted step (5000 steps, per step).

(a) and (c) draw other samples, so for them the check is that they reach ``z′``.
Targets: ``tk.optimise`` <= 1.2x (a) and <= 2x (b).

Part 3, the fixed cost of a call (``--part fixed``): ``tk.optimise`` with
``steps=1`` on the seed problem (repeat calls, so the compiled loop is reused)
against one call of a jitted function that draws ``x``, builds the optimiser
state and takes one step. Target: half today's cost. Today's, measured on the
engine at commit 60eb893 (before the rewrite) on the 2-core CPU this was
written on: ``tk.optimise(steps=1)`` BASELINE_CALL_US = 285 µs, the jitted step
BASELINE_STEP_US = 7.6 µs (37x).

Part 4, blocks (``--part blocks``): ``tk.optimise`` for 200, 256, 257 and 512
steps on the 10^4 least squares, Adam, minibatches of 8, and the expert loop of
part 1 for the same step counts; a run must cost what its steps cost, never a
whole extra block (257 steps were once as dear as 512). An epoch is 256 steps
here, so the 257th step draws a second permutation of the 2048 examples (about
0.6 ms on the 2-core CPU), by hand too. Target: ``t(s) / t(256)`` at most the
expert's own ``t(s) / t(256)`` + 0.1, for s = 200 and 257.

Part 5, the first call (``--part first``): trace + compile + run of
``tk.optimise`` against a hand-written scan's first call (the expert loops of
parts 1 and 2), for the seed problem (10^5 steps) and the 10^6 least squares
(Adam, minibatches of 8, 256 steps); each measured after ``jax.clear_caches()``
with a fresh loss function (and optimiser, and sampler) object, so nothing is
cached. Target: <= 1.5x.

Run: python benchmarks/optimise_loop.py [--part P] [--quick] [--all]
(default: 4 to 8 minutes on a 2-core CPU, depending on the engine and the
load; ``--quick``: sizes 10^2 and 10^4, fewer rounds, about 30 s; ``--all``:
full batch at 10^7 too, about 12 minutes more).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import toolkit as tk

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/_record.py
from _record import record  # noqa: E402

BASELINE_CALL_US = 285.0  # tk.optimise(steps=1), seed problem, commit 60eb893, 2-core CPU
BASELINE_STEP_US = 7.6  # the hand-written jitted single step, same run

EXAMPLES, BATCH, STEPS = 2048, 8, 256
TOLERANCE = 1e-4  # relative 2-norm difference of final parameters counted as "the same"
SIZES = {2: 10, 4: 100, 6: 1000, 7: 3163}  # log10(parameter count) -> d
HIDDEN = {2: 4, 4: 49, 6: 499, 7: 1580}  # MLP hidden width with about the same count
TARGETS = {2: 1.2, 4: 1.2, 6: 1.1, 7: 1.1}
OPTIMISERS: dict[str, Callable[[], optax.GradientTransformation]] = {
    "Adam": lambda: tk.Adam(1e-3),
    "Momentum": lambda: tk.Momentum(0.01, 0.9),
}

# --- timing -------------------------------------------------------------------------------------

_EVENTS = [0]  # traces and compiles seen so far


def _count_event(event: str, duration_secs: float, **_: Any) -> None:
    if event.endswith(("backend_compile_duration", "jaxpr_trace_duration")):
        _EVENTS[0] += 1


@dataclasses.dataclass(frozen=True)
class Contender:
    """``run(*make_args())`` is timed; ``make_args`` (fresh inputs) is not."""

    run: Callable[..., Any]
    make_args: Callable[[], tuple] = tuple
    per: int = 1  # divide times by this (steps, or calls per timed sample)


@dataclasses.dataclass
class Timing:
    wall: list[float] = dataclasses.field(default_factory=list)
    cpu: list[float] = dataclasses.field(default_factory=list)
    recompiled: int = 0  # timed calls that traced or compiled
    out: Any = None  # the last call's output

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def call(c: Contender) -> tuple[float, float, Any, bool]:
    """(wall s, CPU s) per ``c.per``, the output, and whether anything was traced or compiled."""
    args = jax.block_until_ready(c.make_args())
    events = _EVENTS[0]
    wall, cpu = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(c.run(*args))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / c.per, cpu / c.per, out, _EVENTS[0] != events


def interleaved(contenders: dict[Any, Contender], rounds: int, budget: float | None = None) -> dict[Any, Timing]:
    """Time each contender in up to ``rounds`` rounds, the order reversed every other round.

    With a ``budget`` (seconds), the first round's duration caps the number of rounds to fit it.
    """
    timings = {name: Timing() for name in contenders}
    names = list(contenders)
    r = 0
    while r < rounds:
        began = time.perf_counter()
        for name in names if r % 2 == 0 else names[::-1]:
            timing = timings[name]
            wall, cpu, timing.out, compiled = call(contenders[name])
            timing.wall.append(wall)
            timing.cpu.append(cpu)
            timing.recompiled += compiled
        if r == 0 and budget is not None:
            rounds = max(1, min(rounds, int(budget / (time.perf_counter() - began))))
        r += 1
    return timings


def warm_up(contenders: dict[Any, Contender]) -> dict[Any, Any]:
    """Call each contender once (compiling it); their outputs."""
    return {name: call(c)[2] for name, c in contenders.items()}


def rel_diff(a: Any, b: Any) -> float:
    """The largest relative 2-norm difference over the leaves of two pytrees."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return max(float(jnp.linalg.norm(x - y) / jnp.maximum(jnp.linalg.norm(y), 1e-30)) for x, y in pairs)


def fresh(tree: Any) -> Any:
    return jax.tree.map(jnp.copy, tree)


def flag(t: Timing) -> str:
    return f"  (recompiled in {t.recompiled} timed calls!)" if t.recompiled else ""


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --- the expert loops ---------------------------------------------------------------------------


def epoch_rows(key: jax.Array, n: int, batch: int, steps: int) -> jax.Array:
    """Each step's example indices: per epoch a fresh permutation from ``fold_in(key, epoch)``, in slices."""
    per_epoch = n // batch
    epochs = -(-steps // per_epoch)
    perms = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(key, e), n))(jnp.arange(epochs))
    return perms[:, : per_epoch * batch].reshape(epochs * per_epoch, batch)[:steps]


def expert_loop(
    loss: Callable, opt: optax.GradientTransformation, steps: int, batch: int | None, record: bool = True
) -> Callable:
    """``run(params, X, Y, key)``: ``steps`` steps on all examples (``batch=None``) or on shuffled minibatches.

    With ``record`` (the default) it also returns every step's loss, as ``tk.optimise`` does; without, it
    computes only gradients (``jax.grad``), the least work that moves the parameters.
    """

    def update(carry, sample):
        params, state = carry
        if record:
            value, grads = jax.value_and_grad(loss)(params, sample)
        else:
            value, grads = None, jax.grad(loss)(params, sample)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value

    def run(params, X, Y, key):
        if batch is None:
            step = lambda carry, _: update(carry, (X, Y))
            rows = None
        else:
            step = lambda carry, r: update(carry, (X[r], Y[r]))
            rows = epoch_rows(key, X.shape[0], batch, steps)
        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), rows, length=steps)
        return (params, losses) if record else params

    return jax.jit(run, donate_argnums=0)


# --- part 1: scaling ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Problem:
    name: str
    loss: Callable
    params: Any
    X: jax.Array
    Y: jax.Array


def make_lsq_loss() -> Callable:
    return lambda W, sample: tk.mse(sample[0] @ W, sample[1])


def make_mlp_loss() -> Callable:
    def loss(p, sample):
        x, y = sample
        return tk.mse(jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"], y)

    return loss


def make_problem(kind: str, size: int) -> Problem:
    d = SIZES[size]
    kx, kw, k1, k2, k0 = jax.random.split(jax.random.key(size), 5)
    X = jax.random.normal(kx, (EXAMPLES, d))
    Y = X @ (jax.random.normal(kw, (d, d)) / np.sqrt(d))
    if kind == "lsq":
        return Problem("least squares", make_lsq_loss(), 0.1 * jax.random.normal(k0, (d, d)) / np.sqrt(d), X, Y)
    h = HIDDEN[size]
    params = {
        "w1": jax.random.normal(k1, (d, h)) / np.sqrt(d),
        "b1": jnp.zeros(h),
        "w2": jax.random.normal(k2, (h, d)) / np.sqrt(h),
        "b2": jnp.zeros(d),
    }
    return Problem("MLP", make_mlp_loss(), params, X, Y)


def count(params: Any) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(params))


def scaling_pair(problem: Problem, opt: optax.GradientTransformation, batch: int | None, key: jax.Array):
    """The two contenders of one row: tk.optimise and the expert loop, on the same samples."""
    if batch is None:
        data, extra = (problem.X[None], problem.Y[None]), {}
    else:
        data, extra = (problem.X, problem.Y), {"batch_size": batch, "key": key}
    params, X, Y = problem.params, problem.X, problem.Y
    expert = expert_loop(problem.loss, opt, STEPS, batch).lower(params, X, Y, key).compile()  # ahead of time
    bare = expert_loop(problem.loss, opt, STEPS, batch, record=False).lower(params, X, Y, key).compile()

    def ours(params):
        result = tk.optimise(problem.loss, params, opt, steps=STEPS, data=data, progress=False, **extra)
        return result.params, result.losses

    args = lambda: (fresh(params),)
    return {
        "tk.optimise": Contender(ours, args),
        "expert": Contender(lambda p: expert(p, X, Y, key), args),
        "bare": Contender(lambda p: bare(p, X, Y, key), args),
    }


def scaling_row(problem: Problem, size: int, batch: int | None, opt_name: str, args) -> str:
    contenders = scaling_pair(problem, OPTIMISERS[opt_name](), batch, jax.random.key(7))
    first = call(contenders["tk.optimise"])[2]  # compiles tk.optimise's loop (the expert's is compiled already)
    t = interleaved(contenders, args.rounds, budget=args.row_seconds)
    rounds, ours, expert, bare = len(t["expert"].wall), t["tk.optimise"], t["expert"], t["bare"]
    diff = max(rel_diff(first[0], expert.out[0]), rel_diff(first[1], expert.out[1]))  # params and losses
    ratio, cpu_ratio = ours.median / expert.median, ours.median_cpu / expert.median_cpu
    check = f"ok ({diff:.0e})" if diff <= TOLERANCE else f"WARNING: results differ by {diff:.1e}"
    label = f"scaling 10^{size} {problem.name} {'full' if batch is None else f'mb {batch}'} {opt_name}: tk / expert"
    record(label, ratio, "x", f"<= {TARGETS[size]:.2f}x", ratio <= TARGETS[size])
    return (
        f"10^{size} {problem.name:13s} {'full' if batch is None else f'mb {batch}':5s} {opt_name:8s} "
        f"{count(problem.params):>9d} {rounds:3d} {ours.median * 1e3:10.2f} {expert.median * 1e3:10.2f} "
        f"{ratio:6.3f}x {cpu_ratio:6.3f}x  <={TARGETS[size]:.2f}x {verdict(ratio <= TARGETS[size]):8s} "
        f"{ours.median / bare.median:6.3f}x  {check}{flag(ours)}{flag(expert)}{flag(bare)}"
    )


def part_scaling(args) -> None:
    print(f"Part 1: scaling, {STEPS} steps, {EXAMPLES} examples; tk.optimise vs the expert jit(lax.scan) + optax loop")
    print("        times: medians over interleaved rounds, ms per run; ratio = tk.optimise / expert")
    print("        the expert loop returns the parameters and every step's loss, as tk.optimise does;")
    print("        'bare' = tk.optimise / the same loop computing gradients only (no loss history), for reference\n")
    print(
        f"{'size':4s} {'workload':13s} {'batch':5s} {'opt':8s} {'params':>9s} {'rds':>3s} {'tk ms':>10s} "
        f"{'expert ms':>10s} {'wall':>7s} {'CPU':>7s}  {'target':6s} {'verdict':8s} {'bare':>7s}  check"
    )
    for size in args.sizes:
        for kind in ("lsq", "mlp"):
            problem = make_problem(kind, size)
            for batch in (BATCH, None):
                for opt_name in OPTIMISERS:
                    if size == 7 and batch is None and not args.all:
                        print(f"10^{size} {problem.name:13s} full  {opt_name:8s} left out (minutes per run; --all)")
                        continue
                    print(scaling_row(problem, size, batch, opt_name, args), flush=True)
    print()


# --- part 2: the seed problem -------------------------------------------------------------------

K1, K2 = jax.random.split(jax.random.key(1))
Z0 = jax.random.uniform(K1, (3, 3))
Z_TARGET = jax.random.uniform(K2, (3, 3))
KEY = jax.random.key(0)


def make_seed_loss() -> Callable:
    return lambda z, x: tk.mse(z @ x, Z_TARGET @ x)


def make_rand3() -> Callable:
    return lambda key: jax.random.uniform(key, (3,))


def seed_scan(loss: Callable, opt: optax.GradientTransformation) -> Callable:
    """``run(z, xs)``: one step per row of ``xs``."""

    def run(z, xs):
        def step(carry, x):
            z, state = carry
            updates, state = opt.update(jax.grad(loss)(z, x), state, z)
            return (optax.apply_updates(z, updates), state), None

        return jax.lax.scan(step, (z, opt.init(z)), xs)[0][0]

    return run


def seed_expert(loss: Callable, opt: optax.GradientTransformation, steps: int) -> Callable:
    """(a): every sample drawn in one vectorised call inside the jitted function, then the scan."""
    scan = seed_scan(loss, opt)
    return jax.jit(lambda z, key: scan(z, jax.random.uniform(key, (steps, 3))))


def seed_expert_same(loss: Callable, opt: optax.GradientTransformation, steps: int) -> Callable:
    """(a'): tk.optimise's numbers (step s: ``uniform(fold_in(key, s), (3,))``, one vmap inside jit) and every
    step's loss recorded: the same outputs as tk.optimise, by hand."""

    def run(z, key):
        xs = jax.vmap(lambda s: jax.random.uniform(jax.random.fold_in(key, s), (3,)))(jnp.arange(steps))

        def step(carry, x):
            z, state = carry
            value, grads = jax.value_and_grad(loss)(z, x)
            updates, state = opt.update(grads, state, z)
            return (optax.apply_updates(z, updates), state), value

        (z, _), losses = jax.lax.scan(step, (z, opt.init(z)), xs)
        return z, losses

    return jax.jit(run)


def split_step(loss: Callable, opt: optax.GradientTransformation) -> Callable:
    def step(z, state, key):
        key, k = jax.random.split(key)
        updates, state = opt.update(jax.grad(loss)(z, jax.random.uniform(k, (3,))), state, z)
        return optax.apply_updates(z, updates), state, key

    return step


def seed_split_scan(loss: Callable, opt: optax.GradientTransformation, steps: int) -> Callable:
    """(c): the key split and ``x`` drawn inside each step."""
    step = split_step(loss, opt)

    @jax.jit
    def run(z, key):
        (z, _, _), _ = jax.lax.scan(lambda carry, _: (step(*carry), None), (z, opt.init(z), key), length=steps)
        return z

    return run


def seed_python_loop(loss: Callable, opt: optax.GradientTransformation, steps: int) -> Callable:
    """(d): a Python loop of a jitted step."""
    step = jax.jit(split_step(loss, opt))

    def run(z, key):
        state = opt.init(z)
        for _ in range(steps):
            z, state, key = step(z, state, key)
        return z

    return run


def tk_samples(key: jax.Array, steps: int) -> jax.Array:
    """The samples tk.optimise draws: step s gets ``uniform(fold_in(key, s), (3,))``."""
    return jax.jit(jax.vmap(lambda s: jax.random.uniform(jax.random.fold_in(key, s), (3,))))(jnp.arange(steps))


def seed_contenders(steps: int, slow: int) -> dict[str, Contender]:
    loss, sample, opt = make_seed_loss(), make_rand3(), tk.Momentum(0.01, 0.9)
    xs = tk_samples(KEY, steps)
    floor, expert, same = (
        jax.jit(seed_scan(loss, opt)),
        seed_expert(loss, opt, steps),
        seed_expert_same(loss, opt, steps),
    )
    split, python = seed_split_scan(loss, opt, steps), seed_python_loop(loss, opt, slow)
    z_key = lambda: (fresh(Z0), KEY)

    def ours(z, key):
        return tk.optimise(loss, z, opt, steps=steps, data=sample, key=key, progress=False).params

    return {
        "tk.optimise": Contender(ours, z_key, steps),
        "(a) expert: one uniform(key, (steps, 3))": Contender(expert, z_key, steps),
        "(a') expert, tk.optimise's numbers + losses": Contender(lambda z, key: same(z, key)[0], z_key, steps),
        "(b) floor: x pre-drawn": Contender(floor, lambda: (fresh(Z0), xs), steps),
        "(c) old scan: key split each step": Contender(split, z_key, steps),
        "(d) Python loop of a jitted step": Contender(python, z_key, slow),
    }


def part_seed(args) -> None:
    steps, slow = args.seed_steps, args.slow_steps
    contenders = seed_contenders(steps, slow)
    outs = warm_up(contenders)
    t = interleaved(contenders, args.seed_rounds)
    ours = t["tk.optimise"]
    print(f"Part 2: the seed problem, 3x3, Momentum(0.01, 0.9), fresh x each step; {steps} steps ((d): {slow})")
    print(f"        {args.seed_rounds} interleaved rounds; µs per step\n")
    print(f"{'loop':42s} {'wall':>8s} {'CPU':>8s} {'tk.optimise / it':>17s} {'(CPU)':>7s}")
    for name, timing in t.items():
        ratio, cpu_ratio = ours.median / timing.median, ours.median_cpu / timing.median_cpu
        print(
            f"{name:42s} {timing.median * 1e6:8.4f} {timing.median_cpu * 1e6:8.4f} {ratio:16.3f}x {cpu_ratio:6.3f}x"
            f"{flag(timing)}"
        )
    names = list(t)
    expert, same_numbers, floor = names[1], names[2], names[3]
    vs_expert, vs_floor = ours.median / t[expert].median, ours.median / t[floor].median
    vs_same = ours.median / t[same_numbers].median
    same = rel_diff(outs["tk.optimise"], outs[floor])
    print(f"\n  check: tk.optimise's z vs (b)'s (same samples): relative difference {same:.0e}", end="")
    print(" ok" if same <= TOLERANCE else " WARNING: they differ")
    for name in (names[0], names[1], names[4]):
        print(f"  check: {name} reaches z′ to {float(jnp.max(jnp.abs(outs[name] - Z_TARGET))):.0e}")
    print(f"  target tk.optimise <= 1.2x (a): {vs_expert:.3f}x -> {verdict(vs_expert <= 1.2)}")
    print(f"  target tk.optimise <= 2x (b):   {vs_floor:.3f}x -> {verdict(vs_floor <= 2)}")
    record("seed: tk.optimise / vectorised-draw scan", vs_expert, "x", "<= 1.2x", vs_expert <= 1.2)
    record("seed: tk.optimise / pre-drawn floor", vs_floor, "x", "<= 2x", vs_floor <= 2)
    print(f"  for reference, tk.optimise / (a'), the same outputs by hand: {vs_same:.3f}x\n")


# --- part 3: the fixed cost of a call -----------------------------------------------------------


def repeated(f: Callable, times: int) -> Callable:
    def run():
        for _ in range(times):
            out = jax.block_until_ready(f())
        return out

    return run


def part_fixed(args) -> None:
    loss, sample, opt = make_seed_loss(), make_rand3(), tk.Momentum(0.01, 0.9)

    @jax.jit
    def one_step(z, key):
        x = jax.random.uniform(jax.random.fold_in(key, 0), (3,))
        updates, _ = opt.update(jax.grad(loss)(z, x), opt.init(z), z)
        return optax.apply_updates(z, updates)

    ours = lambda: tk.optimise(loss, Z0, opt, steps=1, data=sample, key=KEY, progress=False).params
    k = args.calls
    contenders = {
        "tk.optimise(steps=1)": Contender(repeated(ours, k), per=k),
        "jitted single step": Contender(repeated(lambda: one_step(Z0, KEY), k), per=k),
    }
    outs = warm_up(contenders)
    t = interleaved(contenders, args.call_rounds)
    us = {name: timing.median * 1e6 for name, timing in t.items()}
    (a, b), (ta, tb) = us.values(), t.values()
    print(f"Part 3: the fixed cost of a call, seed problem; medians of {args.call_rounds} rounds of {k} calls\n")
    print(f"  tk.optimise(steps=1): {a:8.1f} µs/call   (CPU {ta.median_cpu * 1e6:.1f} µs){flag(ta)}")
    print(f"  jitted single step:   {b:8.1f} µs/call   (CPU {tb.median_cpu * 1e6:.1f} µs){flag(tb)}")
    print(f"  ratio: {a / b:.1f}x (today's: {BASELINE_CALL_US / BASELINE_STEP_US:.1f}x)")
    print(f"  check: same z: {rel_diff(outs['tk.optimise(steps=1)'], outs['jitted single step']):.0e}")
    target = BASELINE_CALL_US / 2
    record("fixed cost: tk.optimise(steps=1)", a, "µs", f"<= {target:.0f} µs", a <= target)
    print(
        f"  target <= half of today's {BASELINE_CALL_US:.0f} µs = {target:.0f} µs: {a:.1f} µs -> {verdict(a <= target)}\n"
    )


# --- part 4: blocks -----------------------------------------------------------------------------


def part_blocks(args) -> None:
    problem, opt, key = make_problem("lsq", 4), tk.Adam(1e-3), jax.random.key(7)
    data = (problem.X, problem.Y)

    def run(steps):
        return lambda p: (
            tk.optimise(problem.loss, p, opt, steps=steps, data=data, batch_size=BATCH, key=key, progress=False).params
        )

    def expert(steps):
        compiled = expert_loop(problem.loss, opt, steps, BATCH).lower(problem.params, *data, key).compile()
        return lambda p: compiled(p, *data, key)

    counts = (200, 256, 257, 512)
    args_ = lambda: (fresh(problem.params),)  # noqa: E731
    contenders = {("tk", s): Contender(run(s), args_) for s in counts}
    contenders.update({("expert", s): Contender(expert(s), args_) for s in counts})
    warm_up(contenders)
    t = interleaved(contenders, args.rounds)
    base, expert_base = t[("tk", 256)].median, t[("expert", 256)].median
    print(f"Part 4: blocks, 10^4 least squares, Adam, minibatches of {BATCH}; {args.rounds} interleaved rounds")
    print("        (an epoch is 256 steps here, so step 257 draws a second permutation, by hand as well)\n")
    print(f"  {'steps':>5s} {'ms/run':>8s} {'µs/step':>8s} {'t/t(256)':>9s} {'by hand':>8s} {'steps/256':>10s}  target")
    for s in counts:
        ratio, by_hand = t[("tk", s)].median / base, t[("expert", s)].median / expert_base
        bound = by_hand + 0.1
        target = f"<= by hand + 0.1 = {bound:.3f} {verdict(ratio <= bound)}" if s in (200, 257) else ""
        if s in (200, 257):
            record(f"blocks: {s} steps / 256 steps", ratio, "x", f"<= by hand ({by_hand:.3f}) + 0.1", ratio <= bound)
        print(
            f"  {s:5d} {t[('tk', s)].median * 1e3:8.3f} {t[('tk', s)].median / s * 1e6:8.2f} {ratio:9.3f} "
            f"{by_hand:8.3f} {s / 256:10.3f}  {target}{flag(t[('tk', s)])}"
        )
    print()


# --- part 5: the first call ---------------------------------------------------------------------


def first_seed(ours: bool, steps: int, same_numbers: bool = False) -> Callable:
    """A first call of the seed problem, with objects made afresh (by hand: (a), or (a') with ``same_numbers``)."""

    def run():
        loss, opt = make_seed_loss(), tk.Momentum(0.01, 0.9)
        if ours:
            return tk.optimise(loss, Z0, opt, steps=steps, data=make_rand3(), key=KEY, progress=False).params
        if same_numbers:
            return seed_expert_same(loss, opt, steps)(Z0, KEY)[0]
        return seed_expert(loss, opt, steps)(Z0, KEY)

    return run


def first_lsq(ours: bool, problem: Problem) -> Callable:
    """A first call of the 10^6 least squares (Adam, minibatches), with objects made afresh."""

    def run():
        loss, opt, key = make_lsq_loss(), tk.Adam(1e-3), jax.random.key(7)
        if ours:
            data = (problem.X, problem.Y)
            return tk.optimise(
                loss, fresh(problem.params), opt, steps=STEPS, data=data, batch_size=BATCH, key=key, progress=False
            ).params
        return expert_loop(loss, opt, STEPS, BATCH)(fresh(problem.params), problem.X, problem.Y, key)

    return run


def cleared(f: Callable) -> Callable:
    def run():
        jax.clear_caches()
        return f()

    return run


def part_first(args) -> None:
    size = 6 if 6 in args.sizes else max(args.sizes)
    problem = make_problem("lsq", size)
    cases = {
        f"seed problem, {args.seed_steps} steps": (
            first_seed(True, args.seed_steps),
            first_seed(False, args.seed_steps),
        ),
        "  the same, against (a'): same numbers + losses": (
            first_seed(True, args.seed_steps),
            first_seed(False, args.seed_steps, same_numbers=True),
        ),
        f"10^{size} least squares, Adam, mb {BATCH}, {STEPS} steps": (
            first_lsq(True, problem),
            first_lsq(False, problem),
        ),
    }
    print(f"Part 5: the first call (trace + compile + run) after jax.clear_caches(); {args.first_rounds} rounds\n")
    print(f"  {'problem':44s} {'tk.optimise s':>13s} {'hand scan s':>12s} {'ratio':>7s}  target <= 1.5x")
    for label, (ours, theirs) in cases.items():
        contenders = {"ours": Contender(cleared(ours)), "theirs": Contender(cleared(theirs))}
        t = interleaved(contenders, args.first_rounds)
        ratio = t["ours"].median / t["theirs"].median
        record(f"first call: {label.strip()}", ratio, "x", "<= 1.5x", ratio <= 1.5)
        print(
            f"  {label:44s} {t['ours'].median:13.3f} {t['theirs'].median:12.3f} {ratio:6.2f}x  {verdict(ratio <= 1.5)}"
        )
    print()


# --- main ---------------------------------------------------------------------------------------

PARTS = {"scaling": part_scaling, "seed": part_seed, "fixed": part_fixed, "blocks": part_blocks, "first": part_first}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", choices=["all", *PARTS], default="all")
    parser.add_argument("--quick", action="store_true", help="a smoke run: sizes 10^2 and 10^4, fewer rounds")
    parser.add_argument("--all", action="store_true", help="include full batch at 10^7 (several minutes per row)")
    parser.add_argument("--rounds", type=int, default=15, help="most timed rounds per row")
    parser.add_argument("--row-seconds", type=float, default=8.0, help="timed seconds aimed at per scaling row")
    parser.add_argument("--sizes", help="comma-separated powers of ten of the parameter count (default 2,4,6,7)")
    parser.add_argument("--seed-steps", type=int, default=10**5)
    parser.add_argument("--slow-steps", type=int, default=5000, help="steps of the Python loop (d)")
    args = parser.parse_args()
    args.sizes = [int(e) for e in args.sizes.split(",")] if args.sizes else [2, 4] if args.quick else [2, 4, 6, 7]
    args.seed_rounds = 5 if args.quick else 9
    args.calls, args.call_rounds = (20, 10) if args.quick else (20, 25)
    args.first_rounds = 1 if args.quick else 3
    if args.quick:
        args.rounds, args.row_seconds = min(args.rounds, 7), min(args.row_seconds, 1.0)
    return args


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    args = parse()
    jax.monitoring.register_event_duration_secs_listener(_count_event)
    began = time.perf_counter()
    print(f"tk.optimise benchmark: {jax.devices()}, jax {jax.__version__}, optax {optax.__version__}")
    print(f"{os.cpu_count()} CPUs ({cpu_model()}), load average {os.getloadavg()[0]:.2f}")
    print(f"toolkit from {os.path.dirname(tk.__file__)}\n")
    for name, part in PARTS.items():
        if args.part in ("all", name):
            part(args)
    print(f"Total: {time.perf_counter() - began:.0f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

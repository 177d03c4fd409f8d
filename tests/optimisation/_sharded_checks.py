"""Sharded runs on 8 simulated CPU devices, each against the same run on one device; prints one JSON object.

Run by ``tests/optimisation/test_sharding.py`` in a fresh process whose
``XLA_FLAGS`` (set before JAX starts) ask for 8 host devices and for XLA to dump
the optimised HLO text of every ``tk.optimise`` chunk into the folder given as
the first argument: that dump is the compiled program itself, read through
XLA's public flags, whose collectives the test checks. Every check here only
measures; the test asserts.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import toolkit as tk
from toolkit.colour import RGB, ciede2000, colordiff, lab_to_rgb, lab_to_xyz, rgb_to_lab, rgb_to_xyz, xyz_to_lab


def dump() -> pathlib.Path:
    """The folder XLA dumps into: the first argument (read when run, not when pytest collects this file)."""
    return pathlib.Path(sys.argv[1])


COLLECTIVE = re.compile(
    r"= (?P<type>.*?) (?P<op>all-reduce|all-gather|reduce-scatter|all-to-all|collective-permute)(?:-start)?\("
    r".*?replica_groups=(?P<groups>\S+ \{[^}]*\})?"
)


def mesh(shape: tuple[int, ...], names: tuple[str, ...], devices: Any = None) -> jax.sharding.Mesh:
    return jax.make_mesh(shape, names, axis_types=(AxisType.Auto,) * len(shape), devices=devices)


def compiled(call: Any) -> tuple[Any, list[dict[str, str]], int]:
    """``call()``'s value, the collectives of the one chunk it compiled, and how many chunks it compiled."""
    pattern = "*jit_run*cpu_after_optimizations.txt"
    before = set(dump().glob(pattern))
    value = call()
    programs = sorted(set(dump().glob(pattern)) - before)
    found = [] if not programs else [m.groupdict() for m in COLLECTIVE.finditer(programs[-1].read_text())]
    return value, found, len(programs)


def same_layout(out: Any, given: Any) -> bool:
    """Every leaf of ``out`` is laid out as the matching leaf of ``given`` (a tree of shardings)."""
    pairs = zip(jax.tree.leaves(out), jax.tree.leaves(given, is_leaf=lambda s: isinstance(s, jax.sharding.Sharding)))
    return all(a.sharding.is_equivalent_to(s, a.ndim) for a, s in pairs)


def compare(one: Any, many: Any) -> dict[str, Any]:
    a, b = [np.asarray(x) for x in jax.tree.leaves(one)], [np.asarray(x) for x in jax.tree.leaves(many)]
    return {
        "bitwise": all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b)),
        "max_diff": max(float(np.nanmax(np.abs(x - y))) if x.size else 0.0 for x, y in zip(a, b)),
        "close": all(np.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True) for x, y in zip(a, b)),
    }


def run_case(name: str, run: Any, params: Any, shardings: Any, data: Any, data_shardings: Any) -> dict[str, Any]:
    """``run(params, data)`` on one device and placed on ``shardings``/``data_shardings``; what differs."""
    one = run(params, data)
    placed = jax.device_put(params, shardings)
    placed_data = data if data_shardings is None else jax.device_put(data, data_shardings)
    many, collectives, compiles = compiled(lambda: run(placed, placed_data))
    moments = [s for s in jax.tree.leaves(many.state, is_leaf=lambda s: hasattr(s, "mu")) if hasattr(s, "mu")]
    return {
        "case": name,
        "params": compare(one.params, many.params),
        "losses": compare(one.losses, many.losses),
        "steps_equal": bool(np.array_equal(one.steps, many.steps)),
        "params_layout_kept": same_layout(many.params, shardings),
        "moments_layout_kept": all(same_layout(m.mu, shardings) and same_layout(m.nu, shardings) for m in moments),
        "collectives": collectives,
        "compiles": compiles,
    }


def optimisation_cases() -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    w_true = rng.normal(size=(16, 8)).astype(np.float32)
    y = x @ w_true
    start = {"W": jnp.zeros((16, 8)), "b": jnp.zeros(8)}
    data_mesh, model_mesh, grid = mesh((8,), ("data",)), mesh((8,), ("model",)), mesh((4, 2), ("data", "model"))

    def linear(p: Any, batch: Any) -> jax.Array:
        inputs, targets = batch
        return jnp.mean((inputs @ p["W"] + p["b"] - targets) ** 2)

    def data_parallel(p: Any, batch: Any) -> jax.Array:  # the batch's examples split over 'data'
        batch = jax.lax.with_sharding_constraint(batch, NamedSharding(data_mesh, P("data")))
        return linear(p, batch)

    def sample(key: jax.Array) -> Any:
        inputs = jax.random.normal(key, (64, 16))
        return inputs, inputs @ w_true

    full_batch = (x[None], y[None])  # one example: the whole batch, its rows on axis 1
    replicated = jax.tree.map(lambda _: NamedSharding(data_mesh, P()), start)
    rows = NamedSharding(data_mesh, P(None, "data"))
    adam, steps = tk.Adam(0.01), 40
    cases = [
        run_case(
            "data-parallel, full batch",
            lambda p, d: tk.optimise(linear, p, adam, steps=steps, data=d),
            start,
            replicated,
            full_batch,
            rows,
        ),
        run_case(
            "data-parallel, shuffled minibatches",
            lambda p, d: tk.optimise(data_parallel, p, adam, steps=steps, data=d, batch_size=16, key=jax.random.key(1)),
            start,
            replicated,
            (x, y),
            NamedSharding(data_mesh, P("data")),
        ),
        run_case(
            "data-parallel, sampler",
            lambda p, d: tk.optimise(data_parallel, p, adam, steps=steps, data=sample, key=jax.random.key(2)),
            start,
            replicated,
            None,
            None,
        ),
        run_case(
            "FSDP-style, W split over 'model'",
            lambda p, d: tk.optimise(linear, p, adam, steps=steps, data=d),
            start,
            {"W": NamedSharding(model_mesh, P("model", None)), "b": NamedSharding(model_mesh, P())},
            full_batch,
            None,
        ),
        run_case(
            "2-D ('data', 'model') mesh",
            lambda p, d: tk.optimise(linear, p, adam, steps=steps, data=d),
            start,
            {"W": NamedSharding(grid, P(None, "model")), "b": NamedSharding(grid, P())},
            full_batch,
            NamedSharding(grid, P(None, "data")),
        ),
    ]
    problems = mesh((8,), ("problems",))
    targets = rng.normal(size=(8, 5)).astype(np.float32)
    cases.append(
        run_case(
            "batched=True, problems split",
            lambda p, d: tk.optimise(
                lambda q, s: jnp.sum((q - s) ** 2),
                p,
                tk.Adam(0.05),
                steps=60,
                batched=True,
                tol=1e-4,
                data=lambda key: jax.random.normal(key, (5,)) * 0.01 + jnp.arange(5.0),
                key=jax.random.key(3),
            ),
            jnp.asarray(targets),
            NamedSharding(problems, P("problems")),
            None,
            None,
        )
    )
    return cases


def mismatch() -> str:
    """The error for parameters on devices 0-3 and data on devices 4-7."""
    first, second = mesh((4,), ("data",), jax.devices()[:4]), mesh((4,), ("data",), jax.devices()[4:])
    params = jax.device_put({"W": jnp.zeros((3, 2))}, NamedSharding(first, P()))
    data = jax.device_put((jnp.ones((1, 8, 3)), jnp.ones((1, 8, 2))), NamedSharding(second, P(None, "data")))
    try:
        tk.optimise(lambda p, d: jnp.mean((d[0] @ p["W"] - d[1]) ** 2), params, tk.Descent(), steps=2, data=data)
    except ValueError as error:
        return str(error)
    return "no error"


def explicit_axes() -> str:
    """The error for data on a mesh with Explicit axes (jax.make_mesh's default)."""
    explicit = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,), devices=jax.devices()[:4])
    data = jax.device_put(jnp.ones((8, 3)), NamedSharding(explicit, P("data")))
    try:
        tk.optimise(lambda w, x: jnp.mean((x @ w - 1.0) ** 2), jnp.zeros(3), tk.Descent(), steps=2, data=data)
    except ValueError as error:
        return str(error)
    return "no error"


def colour_cases() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    image1 = rng.random((64, 16, 3)).astype(np.float32)
    image2 = rng.random((64, 16, 3)).astype(np.float32)
    by_rows = NamedSharding(mesh((8,), ("rows",)), P("rows"))
    sharded1, sharded2 = jax.device_put(image1, by_rows), jax.device_put(image2, by_rows)
    channels = lambda image: RGB(*(image[..., k] for k in range(3)))  # noqa: E731

    def conversions(a: jax.Array) -> tuple[Any, ...]:  # every conversion, each result kept
        xyz = rgb_to_xyz(a)
        lab = xyz_to_lab(xyz)
        return xyz, lab, lab_to_xyz(lab), rgb_to_lab(a), lab_to_rgb(lab)

    one_image = {  # (function, how many images it takes)
        "conversions": (conversions, 1),
        "ciede2000": (lambda a, b: ciede2000(rgb_to_lab(a), rgb_to_lab(b)), 2),
        "colordiff arrays": (lambda a, b: colordiff(a, b, arrays="RGB"), 2),
        "colordiff RGB structs": (lambda a, b: colordiff(channels(a), channels(b)), 2),
    }
    results = {}
    for name, (f, count) in one_image.items():
        plain, placed = (image1, image2)[:count], (sharded1, sharded2)[:count]
        loss = lambda *images, f=f: tk.tree.sum(f(*images))  # noqa: E731
        grads = tk.gradient(loss, *plain), tk.gradient(loss, *placed)
        value = f(*placed)
        results[name] = {
            "value": compare(f(*plain), value),
            "value_layout_kept": all(leaf.sharding.spec == P("rows") for leaf in jax.tree.leaves(value)),
            "tk.gradient": compare(*grads),
            "tk.gradient_layout_kept": same_layout(grads[1], [by_rows] * count),
        }

    @jax.checkpoint
    def block_sum(rows1: jax.Array, rows2: jax.Array) -> jax.Array:
        return jnp.sum(ciede2000(rgb_to_lab(rows1), rgb_to_lab(rows2)))

    def shard_major(image: jax.Array) -> jax.Array:
        """Blocks of 4 rows taken inside each device's 8 rows: (block, device, rows, columns, 3)."""
        return jnp.moveaxis(image.reshape(8, 2, 4, 16, 3), 1, 0)

    def mean_difference(a: jax.Array, b: jax.Array) -> jax.Array:  # benchmarks/colour_difference.py's blocking
        sums = jax.lax.map(lambda pair: block_sum(*pair), (shard_major(a), shard_major(b)))
        return jnp.sum(sums) / a[..., 0].size

    step = jax.jit(jax.value_and_grad(mean_difference, argnums=(0, 1)))
    on_rows = step.lower(sharded1, sharded2).compile()
    (value_one, grads_one), (value_many, grads_many) = step(image1, image2), on_rows(sharded1, sharded2)
    program = on_rows.as_text() or ""
    results["blocked image gradient"] = {
        "value": compare(value_one, value_many),
        "gradient": compare(grads_one, grads_many),
        "gradient_layout_kept": same_layout(grads_many, [by_rows, by_rows]),
        "all_gathers": program.count("all-gather("),
    }
    return results


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    report = {
        "optimise": optimisation_cases(),
        "mismatch": mismatch(),
        "explicit": explicit_axes(),
        "colour": colour_cases(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

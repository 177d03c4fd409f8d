"""Runs of one problem on several devices or processes, for test_multiprocess.py and test_sharded_checkpoint.py.

``python tests/optimisation/_worker.py single DEVICES OUT [CHECKPOINT]``: one
process with DEVICES simulated CPU devices; ``... multi PROCESS PORT OUT``: one
of two processes (2 devices each, a global mesh of 4) under
``jax.distributed.initialize`` on ``localhost:PORT``. Each writes what it found
to ``OUT`` (``<name>.npz``, and the checkpoint folders), which the tests compare
with a single-device run in the test process. The device count is set here,
before JAX starts, so nothing at the top of this module imports JAX.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import numpy as np

STEPS, HALF, EVERY = 48, 24, 8  # the run's steps, where the interrupted run stops, checkpoint_every
FEATURES, OUTPUTS, BATCHES, BATCH = 8, 4, 12, 16  # W is FEATURES x OUTPUTS; BATCHES batches of BATCH examples
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def problem() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Starting parameters and data (batch ``s mod BATCHES`` at step ``s``): the same in every process."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(BATCHES, BATCH, FEATURES)).astype(np.float32)
    truth = rng.normal(size=(FEATURES, OUTPUTS)).astype(np.float32)
    y = (x @ truth + 0.1 * rng.normal(size=(BATCHES, BATCH, OUTPUTS))).astype(np.float32)
    params = {"W": np.zeros((FEATURES, OUTPUTS), np.float32), "b": np.zeros(OUTPUTS, np.float32)}
    return params, x, y


def loss(params, batch):
    x, y = batch
    error = x @ params["W"] + params["b"] - y
    return (error * error).mean()


def optimiser():
    import toolkit as tk

    return tk.Adam(0.05)


# --- what the tests compare with (in the test process) ----------------------------------------------

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}  # across device counts: reductions are summed in other orders


def one_device_run() -> tuple:
    """The oracle: the whole run on this process's one device, and the leaves of its parameters and state."""
    import jax

    import toolkit as tk

    start, x, y = problem()
    result = tk.optimise(loss, start, optimiser(), steps=STEPS, data=(x, y))
    return result, [np.asarray(leaf) for leaf in jax.tree.leaves((result.params, result.state))]


def saved_leaves(found: dict, name: str, count: int) -> list[np.ndarray]:
    """The ``count`` leaves a worker saved under ``name`` (``<name>.0``, ``<name>.1``, ...)."""
    return [found[f"{name}.{i}"] for i in range(count)]


# --- launching (from the tests) ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], out: str, name: str) -> subprocess.Popen:
    """Start this script with ``args``; its stdout and stderr go to ``out/<name>.log``."""
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    log = open(os.path.join(out, f"{name}.log"), "wb")
    try:
        return subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *args], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    finally:
        log.close()


def wait(processes: dict[str, subprocess.Popen], out: str, timeout: float) -> None:
    """Wait for every process; if one fails or the time runs out, kill them all and fail with their logs."""
    deadline = time.monotonic() + timeout
    failed = None
    for name, p in processes.items():
        try:
            if p.wait(max(0.1, deadline - time.monotonic())) != 0:
                failed = failed or f"{name} exited with {p.returncode}"
        except subprocess.TimeoutExpired:
            failed = failed or f"{name} did not finish within {timeout} s"
        if failed:
            break
    if failed:
        for p in processes.values():
            if p.poll() is None:
                p.kill()  # JAX catches SIGTERM (it takes it for a preemption notice)
                p.wait()
        logs = {n: open(os.path.join(out, f"{n}.log"), errors="replace").read()[-4000:] for n in processes}
        raise AssertionError(f"{failed}; logs:\n" + "\n".join(f"--- {n}:\n{text}" for n, text in logs.items()))


# --- the runs (in the launched processes) ---------------------------------------------------------------


def _run(params, data, steps=STEPS, **kwargs):
    import toolkit as tk

    return tk.optimise(loss, params, optimiser(), steps=steps, data=data, **kwargs)


def _global(mesh, value: np.ndarray, spec):
    """``value`` (known to every process) as an array laid out by ``spec`` over the global mesh."""
    import jax
    from jax.sharding import NamedSharding

    return jax.make_array_from_callback(value.shape, NamedSharding(mesh, spec), lambda index: value[index])


def _gathered(tree) -> list[np.ndarray]:
    """Every leaf of ``tree`` whole, on this process."""
    import jax
    from jax.experimental import multihost_utils

    return [np.asarray(multihost_utils.process_allgather(leaf, tiled=True)) for leaf in jax.tree.leaves(tree)]


def _record(found: dict[str, np.ndarray], name: str, result) -> None:
    for i, leaf in enumerate(_gathered((result.params, result.state))):
        found[f"{name}.{i}"] = leaf
    found[f"{name}.losses"] = np.asarray(result.losses)
    found[f"{name}.sharding"] = np.array(str(result.params["W"].sharding.spec))


def _sharded_runs(mesh, data, found: dict[str, np.ndarray], folder: str) -> None:
    """W split over the devices (rows), b replicated: straight through; stopped at HALF, then resumed.

    The run stopped at HALF leaves ``folder/half.ckpt`` (for the test process to resume on its one device); the
    resumed run writes ``folder/resumed.ckpt``.
    """
    from jax.sharding import PartitionSpec as P

    start, _, _ = problem()
    params = {"W": _global(mesh, start["W"], P("data", None)), "b": _global(mesh, start["b"], P())}
    _record(found, "straight", _run(params, data))
    half, resumed = os.path.join(folder, "half.ckpt"), os.path.join(folder, "resumed.ckpt")
    stopped = _run(params, data, steps=HALF, checkpoint=half, checkpoint_every=EVERY)
    found["stopped.steps"] = np.array(stopped.steps)
    _record(found, "resumed", _run(params, data, checkpoint=resumed, checkpoint_every=EVERY, resume=half))


def single(devices: int, out: str, checkpoint: str) -> None:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import jax
    from jax.sharding import AxisType
    from jax.sharding import PartitionSpec as P

    assert jax.device_count() == devices, jax.devices()
    mesh = jax.make_mesh((devices,), ("data",), axis_types=(AxisType.Auto,))
    _, x, y = problem()
    data = (_global(mesh, x, P()), _global(mesh, y, P()))
    found: dict[str, np.ndarray] = {}
    folder = os.path.join(out, f"devices{devices}")
    os.makedirs(folder, exist_ok=True)
    _sharded_runs(mesh, data, found, folder)
    # a checkpoint written on one device (by the test process), resumed here on many
    start, _, _ = problem()
    params = {"W": _global(mesh, start["W"], P("data", None)), "b": _global(mesh, start["b"], P())}
    _record(found, "from_one", _run(params, data, resume=checkpoint))
    np.savez(os.path.join(out, f"single{devices}.npz"), **found)


def multi(process: int, port: int, out: str) -> None:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax

    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process, initialization_timeout=120)
    from jax.sharding import AxisType
    from jax.sharding import PartitionSpec as P

    assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2)
    mesh = jax.make_mesh((4,), ("data",), axis_types=(AxisType.Auto,))
    start, x, y = problem()
    # data parallel: the parameters replicated, each batch's examples split over the 4 devices of both processes
    half = BATCH // 2  # this process's examples of every batch
    local = (x[:, process * half : (process + 1) * half], y[:, process * half : (process + 1) * half])
    from jax.sharding import NamedSharding

    data = tuple(
        jax.make_array_from_process_local_data(NamedSharding(mesh, P(None, "data")), part, (BATCHES, BATCH, n))
        for part, n in zip(local, (FEATURES, OUTPUTS))
    )
    params = {name: _global(mesh, value, P()) for name, value in start.items()}
    calls: list[tuple[int, float]] = []
    result = _run(
        params, data, progress=True, log_every=20, callback=lambda step, _, value: calls.append((step, float(value)))
    )
    found: dict[str, np.ndarray] = {"calls": np.array(calls)}
    _record(found, "replicated", result)
    os.makedirs(os.path.join(out, "shared"), exist_ok=True)
    _sharded_runs(mesh, data, found, os.path.join(out, "shared"))
    np.savez(os.path.join(out, f"process{process}.npz"), **found)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "single":
        single(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif mode == "multi":
        multi(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode!r}: single or multi")

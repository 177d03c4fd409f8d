"""``tk.optimise`` under ``jax.distributed``: two processes on this machine, 2 simulated CPU devices each, a mesh of 4.

Both processes are launched at once (``_worker.py multi``), talk through a
coordinator on a free localhost port and JAX's CPU collectives (gloo), and run
the problem of ``_worker.py`` with the examples of every batch split over the 4
devices: once with the parameters replicated (data parallel), and once with
``W`` split over the devices too, straight through and stopped half-way then
resumed from a checkpoint. The oracle is the same problem run here, on one
device, in one process: the same parameters to float tolerance (the gradient's
sum over examples is reduced in another order), and the resumed run bitwise the
straight one on the same mesh.
"""

import os

import jax
import numpy as np
import pytest
from flax import serialization

import toolkit as tk
from tests.optimisation import _worker as w
from tests.optimisation._worker import TOLERANCE
from tests.optimisation._worker import saved_leaves as leaves

pytestmark = pytest.mark.skipif(os.name != "posix", reason="two local JAX processes need POSIX sockets and fork/exec")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("two_processes"))
    port = str(w.free_port())
    processes = {f"process{i}": w.launch(["multi", str(i), port, out], out, f"process{i}") for i in (0, 1)}
    w.wait(processes, out, timeout=240)
    found = [dict(np.load(os.path.join(out, f"process{i}.npz"))) for i in (0, 1)]
    logs = [open(os.path.join(out, f"process{i}.log"), errors="replace").read() for i in (0, 1)]
    return out, found, logs


@pytest.fixture(scope="module")
def oracle():
    return w.one_device_run()


def test_data_parallel_on_two_processes_ends_where_one_device_does(runs, oracle):
    _, found, _ = runs
    result, expected = oracle
    assert np.abs(expected[0]).max() > 0.5  # W moved far from its zero start: the comparison below can fail
    for process in found:
        assert str(process["replicated.sharding"]) == "P()"  # the parameters stayed replicated
        for got, want in zip(leaves(process, "replicated", len(expected)), expected):
            np.testing.assert_allclose(got, want, **TOLERANCE)
        np.testing.assert_allclose(process["replicated.losses"], result.losses, **TOLERANCE)
    for a, b in zip(leaves(found[0], "replicated", len(expected)), leaves(found[1], "replicated", len(expected))):
        np.testing.assert_array_equal(a, b)  # one run, seen from both processes


def test_only_process_0_draws_the_bar_and_every_process_calls_the_callback(runs, oracle):
    _, found, logs = runs
    result, _ = oracle
    assert f"{w.STEPS}/{w.STEPS}" in logs[0]  # the bar, finished
    assert "step/s" not in logs[1] and f"{w.STEPS}/{w.STEPS}" not in logs[1]
    for process in found:
        calls = process["calls"]
        np.testing.assert_array_equal(calls[:, 0], [1, 21, 41])  # log_every=20: steps 1, 21, 41
        np.testing.assert_allclose(calls[:, 1], result.losses[[0, 20, 40]], **TOLERANCE)
    np.testing.assert_array_equal(found[0]["calls"], found[1]["calls"])


def test_sharded_run_on_two_processes_resumes_bitwise(runs, oracle):
    _, found, _ = runs
    _, expected = oracle
    for process in found:
        assert int(process["stopped.steps"]) == w.HALF
        assert str(process["straight.sharding"]) == "P('data', None)"
        assert str(process["resumed.sharding"]) == "P('data', None)"  # resumed into the run's sharding
        for straight, resumed in zip(
            leaves(process, "straight", len(expected)), leaves(process, "resumed", len(expected))
        ):
            np.testing.assert_array_equal(resumed, straight)
        np.testing.assert_array_equal(process["resumed.losses"], process["straight.losses"])
        for got, want in zip(leaves(process, "straight", len(expected)), expected):
            np.testing.assert_allclose(got, want, **TOLERANCE)


def test_each_process_writes_its_own_shards(runs):
    out, _, _ = runs
    folder = os.path.join(out, "shared")
    with open(os.path.join(folder, "half.ckpt"), "rb") as f:
        record = serialization.msgpack_restore(f.read())
    assert record["version"] == 3 and "leaves" not in record  # no array in the file process 0 writes
    assert record["t"] == w.HALF
    arrays = record["arrays"]["folder"]
    assert sorted(n for n in os.listdir(folder) if n.startswith("half.ckpt.arrays.")) == [arrays]  # older saves removed
    for process in ("ocdbt.process_0", "ocdbt.process_1"):  # orbax's per-process stores: both hold data
        data = os.path.join(folder, arrays, process, "d")
        assert os.listdir(data) and all(os.path.getsize(os.path.join(data, n)) > 0 for n in os.listdir(data))


def test_a_checkpoint_of_two_processes_resumes_on_one_device(runs, oracle):
    out, found, _ = runs
    result, expected = oracle
    start, x, y = w.problem()
    path = os.path.join(out, "shared", "half.ckpt")
    resumed = tk.optimise(w.loss, start, w.optimiser(), steps=w.STEPS, data=(x, y), resume=path)
    assert len(resumed.params["W"].sharding.device_set) == 1
    # the first HALF losses are the two processes' own (read back), the rest this device's
    np.testing.assert_array_equal(resumed.losses[: w.HALF], found[0]["straight.losses"][: w.HALF])
    for got, want in zip(jax.tree.leaves((resumed.params, resumed.state)), expected):
        np.testing.assert_allclose(np.asarray(got), want, **TOLERANCE)
    assert resumed.stop_reason == result.stop_reason

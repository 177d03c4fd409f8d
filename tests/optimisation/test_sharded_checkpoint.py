"""Sharded checkpoints on one process with 8 simulated CPU devices (``_worker.py single``), and resharding.

The worker splits ``W`` over the 8 devices, runs the problem of ``_worker.py``
straight through, and stopped half-way then resumed (bitwise the same run);
it also resumes, on its 8 devices, a checkpoint this process wrote on one.
This process then resumes the worker's 8-device checkpoint on its one device.
The oracle is the problem run here on one device (float tolerance across
device counts: the sums are reduced in another order).
"""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

import toolkit as tk
from tests.optimisation import _worker as w
from tests.optimisation._worker import TOLERANCE
from tests.optimisation._worker import saved_leaves as leaves


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("eight_devices"))
    start, x, y = w.problem()
    one = os.path.join(out, "one.ckpt")  # written on this process's one device, for the worker to resume on 8
    tk.optimise(w.loss, start, w.optimiser(), steps=w.HALF, data=(x, y), checkpoint=one, checkpoint_every=w.EVERY)
    w.wait({"single8": w.launch(["single", "8", out, one], out, "single8")}, out, timeout=240)
    return out, dict(np.load(os.path.join(out, "single8.npz")))


@pytest.fixture(scope="module")
def oracle():
    return w.one_device_run()


def record(path):
    with open(path, "rb") as f:
        return serialization.msgpack_restore(f.read())


def resume(path, params=None, opt=None):
    start, x, y = w.problem()
    return tk.optimise(w.loss, params or start, opt or w.optimiser(), steps=w.STEPS, data=(x, y), resume=path)


def test_resume_on_the_same_8_devices_is_bitwise(runs, oracle):
    _, found = runs
    _, expected = oracle
    assert int(found["stopped.steps"]) == w.HALF
    assert str(found["resumed.sharding"]) == "P('data', None)"
    for straight, resumed in zip(leaves(found, "straight", len(expected)), leaves(found, "resumed", len(expected))):
        np.testing.assert_array_equal(resumed, straight)
    np.testing.assert_array_equal(found["resumed.losses"], found["straight.losses"])
    assert np.abs(expected[0]).max() > 0.5  # the run went somewhere: the tolerance below can fail
    for got, want in zip(leaves(found, "straight", len(expected)), expected):
        np.testing.assert_allclose(got, want, **TOLERANCE)


def test_sharded_parameters_take_the_sharded_format_and_one_device_keeps_its_own(runs):
    out, _ = runs
    folder = os.path.join(out, "devices8")
    sharded = record(os.path.join(folder, "half.ckpt"))
    assert sharded["version"] == 3 and "leaves" not in sharded and sharded["t"] == w.HALF
    paths = sharded["paths"]
    listing = dict(zip(paths, sharded["arrays"]["leaves"]))
    assert listing[".params['W']"] == ["float32", [w.FEATURES, w.OUTPUTS]]
    names = [n for n in os.listdir(folder) if n.startswith("half.ckpt.arrays.")]
    assert names == [sharded["arrays"]["folder"]]  # the folders of earlier saves were removed
    single = record(os.path.join(out, "one.ckpt"))  # one device: the format as before, leaves in the file
    assert single["version"] == 2 and "arrays" not in single and len(single["leaves"]) == len(paths)
    assert not [n for n in os.listdir(out) if n.startswith("one.ckpt.arrays.")]


def test_resume_on_other_device_counts(runs, oracle):
    out, found = runs
    result, expected = oracle
    # 8 devices -> 1: read into this process's one device
    resumed = resume(os.path.join(out, "devices8", "half.ckpt"))
    assert len(resumed.params["W"].sharding.device_set) == 1
    np.testing.assert_array_equal(resumed.losses[: w.HALF], found["straight.losses"][: w.HALF])
    for got, want in zip(jax.tree.leaves((resumed.params, resumed.state)), expected):
        np.testing.assert_allclose(np.asarray(got), want, **TOLERANCE)
    # 1 device -> 8 (in the worker): the file's leaves laid out as the run's, W split over the 8 devices
    assert str(found["from_one.sharding"]) == "P('data', None)"
    np.testing.assert_array_equal(found["from_one.losses"][: w.HALF], result.losses[: w.HALF])
    for got, want in zip(leaves(found, "from_one", len(expected)), expected):
        np.testing.assert_allclose(got, want, **TOLERANCE)


def test_a_sharded_checkpoint_is_validated_before_it_is_read(runs, tmp_path):
    out, _ = runs
    path = os.path.join(out, "devices8", "half.ckpt")
    start, _, _ = w.problem()
    halves = {"W": jnp.asarray(start["W"], jnp.bfloat16), "b": start["b"]}
    with pytest.raises(
        ValueError, match=r"does not match this run: \.params\['W'\] is f32\[8,4\] in the file but bf16\[8,4\] here"
    ):
        resume(path, params=halves)
    with pytest.raises(ValueError, match=r"written with the optimiser Adam\(eta=0\.05.*this run uses Adam\(eta=0\.01"):
        resume(path, opt=tk.Adam(0.01))
    # a copy without its arrays folder; with it (it resumes); with the folder's metadata lost
    copy = tmp_path / "copy"
    copy.mkdir()
    saved = record(path)
    for name in ("half.ckpt", saved["losses"]["file"]):
        shutil.copy(os.path.join(out, "devices8", name), copy / name)
    with pytest.raises(
        ValueError, match=r"its arrays folder 'half\.ckpt\.arrays\.[0-9a-f]{16}\.\d+' is missing \(copy it along"
    ):
        resume(str(copy / "half.ckpt"))
    arrays = copy / saved["arrays"]["folder"]
    shutil.copytree(os.path.join(out, "devices8", saved["arrays"]["folder"]), arrays)
    np.testing.assert_array_equal(resume(str(copy / "half.ckpt")).losses[: w.HALF], resume(path).losses[: w.HALF])
    os.unlink(arrays / "_METADATA")  # orbax's listing of what the folder holds
    with pytest.raises(
        ValueError,
        match=r"is damaged .*: its arrays folder '.*' holds nothing for \.params\['W'\], where the checkpoint names f32\[8,4\]",
    ):
        resume(str(copy / "half.ckpt"))

"""Checkpoint and resume: an interrupted-then-resumed run is bitwise the uninterrupted one; bad files are clear errors.

Faults (kill -9, Ctrl-C during a save, a full disk, two runs on one path) are in test_checkpoint_faults.py.
"""

import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

import toolkit as tk
from tests.optimisation.problems import (
    DESCENT,
    KEY,
    MOMENTUM,
    Z0,
    Z_TARGET,
    quadratic,
    quadratic_run,
    seed_loss,
    seed_run,
    seed_sample,
)
from toolkit.optimisation import checkpoint as checkpoints

ADAM = tk.Adam(0.01)


def minibatch_loss(w, batch):
    x, y = batch
    return tk.mse(x @ w, y)


X = jax.random.normal(jax.random.key(7), (50, 3))
Y = X @ jnp.array([1.0, -2.0, 0.5])


def minibatch_run(**kwargs):
    return tk.optimise(minibatch_loss, jnp.zeros(3), ADAM, data=(X, Y), batch_size=8, key=KEY, **kwargs)


def assert_same_run(a, b):
    for x, y in zip(jax.tree.leaves((a.params, a.state)), jax.tree.leaves((b.params, b.state))):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.steps, b.steps)  # an array with batched=True
    assert a.stop_reason == b.stop_reason


def seed_in_numpy(steps, η=0.01, ρ=0.9):
    """The seed problem in float64 NumPy: x_s = rand(3) from fold_in(KEY, s); L = mean(((z - z′) x)²); Flux's Momentum."""
    xs = np.asarray(
        jax.vmap(lambda s: jax.random.uniform(jax.random.fold_in(KEY, s), (3,)))(jnp.arange(steps)), np.float64
    )
    z, target, v, losses = np.asarray(Z0, np.float64), np.asarray(Z_TARGET, np.float64), np.zeros((3, 3)), []
    for x in xs:
        r = (z - target) @ x
        losses.append(np.mean(r**2))
        v = ρ * v - η * (2 / 3) * np.outer(r, x)  # ∂L/∂z = (2/3) r xᵀ
        z = z + v
    return z, np.array(losses)


def side_files(folder):
    return sorted(n for n in os.listdir(folder) if ".losses." in n)


def test_sampler_run_stopped_and_resumed_is_bitwise_the_whole_run(tmp_path):
    path = tmp_path / "seed.ckpt"
    whole = seed_run(steps=3000)
    z, losses = seed_in_numpy(3000)  # an independent oracle for the run everything below is compared with
    np.testing.assert_allclose(whole.params, z, rtol=0, atol=1e-5)
    np.testing.assert_allclose(whole.losses, losses, rtol=1e-4, atol=2e-7)
    np.testing.assert_allclose(whole.losses[:100], losses[:100], rtol=1e-5)
    first = seed_run(steps=1300, checkpoint=path, checkpoint_every=512)
    assert first.steps == 1300
    assert_same_run(seed_run(steps=3000, resume=path), whole)


def test_interrupted_run_resumes_bitwise(tmp_path):
    path = tmp_path / "adam.ckpt"
    whole = minibatch_run(steps=700)

    def interrupt(step, w, loss):
        if step == 257:
            raise KeyboardInterrupt

    cut = minibatch_run(steps=700, checkpoint=path, log_every=256, callback=interrupt)
    assert cut.stop_reason == "interrupted at step 257"
    resumed = minibatch_run(steps=700, resume=path, checkpoint=path)  # state includes Adam's step count
    assert_same_run(resumed, whole)
    assert_same_run(minibatch_run(steps=700, resume=path), whole)  # resuming a finished run changes nothing


def test_resume_without_a_key_uses_the_saved_one(tmp_path):
    path = tmp_path / "seed.ckpt"
    seed_run(steps=600, checkpoint=path)
    resumed = tk.optimise(seed_loss, Z0, MOMENTUM, steps=900, data=seed_sample, resume=path)
    assert_same_run(resumed, seed_run(steps=900))


def test_checkpoint_errors(tmp_path):
    good = tmp_path / "good.ckpt"
    seed_run(steps=300, checkpoint=good)
    with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
        seed_run(resume=tmp_path / "missing.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x93not a checkpoint at all")
    with pytest.raises(ValueError, match=r"not a readable checkpoint \(corrupt or truncated file\)"):
        seed_run(resume=garbage)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        seed_run(resume=truncated)
    small = tmp_path / "small.ckpt"
    quadratic_run(jnp.ones(3), steps=5, checkpoint=small)
    with pytest.raises(
        ValueError, match=r"does not match this run: \.params is f32\[3\] in the file but f32\[4\] here"
    ):
        quadratic_run(jnp.ones(4), resume=small)
    with pytest.raises(ValueError, match="does not match this run.*another optimiser"):
        tk.optimise(seed_loss, Z0, ADAM, steps=10, data=seed_sample, key=KEY, resume=good)
    with pytest.raises(ValueError, match=r"is at step 300, beyond steps=100; pass steps >= 300"):
        seed_run(steps=100, resume=good)
    with pytest.raises(ValueError, match="written by a run with another key"):
        seed_run(resume=good, key=jax.random.key(1))
    other = tmp_path / "other.msgpack"
    other.write_bytes(serialization.msgpack_serialize({"a": np.ones(2)}))
    with pytest.raises(ValueError, match="is not a tk.optimise checkpoint"):
        seed_run(resume=other)


def test_resume_accepts_the_key_a_run_without_samples_was_given(tmp_path):
    # data=None uses no key, so none is saved; passing the same (unused) key again is not "another key".
    path = tmp_path / "quadratic.ckpt"
    quadratic_run(jnp.ones(2), steps=5, key=KEY, checkpoint=path)
    resumed = quadratic_run(jnp.ones(2), steps=9, key=KEY, resume=path)
    assert_same_run(resumed, quadratic_run(jnp.ones(2), steps=9))


def test_resume_if_exists_starts_fresh_then_continues(tmp_path):
    path = tmp_path / "run.ckpt"
    first = seed_run(steps=600, checkpoint=path, resume="if-exists")  # no file yet: a fresh run
    assert_same_run(first, seed_run(steps=600))
    assert_same_run(seed_run(steps=900, checkpoint=path, resume="if-exists"), seed_run(steps=900))
    assert side_files(tmp_path) == [serialization.msgpack_restore(path.read_bytes())["losses"]["file"]]
    with pytest.raises(ValueError, match=r"resume='if-exists' resumes from the checkpoint file.*pass checkpoint="):
        seed_run(resume="if-exists")
    with pytest.raises(FileNotFoundError, match="no such checkpoint file.*resume='if-exists' starts fresh"):
        seed_run(resume=tmp_path / "missing.ckpt")


def test_checkpoint_folder_is_checked_before_compiling(tmp_path):
    def never_compiled(p):
        raise AssertionError("traced: the checkpoint path should have been refused first")

    missing = tmp_path / "no" / "such" / "run.ckpt"
    with pytest.raises(
        FileNotFoundError, match=r"checkpoint=.*run\.ckpt.*the folder .*such' does not exist.*os\.makedirs"
    ):
        tk.optimise(never_compiled, jnp.ones(2), DESCENT, steps=10, checkpoint=missing)
    with pytest.raises(IsADirectoryError, match="is a folder; pass a file name in it"):
        tk.optimise(never_compiled, jnp.ones(2), DESCENT, steps=10, checkpoint=tmp_path)
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(
            PermissionError, match=r"cannot create a file in the folder .*locked.*pick a folder you can write"
        ):
            tk.optimise(never_compiled, jnp.ones(2), DESCENT, steps=10, checkpoint=locked / "run.ckpt")
    assert os.listdir(tmp_path) == [] or os.listdir(tmp_path) == ["locked"]  # the probe leaves nothing


def test_a_save_costs_the_same_after_100_and_after_10000_steps(tmp_path, monkeypatch):
    written = []
    write = checkpoints._write_all
    monkeypatch.setattr(
        checkpoints, "_write_all", lambda fd, data, offset: (written.append(len(data)), write(fd, data, offset))
    )
    quadratic_run(jnp.ones(3), steps=10_000, checkpoint=tmp_path / "long.ckpt", checkpoint_every=1000)
    losses, main = written[0::2], written[1::2]  # each save appends the new losses, then writes the checkpoint
    assert losses == [1000 * 4] * 10 + [0]  # 10 periodic saves of 1000 new f32 losses, and the final one
    assert max(main) - min(main) <= 8 and max(main) < 2000  # not O(steps): only t's encoding may grow
    quadratic_run(jnp.ones(3), steps=100, checkpoint=tmp_path / "short.ckpt")
    assert abs((tmp_path / "long.ckpt").stat().st_size - (tmp_path / "short.ckpt").stat().st_size) <= 8
    (side,) = [n for n in side_files(tmp_path) if n.startswith("long.")]
    assert (tmp_path / side).stat().st_size == 10_000 * 4


def test_batched_and_diverged_runs_resume_bitwise(tmp_path):
    starts = jnp.array([[1.0, 2.0], [30.0, -1.0], [0.1, 0.0]])  # tol stops each problem at another step
    whole = quadratic_run(starts, steps=400, batched=True, tol=1e-6)
    assert len(set(whole.steps.tolist())) == 3 and whole.steps.max() < 400
    path = tmp_path / "batch.ckpt"
    quadratic_run(starts, steps=60, batched=True, tol=1e-6, checkpoint=path, checkpoint_every=20)
    resumed = quadratic_run(starts, steps=400, batched=True, tol=1e-6, resume=path, checkpoint=path)
    assert_same_run(resumed, whole)
    assert_same_run(quadratic_run(starts, steps=400, batched=True, tol=1e-6, resume=path), whole)  # all stopped

    explode = tk.Descent(2.5)  # p_k = (-1.5)^k p_0 overflows near step 220
    with pytest.warns(RuntimeWarning, match="diverged"):
        gone = tk.optimise(quadratic, jnp.ones(2), explode, steps=400, checkpoint=tmp_path / "gone.ckpt")
    with pytest.warns(RuntimeWarning, match="diverged"):
        again = tk.optimise(quadratic, jnp.ones(2), explode, steps=400, resume=tmp_path / "gone.ckpt")
    assert gone.stop_reason.startswith("diverged")
    assert_same_run(again, gone)


def test_resume_refuses_what_is_not_a_regular_file_or_too_large(tmp_path):
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.ckpt"
        os.mkfifo(fifo)
        with pytest.raises(ValueError, match=r"fifo\.ckpt' is a FIFO, not a regular file"):  # never opened: no hang
            seed_run(resume=fifo)
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match="'/dev/zero' is a character device, not a regular file"):
            seed_run(resume="/dev/zero")
    with pytest.raises(ValueError, match="is a folder, not a regular file"):
        seed_run(resume=tmp_path)
    huge = tmp_path / "huge.ckpt"
    with open(huge, "wb") as file:
        file.truncate(2**30)  # sparse: costs no disk
    with pytest.raises(
        ValueError, match=r"holds 1073741824 bytes, more than a checkpoint of these parameters .* can \(\d+ bytes\)"
    ):
        seed_run(resume=huge)


class Layer:
    pass


@tk.struct
class Dense:
    w: jax.Array
    act: str = tk.field(static=True, default="relu")


@tk.struct
class Conv:
    w: jax.Array
    act: str = tk.field(static=True, default="relu")


def test_resume_refuses_another_structure_or_optimiser(tmp_path):
    dense = tmp_path / "dense.ckpt"
    quadratic_run({"layer": Dense(jnp.ones(2))}, steps=5, checkpoint=dense)
    with pytest.raises(
        ValueError,
        match=r"at \.params\['layer'\], the state holds Dense\[\('relu',\)\] in the file but Dense\[\('tanh',\)\] here",
    ):
        quadratic_run({"layer": Dense(jnp.ones(2), act="tanh")}, resume=dense)
    with pytest.raises(
        ValueError,
        match=r"at \.params\['layer'\], the state holds Dense\[\('relu',\)\] in the file but Conv\[\('relu',\)\] here",
    ):
        quadratic_run({"layer": Conv(jnp.ones(2))}, resume=dense)
    with pytest.raises(
        ValueError,
        match=r"optimiser Descent\(eta=0.1\), and this run uses Descent\(eta=0.2\) \(another optimiser, or other hyperparameters\)",
    ):
        tk.optimise(quadratic, {"layer": Dense(jnp.ones(2))}, tk.Descent(0.2), steps=10, resume=dense)
    adam, sgd = tmp_path / "adam.ckpt", optax.sgd(0.1)
    tk.optimise(quadratic, jnp.ones(2), optax.adam(0.1), steps=5, checkpoint=adam)
    with pytest.raises(
        ValueError, match=r"at \.opt_state\[0\], the state holds ScaleByAdamState in the file but EmptyState here"
    ):
        tk.optimise(quadratic, jnp.ones(2), sgd, steps=10, resume=adam)


def test_resume_refuses_crafted_fields(tmp_path):
    good = tmp_path / "good.ckpt"
    seed_run(steps=300, checkpoint=good)
    record = serialization.msgpack_restore(good.read_bytes())
    side = tmp_path / record["losses"]["file"]
    losses = np.frombuffer(side.read_bytes(), np.float32)

    def leaf(name, value):
        return lambda r: r["leaves"].__setitem__(r["paths"].index(name), value)

    def with_losses(values):
        def change(r):
            crafted = tmp_path / "crafted.ckpt.losses.00000000000000ff"
            crafted.write_bytes(np.asarray(values, np.float32).tobytes())
            r["losses"].update(file=crafted.name, sha256=hashlib.sha256(crafted.read_bytes()).hexdigest())

        return change

    nan_at_6 = losses.copy()
    nan_at_6[5] = np.nan
    cases = [
        (leaf(".status", np.array(7, np.int32)), r"\.status is 7, not one of the codes 0 \(running\), 1 \(tol\)"),
        (leaf(".steps", np.array(301, np.int32)), r"\.steps is 301, outside \[0, t=300\]"),
        (leaf(".steps", np.array(-1, np.int32)), r"\.steps is -1, outside \[0, t=300\]"),
        (lambda r: r.update(t=299), r"\.steps is 300, outside \[0, t=299\]"),
        (lambda r: r.update(t=-5), "t is -5, below 0"),
        (lambda r: r.update(t="300"), "the field 't' is str, not int"),
        (lambda r: r.pop("nodes"), "the field 'nodes' is missing"),
        (
            leaf(".params", np.asarray(Z0, np.float64)),
            r"does not match this run: \.params is f64\[3,3\] in the file but f32\[3,3\] here",
        ),
        (leaf(".params", np.full((3, 3), np.inf, np.float32)), r"\.params is not finite after a committed step"),
        (leaf(".last_loss", np.array(0.5, np.float32)), r"\.last_loss is 0\.5, where it must be the loss at step 300"),
        (leaf(".last_loss", np.float32(0.5)), r"\.last_loss is a float32, not an array, in the file but f32\[\] here"),
        (lambda r: r["losses"].update(rows=299), "names 299 rows of losses for t=300"),
        (lambda r: r["losses"].update(dtype="<f8"), "its losses are float64 but this run's loss is float32"),
        (lambda r: r["losses"].update(shape=[2]), r"rows of shape \(2,\), this run's \(\)"),
        (lambda r: r["losses"].update(sha256="0" * 64), "does not hold the 300 rows the checkpoint names"),
        (lambda r: r["losses"].update(file="../good.ckpt.losses.0123456789abcdef"), "is not a name of the form"),
        (lambda r: r["losses"].update(file="good.ckpt.losses.0123456789abcdef"), "is missing \\(copy it along"),
        (with_losses(losses[:200]), "holds 800 bytes, fewer than the 1200 its checkpoint names"),
        (with_losses(nan_at_6), "the loss at step 6 is nan, where it must be finite"),
        (
            lambda r: r.update(key={"impl": "nonesuch", "data": np.zeros(2, np.uint32)}),
            "the key .*'nonesuch'.* is not one JAX can make",
        ),
        (lambda r: r.update(key={"impl": "threefry2x32", "data": np.zeros(2, np.float32)}), "not uint32 key data"),
        (
            lambda r: r.update(optimiser="Adam()"),
            r"written with the optimiser Adam\(\), and this run uses Momentum\(eta=0.01, rho=0.9\)",
        ),
    ]
    for i, (change, match) in enumerate(cases):
        crafted = serialization.msgpack_restore(good.read_bytes())
        change(crafted)
        path = tmp_path / f"case{i}.ckpt"
        path.write_bytes(serialization.msgpack_serialize(crafted))
        with pytest.raises(ValueError, match=match):
            seed_run(resume=path)
    assert_same_run(seed_run(resume=good), seed_run())  # the file itself is fine

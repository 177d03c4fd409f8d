"""Checkpoint and resume: an interrupted-then-resumed run is bitwise the uninterrupted one; bad files are clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

import toolkit as tk
from tests.optimisation.problems import KEY, MOMENTUM, Z0, quadratic_run, seed_loss, seed_run, seed_sample

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
    assert (a.steps, a.stop_reason) == (b.steps, b.stop_reason)


def test_sampler_run_stopped_and_resumed_is_bitwise_the_whole_run(tmp_path):
    path = tmp_path / "seed.ckpt"
    whole = seed_run(steps=3000)
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

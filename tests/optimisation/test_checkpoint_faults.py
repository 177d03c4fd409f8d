"""Checkpoints under faults: kill -9 mid-save, Ctrl-C during a save, a full disk, two runs on one path, leftovers.

The runs that must be killed or must race are separate Python processes
(started once each: importing JAX is most of their cost); the rest make the
save itself fail through ``checkpoint._write_all``, which every byte goes through.
"""

import errno
import os
import signal
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from tests.optimisation.problems import Z0, seed_run
from toolkit.optimisation import checkpoint as checkpoints

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL, flock and FIFOs are POSIX")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = """
import os, sys, time
import numpy as np
from tests.optimisation.problems import Z0, seed_run
path, steps, every, scale, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
while go != "-" and not os.path.exists(go):
    time.sleep(0.005)
result = seed_run(steps=steps, start=Z0 * scale, checkpoint=path, checkpoint_every=every, resume="if-exists")
np.savez(path + f".result{scale}.npz", params=np.asarray(result.params), losses=result.losses)
"""


def child(path, steps, every, scale=1.0, go="-"):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    args = [sys.executable, "-c", CHILD, str(path), str(steps), str(every), str(scale), str(go)]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def saved_step(path):
    try:
        return serialization.msgpack_restore(path.read_bytes())["t"]
    except (OSError, ValueError, KeyError):
        return -1


def leftovers(folder):
    """The checkpoint's side and temporary files."""
    return sorted(n for n in os.listdir(folder) if ".losses." in n or n.endswith(".tmp"))


def assert_same(a, b):
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert (a.steps, a.stop_reason) == (b.steps, b.stop_reason)


def test_kill_9_during_saves_at_every_step_leaves_a_resumable_file(tmp_path):
    path, steps = tmp_path / "run.ckpt", 100_000
    reached = -1
    for round in range(2):  # the second run resumes the first (resume="if-exists") and is killed too
        run = child(path, steps, every=1)
        deadline = time.monotonic() + 120
        while saved_step(path) <= reached + 5 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.01)
        time.sleep(0.05 + 0.1 * round)  # in the middle of the saves, one per step
        run.send_signal(signal.SIGKILL)
        _, err = run.communicate(timeout=60)
        assert run.returncode == -signal.SIGKILL, err
        now = saved_step(path)
        assert now > reached, err  # loadable after each kill, and the second run went on from the first
        reached = now
    resumed = seed_run(steps=steps, resume=path, checkpoint=path)
    assert_same(resumed, seed_run(steps=steps))
    assert len(leftovers(tmp_path)) == 1  # the dead runs' losses and temporary files are gone; ours stays


def test_two_runs_on_one_path_leave_a_valid_file(tmp_path):
    path, go, steps = tmp_path / "both.ckpt", tmp_path / "go", 20_000
    runs = [child(path, steps, every=200, scale=scale, go=go) for scale in (1.0, 0.5)]
    time.sleep(1.0)
    go.touch()  # both start saving at about the same time
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert "could not save" not in err
    results = [np.load(f"{path}.result{scale}.npz") for scale in (1.0, 0.5)]
    last = seed_run(steps=steps, resume=path, checkpoint=path)  # a finished run: it returns what was saved
    assert any(np.array_equal(last.params, r["params"]) and np.array_equal(last.losses, r["losses"]) for r in results)
    assert len(leftovers(tmp_path)) == 1


def test_a_second_ctrl_c_during_the_final_save_still_returns_the_result(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"

    def second_ctrl_c(*_):
        raise KeyboardInterrupt

    def first_ctrl_c(step, params, loss):
        if step == 257:
            monkeypatch.setattr(checkpoints, "_write_all", second_ctrl_c)  # the next save is the final one
            raise KeyboardInterrupt

    with pytest.warns(
        RuntimeWarning,
        match=r"could not save .* at step 257 \(interrupted \(Ctrl-C\)\); the result is returned; the file holds the save of step 256",
    ):
        cut = seed_run(steps=700, checkpoint=path, checkpoint_every=128, log_every=256, callback=first_ctrl_c)
    assert cut.stop_reason == "interrupted at step 257"
    monkeypatch.undo()
    assert not [n for n in leftovers(tmp_path) if n.endswith(".tmp")]  # the interrupted save removed its own
    assert_same(seed_run(steps=700, resume=path), seed_run(steps=700))


def test_ctrl_c_during_a_save_stops_the_run_and_the_final_save_keeps_it(tmp_path, monkeypatch):
    path, calls, write = tmp_path / "run.ckpt", [], checkpoints._write_all

    def interrupted_once(fd, data, offset):
        calls.append(len(data))
        if len(calls) == 3:  # the second save's losses
            raise KeyboardInterrupt
        write(fd, data, offset)

    monkeypatch.setattr(checkpoints, "_write_all", interrupted_once)
    cut = seed_run(steps=700, checkpoint=path, checkpoint_every=128)
    assert cut.stop_reason == "interrupted at step 256"
    assert saved_step(path) == 256
    assert_same(seed_run(steps=700, resume=path), seed_run(steps=700))


def test_a_full_disk_warns_and_the_run_goes_on(tmp_path, monkeypatch):
    path, calls, write = tmp_path / "run.ckpt", [], checkpoints._write_all

    def disk_fills_after_the_first_save(fd, data, offset):
        calls.append(len(data))
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(fd, data, offset)

    monkeypatch.setattr(checkpoints, "_write_all", disk_fills_after_the_first_save)
    with pytest.warns(RuntimeWarning, match="No space left on device") as caught:
        result = seed_run(steps=700, checkpoint=path, checkpoint_every=128)
    messages = [str(w.message) for w in caught if "could not save" in str(w.message)]
    assert len(messages) == 2  # the first failure, and the final save; not one per save
    assert (
        "at step 256" in messages[0]
        and "the run goes on" in messages[0]
        and "holds the save of step 128" in messages[0]
    )
    assert "at step 700" in messages[1] and "the result is returned" in messages[1]
    assert_same(result, seed_run(steps=700))  # the run itself is untouched
    assert not [n for n in leftovers(tmp_path) if n.endswith(".tmp")]
    monkeypatch.undo()
    assert saved_step(path) == 128
    assert_same(seed_run(steps=700, resume=path), seed_run(steps=700))

    with pytest.warns(RuntimeWarning, match=r"no save of this run succeeded"):
        monkeypatch.setattr(checkpoints, "_write_all", lambda *_: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
        seed_run(steps=700, checkpoint=tmp_path / "never.ckpt")
    assert not (tmp_path / "never.ckpt").exists()


def test_leftovers_of_crashed_runs_are_removed(tmp_path):
    path = tmp_path / "run.ckpt"
    dead = "0123456789abcdef"
    (tmp_path / f"run.ckpt.losses.{dead}").write_bytes(b"\0" * 12)  # no run holds it, the checkpoint does not name it
    (tmp_path / f".run.ckpt.{dead}.1234abcd.tmp").write_bytes(b"half a save")
    orphan = tmp_path / ".run.ckpt.fedcba9876543210.0badf00d.tmp"  # of no losses file: removed once it is old
    orphan.write_bytes(b"x")
    young = tmp_path / ".run.ckpt.00000000000000aa.0badf00d.tmp"  # perhaps a run's first save right now: kept
    young.write_bytes(b"x")
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    other = tmp_path / "other.ckpt.losses.0123456789abcdef"  # another checkpoint's: not touched
    other.write_bytes(b"")
    result = seed_run(steps=300, checkpoint=path, checkpoint_every=100)
    names = sorted(os.listdir(tmp_path))
    named = serialization.msgpack_restore(path.read_bytes())["losses"]["file"]
    assert names == sorted(["run.ckpt", named, young.name, other.name])
    assert_same(seed_run(steps=300, resume=path), result)
    assert jnp.array_equal(seed_run(steps=300, resume=path, start=Z0).params, result.params)

"""Updates run ahead (``toolkit.ahead``): the explicit loop's ``tk.update`` worked out in its gradient's program.

Oracles: the same loop inside ``with tk.eager():`` (plain JAX, op by op), the
update worked out by hand from the gradient the loop was handed (Descent:
``z - η g``), the loop run again in the same process (the same bits), and
Python's ``gc``/``weakref``.
"""

import gc
import subprocess
import sys
import threading
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toolkit as tk
from toolkit import compiled, deferred

TARGET = jnp.arange(9.0).reshape(3, 3) / 9
ROWS = np.asarray(jax.random.uniform(jax.random.key(0), (40, 3)))


@tk.struct
class Pair:
    a: jax.Array
    b: jax.Array


def loop(opt, steps=30, start=None, check=None):
    z = jnp.eye(3) if start is None else start
    state = tk.setup(opt, z)
    for i in range(steps):
        x = ROWS[i]
        (g,) = tk.gradient(lambda z: tk.mse(z @ x, TARGET @ x), z)
        new, state = tk.update(opt, state, z, g)
        if check is not None:
            check(z, g, new)
        z = new
    return np.asarray(z)


@pytest.mark.parametrize("make", [tk.Descent, tk.Momentum, lambda: tk.Adam(0.01)], ids=["descent", "momentum", "adam"])
def test_the_loop_matches_eager_and_gives_the_same_bits_cold_and_warm(make):
    first = loop(make())
    with tk.eager():
        eager = loop(make())
    np.testing.assert_allclose(first, eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(first, loop(make()))  # everything cached and planned now


def test_each_update_steps_along_the_gradient_the_loop_was_handed():
    def check(z, g, new):  # Descent(0.1): the step is z - 0.1 g, for the very g returned
        np.testing.assert_allclose(new, np.asarray(z) - np.float32(0.1) * np.asarray(g), rtol=1e-6, atol=1e-7)
        x_grad = np.asarray(g)
        assert np.isfinite(x_grad).all()

    loop(tk.Descent(0.1), check=check)


def test_after_the_first_step_a_step_runs_one_program(monkeypatch):
    runs, fused = [], []
    real_run, real_execute = compiled.run, deferred.execute
    monkeypatch.setattr(compiled, "run", lambda *a: runs.append(a[2]) or real_run(*a))
    monkeypatch.setattr(deferred, "execute", lambda *a: fused.append(a) or real_execute(*a))
    loop(tk.Momentum(), steps=12)
    assert len(runs) <= 3 and len(fused) >= 10  # the first gradient and update one by one (and a compile)


def test_an_update_of_other_objects_than_those_worked_out_ahead_is_its_own():
    f = lambda z: jnp.sum(z**2)  # noqa: E731

    def learnt(opt):  # a few steps: the next gradient call works the update out ahead
        z = jnp.array([1.0, 2.0])
        state = tk.setup(opt, z)
        for _ in range(4):
            (g,) = tk.gradient(f, z)
            z, state = tk.update(opt, state, z, g)
        (g,) = tk.gradient(f, z)
        return z, state, g

    descent = tk.Descent(0.1)
    z, state, g = learnt(descent)
    other = z + 1.0  # another parameter object: the update kept for z is not for it
    new, _ = tk.update(descent, state, other, g)
    np.testing.assert_allclose(new, np.asarray(other) - 0.1 * np.asarray(g), rtol=1e-6)
    z, state, g = learnt(descent)
    new, _ = tk.update(descent, state, z, g / 2)  # another gradient
    np.testing.assert_allclose(new, np.asarray(z) - 0.05 * np.asarray(g), rtol=1e-6)
    z, state, g = learnt(descent)
    new, _ = tk.update(tk.Descent(0.3), state, z, g)  # another optimiser (with a state like its own)
    np.testing.assert_allclose(new, np.asarray(z) - 0.3 * np.asarray(g), rtol=1e-6)
    momentum = tk.Momentum(0.1, 0.9)
    z, state, g = learnt(momentum)
    new, _ = tk.update(momentum, tk.setup(momentum, z), z, g)  # another state: no momentum yet, so 0.1 g
    np.testing.assert_allclose(new, np.asarray(z) - 0.1 * np.asarray(g), rtol=1e-6)


def test_a_dict_of_parameters_changed_in_place_after_the_gradient_is_seen():
    opt = tk.Descent(0.5)
    params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
    state = tk.setup(opt, params)
    f = lambda p: jnp.sum(p["w"] ** 2) + p["b"] ** 2  # noqa: E731
    for _ in range(4):
        (g,) = tk.gradient(f, params)
        params, state = tk.update(opt, state, params, g)
    (g,) = tk.gradient(f, params)
    params["w"] = jnp.array([10.0, 20.0])  # the same dict, other contents
    new, _ = tk.update(opt, state, params, g)
    np.testing.assert_allclose(new["w"], np.array([10.0, 20.0]) - 0.5 * np.asarray(g["w"]), rtol=1e-6)


def test_structs_and_two_arguments_run_ahead_and_match_eager():
    def run():
        opt = tk.Momentum(0.1)
        a = Pair(jnp.ones(3), jnp.zeros(3))
        state = tk.setup(opt, a)
        for _ in range(20):  # the update takes the gradient of the second argument
            _, g = tk.gradient(lambda t, p: tk.tree.sum((p - t) * (p - t)), Pair(jnp.zeros(3), jnp.ones(3)), a)
            a, state = tk.update(opt, state, a, g)
        return np.asarray(a.a), np.asarray(a.b)

    first = run()
    with tk.eager():
        eager = run()
    np.testing.assert_allclose(first, eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(first, run())


def test_withgradient_and_has_aux_run_ahead_with_their_values():
    opt = tk.Descent(0.25)
    z = jnp.array([1.0, 2.0])
    state = tk.setup(opt, z)
    for k in range(5):
        (value, aux), (g,) = tk.withgradient(lambda z: (jnp.sum(z**2), z[0]), z, has_aux=True)
        np.testing.assert_allclose(value, np.sum((np.array([1.0, 2.0]) * 0.5**k) ** 2), rtol=1e-6)
        np.testing.assert_allclose(aux, 0.5**k, rtol=1e-6)
        z, state = tk.update(opt, state, z, g)
    np.testing.assert_allclose(z, np.array([1.0, 2.0]) * 0.5**5, rtol=1e-6)


def test_with_debug_nans_nothing_runs_ahead(monkeypatch):
    fused = []
    real = deferred.execute
    monkeypatch.setattr(deferred, "execute", lambda *a: fused.append(a) or real(*a))
    with jax.debug_nans(True):
        loop(tk.Momentum(), steps=6)
    assert not fused  # the update's own NaN check belongs at tk.update


def test_threads_each_get_the_bits_they_get_alone():
    alone = loop(tk.Adam(0.01))
    results = {}

    def work(name):
        results[name] = loop(tk.Adam(0.01))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results.values():
        np.testing.assert_array_equal(r, alone)


def test_a_finished_loop_keeps_no_user_object_alive():
    def use() -> weakref.ref:
        w = jnp.ones(3) * 2  # read by the loss only
        opt = tk.Descent(0.1)
        z = jnp.ones(3)
        state = tk.setup(opt, z)
        for _ in range(4):
            (g,) = tk.gradient(lambda z: jnp.sum(w * z**2), z)
            z, state = tk.update(opt, state, z, g)
        np.testing.assert_allclose(z, 0.6**4, rtol=1e-5)  # z - 0.1 * 4z, four times
        return weakref.ref(w)

    dead = use()
    gc.collect()
    assert dead() is None


def test_the_first_call_inside_jit_leaves_the_cache_sound():
    # In a fresh process the first toolkit call is traced: what tells concrete arrays from tracers must not be
    # learnt from a tracer (then plans would match tracers and leak them into later calls).
    code = """
import jax, jax.numpy as jnp, toolkit as tk
opt = tk.Adam(1e-2)
step = jax.jit(lambda s, m: tk.update(opt, s, m, tk.gradient(lambda m: jnp.sum(m["w"] ** 2), m)[0]))
m = {"w": jnp.ones(2)}
s = tk.setup(opt, m)
for _ in range(3):
    m, s = step(s, m)
opt2 = tk.Descent(0.5)
step2 = jax.jit(lambda s, m: tk.update(opt2, s, m, tk.gradient(lambda m: jnp.sum(m["w"] ** 2), m)[0]))
m, s = step2(tk.setup(opt2, m), m)
print(float(m["w"][0]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split()[-1]) == pytest.approx(0.0, abs=1e-6)  # w - 0.5 * 2w


def test_parameters_changed_between_steps_of_a_running_loop_are_read_as_changed():
    def run(opt):
        z = jnp.eye(3)
        state = tk.setup(opt, z)
        for i in range(12):
            if i in (6, 9):  # programs planned and chained by now: parameters they did not make
                z = z * 0.5
            x = ROWS[i]
            (g,) = tk.gradient(lambda z: tk.mse(z @ x, TARGET @ x), z)
            z, state = tk.update(opt, state, z, g)
        return np.asarray(z)

    compiled_run = run(tk.Momentum())
    with tk.eager():
        eager = run(tk.Momentum())
    np.testing.assert_allclose(compiled_run, eager, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [tk.Momentum, lambda: tk.Adam(0.01)], ids=["momentum", "adam"])
def test_the_gradients_handed_back_are_the_bits_of_the_gradients_own_program(make):
    # Worked out with the update ahead or alone, a gradient is the same bits: the loop's gradients do not depend
    # on the speed path (the update's arithmetic stays behind an optimisation barrier).
    from toolkit import ahead

    opt = make()
    z = jnp.eye(3)
    state = tk.setup(opt, z)
    compared = 0
    for i in range(20):
        x = ROWS[i]
        f = lambda z: tk.mse(z @ x, TARGET @ x)  # noqa: E731
        (g,) = tk.gradient(f, z)
        if ahead._SLOT.kept is not None:  # this one ran ahead: the gradient alone, for comparison
            saved, ahead._SLOT.ahead = ahead._SLOT.ahead, None
            (alone,) = tk.gradient(f, z)
            ahead._SLOT.ahead = saved
            np.testing.assert_array_equal(g, alone)
            compared += 1
        z, state = tk.update(opt, state, z, g)
    assert compared >= 10


@tk.struct
class Counted:
    w: jax.Array
    n: int  # not optimised: passed through


def test_caches_cleared_mid_loop_and_leaves_not_optimised_keep_the_numbers():
    def run(clear):
        opt = tk.Momentum(0.05)
        p = Counted(jnp.array([1.0, -2.0]), 3)
        state = tk.setup(opt, p)
        for i in range(8):
            if clear and i == 5:
                jax.clear_caches()  # the program run ahead must be traced again
            (g,) = tk.gradient(lambda p: jnp.sum(p.w**2) * p.n, p)
            p, state = tk.update(opt, state, p, g)
            assert p.n == 3 and type(p.n) is int
        return np.asarray(p.w)

    cleared = run(clear=True)
    with tk.eager():
        eager = run(clear=False)
    np.testing.assert_allclose(cleared, eager, rtol=1e-5, atol=1e-6)


def test_a_new_optimiser_object_each_step_stops_running_ahead_and_matches_eager(monkeypatch):
    fused = []
    real = deferred.execute
    monkeypatch.setattr(deferred, "execute", lambda *a: fused.append(a) or real(*a))

    def run():
        z = jnp.eye(3)
        state = tk.setup(tk.Momentum(), z)
        for i in range(30):
            x = ROWS[i]
            (g,) = tk.gradient(lambda z: tk.mse(z @ x, TARGET @ x), z)
            z, state = tk.update(tk.Momentum(), state, z, g)  # equal, but never the object worked out ahead
        return np.asarray(z)

    ran = run()
    assert len(fused) <= 8  # each update worked out ahead was thrown away: it stopped after a few
    with tk.eager():
        np.testing.assert_allclose(ran, run(), rtol=1e-5, atol=1e-6)


def test_updates_with_extra_arguments_are_not_worked_out_ahead_for_nothing(monkeypatch):
    """A loop whose tk.update starts passing extra arguments (value=...) after plain steps: those updates run on
    their own, and the gradient calls stop working out the plain update ahead (it would be thrown away)."""
    fused = []
    real = deferred.execute
    monkeypatch.setattr(deferred, "execute", lambda *a: fused.append(a) or real(*a))
    opt = optax.chain(optax.sgd(0.1))  # takes extra arguments (as every chain does) and ignores value=
    z, state = jnp.eye(3), tk.setup(opt, jnp.eye(3))
    for i in range(30):
        x = ROWS[i]
        if i == 10:
            assert fused  # the plain steps were worked out ahead
            fused.clear()
        (g,) = tk.gradient(lambda z: tk.mse(z @ x, TARGET @ x), z)
        extra = {"value": jnp.float32(0.0)} if i >= 10 else {}
        new, state = tk.update(opt, state, z, g, **extra)
        np.testing.assert_allclose(new, np.asarray(z) - np.float32(0.1) * np.asarray(g), rtol=1e-6, atol=1e-7)
        z = new
    assert len(fused) <= 1  # the switching step's gradient, worked out before its update was seen; none after


@pytest.mark.parametrize("make", [tk.Momentum, lambda: tk.Adam(0.01)], ids=["momentum", "adam"])
def test_updates_worked_out_ahead_are_the_bits_of_tk_updates_own_program(make):
    # XLA contracts a * b + c into one fused multiply-add (rounded once): a program computing a gradient and then
    # Adam's b1 * mu + (1 - b1) * g would round differently from the two programs. Oracle: tk.update's own program
    # on copies of each step's values (new arrays: nothing worked out ahead for them).
    opt = make()
    z, steps = jnp.eye(3), []
    state = tk.setup(opt, z)
    for i in range(12):
        x = ROWS[i]
        (g,) = tk.gradient(lambda z: tk.mse(jnp.sin(z @ x), TARGET @ x), z)
        new, new_state = tk.update(opt, state, z, g)
        steps.append(((state, z, g), (new, new_state)))
        z, state = new, new_state
    for values, got in steps:
        want = tk.update(opt, *jax.tree.map(jnp.array, values))
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

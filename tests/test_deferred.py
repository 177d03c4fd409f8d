"""Deferred calls (``toolkit.deferred``): ``tk.gradient(f, ps)`` + ``tk.update_`` as one program a step.

Oracles: the same loop inside ``with tk.eager():`` (plain JAX, op by op), gradients
worked out by hand (``d/dz mean((z x - t x)²) = 2/n (z x - t x) xᵀ``), the same loop
reading its gradients before each update (which must not change a bit), and
Python's ``gc``/``weakref``.
"""

import gc
import threading
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from toolkit import compiled

TARGET = jnp.arange(9.0).reshape(3, 3) / 9
ROWS = np.asarray(jax.random.uniform(jax.random.key(0), (40, 3)))


def grad_of_mse(z, x, t=TARGET):
    r = np.asarray(z) @ np.asarray(x) - np.asarray(t) @ np.asarray(x)
    return 2.0 / r.size * np.outer(r, x)


def loop(opt, steps=40, read=False, rows=ROWS):
    z = tk.Param(jnp.eye(3))
    ps = tk.Params([z])
    for i in range(steps):
        x = rows[i]
        gs = tk.gradient(lambda: tk.mse(z.value @ x, TARGET @ x), ps)
        if read:
            np.asarray(gs[z])
        tk.update_(opt, ps, gs)
    return np.asarray(z.value)


@pytest.mark.parametrize("make", [tk.Descent, tk.Momentum, lambda: tk.Adam(0.01)], ids=["descent", "momentum", "adam"])
def test_the_loop_matches_eager_and_reading_the_gradients_changes_no_bit(make):
    fused = loop(make())
    read = loop(make(), read=True)
    with tk.eager():
        eager = loop(make())
    np.testing.assert_array_equal(fused, read)
    np.testing.assert_allclose(fused, eager, rtol=1e-5, atol=1e-6)
    again = loop(make())  # the programs cached now: the same bits as the first run
    np.testing.assert_array_equal(fused, again)


def test_after_the_first_steps_a_step_runs_one_program(monkeypatch):
    z = tk.Param(jnp.eye(3))
    ps, opt = tk.Params([z]), tk.Momentum()
    runs = []
    real = compiled.run
    monkeypatch.setattr(compiled, "run", lambda *a: runs.append(a[2]) or real(*a))
    for i in range(10):
        x = ROWS[i]
        tk.update_(opt, ps, tk.gradient(lambda: tk.mse(z.value @ x, TARGET @ x), ps))
    assert len(runs) <= 3  # the first gradient (which compiles it) and at most the first steps' one by one


def test_gradients_are_those_at_the_call_whatever_changes_after():
    z = tk.Param(jnp.eye(3))
    ps = tk.Params([z])
    x = ROWS[0].copy()  # a NumPy array, changed in place below
    for _ in range(2):  # the second call is deferred
        gs = tk.gradient(lambda: tk.mse(z.value @ x, TARGET @ x), ps)
    expected = grad_of_mse(z.value, x)
    at_call = z.value
    x[:] = [5.0, -1.0, 2.0]  # in place
    z.value = z.value + 1.0
    tk.update_(tk.Descent(0.5), ps, gs)  # the boxes' values now, stepped along the gradient of the call
    np.testing.assert_allclose(z.value, np.asarray(at_call) + 1.0 - 0.5 * expected, rtol=1e-6)
    np.testing.assert_allclose(gs[z], expected, rtol=1e-6)  # read after the update: still the call's


def test_a_closure_changed_in_shape_then_cleared_caches_is_an_error_not_a_stale_trace():
    z = tk.Param(jnp.eye(3))
    ps = tk.Params([z])
    x = jnp.ones(3)
    for _ in range(2):
        gs = tk.gradient(lambda: jnp.sum((z.value @ x) ** 2), ps)
    x = jnp.ones((3, 3))  # the lambda reads another shape now
    jax.clear_caches()  # so reading gs must trace its program again
    with pytest.raises(compiled.StaleValues, match="read the gradient"):
        gs[z]


def test_with_debug_nans_the_gradient_runs_at_the_call():
    z = tk.Param(jnp.array([-1.0, 4.0]))
    ps = tk.Params([z])
    f = lambda: jnp.sum(jnp.sqrt(z.value))  # noqa: E731  NaN at -1
    tk.gradient(f, ps)
    with jax.debug_nans(True):
        with pytest.raises(FloatingPointError):
            tk.gradient(f, ps)


def test_deferred_and_fused_calls_keep_no_user_object_alive():
    def use() -> weakref.ref:
        w = jnp.ones(3) * 2  # read by the loss only
        z = tk.Param(jnp.ones(3))
        ps, opt = tk.Params([z]), tk.Descent(0.1)
        for _ in range(4):
            tk.update_(opt, ps, tk.gradient(lambda: jnp.sum(w * z.value**2), ps))
        np.testing.assert_allclose(z.value, 0.6**4, rtol=1e-5)  # z - 0.1 * 4z, four times
        return weakref.ref(w)

    dead = use()
    gc.collect()
    assert dead() is None


def test_an_update_reading_values_that_need_concrete_values_falls_back():
    z = tk.Param(jnp.ones(2))
    ps = tk.Params([z])

    def schedule(count):
        return 0.5 if int(count) < 100 else 0.1  # a Python branch on a value: the step cannot be traced

    opt = tk.Descent(schedule)
    with pytest.warns(tk.EagerFallbackWarning):
        for _ in range(3):
            tk.update_(opt, ps, tk.gradient(lambda: jnp.sum(z.value**2), ps))
    np.testing.assert_allclose(z.value, 0.0)  # z - 0.5 * 2z each step


def test_x64_switched_between_the_gradient_and_the_update_keeps_each_in_its_mode():
    z = tk.Param(jnp.array([1.0, 2.0]))
    ps = tk.Params([z])
    f = lambda: jnp.sum(z.value**2)  # noqa: E731
    for _ in range(3):  # compiled, planned and fused in float32
        tk.update_(tk.Descent(0.25), ps, tk.gradient(f, ps))
    gs = tk.gradient(f, ps)  # deferred in float32
    with jax.enable_x64(True):
        assert gs[z].dtype == jnp.float32  # worked out in the mode of the call
        tk.update_(tk.Descent(0.25), ps, gs)
    np.testing.assert_allclose(z.value, np.array([1.0, 2.0]) * 0.5**4, rtol=1e-6)


def test_loops_in_two_threads_give_the_bits_of_one_thread_each():
    def run(start, out, key):
        out[key] = loop(tk.Momentum(), steps=30, rows=ROWS[start:] if start else ROWS)

    alone = {}
    run(0, alone, "a")
    run(5, alone, "b")
    together = {}
    threads = [threading.Thread(target=run, args=(s, together, k)) for s, k in ((0, "a"), (5, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key in "ab":
        np.testing.assert_array_equal(together[key], alone[key])


def test_a_box_changed_between_steps_of_a_running_loop_is_read_as_changed():
    def run(opt):
        z = tk.Param(jnp.eye(3))
        ps = tk.Params([z])
        for i in range(12):
            if i in (6, 9):  # the loop's programs are planned and chained by now: a value they did not write
                z.value = z.value * 0.5
            x = ROWS[i]
            tk.update_(opt, ps, tk.gradient(lambda: tk.mse(z.value @ x, TARGET @ x), ps))
        return np.asarray(z.value)

    compiled_run = run(tk.Momentum())
    with tk.eager():
        eager = run(tk.Momentum())
    np.testing.assert_allclose(compiled_run, eager, rtol=1e-5, atol=1e-6)


def test_caches_cleared_in_a_running_loop_trace_the_fused_step_again_with_the_same_numbers():
    def run(opt, clear):
        z = tk.Param(jnp.eye(3))
        ps = tk.Params([z])
        for i in range(8):
            if clear and i == 5:
                jax.clear_caches()  # the chained program must be traced again, from the values of this step
            x = ROWS[i]
            tk.update_(opt, ps, tk.gradient(lambda: tk.mse(z.value @ x, TARGET @ x), ps))
        return np.asarray(z.value)

    cleared = run(tk.Momentum(), clear=True)
    with tk.eager():
        eager = run(tk.Momentum(), clear=False)
    np.testing.assert_allclose(cleared, eager, rtol=1e-5, atol=1e-6)

"""tk.optimise: the compiled loop, its stopping rules, guards, callbacks, interrupts, batches and input checks."""

import functools
import logging
import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from tests.optimisation.problems import (
    DESCENT,
    KEY,
    MOMENTUM,
    TRACES,
    Z0,
    Z_TARGET,
    first_step_where,
    quadratic,
    quadratic_run,
    seed_run,
    seed_sample,
)

# --- the oracle: the seed problem written out in float64 NumPy -------------------------------------------


@functools.cache
def seed_samples(steps=1000):
    """The documented samples: step s (counting from 0) gets the seed's x = rand(3) drawn from fold_in(KEY, s)."""
    draw = jax.vmap(lambda s: jax.random.uniform(jax.random.fold_in(KEY, s), (3,)))
    return np.asarray(draw(jnp.arange(steps)), np.float64)


def seed_by_hand(start, steps, η=0.01, ρ=0.9):
    """(losses, z, v) of the seed problem by hand: L = mse(z x, z′ x) = ‖r‖²/3 with r = (z - z′) x, whose gradient
    is 2 r xᵀ / 3, and Flux's Momentum (defaults η = 0.01, ρ = 0.9): v = ρv - ηΔ; z += v. Float64 throughout."""
    samples = seed_samples(max(1000, steps))
    z, target = np.asarray(start, np.float64), np.asarray(Z_TARGET, np.float64)
    v = np.zeros_like(z)
    losses = np.empty(steps)
    for s in range(steps):
        x = samples[s]
        r = (z - target) @ x
        losses[s] = r @ r / 3
        v = ρ * v - η * (2 / 3) * np.outer(r, x)
        z = z + v
    return losses, z, v


def assert_matches_seed_by_hand(losses, z, start, steps):
    """A float32 run against the float64 oracle, to float32 accuracy."""
    expected_losses, expected_z, _ = seed_by_hand(start, steps)
    np.testing.assert_allclose(losses, expected_losses, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(z, expected_z, rtol=2e-5, atol=1e-6)


def test_seed_problem_reaches_the_target():
    result = seed_run(steps=10**5)
    assert bool(tk.tree.isapprox(result.params, Z_TARGET))
    assert result.steps == 10**5 and result.stop_reason == "reached steps=100000"
    assert result.losses.shape == (10**5,) and result.losses[-1] < 1e-9 < result.losses[0]
    assert jax.tree.structure(result.state) == jax.tree.structure(tk.setup(MOMENTUM, Z0))


def test_same_steps_as_a_hand_written_loop():
    # Oracle: the loop written out in float64 NumPy (analytic gradient, Flux's Momentum), on the documented samples.
    result = seed_run(steps=200)
    assert result.losses.shape == (200,)
    assert_matches_seed_by_hand(result.losses, result.params, Z0, 200)
    # The optimiser state that goes with the parameters: Momentum's velocity v after step 200.
    np.testing.assert_allclose(result.state[1].trace, seed_by_hand(Z0, 200)[2], rtol=2e-5, atol=1e-8)


def test_repeat_calls_reuse_the_compiled_loop():
    seed_run(steps=300)
    before = dict(TRACES)
    runs = [seed_run(steps=500, start=start) for start in (Z0 + 1, 2 * Z0)]  # other starts, same shapes and dtypes
    assert dict(TRACES) == before and before["loss"] >= 1
    # The reused loop starts from the new parameters, not from those it was compiled with.
    assert_matches_seed_by_hand(runs[1].losses, runs[1].params, 2 * Z0, 500)


@tk.struct
class Model:
    w: jax.Array
    b: jax.Array
    calls: int  # an integer leaf: carried along, never optimised
    activation: str = tk.field(static=True, default="tanh")


def test_structs_keep_their_type_and_their_non_float_fields():
    def loss(m):
        assert m.activation == "tanh"
        return jnp.sum((m.w * m.calls + m.b - 1.0) ** 2)

    result = tk.optimise(loss, Model(jnp.zeros(2), jnp.zeros(2), 3), tk.Adam(0.05), steps=2000)
    assert isinstance(result.params, Model) and result.params.calls == 3
    assert result.params.activation == "tanh"
    np.testing.assert_allclose(result.params.w * 3 + result.params.b, [1.0, 1.0], atol=1e-4)


def test_callback_every_k_steps_like_the_seed_log():
    seen = []
    result = seed_run(steps=51, log_every=5, callback=lambda step, z, loss: seen.append((step, z, float(loss))))
    assert [s for s, _, _ in seen] == [1, 6, 11, 16, 21, 26, 31, 36, 41, 46, 51]  # the seed's idx % 5 == 1
    # Each call gets that step's loss (before its update) and the parameters after it, as the oracle has them.
    expected_losses = seed_by_hand(Z0, 51)[0]
    for step, z, loss in seen:
        expected_z = seed_by_hand(Z0, step)[1]
        np.testing.assert_allclose(loss, expected_losses[step - 1], rtol=2e-5, err_msg=f"loss at step {step}")
        np.testing.assert_allclose(z, expected_z, rtol=2e-5, atol=1e-6, err_msg=f"params after step {step}")
    np.testing.assert_array_equal([loss for _, _, loss in seen], result.losses[[s - 1 for s, _, _ in seen]])


def test_log_every_alone_prints_the_loss(capsys):
    result = quadratic_run(jnp.ones(2), steps=7, log_every=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"step {s}: loss {result.losses[s - 1]:.6g}" for s in (1, 4, 7)]
    np.testing.assert_allclose(result.losses, 0.81 ** np.arange(7), rtol=1e-6)  # L_k = ½‖p_0‖²·0.81^(k-1)


def test_progress_bar_shows_steps_and_loss(capsys):
    quadratic_run(jnp.ones(2), steps=300, progress=True)
    err = capsys.readouterr().err
    assert "300/300" in err and "step/s" in err and "loss=" in err


def test_tol_stops_on_a_small_loss_change():
    p0 = jnp.array([1.0, -2.0])
    result = quadratic_run(p0, tol=1e-4)
    L = result.losses
    n = result.steps
    assert result.stop_reason == f"tol: |Δloss| <= 0.0001 at step {n}"
    assert abs(L[n - 1] - L[n - 2]) <= 1e-4 and np.all(np.abs(np.diff(L[: n - 1])) > 1e-4)
    # L_k = ½‖p‖²·0.81^(k-1): the first k >= 2 with L_{k-1} - L_k <= 1e-4.
    exact = [2.5 * 0.81 ** (k - 1) for k in range(1, 200)]
    assert n == 1 + first_step_where(lambda d: d <= 1e-4, -np.diff(exact))


def test_gtol_stops_on_a_small_gradient():
    p0 = jnp.array([3.0, 4.0])  # ‖∇‖ at step k is ‖p_{k-1}‖ = 5·0.9^(k-1)
    result = quadratic_run(p0, gtol=0.01)
    expected = first_step_where(lambda g: g <= 0.01, [5 * 0.9 ** (k - 1) for k in range(1, 500)])
    assert result.steps == expected and result.stop_reason == f"gtol: gradient norm <= 0.01 at step {expected}"
    np.testing.assert_allclose(result.params, p0 * 0.9**expected, rtol=1e-4)


def test_divergence_stops_at_the_last_finite_iterate():
    blowup = tk.Descent(2.5)  # p_k = (-1.5)^k p_0: the loss overflows float32 after ~100 steps
    with pytest.warns(RuntimeWarning, match=r"diverged at step \d+.*last finite parameters"):
        result = tk.optimise(quadratic, jnp.array([1.0]), blowup, steps=10**4)
    # Oracle: step k's loss ½·(p·p) at p_{k-1} = (-1.5)^(k-1) is the first not finite when p·p overflows float32.
    n = next(k for k in range(1, 1000) if 1.5 ** (2 * k) > float(np.finfo(np.float32).max))
    assert result.steps == n and result.stop_reason == f"diverged at step {n + 1}"
    assert np.all(np.isfinite(result.params)) and np.all(np.isfinite(result.losses)) and len(result.losses) == n
    np.testing.assert_allclose(result.params, [(-1.5) ** n], rtol=1e-5)  # the last finite iterate, p_n
    np.testing.assert_allclose(result.losses, 0.5 * 1.5 ** (2 * np.arange(n)), rtol=1e-5)
    assert not np.isfinite(quadratic(result.params * -1.5))  # the next step really was non-finite


def test_a_non_finite_gradient_with_a_finite_loss_also_stops():
    def loss(p):  # finite at 0, but its gradient there is 0 * inf = nan
        return jnp.sum(jnp.sqrt(jnp.abs(p)))

    with pytest.warns(RuntimeWarning, match="diverged at step 1"):
        result = tk.optimise(loss, jnp.array([0.0, 1.0]), DESCENT, steps=100)
    assert result.steps == 0 and result.stop_reason == "diverged at step 1"
    np.testing.assert_array_equal(result.params, [0.0, 1.0])


def test_ctrl_c_in_a_callback_returns_the_result_so_far():
    def interrupt_at_11(step, z, loss):
        if step == 11:
            raise KeyboardInterrupt

    result = seed_run(steps=1000, log_every=5, callback=interrupt_at_11)
    assert result.steps == 11 and result.stop_reason == "interrupted at step 11" and len(result.losses) == 11
    assert_matches_seed_by_hand(result.losses, result.params, Z0, 11)  # exactly step 11's iterate,
    assert not np.allclose(result.params, seed_by_hand(Z0, 10)[1], rtol=1e-4, atol=1e-5)  # not step 10's


# A problem whose iterates are exact in float64 at any step count, so that an oracle can name the step a run
# stopped at: Descent with η = 2⁻¹⁰ on the linear loss C·p (gradient C, small integers) from 0 gives
# p_N = -N·η·C and L_k = -(k - 1)·η·‖C‖², every operation exact. (The seed problem runs ~10⁷ steps in
# 0.3 s and has converged long before: no oracle could tell its iterates apart there.)
LINEAR_C = np.arange(256) % 7 - 3.0
LINEAR_OPT = tk.Descent(2.0**-10)


def linear_loss(p):
    return jnp.sum(p * LINEAR_C)


def test_ctrl_c_during_a_long_compiled_run_returns_the_result_so_far(x64):
    running, finished = threading.Event(), threading.Event()
    log_every = 10**8  # the callback runs once, after step 1: the loop has started
    p0 = jnp.zeros(256)

    def interrupt_once_running():
        if running.wait(timeout=60) and not finished.wait(timeout=0.3):  # 0.3 s into the compiled loop
            os.kill(os.getpid(), signal.SIGINT)

    tk.optimise(linear_loss, p0, LINEAR_OPT, steps=10, log_every=log_every, callback=lambda *_: None)  # compiled
    sender = threading.Thread(target=interrupt_once_running, daemon=True)
    began = time.perf_counter()
    sender.start()
    try:
        result = tk.optimise(
            linear_loss, p0, LINEAR_OPT, steps=10**9, log_every=log_every, callback=lambda *_: running.set()
        )
    finally:
        finished.set()
        running.set()
        sender.join()
    assert time.perf_counter() - began < 30
    n = result.steps
    assert 1 < n < 10**9 and result.stop_reason == f"interrupted at step {n}" and len(result.losses) == n
    η = 2.0**-10
    np.testing.assert_array_equal(result.params, -n * η * LINEAR_C)  # exactly step n's iterate
    np.testing.assert_array_equal(result.losses, -np.arange(n) * η * np.sum(LINEAR_C**2))


def test_batched_problems_match_separate_runs():
    starts = jnp.stack([Z0, Z0 + 1, 3 * Z0])
    batch = seed_run(steps=300, start=starts, batched=True)
    assert batch.stop_reason == ("reached steps=300",) * 3 and list(batch.steps) == [300] * 3
    assert batch.losses.shape == (300, 3)
    for i in range(3):  # each problem against its own run by hand, all on the same samples
        assert_matches_seed_by_hand(batch.losses[:, i], batch.params[i], starts[i], 300)


def test_batched_problems_stop_on_their_own():
    starts = {"p": jnp.array([[3.0, 4.0], [0.3, 0.4], [jnp.inf, 0.0]])}  # ‖∇‖ = 5·0.9^(k-1), 0.5·0.9^(k-1); and inf
    with pytest.warns(RuntimeWarning, match="1 of 3 problems diverged, first diverged at step 1"):
        result = quadratic_run(starts, batched=True, gtol=0.01)
    first = [first_step_where(lambda g: g <= 0.01, [m * 0.9 ** (k - 1) for k in range(1, 500)]) for m in (5, 0.5)]
    assert list(result.steps) == [*first, 0]
    assert result.stop_reason == (
        f"gtol: gradient norm <= 0.01 at step {first[0]}",
        f"gtol: gradient norm <= 0.01 at step {first[1]}",
        "diverged at step 1",
    )
    assert result.losses.shape == (first[0], 3)
    assert np.all(np.isnan(result.losses[first[1] :, 1])) and np.all(np.isfinite(result.losses[: first[1], 1]))
    np.testing.assert_array_equal(result.params["p"][2], [np.inf, 0.0])  # never stepped


def test_implicit_params_are_read_once_and_written_back():
    z = tk.Param(Z0)
    ps = tk.Params([z])
    result = tk.optimise(
        lambda x: tk.mse(z.value @ x, Z_TARGET @ x), ps, MOMENTUM, steps=500, data=seed_sample, key=KEY
    )
    assert result.params is ps and isinstance(z.value, jax.Array) and not isinstance(z.value, jax.core.Tracer)
    assert_matches_seed_by_hand(result.losses, z.value, Z0, 500)


def test_bad_input_is_an_error_before_anything_compiles(caplog):
    two = jnp.ones(2)
    cases = [
        (
            dict(loss=lambda p: p * 2),
            TypeError,
            r"loss must return a real floating-point scalar, but it returned f32\[2\]",
        ),
        (
            dict(params={"n": 3, "i": jnp.arange(2)}),
            ValueError,
            r"no floating-point leaves to optimise \(got leaves i32\[2\]",
        ),
        (dict(steps=0), ValueError, "steps must be a positive integer, got 0"),
        (dict(steps=2.5), ValueError, "steps must be a positive integer, got 2.5"),
        (
            dict(data=(jnp.ones((4, 2)), jnp.ones(5))),
            ValueError,
            r"disagree on the number of examples.*data\[0\]: 4, data\[1\]: 5",
        ),
        (dict(data=seed_sample), ValueError, r"a sampler needs a random key; pass key=jax.random.key\(0\)"),
        (dict(data=jnp.ones((4, 2)), batch_size=5, key=KEY), ValueError, r"batch_size must be an integer in \[1, 4\]"),
        (dict(loss=lambda p, x: jnp.sum(p)), TypeError, r"loss is called as loss\(params\), but"),
        (dict(opt=tk.Adam), TypeError, r"Did you mean Adam\(\)"),
        (dict(callback=print), ValueError, "a callback needs log_every"),
        (dict(tol=-1.0), ValueError, "tol must be a finite number >= 0"),
        (dict(checkpoint_every=5), ValueError, r"checkpoint_every needs a file to write to; pass checkpoint="),
        (dict(params=jnp.array(1.0), batched=True), ValueError, r"same leading \(problem\) axis.*params: no axis"),
        (
            dict(params={"a": jnp.ones((2, 1)), "b": jnp.ones(3)}, batched=True),
            ValueError,
            r"params\['a'\]: 2, params\['b'\]: 3",
        ),
    ]
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        for overrides, error, message in cases:
            call = dict(loss=lambda p: jnp.sum(p**2), params=two, opt=DESCENT, steps=10)
            call.update(overrides)
            with pytest.raises(error, match=message):
                tk.optimise(call.pop("loss"), call.pop("params"), call.pop("opt"), **call)
    assert "Compiling jit(run)" not in caplog.text  # the loop itself was never compiled


def test_steps_beyond_the_int32_step_counter_are_an_error():
    def stop(step, p, loss):  # without the check the run would start; end it at once
        raise KeyboardInterrupt

    with pytest.raises(ValueError, match=r"steps must be at most 2147483392 .*int32.*got 2147483393"):
        tk.optimise(quadratic, jnp.ones(2), DESCENT, steps=2**31 - 255, log_every=1, callback=stop)

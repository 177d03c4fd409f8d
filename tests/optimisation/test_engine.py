"""The compiled loop's guard, against a loop guarded at every step written by hand in NumPy.

``tk.optimise`` watches only the loss (and the gradient norm when ``gtol`` asks
for it) at each step and checks every element only once a draw (of many steps'
samples), running those steps again, guarded at every step, when something looked wrong. These tests
make each kind of trouble happen at a known step and compare the result with
the plain rule: a step whose loss, gradient or new parameters are not finite is
not applied, and the run stops there.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toolkit as tk
from tests.compiles import compiled_names

STEPS = np.arange(600, dtype=np.int32)  # data: step s sees the number s


def poisoned_square(bad_step):
    """``p²`` whose gradient is NaN at step ``bad_step`` (0-based) while its value stays finite."""

    @jax.custom_vjp
    def f(p, s):
        return jnp.sum(p * p)

    def forward(p, s):
        return f(p, s), (p, s)

    def backward(residuals, g):
        p, s = residuals
        return (jnp.where(s == bad_step, jnp.nan, 2 * p * g), None)

    f.defvjp(forward, backward)
    return f


def descent_by_hand(p, eta, steps):
    """Descent on Σp² in float32, as the rule is written: p ← p - η·2p."""
    p = np.asarray(p, np.float32)
    for _ in range(steps):
        p = p - np.float32(eta) * (2 * p)
    return p


@pytest.mark.parametrize("bad_step", [0, 5, 255, 256, 300])
def test_a_non_finite_gradient_with_a_finite_loss_stops_at_that_step(bad_step):
    loss = poisoned_square(bad_step)
    p0 = jnp.array([1.0, -2.0])
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = tk.optimise(loss, p0, tk.Descent(0.05), steps=600, data=STEPS)
    assert result.stop_reason == f"diverged at step {bad_step + 1}"
    assert result.steps == bad_step and result.losses.shape == (bad_step,)
    np.testing.assert_allclose(result.params, descent_by_hand(p0, 0.05, bad_step), rtol=1e-5)
    expected = [np.sum(descent_by_hand(p0, 0.05, k) ** 2) for k in range(bad_step)]
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5)


@pytest.mark.parametrize("bad_step", [0, 1, 7, 15, 16, 17, 31, 299])
def test_one_infinite_loss_with_a_finite_gradient_stops_at_that_step(bad_step):
    """The loss is inf at one step only, its gradient 0 there: the parameters stay finite and every later loss
    would be finite, so only that step's own loss tells (wherever it falls among the steps checked together)."""
    loss = lambda p, s: jnp.where(s == bad_step, jnp.inf, jnp.sum(p * p))
    p0 = jnp.array([1.0, -2.0])
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = tk.optimise(loss, p0, tk.Descent(0.05), steps=600, data=STEPS)
    assert result.stop_reason == f"diverged at step {bad_step + 1}" and result.steps == bad_step
    np.testing.assert_allclose(result.params, descent_by_hand(p0, 0.05, bad_step), rtol=1e-5)
    expected = [np.sum(descent_by_hand(p0, 0.05, k) ** 2) for k in range(bad_step)]
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5)


def test_parameters_that_overflow_while_the_loss_stays_finite_stop_the_run():
    """b is decayed by 10^30 a step: finite after step 1, inf after step 2; the loss reads only a."""
    opt = optax.chain(optax.add_decayed_weights(1e30), optax.sgd(1.0))
    params = {"a": jnp.array(1.0), "b": jnp.array(1.0)}
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = tk.optimise(lambda p: p["a"] ** 2, params, opt, steps=50)
    assert result.stop_reason == "diverged at step 2" and result.steps == 1
    a, b = np.float32(1.0), np.float32(1.0)
    a, b = a - (2 * a + np.float32(1e30) * a), b - np.float32(1e30) * b  # step 1, by hand
    np.testing.assert_array_equal(result.params["b"], b)
    np.testing.assert_array_equal(result.params["a"], a)


def test_a_gradient_norm_that_overflows_is_not_mistaken_for_a_divergence():
    """|g| = 1e20 is finite in float32 but |g|² is not: the run goes on, exactly as one guarded every step."""
    loss = lambda p: 1e20 * jnp.sum(p)  # noqa: E731
    p0 = jnp.array([0.0, 1.0])
    with_gtol = tk.optimise(loss, p0, tk.Descent(1e-22), steps=300, gtol=1e-3)
    without = tk.optimise(loss, p0, tk.Descent(1e-22), steps=300)
    assert with_gtol.stop_reason == without.stop_reason == "reached steps=300"
    p = np.asarray(p0)
    for _ in range(300):  # by hand, in float32: p ← p - 1e-22·1e20
        p = p - np.float32(1e-22) * np.float32(1e20)
    np.testing.assert_allclose(with_gtol.params, p, rtol=1e-5)
    np.testing.assert_array_equal(with_gtol.params, without.params)  # the guarded rerun, bit for bit


@pytest.mark.parametrize("steps", [1, 200, 255, 256, 257, 513])
def test_a_run_does_the_steps_asked_for(steps):
    result = tk.optimise(
        lambda p, s: jnp.sum(p * p) + 0 * s, jnp.array([1.0]), tk.Descent(0.01), steps=steps, data=STEPS
    )
    assert result.steps == steps and result.losses.shape == (steps,)
    np.testing.assert_allclose(result.params, descent_by_hand([1.0], 0.01, steps), rtol=1e-5)  # rounding: XLA may fuse


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_the_sampler_gets_keys_of_the_users_implementation(impl):
    key = jax.random.key(3, impl=impl)
    other = jax.random.key(4, impl=impl)
    seen = []

    def sample(k):
        assert jax.random.key_impl(k) == jax.random.key_impl(key)  # the user's implementation, not a swap
        seen.append(k.dtype)
        both = jnp.stack([k, other])  # mixing with a key the sampler closes over
        return jax.random.uniform(jax.random.fold_in(both[0], 1), (2,)) + 0 * jax.random.uniform(both[1], (2,))

    result = tk.optimise(
        lambda p, x: jnp.sum((p - x) ** 2), jnp.zeros(2), tk.Descent(0.1), steps=5, data=sample, key=key
    )
    assert seen and all(dtype == key.dtype for dtype in seen)
    direct = [np.asarray(jax.random.uniform(jax.random.fold_in(jax.random.fold_in(key, s), 1), (2,))) for s in range(5)]
    p = np.zeros(2, np.float32)
    for x in direct:  # Descent by hand on the samples drawn directly with jax.random
        p = p - np.float32(0.1) * 2 * (p - x)
    np.testing.assert_allclose(result.params, p, rtol=1e-6)


def test_a_sampler_that_ignores_its_key_is_an_error_that_shows_the_fix():
    with pytest.raises(ValueError, match=r"does not use its key.*jax.random.uniform\(key, \(3,\)\)"):
        tk.optimise(
            lambda p, x: jnp.sum((p - x) ** 2), jnp.zeros(3), tk.Descent(0.1), steps=5,
            data=lambda key: np.random.rand(3), key=jax.random.key(0),
        )  # fmt: skip


def test_lbfgs_gets_the_value_gradient_and_function_it_asks_for(x64):
    """optax.lbfgs needs ``value``, ``grad`` and ``value_fn``: given them, it beats Adam on Rosenbrock by far."""
    rosenbrock = lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2  # noqa: E731 - minimum 0 at (1, 1)
    start = jnp.array([-1.2, 1.0])
    lbfgs = tk.optimise(rosenbrock, start, optax.lbfgs(), steps=200, gtol=1e-8)
    assert lbfgs.stop_reason.startswith("gtol") and lbfgs.steps < 60
    np.testing.assert_allclose(lbfgs.params, [1.0, 1.0], atol=1e-8)
    adam = tk.optimise(rosenbrock, start, tk.Adam(0.01), steps=20 * lbfgs.steps)
    assert np.max(np.abs(adam.params - 1.0)) > 0.05  # twenty times the steps, still far from (1, 1)


def test_a_list_of_batches_is_an_error_that_shows_how_to_stack_them():
    batches = [(jnp.ones((8, 3)), jnp.ones(8)) for _ in range(4)]
    with pytest.raises(TypeError, match=r"(?s)list of 4 batches.*jnp\.stack"):
        tk.optimise(lambda p, b: jnp.sum(p), jnp.zeros(3), tk.Descent(), steps=3, data=batches)


@pytest.mark.parametrize(
    ("start", "loss", "advice"),
    [
        ([np.nan, 1.0], lambda p: jnp.sum(p**2), r"starting parameters are not finite \(params\); no step"),
        ([1.0, 1.0], lambda p: jnp.sum(jnp.sqrt(p - 3)), r"not finite at the starting parameters.*no step"),
    ],
    ids=["nan-start", "nan-loss-at-start"],
)
def test_a_run_that_never_took_a_step_does_not_advise_a_smaller_learning_rate(start, loss, advice):
    with pytest.warns(RuntimeWarning, match=advice) as caught:
        result = tk.optimise(loss, jnp.array(start), tk.Descent(), steps=5)
    assert result.steps == 0 and "learning rate" not in str(caught[0].message)
    with pytest.warns(RuntimeWarning, match=r"diverged at step \d+: .*smaller learning rate"):
        tk.optimise(lambda p: jnp.sum(p**2), jnp.array([1.0]), tk.Descent(10.0), steps=100)  # |1 - 20|^k overflows


def test_a_clean_run_compiles_one_copy_of_the_step_and_a_suspect_one_adds_the_guarded_program():
    target = jnp.array([0.25, -0.5, 1.5])  # a loss of its own, so that nothing of it is cached yet
    clean = compiled_names(
        lambda: tk.optimise(lambda p: jnp.sum((p - target) ** 2), jnp.zeros(3), tk.Descent(0.1), steps=300)
    )
    assert clean.count("jit(run)") == 1 and "jit(run_guarded)" not in clean, clean
    loss = poisoned_square(40)
    with pytest.warns(RuntimeWarning, match="diverged"):
        suspect = compiled_names(lambda: tk.optimise(loss, jnp.ones(2), tk.Descent(0.05), steps=600, data=STEPS))
    assert suspect.count("jit(run_guarded)") == 1, suspect


def test_a_false_alarm_deep_in_a_long_draw_is_rerun_guarded_and_gives_the_unwatched_run_bit_for_bit():
    """|g|² overflows at step 1701 only (a false alarm: the gradient is finite), deep inside one draw of samples."""
    data = np.arange(4096, dtype=np.int32)
    loss = lambda p, s: jnp.where(s == 1700, 1e20, 1.0) * jnp.sum(p)  # noqa: E731
    p0 = jnp.array([0.0, 1.0])
    watched: list = []
    names = compiled_names(
        lambda: watched.append(tk.optimise(loss, p0, tk.Descent(1e-3), steps=3000, data=data, gtol=1e-6))
    )
    plain = tk.optimise(loss, p0, tk.Descent(1e-3), steps=3000, data=data)
    assert "jit(run_guarded)" in names, names  # the alarm went off, and the draw was run again guarded
    assert watched[0].stop_reason == plain.stop_reason == "reached steps=3000"
    np.testing.assert_array_equal(watched[0].params, plain.params)
    np.testing.assert_array_equal(watched[0].losses, plain.losses)
    p = np.asarray(p0, np.float32)
    for s in range(3000):  # by hand: p ← p - η·scale(s)
        p = p - np.float32(1e-3) * np.float32(1e20 if s == 1700 else 1.0)
    np.testing.assert_allclose(plain.params, p, rtol=1e-5)


def test_a_gradient_norm_that_overflows_at_every_step_costs_a_few_compiled_calls_not_two_a_step(monkeypatch):
    from toolkit.optimisation import chunk

    calls = []
    run = chunk.Chunk.run
    monkeypatch.setattr(chunk.Chunk, "run", lambda self, *a, **k: calls.append(k) or run(self, *a, **k))
    loss = lambda p: 1e20 * jnp.sum(p)  # noqa: E731
    result = tk.optimise(loss, jnp.array([0.0, 1.0]), tk.Descent(1e-22), steps=20_000, gtol=1e-3)
    assert result.stop_reason == "reached steps=20000"
    assert len(calls) < 60, len(calls)  # a guarded stretch that doubles each time: O(log steps) calls per chunk

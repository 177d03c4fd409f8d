"""What a repeat ``tk.optimise`` call takes from its plan (``toolkit.optimisation.plans``), and what it never skips.

Oracles: the closed-form least-squares solution (NumPy's ``lstsq``) for runs whose data
change between calls; the errors a first call gives for bad input, which a call after a
successful one of the same shapes must give too; ``weakref`` + ``gc`` for what is kept.
"""

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from tests.optimisation.problems import KEY, TRACES, Z0, seed_loss, seed_sample
from toolkit.optimisation import plans


def lsq_loss(w, batch):
    x, y = batch
    return jnp.mean((x @ w - y) ** 2)


def regression(seed, n=64, d=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ rng.normal(size=d) + 0.1 * rng.normal(size=n)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def solve(data):
    x, y = (np.asarray(a, np.float64) for a in data)
    return np.linalg.lstsq(x, y, rcond=None)[0]


def fit(data, **kwargs):
    steps = kwargs.pop("steps", 3000)
    full = jax.tree.map(lambda a: a[None], data)  # one step's sample: the whole set
    return tk.optimise(lsq_loss, jnp.zeros(3), tk.Momentum(0.05), steps=steps, data=full, **kwargs).params


def test_repeat_calls_with_new_data_of_the_same_shapes_reach_each_data_s_solution():
    for seed in (0, 1, 2):  # the second and third calls are planned: same shapes, new values
        data = regression(seed)
        np.testing.assert_allclose(fit(data), solve(data), rtol=1e-4, atol=1e-5)


def test_repeat_minibatch_calls_see_the_new_key_and_the_new_examples():
    data = regression(3, n=256)
    run = lambda key, d: tk.optimise(  # noqa: E731
        lsq_loss, jnp.zeros(3), tk.Descent(0.01), steps=64, data=d, batch_size=8, key=key
    )
    first, again, other = run(jax.random.key(0), data), run(jax.random.key(0), data), run(jax.random.key(1), data)
    np.testing.assert_array_equal(first.losses, again.losses)  # the documented rule: a key's draws are fixed
    assert not np.array_equal(first.losses, other.losses)
    # Oracle for the losses: step 1's loss is the mean over the first minibatch of the epoch's permutation.
    x, y = data
    rows = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.key(1), 0), 256))[:8]
    np.testing.assert_allclose(other.losses[0], np.mean(np.asarray(y)[rows] ** 2), rtol=1e-5)
    shifted = (x, y + 5.0)
    np.testing.assert_allclose(
        run(jax.random.key(1), shifted).losses[0], np.mean((np.asarray(y)[rows] + 5) ** 2), rtol=1e-5
    )


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(data=(jnp.zeros((64, 3)), jnp.zeros(63))), ValueError, "disagree on the number of examples"),
        (dict(batch_size=True), ValueError, "batch_size must be an integer"),
        (dict(batch_size=65), ValueError, "batch_size must be an integer in \\[1, 64\\]"),
        (dict(key=np.zeros(3, np.uint32)), TypeError, "key must be a single PRNG key"),
        (dict(key=None), ValueError, "needs a random key"),
    ],
)
def test_a_call_after_a_successful_one_still_gives_the_first_call_s_errors(change, error, message):
    data = regression(4)
    good = dict(data=data, batch_size=1, key=jax.random.key(0))
    tk.optimise(lsq_loss, jnp.zeros(3), tk.Descent(0.01), steps=4, **good)  # files the plan
    with pytest.raises(error, match=message):
        tk.optimise(lsq_loss, jnp.zeros(3), tk.Descent(0.01), steps=4, **{**good, **change})


def test_a_sampler_that_takes_no_key_is_refused_after_one_that_does():
    loss = lambda w, x: jnp.sum((w - x) ** 2)  # noqa: E731
    tk.optimise(
        loss, jnp.zeros(3), tk.Descent(0.1), steps=4, data=lambda k: jax.random.normal(k, (3,)), key=jax.random.key(0)
    )
    with pytest.raises(TypeError, match="called as sample\\(key\\)"):
        tk.optimise(loss, jnp.zeros(3), tk.Descent(0.1), steps=4, data=lambda: jnp.zeros(3), key=jax.random.key(0))


def test_parameters_with_a_non_float_leaf_are_split_anew_each_call():
    # No plan for them (their int leaf is baked into the loop): a changed int is a new program, not a stale one.
    loss = lambda p: jnp.sum((p["w"] - p["k"]) ** 2)  # noqa: E731
    for k in (1, 2):
        result = tk.optimise(loss, {"w": jnp.zeros(2), "k": k}, tk.Momentum(0.1), steps=500)
        np.testing.assert_allclose(result.params["w"], [k, k], atol=1e-4)
        assert result.params["k"] == k


def test_signature_tells_apart_what_the_checks_and_the_compiled_loop_depend_on():
    base = (jnp.zeros(3), False, (jnp.zeros((4, 3)), np.zeros(4, np.float32)), jax.random.key(0), 2, False)
    same = (jnp.ones(3), False, (jnp.ones((4, 3)), np.ones(4, np.float32)), jax.random.key(9), 2, False)
    assert plans.signature(*base) == plans.signature(*same)
    others = [
        (jnp.zeros(4),) + base[1:],  # a shape
        (jnp.zeros(3, jnp.bfloat16),) + base[1:],  # a dtype
        base[:1] + (True,) + base[2:],  # implicit tk.Params
        base[:2] + ((jnp.zeros((4, 3)), jnp.zeros(4)),) + base[3:],  # a NumPy array turned into a JAX one
        base[:3] + (jax.random.key(0, impl="rbg"),) + base[4:],  # another key type
        base[:4] + (True,) + base[5:],  # batch_size=True is not batch_size=1
        base[:5] + (True,),  # batched
    ]
    assert all(plans.signature(*o) != plans.signature(*base) for o in others)
    assert plans.signature({"w": jnp.zeros(2), "k": 1}, *base[1:]) is None  # a Python int among the parameters
    assert plans.signature(jnp.zeros(3, jnp.int32), *base[1:]) is None
    assert plans.signature(jnp.zeros(3), False, [1.0, 2.0], *base[3:]) is None  # data that are not arrays


def test_a_finished_run_keeps_neither_its_sampler_nor_what_it_closes_over_alive():
    def make():
        big = jnp.ones(10**6, jnp.float32)
        return (lambda key: jax.random.uniform(key, (2,)) + big[:2]), weakref.ref(big)

    sample, alive = make()
    loss = lambda p, x: jnp.sum((p - x) ** 2)  # noqa: E731
    tk.optimise(loss, jnp.zeros(2), tk.Descent(0.1), steps=5, data=sample, key=jax.random.key(0))
    del sample
    gc.collect()
    assert alive() is None


def test_calls_without_a_plan_trace_the_sampler_for_its_shapes_once():
    # NumPy parameters have no signature (they are converted each call); the sampler's shapes are still
    # filed under its key (its code and what it reads), so a repeat call traces nothing.
    start = np.asarray(Z0)
    run = lambda: tk.optimise(seed_loss, start, tk.Momentum(), steps=8, data=seed_sample, key=KEY)  # noqa: E731
    run()
    before = dict(TRACES)
    result = run()
    assert dict(TRACES) == before
    assert isinstance(result.params, jax.Array) and result.params.dtype == jnp.float32


def _quadratic_stop(eta, tol, steps, start=4.0, target=1.0):
    """The step after which a float64 loop of gradient descent on (p - target)^2 stops for ``tol``, by hand."""
    p, last = start, None
    for n in range(1, steps + 1):
        loss = (p - target) ** 2
        if last is not None and abs(loss - last) <= tol:
            return n
        last, p = loss, p - eta * 2 * (p - target)
    return steps


def test_each_call_of_one_plan_stops_at_its_own_tolerance():
    # The losses fall by a factor 0.64 a step, so each tol sits far from every |ΔL| (float32 rounding cannot move it).
    loss = lambda p: jnp.sum((p - 1.0) ** 2)
    for tol in (1e-1, 1e-3, 3e-5, None, 1e-2):
        result = tk.optimise(loss, jnp.array([4.0]), tk.Descent(0.1), steps=60, tol=tol)
        expected = 60 if tol is None else _quadratic_stop(0.1, tol * 1.0001, 60)
        assert result.steps == expected, (tol, result.steps, expected)
        assert result.stop_reason == (
            "reached steps=60" if tol is None else f"tol: |Δloss| <= {tol} at step {expected}"
        )


def test_a_numpy_hyperparameter_changed_in_place_is_seen_by_the_next_call():
    eta = np.array(0.1, np.float32)
    opt, loss = tk.Descent(eta), lambda p: jnp.sum((p - 1.0) ** 2)
    for value in (0.1, 0.25, 0.05):
        eta[...] = value
        result = tk.optimise(loss, jnp.array([4.0]), opt, steps=3)
        expected = 1.0 + 3.0 * (1 - 2 * value) ** 3  # p_k - 1 shrinks by (1 - 2 eta) a step
        np.testing.assert_allclose(np.asarray(result.params), [expected], rtol=1e-5)

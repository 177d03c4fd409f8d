"""Where each step's sample comes from: the documented sampling rules, checked by a loss that reports its sample.

The loss's value is (a fingerprint of) the sample it was given, and its parameter never moves, so
``result.losses[s]`` says exactly what step ``s`` saw. Expected samples are worked out here from the
documented rules (``toolkit.optimisation.data``), with JAX's own PRNG, never with toolkit's code.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from tests.optimisation.problems import DESCENT, KEY


def reports(p, sample):
    """The sample's sum, exactly (p is 0 and its gradient 0, so it stays 0)."""
    return 0.0 * jnp.sum(p) + jnp.sum(sample)


P0 = jnp.zeros(1)


def indices(fingerprint):
    """The examples a minibatch of 2^i values held: the set bits of Σ 2^i (exact in float32 for i < 24)."""
    value = int(fingerprint)
    assert value == fingerprint
    return {i for i in range(24) if value >> i & 1}


# --- a sampler: step s gets sample(jax.random.fold_in(key, s)) -----------------------------------------


def test_a_sampler_gets_fold_in_of_the_key_and_the_step():
    result = tk.optimise(reports, P0, DESCENT, steps=300, data=lambda k: jax.random.uniform(k, (2,)), key=KEY)
    for s in (0, 1, 2, 37, 255, 256, 299):  # across the first block boundary too
        expected = jnp.sum(jax.random.uniform(jax.random.fold_in(jax.random.key(0), s), (2,)))
        assert result.losses[s] == pytest.approx(float(expected), rel=1e-6, abs=1e-7), s
    assert len(set(result.losses.tolist())) == 300  # a fresh sample every step


def test_the_sampler_sees_the_key_data_of_fold_in(x64):
    # The key handed to the sampler is documented to hold jax.random.fold_in(key, s)'s key data: read each
    # 32-bit word back (exact in float64) and compare with fold_in computed directly, outside toolkit.
    key = jax.random.key(7)
    for word in (0, 1):
        sample = lambda k, word=word: jax.random.key_data(k)[word].astype(jnp.float64)  # noqa: E731
        result = tk.optimise(reports, jnp.zeros(1), DESCENT, steps=20, data=sample, key=key)
        expected = [int(jax.random.key_data(jax.random.fold_in(key, s))[word]) for s in range(20)]
        assert [int(v) for v in result.losses] == expected, word


# --- arrays of examples: step s gets example s mod n ---------------------------------------------------


def test_arrays_of_examples_are_used_in_order_and_cycled():
    examples = jnp.arange(7.0)
    result = tk.optimise(reports, P0, DESCENT, steps=20, data=examples)
    np.testing.assert_array_equal(result.losses, np.arange(20) % 7)


def test_pytrees_of_examples_keep_their_structure():
    data = {"x": jnp.arange(5.0), "y": 10 * jnp.arange(5.0)}
    result = tk.optimise(lambda p, d: 0 * jnp.sum(p) + d["x"] + d["y"], P0, DESCENT, steps=5, data=data)
    np.testing.assert_array_equal(result.losses, 11 * np.arange(5.0))


def test_in_order_minibatches_by_reshaping():
    data = jnp.arange(12.0).reshape(4, 3)  # 4 batches of 3, as documented
    result = tk.optimise(reports, P0, DESCENT, steps=4, data=data)
    np.testing.assert_array_equal(result.losses, [3.0, 12.0, 21.0, 30.0])


# --- batch_size: each epoch a fresh permutation, in slices of b, the n mod b left over skipped ----------


def epochs_seen(n, b, epochs, key=KEY):
    """The index sets of every minibatch, grouped by epoch: epochs x (n // b) sets."""
    per_epoch = n // b
    result = tk.optimise(
        reports, P0, DESCENT, steps=epochs * per_epoch, data=2.0 ** jnp.arange(n), batch_size=b, key=key
    )
    batches = [indices(v) for v in result.losses]
    return [batches[e * per_epoch : (e + 1) * per_epoch] for e in range(epochs)]


@pytest.mark.parametrize(("n", "b"), [(11, 3), (12, 4), (7, 7), (5, 1)])
def test_each_epoch_visits_each_example_at_most_once_and_skips_n_mod_b(n, b):
    seen = epochs_seen(n, b, epochs=30)
    for epoch in seen:
        assert all(len(batch) == b for batch in epoch)  # b distinct examples per batch
        visited = set().union(*epoch)
        assert len(visited) == b * (n // b)  # batches are disjoint: nothing visited twice in an epoch
        assert len(set(range(n)) - visited) == n % b  # the leftover n mod b are skipped
    if n // b > 1 or n % b:
        # a fresh permutation each epoch: the epochs do not all cut the examples the same way
        cuts = {tuple(frozenset(batch) for batch in epoch) for epoch in seen}
        assert len(cuts) > 15  # of 30 epochs (n = 5, b = 1 has 120 orders: about 27 distinct expected)


def test_minibatch_permutations_are_fresh_and_fair_across_epochs():
    n, b, epochs = 11, 3, 200  # 9 of the 11 examples per epoch
    seen = epochs_seen(n, b, epochs)
    visits = np.zeros(n)
    for epoch in seen:
        for batch in epoch:
            visits[list(batch)] += 1
    # Binomial(200, 9/11) per example: mean 163.6, sd 5.5; 6 sd either side.
    assert np.all((visits > 130) & (visits < 197)), visits
    skipped = [frozenset(set(range(n)) - set().union(*epoch)) for epoch in seen]
    assert len(set(skipped)) > 30  # which two are skipped changes from epoch to epoch (55 possible pairs)
    firsts = [min(epoch[0]) for epoch in seen]
    assert len(set(firsts)) > 5


def test_minibatches_follow_the_documented_permutation():
    # The documented order, computed with JAX directly: epoch e visits
    # jax.random.permutation(jax.random.fold_in(key, e), n) in slices of b (this is what resuming relies on).
    n, b = 11, 3
    seen = epochs_seen(n, b, epochs=4)
    for epoch, batches in enumerate(seen):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.key(0), epoch), n))
        assert batches == [set(order[j * b : (j + 1) * b].tolist()) for j in range(n // b)]


def test_a_different_key_shuffles_differently():
    first, second = epochs_seen(11, 3, epochs=3), epochs_seen(11, 3, epochs=3, key=jax.random.key(1))
    assert first != second


# --- errors -------------------------------------------------------------------------------------------


def test_data_errors():
    def call(**kwargs):
        return tk.optimise(reports, jnp.zeros(1), DESCENT, steps=5, **kwargs)

    with pytest.raises(ValueError, match=r"data\['x'\] is a scalar"):
        call(data={"x": jnp.array(1.0)})
    with pytest.raises(ValueError, match="zero examples"):
        call(data=jnp.ones((0, 2)))
    with pytest.raises(ValueError, match=r"batch_size shuffles each epoch, which needs a random key"):
        call(data=jnp.ones((4, 1)), batch_size=2)
    with pytest.raises(ValueError, match=r"batch_size applies to arrays of examples, not to a sampler"):
        call(data=lambda k: jax.random.uniform(k), batch_size=2, key=KEY)
    with pytest.raises(ValueError, match="batch_size was given but data is None"):
        call(batch_size=2)
    with pytest.raises(TypeError, match=r"key must be a single PRNG key.*i32\[\]"):
        call(data=lambda k: jax.random.uniform(k), key=jnp.int32(0))
    with pytest.raises(TypeError, match=r"data\[0\] is a str"):
        call(data=["abc"])
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, 4\]"):
        call(data=jnp.ones((4, 1)), batch_size=5, key=KEY)
    with pytest.raises(ValueError, match="disagree on the number of examples"):
        call(data={"x": jnp.ones((4, 1)), "y": jnp.ones(3)})

"""Where each step's sample comes from: the documented sampling rules, checked by a loss that reports its sample."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from tests.optimisation.problems import DESCENT, KEY


def reports(p, sample):
    """A loss whose value is a fingerprint of the sample and whose gradient is zero-free (p moves, slowly)."""
    return 1e-9 * jnp.sum(p * p) + jnp.sum(sample)


def fingerprint(indices):
    """Σ 2^i: which examples a minibatch held (exact in float32 for i < 24)."""
    return float(np.sum(2.0 ** np.asarray(indices)))


def test_a_sampler_gets_fold_in_of_the_key_and_the_step():
    def sample(key):
        return jax.random.normal(key, (2,))

    result = tk.optimise(reports, jnp.ones(1), DESCENT, steps=300, data=sample, key=KEY)
    expected = [float(jnp.sum(sample(jax.random.fold_in(KEY, s)))) + 1e-9 for s in range(300)]
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5, atol=1e-6)


def test_arrays_of_examples_are_used_in_order_and_cycled():
    examples = jnp.arange(7.0)
    result = tk.optimise(reports, jnp.zeros(1), DESCENT, steps=20, data=examples)
    np.testing.assert_array_equal(result.losses, np.arange(20) % 7)


def test_pytrees_of_examples_keep_their_structure():
    data = {"x": jnp.arange(5.0), "y": 10 * jnp.arange(5.0)}
    result = tk.optimise(lambda p, d: 0 * jnp.sum(p) + d["x"] + d["y"], jnp.zeros(1), DESCENT, steps=5, data=data)
    np.testing.assert_array_equal(result.losses, 11 * np.arange(5.0))


def test_minibatches_follow_a_fresh_permutation_each_epoch():
    n, b = 11, 3  # 3 batches per epoch; 2 examples left out of each epoch
    data = 2.0 ** jnp.arange(n)
    result = tk.optimise(reports, jnp.zeros(1), DESCENT, steps=12, data=data, batch_size=b, key=KEY)
    for epoch in range(4):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(KEY, epoch), n))
        expected = [fingerprint(order[j * b : (j + 1) * b]) for j in range(3)]
        np.testing.assert_array_equal(result.losses[3 * epoch : 3 * epoch + 3], expected)
    first, second = result.losses[:3], result.losses[3:6]
    assert set(first) != set(second)  # reshuffled


def test_in_order_minibatches_by_reshaping():
    data = jnp.arange(12.0).reshape(4, 3)  # 4 batches of 3, as documented
    result = tk.optimise(reports, jnp.zeros(1), DESCENT, steps=4, data=data)
    np.testing.assert_array_equal(result.losses, [3.0, 12.0, 21.0, 30.0])


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

"""The unrolled Threefry PRNG draws exactly what JAX's default threefry2x32 draws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toolkit.optimisation.threefry import UNROLLED, faster_equivalent, hash2x32

DRAWS = {
    "bits32": lambda k: jax.random.bits(k, (5, 3)),
    "bits8": lambda k: jax.random.bits(k, (7,), dtype=jnp.uint8),
    "bits16": lambda k: jax.random.bits(k, (2, 2), dtype=jnp.uint16),
    "uniform scalar": lambda k: jax.random.uniform(k),
    "uniform (3,)": lambda k: jax.random.uniform(k, (3,)),
    "uniform f16": lambda k: jax.random.uniform(k, (4,), dtype=jnp.float16),
    "normal (2,3,4)": lambda k: jax.random.normal(k, (2, 3, 4)),
    "randint": lambda k: jax.random.randint(k, (9,), -5, 1000),
    "bernoulli": lambda k: jax.random.bernoulli(k, 0.3, (11,)),
    "permutation": lambda k: jax.random.permutation(k, 10),
    "empty": lambda k: jax.random.uniform(k, (0, 3)),
    "split": lambda k: jax.random.key_data(jax.random.split(k, (2, 3))),
    "fold_in": lambda k: jax.random.key_data(jax.random.fold_in(k, 2**31 + 5)),
    "split then draw": lambda k: jax.random.normal(jax.random.split(k)[1], (3,)),
}


@pytest.mark.parametrize("draw", DRAWS.values(), ids=DRAWS.keys())
def test_same_numbers_as_jax_threefry(draw):
    for seed in (0, 7, 2**32 - 1):
        key = jax.random.key(seed)
        fast = jax.random.wrap_key_data(jax.random.key_data(key), impl=UNROLLED)
        np.testing.assert_array_equal(draw(fast), draw(key))


def test_same_numbers_in_float64(x64):
    key = jax.random.key(3)
    fast = faster_equivalent(key)
    np.testing.assert_array_equal(
        jax.random.uniform(fast, (6,), dtype=jnp.float64), jax.random.uniform(key, (6,), dtype=jnp.float64)
    )
    np.testing.assert_array_equal(
        jax.random.bits(fast, (6,), dtype=jnp.uint64), jax.random.bits(key, (6,), dtype=jnp.uint64)
    )


def test_same_numbers_under_jit_and_vmap_of_per_step_keys():
    key = jax.random.key(11)

    def block(key):
        return jax.vmap(lambda s: jax.random.uniform(jax.random.fold_in(key, s), (3,)))(jnp.arange(1000))

    np.testing.assert_array_equal(jax.jit(lambda k: block(faster_equivalent(k)))(key), jax.jit(block)(key))


def test_seeding_matches():
    # JAX's threefry seeding of a 32-bit seed: key data (0, seed as uint32).
    for seed, expected in ((0, (0, 0)), (1, (0, 1)), (-1, (0, 0xFFFFFFFF)), (2**31 - 1, (0, 0x7FFFFFFF))):
        ours = jax.random.key_data(jax.random.key(seed, impl=UNROLLED))
        assert tuple(int(v) for v in ours) == expected
        np.testing.assert_array_equal(ours, jax.random.key_data(jax.random.key(seed)))


def test_split_fold_in_and_bits_give_random123s_known_answer():
    # Random123's threefry2x32_20 known answer for key (0, 0), counter (0, 0): (0x6B200159, 0x99BA4EFE).
    # Through the PRNG interface: the first key of split, fold_in(·, 0) and the first 32 random bits
    # (the two words xor-ed) of key data (0, 0) all hash that counter.
    key = jax.random.wrap_key_data(jnp.zeros(2, jnp.uint32), impl=UNROLLED)
    answer = (0x6B200159, 0x99BA4EFE)
    assert tuple(int(v) for v in jax.random.key_data(jax.random.split(key)[0])) == answer
    assert tuple(int(v) for v in jax.random.key_data(jax.random.fold_in(key, 0))) == answer
    assert int(jax.random.bits(key, (1,))[0]) == answer[0] ^ answer[1]


def test_other_keys_are_left_alone():
    rbg = jax.random.key(0, impl="rbg")
    raw = jax.random.PRNGKey(0)
    assert faster_equivalent(rbg) is rbg and faster_equivalent(raw) is raw
    assert jax.random.key_impl(faster_equivalent(jax.random.key(0))) == UNROLLED


def test_known_answers_from_random123():
    # threefry2x32_20 known-answer vectors (Random123 kat_vectors): key, counter -> output.
    u = jnp.uint32
    cases = [
        ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ]
    for (k1, k2), (x1, x2), expected in cases:
        assert tuple(int(v) for v in hash2x32(u(k1), u(k2), u(x1), u(x2))) == expected

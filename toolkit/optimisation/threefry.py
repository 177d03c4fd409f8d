"""Threefry-2x32 written out round by round: bit for bit JAX's default PRNG, much faster when vectorised on CPU.

``tk.optimise`` draws a block of samples at once by ``vmap``-ing the user's
sampler over per-step keys. On CPU, JAX lowers the Threefry hash as a rolled
loop (to keep compile times down), which vectorises poorly: in a block of 256
steps of the seed problem, key derivation and ``uniform(key, (3,))`` cost
several times the optimiser step itself. Written as straight-line code, the
hash fuses into one vectorised loop.

``UNROLLED`` is a JAX PRNG implementation (``jax.extend.random``) with the
key layout and the outputs of ``threefry2x32`` in its default, partitionable
mode: the same key data gives the same ``random_bits``, ``split`` and
``fold_in``, hence the same ``uniform``, ``normal``, ``permutation``, ...
The hash follows Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"
(SC'11): 20 rounds in five groups of four, rotation constants
(13, 15, 26, 6) and (17, 29, 16, 24), key-schedule parity 0x1BD11BDA.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import define_prng_impl

__all__ = ["UNROLLED", "faster_equivalent"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: jax.Array, r: int) -> jax.Array:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def hash2x32(k1: jax.Array, k2: jax.Array, x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 of the counter pair ``(x1, x2)`` under the key ``(k1, k2)`` (all uint32, broadcasting).

    Example (the known-answer test from the Random123 distribution, 20 rounds):
        >>> import jax.numpy as jnp
        >>> from toolkit.optimisation.threefry import hash2x32
        >>> ones = jnp.uint32(0xFFFFFFFF)
        >>> [hex(int(v)) for v in hash2x32(ones, ones, ones, ones)]
        ['0x1cb996fc', '0xbb002be7']
    """
    keys = (k1, k2, k1 ^ k2 ^ _PARITY)
    x1, x2 = x1 + keys[0], x2 + keys[1]
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x1 = x1 + x2
            x2 = _rotate_left(x2, r) ^ x1
        x1 = x1 + keys[(group + 1) % 3]
        x2 = x2 + keys[(group + 2) % 3] + np.uint32(group + 1)
    return x1, x2


def _counters(shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """The row-major index of every element as (high, low) 32-bit halves, as JAX's ``iota_2x32_shape``."""
    size = math.prod(shape)
    if size >= 2**32:
        raise NotImplementedError("toolkit's unrolled Threefry draws fewer than 2**32 values per call")
    return jnp.zeros(shape, np.uint32), lax.iota(np.uint32, size).reshape(shape)


def _random_bits(key: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    high, low = _counters(shape)
    bits1, bits2 = hash2x32(key[0], key[1], high, low)
    dtype = np.dtype(f"uint{bit_width}")
    if bit_width == 64:
        return (bits1.astype(dtype) << dtype.type(32)) | bits2.astype(dtype)
    if bit_width == 32:
        return bits1 ^ bits2
    return (bits1 ^ bits2).astype(dtype)


def _split(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    high, low = _counters(shape)
    return jnp.stack(hash2x32(key[0], key[1], high, low), axis=-1)


def _fold_in(key: jax.Array, data: Any) -> jax.Array:
    data = lax.convert_element_type(data, np.uint32)
    return jnp.stack(hash2x32(key[0], key[1], jnp.zeros_like(data), data))


def _seed(seed: jax.Array) -> jax.Array:
    return jax.random.key_data(jax.random.key(seed, impl="threefry2x32"))


UNROLLED = define_prng_impl(
    key_shape=(2,),
    seed=_seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="threefry2x32_unrolled",
    tag="tfu",
)


def faster_equivalent(key: Any) -> Any:
    """``key`` re-wrapped with :data:`UNROLLED` when that draws the same numbers; otherwise ``key`` itself.

    Only typed ``threefry2x32`` keys qualify, and only in JAX's default
    partitionable Threefry mode (the other mode lays out random bits differently).

    Example:
        >>> import jax
        >>> from toolkit.optimisation.threefry import faster_equivalent
        >>> key = jax.random.key(0)
        >>> bool((jax.random.uniform(faster_equivalent(key), (3,)) == jax.random.uniform(key, (3,))).all())
        True
    """
    typed = isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if not typed or str(jax.random.key_impl(key)) != "threefry2x32" or not jax.config.jax_threefry_partitionable:  # pyright: ignore[reportAttributeAccessIssue]
        return key
    return jax.random.wrap_key_data(jax.random.key_data(key), impl=UNROLLED)

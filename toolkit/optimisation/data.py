"""Where each step's sample comes from, inside the compiled loop.

Four sources, chosen from ``tk.optimise``'s ``data`` argument:

* ``None``: no sample; the loss is ``loss(params)``.
* a callable ``sample(key)``: step ``s`` (counting from 0) gets
  ``sample(jax.random.fold_in(key, s))``. Samples are drawn a block of steps at a
  time with ``jax.vmap``, which is far cheaper than one small random draw per
  step, and depend only on ``key`` and ``s``, so chunking, checkpointing and
  resuming never change them. ``sample`` must be a JAX function that ``vmap``
  accepts. For a default (``threefry2x32``) key, the key ``sample`` receives is
  re-wrapped with ``toolkit.optimisation.threefry.UNROLLED``, which gives the same
  numbers several times faster on CPU (``jax.random.key_data`` is unchanged).
* a pytree of arrays with a leading example axis of length ``n``: step ``s``
  gets example ``s mod n``, in order.
* the same with ``batch_size=b``: each epoch (``n // b`` steps; the ``n mod b``
  examples left over are skipped for that epoch) visits a fresh permutation
  ``jax.random.permutation(jax.random.fold_in(key, epoch), n)`` in slices of ``b``.
  For in-order minibatches, reshape the arrays to ``(n // b, b, ...)`` and
  pass them without ``batch_size``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import filters
from toolkit._show import describe
from toolkit.optimisation.threefry import faster_equivalent

__all__ = ["Source", "source_for"]


def _first_axis(data: Any) -> int:
    return jax.tree.leaves(data)[0].shape[0]


class Source:
    """No sample: the loss takes the parameters only."""

    needs_key = False
    takes_sample = False

    def cache_objects(self) -> tuple[Any, ...]:
        """Objects the compiled loop depends on by identity (for the compile cache)."""
        return ()

    def cache_settings(self) -> tuple[Any, ...]:
        """Hashable settings the compiled loop depends on (for the compile cache)."""
        return ()

    def example(self, data: Any, key: Any) -> Any:
        """The abstract value (shapes and dtypes) of one step's sample."""
        return None

    def start(self, data: Any, key: Any, t: jax.Array) -> Any:
        """Loop-local state at global step ``t`` (carried from step to step within a chunk)."""
        return None

    def prefetch(self, data: Any, key: Any, steps: jax.Array) -> Any:
        """Whatever can be computed for a whole block of ``steps`` at once (leading axis = block)."""
        return None

    def fetch(self, data: Any, key: Any, s: jax.Array, pre: Any, local: Any) -> tuple[Any, Any]:
        """The sample for global step ``s``, and the updated loop-local state."""
        return None, local


class Sampler(Source):
    """A fresh sample each step from ``sample(fold_in(key, s))``, drawn a block at a time."""

    needs_key = True
    takes_sample = True

    def __init__(self, sample: Callable[[Any], Any]):
        try:
            signature = inspect.signature(sample)
        except (TypeError, ValueError):
            signature = None  # a builtin without a signature: the call itself tells
        try:
            if signature is not None:
                signature.bind(None)
        except TypeError:
            name = getattr(sample, "__name__", "data")
            raise TypeError(
                f"tk.optimise: a data sampler is called as sample(key) with one random key, but {name}{signature} "
                f"does not accept that; write data=lambda key: jax.random.uniform(key, (3,))."
            ) from None
        self.sample = sample

    def cache_objects(self) -> tuple[Any, ...]:
        return (self.sample,)

    def example(self, data: Any, key: Any) -> Any:
        return _sample_shape(self.sample, jax.typeof(key))

    def prefetch(self, data: Any, key: Any, steps: jax.Array) -> Any:
        key = faster_equivalent(key)  # same numbers, drawn several times faster on CPU
        return jax.vmap(lambda s: self.sample(jax.random.fold_in(key, s)))(steps)

    def fetch(self, data: Any, key: Any, s: jax.Array, pre: Any, local: Any) -> tuple[Any, Any]:
        return pre, local


@functools.lru_cache(maxsize=64)
def _sample_shape(sample: Callable[[Any], Any], key_type: Any) -> Any:
    # Cached so that a repeat tk.optimise call traces nothing, the sampler included.
    return jax.eval_shape(lambda key: _arrays_only(sample(key)), jax.ShapeDtypeStruct(key_type.shape, key_type.dtype))


def _arrays_only(sample: Any) -> Any:
    """A sampler's output, after checking that its leaves are arrays or numbers."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(sample)[0]:
        if not filters.is_numeric(leaf) and not filters.is_array(leaf):
            raise TypeError(
                f"tk.optimise: the data sampler returned a {type(leaf).__name__} at "
                f"sample{jax.tree_util.keystr(path)}; "
                f"it must return arrays (or a pytree of them), e.g. data=lambda key: jax.random.uniform(key, (3,))."
            )
    return sample


class Examples(Source):
    """Example ``s mod n`` at step ``s``."""

    takes_sample = True

    def example(self, data: Any, key: Any) -> Any:
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), data)

    def fetch(self, data: Any, key: Any, s: jax.Array, pre: Any, local: Any) -> tuple[Any, Any]:
        i = s % _first_axis(data)
        return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, i, keepdims=False), data), local


class Minibatches(Source):
    """Slices of ``batch_size`` examples from a per-epoch permutation drawn from ``key``."""

    needs_key = True
    takes_sample = True

    def __init__(self, batch_size: int):
        self.batch_size = batch_size

    def cache_settings(self) -> tuple[Any, ...]:
        return (self.batch_size,)

    def example(self, data: Any, key: Any) -> Any:
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct((self.batch_size, *a.shape[1:]), a.dtype), data)

    def _epoch(self, data: Any, s: jax.Array) -> jax.Array:
        return s // (_first_axis(data) // self.batch_size)

    def _permutation(self, data: Any, key: Any, epoch: jax.Array) -> jax.Array:
        return jax.random.permutation(jax.random.fold_in(key, epoch), _first_axis(data))

    def start(self, data: Any, key: Any, t: jax.Array) -> Any:
        epoch = self._epoch(data, t)
        return epoch, self._permutation(data, key, epoch)

    def fetch(self, data: Any, key: Any, s: jax.Array, pre: Any, local: Any) -> tuple[Any, Any]:
        epoch, order = local
        current = self._epoch(data, s)
        order = jax.lax.cond(current == epoch, lambda: order, lambda: self._permutation(data, key, current))
        per_epoch = _first_axis(data) // self.batch_size
        rows = jax.lax.dynamic_slice_in_dim(order, (s % per_epoch) * self.batch_size, self.batch_size)
        return jax.tree.map(lambda a: jnp.take(a, rows, axis=0), data), (current, order)


def _is_key(key: Any) -> bool:
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.ndim == 0
    return np.shape(key) == (2,) and getattr(key, "dtype", None) == np.uint32  # a legacy raw key


def source_for(data: Any, batch_size: int | None, key: Any) -> Source:
    """Check ``data``, ``batch_size`` and ``key`` together and pick the source; errors say what to change."""
    if key is not None and not _is_key(key):
        raise TypeError(f"tk.optimise: key must be a single PRNG key such as jax.random.key(0), got {describe(key)}.")
    if data is None:
        if batch_size is not None:
            raise ValueError("tk.optimise: batch_size was given but data is None; pass the examples as data=...")
        return Source()
    if callable(data):
        if batch_size is not None:
            raise ValueError(
                "tk.optimise: batch_size applies to arrays of examples, not to a sampler; "
                "have the sampler draw a batch itself, e.g. data=lambda k: jax.random.uniform(k, (32, 3))."
            )
        source: Source = Sampler(data)
    else:
        n = _check_examples(data)
        if batch_size is None:
            source = Examples()
        else:
            if (
                isinstance(batch_size, bool)
                or not isinstance(batch_size, (int, np.integer))
                or not 1 <= batch_size <= n
            ):
                raise ValueError(
                    f"tk.optimise: batch_size must be an integer in [1, {n}] (the number of examples), got {batch_size!r}."
                )
            source = Minibatches(int(batch_size))
    if source.needs_key and key is None:
        why = "a sampler needs" if isinstance(source, Sampler) else "batch_size shuffles each epoch, which needs"
        raise ValueError(f"tk.optimise: {why} a random key; pass key=jax.random.key(0).")
    return source


def _check_examples(data: Any) -> int:
    """The common leading length of every array in ``data``; a clear error if there is none."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(data)
    if not leaves:
        raise ValueError("tk.optimise: data has no arrays; pass None, a sampler function, or arrays of examples.")
    sizes = {}
    for path, leaf in leaves:
        where = "data" + jax.tree_util.keystr(path)
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            raise TypeError(
                f"tk.optimise: {where} is a {type(leaf).__name__}; data must hold arrays with a leading example axis."
            )
        if np.ndim(leaf) == 0:
            raise ValueError(
                f"tk.optimise: {where} is a scalar ({describe(leaf)}); data arrays need a leading example axis."
            )
        sizes[where] = leaf.shape[0]
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{where}: {n}" for where, n in sizes.items())
        raise ValueError(f"tk.optimise: the data arrays disagree on the number of examples (leading axis): {listing}.")
    n = next(iter(sizes.values()))
    if n == 0:
        raise ValueError("tk.optimise: data holds zero examples (its leading axis has length 0).")
    return n

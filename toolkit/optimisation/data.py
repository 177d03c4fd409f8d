"""Where each step's sample comes from, inside the compiled loop.

Four sources, chosen from ``tk.optimise``'s ``data`` argument:

* ``None``: no sample; the loss is ``loss(params)``.
* a callable ``sample(key)``: step ``s`` (counting from 0) gets
  ``sample(jax.random.fold_in(key, s))``, the key being of the implementation you
  passed (``threefry2x32``, ``rbg``, ...). Threefry samples are drawn many
  steps at a time with ``jax.vmap``, which is far cheaper than one small random
  draw per step (``rbg`` keys draw other numbers under ``vmap``, so theirs are
  drawn step by step), and depend only on ``key`` and ``s``, so chunking, checkpointing and
  resuming never change them. ``sample`` must be a JAX function that ``vmap``
  accepts, and it must use its key: a sampler whose output does not depend on
  the key (``lambda key: np.random.rand(3)``, the NumPy habit) would give the
  same sample every step, so it is an error.
* a pytree of arrays with a leading example axis of length ``n``: step ``s``
  gets example ``s mod n``, in order.
* the same with ``batch_size=b``: each epoch (``n // b`` steps; the ``n mod b``
  examples left over are skipped for that epoch) visits a fresh permutation
  ``jax.random.permutation(jax.random.fold_in(key, epoch), n)`` in slices of ``b``.
  For in-order minibatches, reshape the arrays to ``(n // b, b, ...)`` and
  pass them without ``batch_size``.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import filters
from toolkit._jaxprs import dependents, depends
from toolkit._show import describe
from toolkit.cache import Cache, Key

__all__ = ["Source", "source_for"]


def _first_axis(data: Any) -> int:
    return jax.tree.leaves(data)[0].shape[0]


class Source:
    """No sample: the loss takes the parameters only.

    Inside the compiled loop a source draws many steps at a time (``ahead``
    steps from step ``t``): :meth:`prefetch` computes what it can for all of them
    at once (samples, example indices, minibatch rows), and :meth:`fetch` turns
    the entry for one step into that step's sample. :meth:`start` is state
    carried from draw to draw (a minibatch source's current epoch and permutation).
    """

    needs_key = False
    takes_sample = False

    def cache_settings(self) -> tuple[Any, ...]:
        """Hashable settings the compiled loop depends on (for the compile cache)."""
        return ()

    def example(self, data: Any, key: Any) -> Any:
        """The abstract value (shapes and dtypes) of one step's sample."""
        return None

    def example_signature(self, data: Any, key: Any) -> Any:
        """Hashable, and equal for two calls whose samples have the same shapes and dtypes (cheaper than
        :meth:`example` where the data's shapes say it all)."""
        return shapes_signature(self.example(data, key))

    def start(self, data: Any, key: Any, t: jax.Array) -> Any:
        """State carried from draw to draw, for a draw starting at global step ``t``."""
        return None

    def entry_bytes(self, data: Any, key: Any) -> int:
        """The bytes one step's prefetched entry takes (to size how many steps are drawn at once)."""
        return 4

    def most_ahead(self, data: Any) -> int | None:
        """The most steps worth drawing at once, if the source has a reason to bound it."""
        return None

    def sample_function(self) -> Callable[[Any], Any] | None:
        """The user's sampler, if the source has one (it is taken apart for the compile cache, see ``programs``)."""
        return None

    def draw_stop(self, data: Any, t: jax.Array, ahead: int) -> jax.Array:
        """The step a draw starting at ``t`` must end before (at most ``t + ahead``)."""
        return t + ahead

    def with_sample(self, sample: Callable[[Any], Any] | None) -> Source:
        """This source drawing with ``sample`` instead (a sampler rebuilt inside a trace)."""
        return self

    def known_as(self, key: Any) -> Source:
        """The source, with ``key`` standing for its sampler (what the sampler's shapes are filed under)."""
        return self

    def prefetch(self, data: Any, key: Any, t: jax.Array, ahead: int, local: Any) -> tuple[Any, Any]:
        """For steps ``t … t + ahead - 1``: per-step entries (leading axis ``ahead``), and the carried state."""
        return jnp.zeros((ahead,), jnp.int32), local

    def fetch(self, data: Any, key: Any, entry: Any) -> Any:
        """One step's sample from its prefetched entry."""
        return None


class Sampler(Source):
    """A fresh sample each step from ``sample(fold_in(key, s))``, drawn many steps at a time."""

    needs_key = True
    takes_sample = True

    def __init__(self, sample: Callable[[Any], Any]):
        _check_takes_a_key(sample)
        self.sample, self.known = sample, None  # known: the sampler's key (see known_as)

    def sample_function(self) -> Callable[[Any], Any] | None:
        return self.sample

    def with_sample(self, sample: Callable[[Any], Any] | None) -> Source:
        twin = object.__new__(Sampler)
        twin.sample, twin.known = sample, None
        return twin

    def known_as(self, key: Any) -> Source:
        twin = object.__new__(Sampler)
        twin.sample, twin.known = self.sample, key
        return twin

    def example(self, data: Any, key: Any) -> Any:
        # Traced once per sampler key (``programs``: its code and what it reads), not cached on the function,
        # which would keep it, and all it closes over, alive.
        key_type = (key.shape, key.dtype)  # not jax.typeof: a key's costs ~90 µs
        filed = None if self.known is None else Key((self.known, key_type))
        shape = None if filed is None else _SHAPES.get(filed)
        if shape is None:
            shape = _sample_shape(self.sample, key_type)
            if filed is not None:
                _SHAPES.put(filed, shape)
        return shape

    def entry_bytes(self, data: Any, key: Any) -> int:
        return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(self.example(data, key)))

    def prefetch(self, data: Any, key: Any, t: jax.Array, ahead: int, local: Any) -> tuple[Any, Any]:
        steps = t + jnp.arange(ahead, dtype=t.dtype)
        if not _same_under_vmap(key):
            return steps, local  # drawn step by step in fetch
        return jax.vmap(lambda s: self.sample(jax.random.fold_in(key, s)))(steps), local

    def fetch(self, data: Any, key: Any, entry: Any) -> Any:
        if not _same_under_vmap(key):
            return self.sample(jax.random.fold_in(key, entry))
        return entry


def _same_under_vmap(key: Any) -> bool:
    """Whether ``vmap`` draws the same numbers as one draw per key: true of Threefry, not of ``rbg`` keys."""
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return True  # a raw uint32 key is a Threefry key
    return str(jax.random.key_impl(key)) == "threefry2x32"


_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # samplers whose signature takes a key


def _check_takes_a_key(sample: Callable[[Any], Any]) -> None:
    """A clear error unless ``sample`` can be called with one argument (remembered, without keeping it alive)."""
    try:
        if sample in _CHECKED:
            return
    except TypeError:  # not weakly referenceable: check every time
        pass
    signature = filters.call_signature(sample)  # None: a builtin without one (the call itself tells)
    if signature is not None:
        try:
            signature.bind(None)
        except TypeError:
            name, signature = getattr(sample, "__name__", "data"), inspect.signature(sample)
            raise TypeError(
                f"tk.optimise: a data sampler is called as sample(key) with one random key, but {name}{signature} "
                f"does not accept that; write data=lambda key: jax.random.uniform(key, (3,))."
            ) from None
    try:
        _CHECKED[sample] = True
    except TypeError:
        pass


_SHAPES: Cache[Any] = Cache(64)  # (sampler key, key type) -> the shapes of its sample


def _sample_shape(sample: Callable[[Any], Any], key_type: tuple[Any, Any]) -> Any:
    key = jax.ShapeDtypeStruct(*key_type)
    closed = jax.make_jaxpr(lambda key: _arrays_only(sample(key)), return_shape=True)(key)
    jaxpr, shape = closed
    on_key = dependents(jaxpr.jaxpr)
    if jaxpr.jaxpr.outvars and not any(depends(v, on_key) for v in jaxpr.jaxpr.outvars):
        name = getattr(sample, "__name__", "data")
        raise ValueError(
            f"tk.optimise: the data sampler {name} does not use its key, so every step would get the same sample "
            f"(NumPy's or Python's random numbers are drawn once, when the loop is compiled). Draw from the key "
            f"it is given: data=lambda key: jax.random.uniform(key, (3,)) instead of data=lambda key: np.random.rand(3)."
        )
    return shape


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

    def example_signature(self, data: Any, key: Any) -> Any:
        return shapes_signature(data), self.cache_settings()

    def prefetch(self, data: Any, key: Any, t: jax.Array, ahead: int, local: Any) -> tuple[Any, Any]:
        return (t + jnp.arange(ahead, dtype=t.dtype)) % _first_axis(data), local

    def fetch(self, data: Any, key: Any, entry: Any) -> Any:
        if _first_axis(data) == 1:  # one example (a full batch): a static index, which costs no copy
            return jax.tree.map(lambda a: a[0], data)
        return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, entry, keepdims=False), data)


class Minibatches(Source):
    """Slices of ``batch_size`` examples from a per-epoch permutation drawn from ``key``.

    The carried state is the last permutation drawn and its epoch, so that an
    epoch longer than a draw makes its permutation once, not once a draw.
    """

    needs_key = True
    takes_sample = True

    def __init__(self, batch_size: int):
        self.batch_size = batch_size

    def cache_settings(self) -> tuple[Any, ...]:
        return (self.batch_size,)

    def example(self, data: Any, key: Any) -> Any:
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct((self.batch_size, *a.shape[1:]), a.dtype), data)

    def example_signature(self, data: Any, key: Any) -> Any:
        return shapes_signature(data), self.cache_settings()

    def entry_bytes(self, data: Any, key: Any) -> int:
        return 4 * self.batch_size

    def most_ahead(self, data: Any) -> int | None:
        return max(1, self._per_epoch(data))  # a draw stays within one epoch (draw_stop)

    def _per_epoch(self, data: Any) -> int:
        return _first_axis(data) // self.batch_size

    def _permutation(self, data: Any, key: Any, epoch: jax.Array) -> jax.Array:
        return jax.random.permutation(jax.random.fold_in(key, epoch), _first_axis(data))

    def start(self, data: Any, key: Any, t: jax.Array) -> Any:
        # No permutation yet (epoch -1): the first draw makes the ones it needs. One place in the compiled loop
        # draws permutations, so it compiles one (a random draw and a sort are much of the loop's compile time).
        return jnp.asarray(-1, t.dtype), jnp.zeros(_first_axis(data), jnp.int32)

    def draw_stop(self, data: Any, t: jax.Array, ahead: int) -> jax.Array:
        return jnp.minimum(t + ahead, (t // self._per_epoch(data) + 1) * self._per_epoch(data))  # one epoch a draw

    def prefetch(self, data: Any, key: Any, t: jax.Array, ahead: int, local: Any) -> tuple[Any, Any]:
        per_epoch = self._per_epoch(data)
        epoch = t // per_epoch
        cached_epoch, cached = local
        order = jax.lax.cond(
            epoch == cached_epoch, lambda: cached, lambda: self._permutation(data, key, epoch).astype(jnp.int32)
        )
        starts = ((t + jnp.arange(ahead, dtype=t.dtype)) % per_epoch) * self.batch_size
        rows = jax.vmap(lambda s: jax.lax.dynamic_slice_in_dim(order, s, self.batch_size))(starts)
        return rows, (epoch, order)  # rows past the epoch's end are never used (draw_stop)

    def fetch(self, data: Any, key: Any, entry: Any) -> Any:
        return jax.tree.map(lambda a: a[entry], data)  # rows are in range by construction


def shapes_signature(tree: Any) -> tuple[Any, ...]:
    """Hashable: the tree's structure and each leaf's shape and dtype (what a compiled program depends on)."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((leaf.shape, leaf.dtype) for leaf in leaves)


_KEY_DTYPES: dict[Any, bool] = {}  # dtype -> whether it is a PRNG key's (jnp.issubdtype costs microseconds)


def _is_key(key: Any) -> bool:
    if isinstance(key, jax.Array) and _is_key_dtype(key.dtype):
        return key.ndim == 0
    return np.shape(key) == (2,) and getattr(key, "dtype", None) == np.uint32  # a legacy raw key


def _is_key_dtype(dtype: Any) -> bool:
    known = _KEY_DTYPES.get(dtype)
    if known is None:
        known = _KEY_DTYPES[dtype] = bool(jnp.issubdtype(dtype, jax.dtypes.prng_key))
    return known


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


def _refuse_a_list_of_batches(data: Any) -> None:
    """Flux's ``train!`` takes a list of ``(x, y)`` batches; here examples are stacked along a leading axis."""
    if not isinstance(data, list) or len(data) < 2:
        return
    structures = {jax.tree.structure(item) for item in data}
    if len(structures) == 1 and jax.tree.structure(data[0]).num_leaves > 1 and not filters.is_array(data[0]):
        raise TypeError(
            f"tk.optimise: data is a list of {len(data)} batches (Flux's train! style); tk.optimise takes the "
            f"examples stacked along a leading axis. Stack them:\n"
            f"  data = jax.tree.map(lambda *parts: jnp.stack(parts), *batches)   # step s gets batch s mod {len(data)}\n"
            f"or concatenate the examples and pass batch_size=... to draw shuffled minibatches."
        )


def _check_examples(data: Any) -> int:
    """The common leading length of every array in ``data``; a clear error if there is none."""
    _refuse_a_list_of_batches(data)
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("tk.optimise: data has no arrays; pass None, a sampler function, or arrays of examples.")
    if all(isinstance(leaf, (jax.Array, np.ndarray)) and leaf.ndim for leaf in leaves):  # the usual case, fast
        sizes = {leaf.shape[0] for leaf in leaves}
        if len(sizes) == 1 and sizes != {0}:
            return leaves[0].shape[0]
    sizes = {}  # something is wrong: find it, with the leaves' paths for the message
    for path, leaf in jax.tree_util.tree_flatten_with_path(data)[0]:
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

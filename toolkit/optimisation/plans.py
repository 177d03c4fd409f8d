"""What a repeat ``tk.optimise`` call remembers, so that it checks and builds nothing it did before.

A call's checks and set-up (the data source, the split of the parameters, the
sizes of the compiled loop, the loss's dtype, the state before step 1) depend
only on *what kind* of inputs it has: the structure, shapes, dtypes and
placements of the parameters and data, the key's type, and the settings. A call
files them under that :func:`signature`; a later call of the same signature
takes them from here and does only what depends on values (reading the
arrays the loss and sampler close over, see ``toolkit.optimisation.programs``).

Nothing here holds a user object: signatures hold shapes, dtypes, shardings and
tree structures; plans hold toolkit's own sources, compiled chunks and
zero-initialised optimiser states. A call whose inputs are not all plain arrays
(a Python number among the parameters, a list of batches, ...) has no signature
and is checked in full each time, as every first call is.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from toolkit import filters
from toolkit.cache import Cache, Key

__all__ = ["Prepared", "Compiled", "Run", "signature", "PREPARED", "COMPILED", "RUNS_PER_PROGRAM"]


class Prepared(NamedTuple):
    """The checked source and parameter split of one input signature."""

    source: Any  # the data source, or None for a sampler (it holds the user's function: made anew each call)
    needs_key: bool
    rest: Any  # the parameters' tree with None at every leaf (nothing but float arrays to optimise)
    batch: int | None
    placements: list[Any] | None


class Compiled(NamedTuple):
    """What one program (loss, sampler, optimiser) of one input signature needs, whatever the call's settings."""

    entry_bytes: int  # what one step's entry of the data source takes
    most_ahead: int | None
    loss_dtype: np.dtype | None  # None for a call without a signature (its chunk's memo keeps it)
    runs: dict[tuple[Any, ...], Run]  # per (steps, period, tol on, gtol on): what the call runs


class Run(NamedTuple):
    """The compiled chunk of one call's settings, the loss's dtype and the start."""

    chunk: Any
    loss_dtype: np.dtype
    fresh: Any  # the state before step 1 with params=None when it is the same for every call, else None


RUNS_PER_PROGRAM = 16  # settings remembered per program (a script sweeping steps= must not grow it without bound)
PREPARED: Cache[Prepared] = Cache(64)
COMPILED: Cache[Compiled] = Cache(64)


def signature(values: Any, implicit: bool, data: Any, key: Any, batch_size: Any, batched: bool) -> Key | None:
    """What a call's checks depend on, or ``None`` if its inputs are not plain arrays (then it is checked in full).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.optimisation.plans import signature
        >>> a = signature(jnp.zeros(3), False, None, None, None, False)
        >>> a == signature(jnp.ones(3), False, None, None, None, False), signature(3.0, False, None, None, None, False)
        (True, None)
    """
    leaves, treedef = jax.tree.flatten(values)
    if not filters.all_float_arrays(leaves):
        return None
    params = (treedef, tuple((leaf.shape, leaf.dtype, leaf.sharding) for leaf in leaves))
    if data is None or callable(data):
        examples: Any = data is None
    else:
        examples = _arrays_signature(data)
        if examples is None:
            return None
    if key is None:
        key_kind: Any = None
    elif type(key) in (filters.concrete_key_type(), filters.concrete_array_type(), np.ndarray):
        key_kind = (type(key), key.shape, key.dtype)
    else:
        return None
    return Key((params, implicit, examples, key_kind, type(batch_size), batch_size, bool(batched)))


def _arrays_signature(data: Any) -> tuple[Any, ...] | None:
    leaves, treedef = jax.tree.flatten(data)
    concrete, kinds = filters.concrete_array_type(), []
    for leaf in leaves:
        if type(leaf) is concrete:
            kinds.append((leaf.shape, leaf.dtype, leaf.weak_type, leaf.sharding))
        elif type(leaf) is np.ndarray:
            kinds.append((leaf.shape, leaf.dtype))
        else:
            return None
    return treedef, tuple(kinds)

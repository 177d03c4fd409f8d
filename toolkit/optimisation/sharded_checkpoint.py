"""The arrays of a sharded ``tk.optimise`` checkpoint: each process writes its own shards, with orbax-checkpoint.

``toolkit.optimisation.checkpoint`` uses this module when the run's state is
split over devices (some leaf not fully replicated) or when the run spans
processes (``jax.process_count() > 1``). The state's leaves then go to an orbax
checkpoint folder beside the checkpoint file (``run.ckpt.arrays.<token>.<n>``):
every process writes the shards its devices hold (a replicated leaf is written
once), nothing is gathered to one host, and orbax finalises the folder
atomically (it writes a temporary folder and renames it when every process is
done). The checkpoint file, written by process 0 only after that, names the
folder, so a crash leaves either the previous checkpoint or the new one.

Restoring reads each leaf straight into the sharding the resumed run gives it,
so a checkpoint written on one mesh resumes on another (other device or
process counts): orbax reads the slices each device needs.

Everything here is collective: with several processes, every process must
call it at the same point, as with any ``jax.jit`` over a global mesh.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["wanted", "agree", "is_primary", "save", "stored", "restore", "host", "finite_rows", "place", "remove"]


def _name(i: int) -> str:
    return f"leaf{i:05d}"


def wanted(progress: Any) -> bool:
    """Whether ``progress`` needs a sharded checkpoint: several processes, or a leaf split over devices."""
    if jax.process_count() > 1:
        return True
    return any(
        isinstance(leaf, jax.Array) and not leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(progress)
    )


def is_primary() -> bool:
    """Whether this process writes the checkpoint file and the losses (process 0)."""
    return jax.process_index() == 0


def agree(values: np.ndarray) -> np.ndarray:
    """Process 0's ``values`` (int32), on every process; a collective (``values`` itself with one process)."""
    values = np.asarray(values, np.int32)
    if jax.process_count() == 1:
        return values
    return np.asarray(multihost_utils.broadcast_one_to_all(values), np.int32)


def _orbax() -> Any:
    import orbax.checkpoint as ocp  # imported when a sharded checkpoint is first written or read (it takes ~0.1 s)

    return ocp


@functools.cache
def _checkpointer() -> Any:
    ocp = _orbax()
    return ocp.Checkpointer(ocp.StandardCheckpointHandler())  # synchronous: a save is on disk when it returns


def _everywhere() -> NamedSharding:
    """Replicated over every device of every process."""
    return NamedSharding(Mesh(np.array(jax.devices()), ("all",)), PartitionSpec())


def _global(leaf: Any) -> Any:
    """``leaf`` as orbax must see it: an array over the run's devices (a host value is replicated over all)."""
    if isinstance(leaf, jax.Array) and (jax.process_count() == 1 or not leaf.is_fully_addressable):
        return leaf
    value = np.asarray(leaf)  # the same on every process (the state of a run is)
    return jax.make_array_from_callback(value.shape, _everywhere(), lambda index: value[index])


def save(path: str, leaves: Sequence[Any]) -> None:
    """Write ``leaves`` to the new folder ``path`` (each process its shards); finalised atomically by orbax."""
    _checkpointer().save(path, args=_orbax().args.StandardSave({_name(i): _global(x) for i, x in enumerate(leaves)}))


def stored(path: str, count: int) -> list[tuple[tuple[int, ...], np.dtype] | None]:
    """The shape and dtype of each of the ``count`` leaves the folder ``path`` holds (None: not there)."""
    found: Any = _checkpointer().metadata(path)
    tree: Any = getattr(found, "item_metadata", found)
    out: list[tuple[tuple[int, ...], np.dtype] | None] = []
    for i in range(count):
        entry = tree.get(_name(i)) if hasattr(tree, "get") else None
        shape, dtype = getattr(entry, "shape", None), getattr(entry, "dtype", None)
        out.append(None if shape is None or dtype is None else (tuple(shape), np.dtype(dtype)))
    return out


def _sharding(like: Any) -> Any:
    if isinstance(like, jax.Array):
        return like.sharding
    return _everywhere() if jax.process_count() > 1 else jax.sharding.SingleDeviceSharding(jax.devices()[0])


def restore(path: str, likes: Sequence[Any]) -> list[jax.Array]:
    """The leaves in ``path``, each read into the shape, dtype and sharding of its ``likes`` counterpart."""
    target = {
        _name(i): jax.ShapeDtypeStruct(np.shape(like), like.dtype, sharding=_sharding(like))
        for i, like in enumerate(likes)
    }
    out = _checkpointer().restore(path, args=_orbax().args.StandardRestore(target))
    return [out[_name(i)] for i in range(len(likes))]


def _replicated(x: jax.Array) -> NamedSharding:
    devices = sorted(x.sharding.device_set, key=lambda d: d.id)
    return NamedSharding(Mesh(np.array(devices), ("all",)), PartitionSpec())


def host(x: Any) -> np.ndarray:
    """``x`` on the host, on every process (a small array: status, step counts, the last loss)."""
    if not isinstance(x, jax.Array) or x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x)
    return np.asarray(jax.jit(lambda a: a, out_shardings=_replicated(x))(x))


def finite_rows(leaf: Any, rows: int) -> np.ndarray:
    """For each of ``rows`` equal slices of ``leaf``'s first axis (or the whole leaf, ``rows=1``): all finite?

    Reduced where the shards are, so a large sharded leaf is never gathered.
    """
    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
        return np.asarray(np.isfinite(np.asarray(leaf)).reshape(rows, -1).all(axis=1))
    check = jax.jit(lambda a: jnp.isfinite(a).reshape(rows, -1).all(axis=1), out_shardings=_replicated(leaf))
    return np.asarray(check(leaf))


def place(value: np.ndarray, like: jax.Array) -> jax.Array:
    """The host array ``value`` (the same on every process) laid out as ``like`` is."""
    return jax.make_array_from_callback(value.shape, like.sharding, lambda index: value[index])


def remove(path: str) -> None:
    """Remove the folder ``path`` (what is left of it, if it is half gone already)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass

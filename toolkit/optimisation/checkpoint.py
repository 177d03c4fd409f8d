"""Checkpoints of a ``tk.optimise`` run: written and read with ``flax.serialization`` (msgpack).

A checkpoint holds everything the run's future depends on: the parameters,
the optimiser state, each problem's status and step count, the last loss (for
``tol``), the global step, the random key (the samples of step ``s`` are a
function of the key and ``s`` alone), and the loss history. Resuming from it
therefore continues bit for bit as if the run had never stopped.

Leaves are stored with their paths and checked against the run being resumed,
so a checkpoint written for other parameters or another optimiser is an error
that names the first leaf that differs, not a silent mix.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from toolkit._show import describe
from toolkit.optimisation.chunk import Progress

__all__ = ["Snapshot", "save", "load", "saved_key"]

_FORMAT = "toolkit.optimisation checkpoint"
_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A run at a chunk boundary: ``t`` steps taken, ``progress`` on the host, ``losses`` so far."""

    t: int
    progress: Progress
    losses: np.ndarray
    key: Any


def _key_record(key: Any) -> dict[str, Any] | None:
    if key is None:
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return {"impl": str(jax.random.key_impl(key)), "data": np.asarray(jax.random.key_data(key))}
    return {"impl": "raw", "data": np.asarray(key)}


def _key_from(record: dict[str, Any] | None) -> Any:
    if record is None:
        return None
    if record["impl"] == "raw":
        return jnp.asarray(record["data"])
    return jax.random.wrap_key_data(jnp.asarray(record["data"]), impl=record["impl"])


def save(path: str | os.PathLike, snapshot: Snapshot) -> None:
    """Write ``snapshot`` to ``path`` atomically (a crash mid-write leaves the previous file intact)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(snapshot.progress)
    record = {
        "format": _FORMAT,
        "version": _VERSION,
        "t": int(snapshot.t),
        "structure": str(treedef),
        "paths": [jax.tree_util.keystr(p) for p, _ in flat],
        "leaves": [np.asarray(leaf) for _, leaf in flat],
        "losses": np.asarray(snapshot.losses),
        "key": _key_record(snapshot.key),
    }
    partial = f"{os.fspath(path)}.partial"
    with open(partial, "wb") as file:
        file.write(serialization.msgpack_serialize(record))
    os.replace(partial, path)


def load(path: str | os.PathLike, template: Progress, key: Any) -> Snapshot:
    """Read the checkpoint at ``path`` for a run shaped like ``template`` and started from ``key``."""
    record = _read(path)
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    _check_leaves(path, record, [(jax.tree_util.keystr(p), leaf) for p, leaf in flat])
    saved_key = _key_from(record["key"])
    if key is not None and _key_record(key) is not None and not _same_key(key, saved_key):
        raise ValueError(
            f"tk.optimise: the checkpoint {os.fspath(path)!r} was written by a run with another key; "
            f"pass the key the run started with, or key=None to use the saved one."
        )
    leaves = [jnp.asarray(leaf, dtype=like.dtype) for leaf, (_, like) in zip(record["leaves"], flat)]
    progress = jax.tree.unflatten(treedef, leaves)
    return Snapshot(int(record["t"]), progress, np.asarray(record["losses"]), saved_key)


def saved_key(path: str | os.PathLike) -> Any:
    """The random key stored in the checkpoint at ``path`` (``None`` if the run used none)."""
    return _key_from(_read(path)["key"])


def _read(path: str | os.PathLike) -> dict[str, Any]:
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(
            f"tk.optimise: resume={name!r}: no such checkpoint file (write one with checkpoint=...)."
        )
    with open(name, "rb") as file:
        raw = file.read()
    try:
        record = serialization.msgpack_restore(raw)
    except Exception as error:  # msgpack raises several unrelated types for damaged input
        raise ValueError(
            f"tk.optimise: {name!r} is not a readable checkpoint (corrupt or truncated file): {error}"
        ) from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        raise ValueError(f"tk.optimise: {name!r} is not a tk.optimise checkpoint.")
    if record.get("version") != _VERSION:
        raise ValueError(
            f"tk.optimise: {name!r} has checkpoint version {record.get('version')!r}; this toolkit reads version {_VERSION}."
        )
    return record


def _check_leaves(path: str | os.PathLike, record: dict[str, Any], expected: list[tuple[str, Any]]) -> None:
    name = os.fspath(path)
    saved = dict(zip(record["paths"], record["leaves"]))
    missing = [p for p, _ in expected if p not in saved]
    extra = [p for p in record["paths"] if p not in dict(expected)]
    if missing or extra:
        raise ValueError(
            f"tk.optimise: the checkpoint {name!r} does not match this run (other parameters or another optimiser?): "
            f"missing here {missing[:3]}, only in the file {extra[:3]}."
        )
    for where, like in expected:
        leaf = saved[where]
        if np.shape(leaf) != np.shape(like) or np.asarray(leaf).dtype != like.dtype:
            raise ValueError(
                f"tk.optimise: the checkpoint {name!r} does not match this run: {where} is {describe(leaf)} "
                f"in the file but {describe(like)} here."
            )


def _same_key(a: Any, b: Any) -> bool:
    ra, rb = _key_record(a), _key_record(b)
    if ra is None or rb is None:
        return ra is rb
    return ra["impl"] == rb["impl"] and np.array_equal(ra["data"], rb["data"])

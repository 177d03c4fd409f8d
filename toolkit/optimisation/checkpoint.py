"""Checkpoints of a ``tk.optimise`` run, written so that no save loses work (``flax.serialization`` msgpack).

**What is saved.** Everything the run's future depends on: the parameters, the
optimiser state, each problem's status and step count, the last loss (for
``tol``), the global step ``t``, the random key (step ``s``'s sample is a function
of the key and ``s`` alone) and the loss history. Resuming therefore continues
bit for bit as if the run had never stopped.

**Two files.** ``run.ckpt`` holds everything but the losses, as a msgpack map
(format version 2), so rewriting it costs O(parameters + state) however many
steps have run. The losses live beside it in ``run.ckpt.losses.<token>``: raw
rows, one per step, of the loss dtype (``(batch,)`` wide with ``batched=True``),
appended at each save, so a save writes only the steps since the previous one.
``run.ckpt`` names that file, how many of its rows belong to the run and their
SHA-256; rows past that count (a save killed half-way) are ignored. Each run
appends to a losses file of its own (a resumed run writes the history it read
into a new one at its first save), so two runs on one path never write into
each other's files. To copy a checkpoint, copy both files.

**A save**: append the new loss rows and fsync them; write ``run.ckpt`` to a
temporary file of a unique name in the same folder, fsync it, ``os.replace`` it
over the old one, fsync the folder. A crash at any point leaves either the old
or the new checkpoint, each complete. A run holds an ``flock`` on its losses
file while it lives; at a run's first and last save, the files of runs that are
gone (their temporary files, and losses files that the checkpoint does not name)
are removed. Without ``fcntl`` (Windows) nothing is removed. A save that fails
is a ``RuntimeWarning`` (see :class:`Writer`); the run goes on.

**Reading** looks before it opens: a path that is not a regular file (a FIFO,
``/dev/zero``, a folder) is refused without being read, and so is a file larger
than a checkpoint for these parameters and this optimiser can be (twice the
bytes of their leaves, plus 1 MiB and 4 KiB a leaf). Then every field is
checked against the run being resumed, each refusal naming what differs:

* the optimiser: its ``repr`` for ``tk`` rules, with the hyperparameters
  (``Momentum(eta=0.01, rho=0.9)``), else its type (an optax chain is then told
  apart by its state's structure, below);
* the structure of the parameters and optimiser state: every node's path, class
  (struct classes, optax state classes, containers) and static data (struct
  static fields, dict keys), then every leaf's path, dtype and shape;
* the step counts: ``t >= 0``, ``t <= steps``; each status one of the known
  codes; each problem's step count in ``[0, t]``, equal to ``t`` for one problem
  and for every problem still running;
* the losses: ``t`` rows of the run's loss dtype and width, matching their
  SHA-256, finite exactly where a step was committed (NaN after a batched
  problem stopped); the last loss NaN before the first step and equal to the
  loss of the last committed step after it; the parameters finite once a step
  was committed;
* the key: ``None`` or a ``uint32`` key data array of a key implementation JAX
  knows, and the run's own key where it passes one.

**Sharded runs.** When the run spans processes (``jax.process_count() > 1``) or
a leaf of its state is split over devices (not fully replicated), the leaves
are not put in ``run.ckpt``: every process writes the shards its devices hold
to an orbax-checkpoint folder beside it, ``run.ckpt.arrays.<token>.<n>`` (a new
one each save, finalised atomically by orbax; see
``toolkit.optimisation.sharded_checkpoint``), nothing is gathered to one host,
and then process 0 alone appends the losses and replaces ``run.ckpt`` (format
version 3), which names the folder and lists each leaf's dtype and shape. The
folder of the previous save is removed once the new ``run.ckpt`` is in place,
and folders of runs that are gone are removed like their losses files. Every
process calls each save (they run in step), and all of them report a failure
of any part of it. Resuming checks the same things as above (the leaves' paths,
dtypes and shapes against the listing, and the listing against what the folder
holds, before anything is read) and reads each leaf straight into the sharding
the resumed run gives it: a checkpoint written on one mesh resumes on another
(other device or process counts), and one written on a single device resumes
on many and the other way round. To copy a sharded checkpoint, copy
``run.ckpt``, its losses file and its arrays folder.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import itertools
import math
import os
import re
import secrets
import stat
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from toolkit._show import describe
from toolkit.optimisation import sharded_checkpoint as sharded
from toolkit.optimisation.chunk import Progress
from toolkit.optimisation.result import DIVERGED, GTOL, RUNNING, TOL
from toolkit.params import Params

try:
    import fcntl
except ImportError:  # Windows: no flock, so leftovers are never removed (they are ignored)
    fcntl = None

__all__ = ["IF_EXISTS", "Snapshot", "Saved", "Writer", "read", "load"]

IF_EXISTS = "if-exists"  # resume=IF_EXISTS: from the checkpoint file if there is one, else fresh

_FORMAT = "toolkit.optimisation checkpoint"
_VERSION = 2
_SHARDED_VERSION = 3  # the leaves in an orbax folder beside the file (sharded runs)
_CODES = {RUNNING: "running", TOL: "tol", GTOL: "gtol", DIVERGED: "diverged"}
_SLACK = 2**20  # bytes a checkpoint may take beyond its leaves (names, paths, the structure)
_PER_LEAF = 2**12
_STALE_SECONDS = 60  # a temporary file of no known run is left alone this long (it may be a run's first save)
_TOKEN = r"[0-9a-f]{16}"
_SIDE_NAME = re.compile(r"[^/\\]+\.losses\." + _TOKEN)
_ARRAYS_NAME = re.compile(r"[^/\\]+\.arrays\." + _TOKEN + r"\.[0-9]+")
_BINARY = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A run at a chunk boundary: ``t`` steps taken, ``progress``, the losses so far, the key.

    ``progress`` may be on the host or on the devices: a run on one device is
    fetched to the host when it is saved; a sharded one is written where it is.

    ``losses`` is the loss history as the pieces the run collected it in (their
    concatenation along the first axis is the history; the first piece fixes the
    dtype and row shape, even when empty), so that a save can write only the
    pieces it has not written yet.
    """

    t: int
    progress: Progress
    losses: Sequence[np.ndarray]
    key: Any


@dataclasses.dataclass(frozen=True)
class Saved:
    """A checkpoint file as read from disk, before it is checked against the run that resumes it."""

    name: str  # the path as the user gave it (for messages)
    path: str  # absolute
    record: dict[str, Any]
    key: Any


# --- errors ---------------------------------------------------------------------------------------------


def _mismatch(name: str, what: str) -> ValueError:
    return ValueError(f"tk.optimise: the checkpoint {name!r} does not match this run: {what}.")


def _invalid(name: str, what: str) -> ValueError:
    return ValueError(f"tk.optimise: the checkpoint {name!r} is damaged or was not written by tk.optimise: {what}.")


def _field(name: str, mapping: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    """``mapping[key]`` if it is a ``kind`` (a ``bool`` is not an ``int`` here), else an error naming the field."""
    label = f"{where}{key}"
    if key not in mapping:
        raise _invalid(name, f"the field {label!r} is missing")
    value = mapping[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _invalid(name, f"the field {label!r} is {describe(value)}, not {kind.__name__}")
    return value


# --- the structure of a run's state ---------------------------------------------------------------------

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _plain(text: str) -> str:
    """``text`` without memory addresses, which differ from process to process (``<function f at 0x7f…>``)."""
    return _ADDRESS.sub("", text)


def _where(path: str) -> str:
    return path or "the top of the state"


def _nodes(treedef: Any, keys: list[tuple[Any, ...]]) -> list[list[str]]:
    """Every internal node of ``treedef`` in preorder, as ``[path, class name, static data, number of children]``.

    A node's path is that of its leaves; one without leaves (``None``, an empty
    optax state) is named from its parent: a dict's key, a named tuple's field,
    else the child's index.
    """
    out: list[list[str]] = []

    def walk(node: Any, depth: int, offset: int, path: str) -> None:
        data = node.node_data()
        if data is None:
            return  # a leaf
        kind, aux = data
        if node.num_leaves:
            path = jax.tree_util.keystr(keys[offset][:depth])
        children = node.children()
        out.append([path, kind.__qualname__, "" if aux is None else _plain(repr(aux)), str(len(children))])
        fields = getattr(kind, "_fields", None)
        for i, child in enumerate(children):
            if kind is dict and isinstance(aux, list) and i < len(aux):
                below = f"{path}[{aux[i]!r}]"
            elif isinstance(fields, tuple) and i < len(fields):
                below = f"{path}.{fields[i]}"
            else:
                below = f"{path}[{i}]"
            walk(child, depth + 1, offset, below)
            offset += child.num_leaves

    walk(treedef, 0, 0, "")
    return out


def _show_node(node: Any, count: bool) -> str:
    if node is None:
        return "nothing"
    if not (isinstance(node, list) and len(node) == 4 and all(isinstance(s, str) for s in node)):
        return describe(node)
    shown = f"{node[1]}[{node[2]}]" if node[2] else node[1]
    return f"{shown} of {node[3]} children" if count else shown


def describe_optimiser(opt: Any) -> str:
    """What a checkpoint records of the optimiser: ``repr`` for a ``tk`` rule (with its hyperparameters), else its type."""
    if getattr(opt, "__dict__", {}).get("_spec") is not None:  # a tk rule: Momentum(eta=0.01, rho=0.9)
        return _plain(repr(opt))
    return type(opt).__qualname__  # optax: its state's structure tells chains apart


# --- keys ------------------------------------------------------------------------------------------------


def _key_record(key: Any) -> dict[str, Any] | None:
    if key is None:
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return {"impl": str(jax.random.key_impl(key)), "data": np.asarray(jax.random.key_data(key))}
    return {"impl": "raw", "data": np.asarray(key)}


def _key_from(name: str, record: Any) -> Any:
    if record is None:
        return None
    if not isinstance(record, dict) or set(record) != {"impl", "data"}:
        raise _invalid(name, f"the field 'key' is {describe(record)}, not None or a map of 'impl' and 'data'")
    impl, data = record["impl"], record["data"]
    if not isinstance(impl, str) or not isinstance(data, np.ndarray) or data.dtype != np.uint32 or not 1 <= data.ndim:
        raise _invalid(name, f"the key is {describe(data)} of implementation {impl!r}, not uint32 key data")
    if data.size > 64:
        raise _invalid(name, f"the key data is {describe(data)}, larger than any JAX key")
    if impl == "raw":
        return jnp.asarray(data)
    try:
        return jax.random.wrap_key_data(jnp.asarray(data), impl=impl)
    except Exception as error:  # an unknown implementation name, or data of the wrong shape for it
        raise _invalid(name, f"the key ({impl!r}, {describe(data)}) is not one JAX can make: {error}") from None


def _same_key(a: Any, b: Any) -> bool:
    ra, rb = _key_record(a), _key_record(b)
    if ra is None or rb is None:
        return ra is rb
    return ra["impl"] == rb["impl"] and np.array_equal(ra["data"], rb["data"])


# --- files -----------------------------------------------------------------------------------------------


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _read_regular(path: str, name: str, what: str, *, limit: int | None = None, exact: int | None = None) -> bytes:
    """The bytes of the regular file ``path``: all of them (at most ``limit``), or its first ``exact``.

    Looked at with ``os.stat`` before it is opened (a FIFO or a device is never
    opened), opened non-blocking, and looked at again through the open file.
    """

    def check(info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(
                f"tk.optimise: {what} {name!r} is {_kind(info.st_mode)}, not a regular file; "
                f"a checkpoint is a file written by tk.optimise(checkpoint=...)."
            )
        if limit is not None and info.st_size > limit:
            raise ValueError(
                f"tk.optimise: {what} {name!r} holds {info.st_size} bytes, more than a checkpoint of these "
                f"parameters and this optimiser can ({limit} bytes); it is not a checkpoint of this run."
            )
        if exact is not None and info.st_size < exact:
            raise _invalid(name, f"{what} holds {info.st_size} bytes, fewer than the {exact} its checkpoint names")

    check(os.stat(path))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _BINARY)
    try:
        check(os.fstat(fd))
        want = exact if exact is not None else (limit if limit is not None else math.inf) + 1
        parts, got = [], 0
        while got < want:
            part = os.read(fd, int(min(want - got, 2**24)))
            if not part:
                break
            parts.append(part)
            got += len(part)
    finally:
        os.close(fd)
    raw = b"".join(parts)
    if limit is not None and len(raw) > limit:
        raise ValueError(f"tk.optimise: {what} {name!r} grew past {limit} bytes while it was read.")
    if exact is not None and len(raw) < exact:
        raise _invalid(name, f"{what} holds {len(raw)} bytes, fewer than the {exact} its checkpoint names")
    return raw


def _write_all(fd: int, data: bytes, offset: int) -> None:
    """Write ``data`` at ``offset`` of the open file ``fd`` (every byte of a checkpoint goes through here)."""
    os.lseek(fd, offset, os.SEEK_SET)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_data(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def _sync_folder(folder: str) -> None:
    """fsync a folder, so that a rename in it survives a crash (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a folder; there the rename is what it is
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse to fsync a folder
    finally:
        os.close(fd)


def _lock(fd: int) -> bool | None:
    """Try to take the ``flock`` of ``fd``: True if taken, False if another run holds it, None if unknowable."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a filesystem without flock
        return None
    return True


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # gone already, or not ours to remove


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


# --- writing ---------------------------------------------------------------------------------------------


def _check_target(name: str, path: str) -> None:
    """Fail now, before anything is compiled, if ``path`` cannot be written."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"tk.optimise: checkpoint={name!r}: the folder {folder!r} does not exist; create it first "
            f"(os.makedirs({folder!r}, exist_ok=True)) or fix the path."
        )
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(
            f"tk.optimise: checkpoint={name!r} is a folder; pass a file name in it, e.g. {os.path.join(name, 'run.ckpt')!r}."
        )
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise ValueError(
            f"tk.optimise: checkpoint={name!r} is {_kind(info.st_mode)}; pass the name of a regular file (or of none yet)."
        )


class Writer:
    """Saves one run to ``path`` (see the module docstring for how); made before the run compiles.

    Making it checks that the folder exists and that a file can be created in
    it (an error naming the path and the fix). :meth:`save` never loses the
    previous checkpoint: if it fails, the file keeps the last good save, and the
    failure is a ``RuntimeWarning`` (once, until a save succeeds again) while the
    run goes on. Only a Ctrl-C during a save made while the run goes on is passed
    up, so that the run stops; the final save (``final=True``) catches even that.
    """

    def __init__(self, path: str | os.PathLike, opt: Any):
        self.name = os.fspath(path)
        self.path = os.path.abspath(self.name)
        self.folder, self.base = os.path.split(self.path)
        _check_target(self.name, self.path)
        self.optimiser = describe_optimiser(opt)
        self._token = secrets.token_hex(8)
        self._probe()
        self._fd: int | None = None  # the losses file, opened (and locked) at the first save
        self._closer: Callable[[], Any] | None = None
        self._rows = 0  # rows of the losses file that are on disk and named by the checkpoint
        self._digest = hashlib.sha256()
        self._consumed: tuple[int, Any] = (0, None)  # pieces written, and the last of them
        self._layout: tuple[Any, list[list[str]], list[str]] | None = None
        self._saved_t: int | None = None  # the step of the last good save
        self._failing = False
        self._cleaned = False
        self._size = 0  # the last checkpoint's size in bytes
        self._arrays: str | None = None  # sharded runs: the arrays folder the last good save names
        self._saves = 0  # sharded runs: saves begun (numbers each save's arrays folder)

    @property
    def side(self) -> str:
        """The losses file this run appends to (its name in the checkpoint's folder)."""
        return f"{self.base}.losses.{self._token}"

    def _temporary(self, tag: str) -> str:
        return os.path.join(self.folder, f".{self.base}.{self._token}.{tag}.tmp")

    def _probe(self) -> None:
        probe = self._temporary("probe")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
        except OSError as error:
            kind = PermissionError if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else OSError
            raise kind(
                f"tk.optimise: checkpoint={self.name!r}: cannot create a file in the folder {self.folder!r} "
                f"({error.strerror or error}); pick a folder you can write to, or fix its permissions."
            ) from None
        os.close(fd)
        _unlink(probe)

    # -- saving

    def save(self, make: Callable[..., Snapshot], *args: Any, final: bool = False) -> bool:
        """Save ``make(*args)``; True if it was written. ``final``: the run's last save, after which the file is released."""
        snapshot = None
        try:
            snapshot = make(*args)
            self._save(snapshot)
            ok = True
        except (Exception, KeyboardInterrupt) as error:
            if isinstance(error, KeyboardInterrupt) and not final:
                raise  # Ctrl-C during the run: it stops, and the final save tries again
            if final or not self._failing:
                self._warn(error, snapshot, final)
            ok = False
        self._failing = not ok
        if final:
            try:
                self.close()
            except (Exception, KeyboardInterrupt):  # the result matters more than the tidying
                self._release()
        return ok

    def _save(self, snapshot: Snapshot) -> None:
        if sharded.wanted(snapshot.progress):
            self._save_sharded(snapshot)
            return
        snapshot = dataclasses.replace(snapshot, progress=jax.device_get(snapshot.progress))
        rows, digest = self._append_losses(snapshot.losses)
        record = self._record(snapshot, rows, digest.hexdigest())
        self._replace(serialization.msgpack_serialize(record))
        self._committed(snapshot, rows, digest, None)

    def _append_losses(self, pieces: Sequence[np.ndarray]) -> tuple[int, Any]:
        """Append the rows not on disk yet and fsync them: the rows the checkpoint may name, and their digest."""
        fd = self._losses_file()
        rows, digest, block = self._new_rows(pieces)
        data = np.ascontiguousarray(block).tobytes()
        _write_all(fd, data, self._rows * _row_bytes(pieces[0]))
        _sync_data(fd)
        digest.update(data)
        return rows, digest

    def _committed(self, snapshot: Snapshot, rows: int, digest: Any, arrays: str | None) -> None:
        """The checkpoint file now names ``rows`` rows and the folder ``arrays``: forget what came before."""
        pieces = snapshot.losses
        self._rows, self._digest, self._consumed = rows, digest, (len(pieces), pieces[-1])
        previous, self._arrays = self._arrays, arrays
        if previous is not None and previous != arrays:
            sharded.remove(os.path.join(self.folder, previous))  # no longer named: the new file is in place
        self._saved_t = snapshot.t
        if not self._cleaned:
            self._cleaned = True
            self.clean()

    def _save_sharded(self, snapshot: Snapshot) -> None:
        """Each process writes its shards (orbax), then process 0 the losses and the file; all raise if any part failed."""
        primary, failure = sharded.is_primary(), None
        if primary:
            try:
                self._losses_file()  # may take another token, which names the arrays folder too
            except Exception as error:
                failure = error
        # one folder name on every process: process 0's token (its losses file's lock covers the folder) and count
        token = np.frombuffer(bytes.fromhex(self._token), np.uint8)
        agreed = sharded.agree(np.concatenate([[failure is None, self._saves + 1], token]))
        self._check_agreed(bool(agreed[0]), failure, "open its losses file")
        self._saves, token_hex = int(agreed[1]), bytes(agreed[2:].astype(np.uint8)).hex()
        arrays = f"{self.base}.arrays.{token_hex}.{self._saves}"
        leaves = jax.tree.leaves(snapshot.progress)
        sharded.save(os.path.join(self.folder, arrays), leaves)
        rows, digest = self._rows, self._digest
        if primary:
            try:
                rows, digest = self._append_losses(snapshot.losses)
                record = self._record(snapshot, rows, digest.hexdigest(), arrays)
                self._replace(serialization.msgpack_serialize(record))
            except Exception as error:
                failure = error
        self._check_agreed(bool(sharded.agree(np.array([failure is None]))[0]), failure, "write the checkpoint file")
        self._committed(snapshot, rows, digest, arrays)

    def _check_agreed(self, ok: bool, failure: BaseException | None, what: str) -> None:
        if ok:
            return
        if failure is not None:
            raise failure
        raise RuntimeError(f"process 0 could not {what} (its own warning says why)")

    def _new_rows(self, pieces: Sequence[np.ndarray]) -> tuple[int, Any, np.ndarray]:
        """The rows not written yet (from the pieces not written yet, so O(new rows)), their count with the old, the digest."""
        count, last = self._consumed
        skip = 0
        if count > len(pieces) or (count and pieces[count - 1] is not last):
            count, skip = 0, self._rows  # not the pieces written before: count the rows instead
        new = list(pieces[count:])
        block = np.concatenate(new)[skip:] if new else pieces[0][:0]
        return self._rows + len(block), self._digest.copy(), block

    def _record(self, snapshot: Snapshot, rows: int, digest: str, arrays: str | None = None) -> dict[str, Any]:
        flat, treedef = jax.tree_util.tree_flatten_with_path(snapshot.progress)
        if self._layout is None or self._layout[0] != treedef:
            keys = [k for k, _ in flat]
            self._layout = (treedef, _nodes(treedef, keys), [jax.tree_util.keystr(k) for k in keys])
        first = snapshot.losses[0]
        if arrays is None:
            content: dict[str, Any] = {"version": _VERSION, "leaves": [np.asarray(leaf) for _, leaf in flat]}
        else:
            listing = [[_dtype_name(leaf.dtype), list(np.shape(leaf))] for _, leaf in flat]
            content = {"version": _SHARDED_VERSION, "arrays": {"folder": arrays, "leaves": listing}}
        return {
            "format": _FORMAT,
            "version": content["version"],
            "t": int(snapshot.t),
            "optimiser": self.optimiser,
            "nodes": self._layout[1],
            "paths": self._layout[2],
            **{k: v for k, v in content.items() if k != "version"},
            "losses": {
                "file": self.side,
                "rows": rows,
                "dtype": first.dtype.str,
                "shape": list(first.shape[1:]),
                "sha256": digest,
            },
            "key": _key_record(snapshot.key),
        }

    def _losses_file(self) -> int:
        """This run's losses file, open and locked; made anew (all rows written again) if it was removed."""
        if self._fd is not None:
            try:
                if os.path.samestat(os.fstat(self._fd), os.stat(os.path.join(self.folder, self.side))):
                    return self._fd
            except OSError:
                pass
            self._release()
        for _ in range(8):
            path = os.path.join(self.folder, self.side)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
            locked = _lock(fd)
            try:
                ours = locked is not False and os.path.samestat(os.fstat(fd), os.stat(path))
            except OSError:
                ours = False
            if ours:
                self._fd, self._closer = fd, weakref.finalize(self, _close, fd)
                self._rows, self._digest, self._consumed = 0, hashlib.sha256(), (0, None)
                return fd
            os.close(fd)  # another run removed it as a leftover the instant it was made: take another name
            self._token = secrets.token_hex(8)
        raise OSError(f"could not make a losses file beside {self.name!r}")

    def _replace(self, data: bytes) -> None:
        temporary = self._temporary(secrets.token_hex(4))
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
        try:
            try:
                _write_all(fd, data, 0)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
        except BaseException:
            _unlink(temporary)
            raise
        self._size = len(data)
        _sync_folder(self.folder)

    def _warn(self, error: BaseException, snapshot: Snapshot | None, final: bool) -> None:
        at = "" if snapshot is None else f" at step {snapshot.t}"
        cause = "interrupted (Ctrl-C)" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
        kept = (
            f"the file holds the save of step {self._saved_t}"
            if self._saved_t is not None
            else "no save of this run succeeded, so the file (if any) is as it was"
        )
        goes_on = "the result is returned" if final else "the run goes on, and later saves are tried"
        warnings.warn(
            f"tk.optimise: could not save the checkpoint {self.name!r}{at} ({cause}); {goes_on}; {kept}.",
            RuntimeWarning,
            stacklevel=4 if final else 5,  # the caller of tk.optimise
        )

    # -- releasing, and removing what dead runs left

    def _release(self) -> None:
        if self._closer is not None:
            self._closer()  # closes the losses file, which releases its lock
        self._fd = self._closer = None

    def close(self) -> None:
        """Remove what runs that are gone left behind, and release this run's losses file."""
        try:
            if self._saved_t is not None:
                self.clean()
        finally:
            self._release()

    def clean(self) -> None:
        """Remove the temporary files, losses files and arrays folders of runs that are gone, as far as it is safe to tell.

        With several processes only process 0 does this (the others write nothing but their shards).
        """
        if fcntl is None or not sharded.is_primary():
            return
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        base = re.escape(self.base)
        sides = {m[1] for m in map(re.compile(base + r"\.losses\.(" + _TOKEN + ")").fullmatch, names) if m}
        temporaries = [
            (m[0], m[1])
            for m in map(re.compile(r"\." + base + r"\.(" + _TOKEN + r")\.[0-9a-z]+\.tmp").fullmatch, names)
            if m
        ]
        arrays = [
            (m[0], m[1]) for m in map(re.compile(base + r"\.arrays\.(" + _TOKEN + r")\..+").fullmatch, names) if m
        ]
        named_once: list[tuple[str, str | None] | None] = []  # what the checkpoint names, read once when first needed

        def named() -> tuple[str, str | None] | None:
            if not named_once:
                named_once.append(self._named())
            return named_once[0]

        gone: set[str] = set()  # the tokens of runs that are gone
        for token in sorted(sides - {self._token}):
            side = os.path.join(self.folder, f"{self.base}.losses.{token}")
            try:
                fd = os.open(side, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _BINARY)
            except OSError:
                continue
            try:
                # held by a live run, or no longer this name: leave it; else its run is gone
                if _lock(fd) is not True or not os.path.samestat(os.fstat(fd), os.stat(side)):
                    continue
                gone.add(token)
                names = named()
                if names is None or names[0] == os.path.basename(side):
                    continue  # the checkpoint needs it (or could not be read: remove nothing)
                _unlink(side)
                for temporary, owner in temporaries:
                    if owner == token:
                        _unlink(os.path.join(self.folder, temporary))
            except OSError:
                continue
            finally:
                os.close(fd)
        now = time.time()
        for temporary, owner in temporaries:
            if owner != self._token and owner not in sides:  # no losses file: a crashed probe or first save
                path = os.path.join(self.folder, temporary)
                try:
                    if now - os.stat(path).st_mtime > _STALE_SECONDS:
                        _unlink(path)
                except OSError:
                    pass
        for folder, owner in arrays:
            path = os.path.join(self.folder, folder)
            if owner == self._token:
                stale = folder != self._arrays  # this run's: an older save's, or a save that failed
            elif owner in gone:
                stale = True
            else:
                try:  # no losses file: a run that died at its first save (a live one has its losses file)
                    stale = owner not in sides and now - os.lstat(path).st_mtime > _STALE_SECONDS
                except OSError:
                    stale = False
            names = named() if stale else None
            if names is not None and names[1] != folder:
                sharded.remove(path)

    def _named(self) -> tuple[str, str | None] | None:
        """The losses file and arrays folder the checkpoint at ``path`` names now (None if it cannot be read)."""
        try:
            raw = _read_regular(self.path, self.name, "the checkpoint", limit=2 * self._size + _SLACK)
            record: Any = serialization.msgpack_restore(raw)
            arrays = record.get("arrays")
            return str(record["losses"]["file"]), None if arrays is None else str(arrays["folder"])
        except Exception:  # unreadable for any reason: then nothing is removed
            return None


def _dtype_name(dtype: Any) -> str:
    """A dtype as the sharded listing records it: its name (``float32``, ``bfloat16``: unambiguous, unlike ``.str``)."""
    return np.dtype(dtype).name


def _row_bytes(first: np.ndarray) -> int:
    return first.dtype.itemsize * math.prod(first.shape[1:])


# --- reading ---------------------------------------------------------------------------------------------


def _bound(params: Any, opt: Any, batched: bool) -> int:
    """The most bytes a checkpoint of ``params`` optimised by ``opt`` can take: twice its leaves, plus slack."""
    values = params.values() if isinstance(params, Params) else params
    leaves = [leaf for leaf in jax.tree.leaves(values) if hasattr(leaf, "dtype") or isinstance(leaf, (int, float))]
    shapes = [jax.ShapeDtypeStruct(np.shape(leaf), jnp.result_type(leaf)) for leaf in leaves]
    floats = [s for s in shapes if jnp.issubdtype(s.dtype, jnp.inexact)]
    try:
        state = jax.eval_shape(jax.vmap(opt.init) if batched else opt.init, floats)
        count = len(jax.tree.leaves(state))
        nbytes = sum(s.size * s.dtype.itemsize for s in jax.tree.leaves(state)) + sum(
            s.size * s.dtype.itemsize for s in floats
        )
    except Exception:  # an optimiser whose init cannot be traced on a list: bound it by 64 times the parameters
        count = 4 * len(shapes)
        nbytes = 64 * sum(s.size * s.dtype.itemsize for s in shapes)
    return 2 * nbytes + _SLACK + _PER_LEAF * (count + len(shapes) + 8)


def read(
    resume: str | os.PathLike, checkpoint: str | os.PathLike | None, params: Any, opt: Any, batched: bool
) -> Saved | None:
    """Read the checkpoint to resume from (``None``: ``resume="if-exists"`` and there is none yet).

    Only what is known before compiling is checked here (what the file is, its
    size, its format, the optimiser and the key); :func:`load` checks the rest
    against the run's fresh state.
    """
    missing_ok = isinstance(resume, str) and resume == IF_EXISTS
    if missing_ok:
        assert checkpoint is not None  # checked with the other arguments
        resume = checkpoint
    name = os.fspath(resume)
    path = os.path.abspath(name)
    try:
        os.stat(path)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise FileNotFoundError(
            f"tk.optimise: resume={name!r}: no such checkpoint file (write one with checkpoint=...; "
            f"resume={IF_EXISTS!r} starts fresh when the checkpoint file does not exist yet)."
        ) from None
    raw = _read_regular(path, name, "the checkpoint", limit=_bound(params, opt, batched))
    try:
        record = serialization.msgpack_restore(raw)
    except Exception as error:  # msgpack raises several unrelated types for damaged input
        raise ValueError(
            f"tk.optimise: {name!r} is not a readable checkpoint (corrupt or truncated file): {error}"
        ) from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        raise ValueError(f"tk.optimise: {name!r} is not a tk.optimise checkpoint.")
    if record.get("version") not in (_VERSION, _SHARDED_VERSION):
        raise ValueError(
            f"tk.optimise: {name!r} has checkpoint version {record.get('version')!r}; this toolkit reads versions "
            f"{_VERSION} (one device) and {_SHARDED_VERSION} (sharded)."
        )
    optimiser, found = describe_optimiser(opt), _field(name, record, "optimiser", str)
    if found != optimiser:
        raise _mismatch(
            name,
            f"it was written with the optimiser {found}, and this run uses {optimiser} (another optimiser, or other "
            f"hyperparameters); resume with the optimiser it was written with",
        )
    if "key" not in record:
        raise _invalid(name, "the field 'key' is missing")
    return Saved(name, path, record, _key_from(name, record["key"]))


def load(saved: Saved, template: Progress, key: Any, max_steps: int, loss_dtype: Any) -> Snapshot:
    """Check ``saved`` against a run whose fresh state is ``template`` and return where it left off."""
    name, record = saved.name, saved.record
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    keys = [k for k, _ in flat]
    _check_nodes(name, _field(name, record, "nodes", list), _nodes(treedef, keys))
    expected = [(jax.tree_util.keystr(k), like) for k, like in flat]
    if record.get("version") == _SHARDED_VERSION:
        leaves = _sharded_leaves(saved, expected)  # on the devices already, laid out as the template
    else:
        leaves = _check_leaves(name, record, expected)
    progress: Progress = jax.tree.unflatten(treedef, leaves)
    t = _field(name, record, "t", int)
    if t < 0:
        raise _invalid(name, f"t is {t}, below 0")
    if t > max_steps:
        raise ValueError(
            f"tk.optimise: the checkpoint {name!r} is at step {t}, beyond steps={max_steps}; pass steps >= {t} to continue it."
        )
    status, steps = sharded.host(progress.status), sharded.host(progress.steps)
    _check_counts(name, t, status, steps)
    losses = _read_losses(saved, t, status.shape, np.dtype(loss_dtype))
    _check_losses(name, losses, steps, sharded.host(progress.last_loss), progress.params)
    if key is not None and _key_record(key) is not None and not _same_key(key, saved.key):
        raise ValueError(
            f"tk.optimise: the checkpoint {name!r} was written by a run with another key; "
            f"pass the key the run started with, or key=None to use the saved one."
        )
    on_device = jax.tree.map(_to_device, progress, template)
    return Snapshot(t, on_device, (losses,), saved.key)


def _to_device(leaf: Any, like: Any) -> Any:
    """A leaf read from a checkpoint, laid out as the fresh run's ``like`` is (one device: as JAX places it)."""
    if isinstance(leaf, jax.Array) and not isinstance(like, jax.Array):
        return leaf
    if isinstance(leaf, jax.Array) and leaf.sharding == like.sharding:
        return leaf  # read into the template's sharding already (sharded checkpoints)
    if isinstance(like, jax.Array) and (jax.process_count() > 1 or len(like.sharding.device_set) > 1):
        return sharded.place(np.asarray(leaf, dtype=like.dtype), like)
    return jnp.asarray(leaf, dtype=like.dtype)


def _sharded_leaves(saved: Saved, expected: list[tuple[str, Any]]) -> list[jax.Array]:
    """The leaves of a sharded checkpoint: the listing checked against the run and the folder, then read."""
    name, record = saved.name, saved.record
    paths = _field(name, record, "paths", list)
    info = _field(name, record, "arrays", dict)
    folder = _field(name, info, "folder", str, "arrays.")
    listing = _field(name, info, "leaves", list, "arrays.")
    if len(paths) != len(listing) or not all(isinstance(p, str) for p in paths):
        raise _invalid(name, f"{len(paths)} leaf paths for {len(listing)} leaves")
    _check_paths(name, paths, [p for p, _ in expected])
    shapes: list[tuple[tuple[int, ...], np.dtype]] = []
    for entry, (where, like) in zip(listing, expected):
        dtype, shape = _listed(name, entry, where)
        if shape != tuple(like.shape) or dtype != np.dtype(like.dtype):
            raise _mismatch(
                name, f"{where} is {describe(jax.ShapeDtypeStruct(shape, dtype))} in the file but {describe(like)} here"
            )
        shapes.append((shape, dtype))
    if not _ARRAYS_NAME.fullmatch(folder) or os.path.basename(folder) != folder:
        raise _invalid(
            name, f"the arrays folder {folder!r} is not a name of the form 'run.ckpt.arrays.<16 hex digits>.<n>'"
        )
    path = os.path.join(os.path.dirname(saved.path), folder)
    if not os.path.isdir(path):
        raise _invalid(name, f"its arrays folder {folder!r} is missing (copy it along with the checkpoint)")
    try:
        held = sharded.stored(path, len(expected))
    except Exception as error:  # orbax's metadata unreadable: a damaged or foreign folder
        raise _invalid(name, f"its arrays folder {folder!r} cannot be read ({type(error).__name__}: {error})") from None
    for there, here, (where, _) in zip(held, shapes, expected):
        if there != here:
            shown = "nothing" if there is None else describe(jax.ShapeDtypeStruct(*there))
            raise _invalid(
                name,
                f"its arrays folder {folder!r} holds {shown} for {where}, where the checkpoint names "
                f"{describe(jax.ShapeDtypeStruct(*here))}",
            )
    try:
        return sharded.restore(path, [like for _, like in expected])
    except Exception as error:
        raise _invalid(name, f"its arrays folder {folder!r} cannot be read ({type(error).__name__}: {error})") from None


def _listed(name: str, entry: Any, where: str) -> tuple[np.dtype, tuple[int, ...]]:
    """One entry ``[dtype name, shape]`` of a sharded checkpoint's listing."""
    ok = isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], list)
    if ok and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry[1]):
        try:
            return np.dtype(entry[0]), tuple(entry[1])
        except TypeError:
            pass
    raise _invalid(name, f"the listing of {where} is {describe(entry)}, not [dtype name, shape]")


def _check_nodes(name: str, found: list[Any], expected: list[list[str]]) -> None:
    for there, here in itertools.zip_longest(found, expected):
        if there != here:
            where = here[0] if here is not None else there[0] if isinstance(there, list) and there else "?"
            count = isinstance(there, list) and here is not None and there[:3] == here[:3]  # only the arity differs
            raise _mismatch(
                name,
                f"at {_where(str(where))}, the state holds {_show_node(there, count)} in the file but "
                f"{_show_node(here, count)} here "
                f"(another struct class or static fields, other containers, or another optimiser's state)",
            )


def _check_leaves(name: str, record: dict[str, Any], expected: list[tuple[str, Any]]) -> list[np.ndarray]:
    paths = _field(name, record, "paths", list)
    leaves = _field(name, record, "leaves", list)
    if len(paths) != len(leaves) or not all(isinstance(p, str) for p in paths):
        raise _invalid(name, f"{len(paths)} leaf paths for {len(leaves)} leaves")
    _check_paths(name, paths, [p for p, _ in expected])
    for leaf, (where, like) in zip(leaves, expected):
        if not isinstance(leaf, np.ndarray) or leaf.shape != tuple(like.shape) or leaf.dtype != np.dtype(like.dtype):
            shown = describe(leaf) if isinstance(leaf, np.ndarray) else f"a {type(leaf).__name__}, not an array,"
            raise _mismatch(name, f"{where} is {shown} in the file but {describe(like)} here")
    return leaves


def _check_paths(name: str, paths: list[str], wanted: list[str]) -> None:
    if paths != wanted:
        missing = [p for p in wanted if p not in paths]
        extra = [p for p in paths if p not in wanted]
        raise _mismatch(
            name,
            f"other parameters or another optimiser? missing here {missing[:3]}, only in the file {extra[:3]}"
            + ("" if missing or extra else " (the same leaves in another order)"),
        )


def _check_counts(name: str, t: int, status: np.ndarray, steps: np.ndarray) -> None:
    codes = ", ".join(f"{code} ({word})" for code, word in _CODES.items())
    for i in np.ndindex(status.shape):
        problem = f" of problem {i[0]}" if i else ""
        if int(status[i]) not in _CODES:
            raise _invalid(name, f".status{problem} is {int(status[i])}, not one of the codes {codes}")
        if not 0 <= int(steps[i]) <= t:
            raise _invalid(name, f".steps{problem} is {int(steps[i])}, outside [0, t={t}]")
        if (not i or int(status[i]) == RUNNING) and int(steps[i]) != t:
            whose = "a running problem's steps" if i else "one problem's steps"
            raise _invalid(name, f".steps{problem} is {int(steps[i])} but t is {t} ({whose} are t)")


def _read_losses(saved: Saved, t: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    name = saved.name
    info = _field(name, saved.record, "losses", dict)
    file = _field(name, info, "file", str, "losses.")
    rows = _field(name, info, "rows", int, "losses.")
    stored = _field(name, info, "dtype", str, "losses.")
    width = _field(name, info, "shape", list, "losses.")
    digest = _field(name, info, "sha256", str, "losses.")
    if rows != t:
        raise _invalid(name, f"it names {rows} rows of losses for t={t} steps")
    if stored != dtype.str:
        try:
            shown = np.dtype(stored).name
        except TypeError:
            shown = repr(stored)
        raise _mismatch(name, f"its losses are {shown} but this run's loss is {dtype.name}")
    if width != list(shape):
        raise _mismatch(name, f"its losses have rows of shape {tuple(width)}, this run's {shape}")
    if not _SIDE_NAME.fullmatch(file) or os.path.basename(file) != file:
        raise _invalid(name, f"the losses file {file!r} is not a name of the form 'run.ckpt.losses.<16 hex digits>'")
    side = os.path.join(os.path.dirname(saved.path), file)
    if not os.path.exists(side):
        raise _invalid(name, f"its losses file {file!r} is missing (copy it along with the checkpoint)")
    raw = bytearray(_read_regular(side, file, "the losses file", exact=rows * dtype.itemsize * math.prod(shape)))
    if hashlib.sha256(raw).hexdigest() != digest:
        raise _invalid(
            name, f"the losses file {file!r} does not hold the {rows} rows the checkpoint names (their SHA-256 differs)"
        )
    return np.frombuffer(raw, dtype).reshape(rows, *shape)


def _check_losses(name: str, losses: np.ndarray, steps: np.ndarray, last: np.ndarray, params: Any) -> None:
    """Finite exactly where a step was committed; the last loss that of the last committed step; finite parameters."""
    columns = losses.reshape(len(losses), -1)
    counts, lasts = steps.reshape(-1).astype(np.int64), last.reshape(-1)
    committed = np.arange(len(columns))[:, None] < counts[None, :]
    bad = np.argwhere(np.isfinite(columns) != committed)
    if bad.size:
        row, j = (int(i) for i in bad[0])
        problem = f" of problem {j}" if steps.ndim else ""
        expected = "finite" if committed[row, j] else "NaN (the problem had stopped)"
        raise _invalid(name, f"the loss{problem} at step {row + 1} is {columns[row, j]}, where it must be {expected}")
    at_last = (
        columns[np.maximum(counts - 1, 0), np.arange(len(counts))] if len(columns) else np.full_like(lasts, np.nan)
    )
    wrong = np.flatnonzero(np.where(counts > 0, lasts != at_last, ~np.isnan(lasts)))
    if wrong.size:
        j = int(wrong[0])
        problem = f" of problem {j}" if steps.ndim else ""
        want = f"the loss at step {counts[j]}, {at_last[j]}" if counts[j] else "NaN before the first step"
        raise _invalid(name, f".last_loss{problem} is {lasts[j]}, where it must be {want}")
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        broken = np.flatnonzero((counts > 0) & ~sharded.finite_rows(leaf, len(counts)))
        if broken.size:
            problem = f" of problem {int(broken[0])}" if steps.ndim else ""
            raise _invalid(name, f".params{jax.tree_util.keystr(path)}{problem} is not finite after a committed step")

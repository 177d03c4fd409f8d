"""The one cache design for compiled programs: bounded, least recently used, keyed on ``toolkit.closures`` keys.

A key says what a program is (code, numbers, structure, shapes and dtypes;
objects by weak identity, see ``toolkit.closures``), so two calls that would
compile the same program share an entry and nothing in the cache keeps a user
object alive. An entry whose objects have died never matches again and leaves
as newer entries come in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Cache", "Key"]

V = TypeVar("V")


class Key:
    """A key whose hash is computed once (a cache looks it up, then moves it to the front: two hashes of a deep tuple).

    Example:
        >>> from toolkit.cache import Key
        >>> Key((1, "a")) == Key((1, "a")), hash(Key((1, "a"))) == hash((1, "a"))
        (True, True)
    """

    __slots__ = ("parts", "_hash")

    def __init__(self, parts: Any):
        self.parts = parts
        self._hash = hash(parts)  # a TypeError here if a part does not hash

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return other is self or (isinstance(other, Key) and self._hash == other._hash and self.parts == other.parts)


class Cache(Generic[V]):
    """At most ``size`` entries; the least recently used goes first.

    Example:
        >>> from toolkit.cache import Cache
        >>> cache = Cache(2)
        >>> cache.get_or_make("a", lambda: 1), cache.get_or_make("a", lambda: 2), len(cache)
        (1, 1, 1)
    """

    def __init__(self, size: int):
        self.size = size
        self._entries: dict[Any, V] = {}  # oldest first (a dict keeps insertion order; cheaper than an OrderedDict)

    def get(self, key: Any) -> V | None:
        """The entry for ``key`` (now the most recently used), or ``None``; a ``TypeError`` if ``key`` is unhashable."""
        entries = self._entries
        entry = entries.pop(key, None)  # one lookup (comparing a deep key once), then in again as the newest
        if entry is not None:
            entries[key] = entry
        return entry

    def put(self, key: Any, entry: V) -> V:
        entries = self._entries
        entries.pop(key, None)
        entries[key] = entry
        if len(entries) > self.size:
            try:
                del entries[next(iter(entries))]
            except (StopIteration, KeyError, RuntimeError):  # emptied or changed by another thread meanwhile
                pass
        return entry

    def get_or_make(self, key: Any, make: Callable[[], V]) -> V:
        entry = self.get(key)
        return self.put(key, make()) if entry is None else entry

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

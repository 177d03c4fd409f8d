"""``toolkit.cache``: bounded, least recently used first out, keys compared by value.

Oracle: the order of uses written out by hand.
"""

from toolkit.cache import Cache, Key


def test_the_least_recently_used_entry_goes_first_and_a_lookup_counts_as_a_use():
    cache: Cache[int] = Cache(3)
    for name in "abc":
        cache.put(Key((name,)), ord(name))
    assert cache.get(Key(("a",))) == ord("a")  # now b is the oldest
    cache.put(Key(("d",)), ord("d"))
    assert cache.get(Key(("b",))) is None
    assert [cache.get(Key((n,))) for n in "acd"] == [ord("a"), ord("c"), ord("d")]
    assert len(cache) == 3


def test_putting_an_existing_key_again_replaces_it_and_makes_it_the_newest():
    cache: Cache[str] = Cache(2)
    cache.put("x", "old")
    cache.put("y", "y")
    cache.put("x", "new")  # x is now newer than y
    cache.put("z", "z")
    assert (cache.get("x"), cache.get("y"), cache.get("z"), len(cache)) == ("new", None, "z", 2)


def test_equal_keys_built_apart_find_one_entry_and_make_is_called_once():
    cache: Cache[list] = Cache(4)
    made = []
    for _ in range(3):
        cache.get_or_make(Key(((1, 2), "s", Key(("inner",)))), lambda: made.append(1) or made)
    assert made == [1] and len(cache) == 1

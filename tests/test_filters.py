"""The filter layer (``toolkit.filters``): which leaves are differentiated, operands or arrays, and their names.

Oracles: the leaf kinds JAX itself differentiates (``jax.grad`` accepts exactly
the inexact leaves), hand-written expected trees, and the labels a user writes.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from toolkit import filters


@tk.struct
class GG:
    a: jax.Array
    b: jax.Array


LEAVES = [
    (1.5, True, True, False),
    (3, False, False, False),
    (True, False, False, False),
    (jnp.ones(2), True, True, True),
    (jnp.arange(3), False, True, True),
    (np.float32(2.0), True, True, True),
    (np.int64(2), False, True, True),
    (jnp.ones(2, jnp.bfloat16), True, True, True),
    (jnp.ones(2, jnp.float16), True, True, True),
    (jnp.array([1 + 2j]), True, True, True),
    (jax.random.key(0), False, True, True),
    ("text", False, False, False),
    (np.array(["a"]), False, True, True),
]


@pytest.mark.parametrize(("leaf", "inexact", "operand", "array"), LEAVES, ids=[repr(row[0])[:20] for row in LEAVES])
def test_leaf_kinds(leaf, inexact, operand, array):
    assert filters.is_inexact(leaf) is inexact
    assert filters.is_operand(leaf) is operand
    assert filters.is_array(leaf) is array


def test_inexact_is_what_jax_grad_accepts():
    """jax.grad differentiates a numeric leaf exactly when is_inexact says so (the independent oracle)."""

    def is_numeric(leaf):
        if isinstance(leaf, (bool, int, float)):
            return True
        return not jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) and np.dtype(leaf.dtype).kind in "biufcV"

    numeric = [row for row in LEAVES if not isinstance(row[0], str) and is_numeric(row[0])]
    assert len(numeric) == 10
    for leaf, inexact, _, _ in numeric:
        try:
            jax.grad(lambda x: jnp.sum(jnp.abs(x)).astype(jnp.float32))(leaf)
            accepted = True
        except TypeError:
            accepted = False
        assert accepted is inexact, leaf


def test_partition_and_combine_round_trip_with_none_placeholders():
    tree = {"w": jnp.ones(2), "n": 3, "g": GG(jnp.zeros(1), jnp.arange(2))}
    kept, rest = filters.partition(tree)
    assert kept["n"] is None and rest["w"] is None and kept["g"].b is None and rest["g"].a is None
    back = filters.combine(kept, rest)
    assert back["n"] == 3 and back["g"].b.dtype == jnp.int32
    np.testing.assert_array_equal(back["w"], tree["w"])


def test_split_never_puts_placeholders_in_user_nodes():
    class Strict(list):
        pass

    def unflatten(_, children):
        assert all(c is not None for c in children), "placeholder reached a user node"
        return Strict(children)

    jax.tree_util.register_pytree_node(Strict, lambda x: (list(x), None), unflatten)
    kept, how = filters.split(Strict([1.0, 2, jnp.ones(2)]))
    assert [type(k) for k in kept] == [float, type(jnp.ones(2))]
    rebuilt = how.rebuild([10.0, jnp.zeros(2)])
    assert isinstance(rebuilt, Strict) and rebuilt[0] == 10.0 and rebuilt[1] == 2
    np.testing.assert_array_equal(rebuilt[2], [0.0, 0.0])


def test_arguments_are_named_from_the_signature():
    def f(x, g, *rest, scale=1.0):
        return x

    call = filters.Arguments.of(f, (1.0, GG(jnp.ones(1), jnp.ones(1)), 2.0, {"k": 3.0}), {"scale": 2.0})
    labels = [label for label, _ in call.labelled_leaves()]
    assert labels == ["x", "g.a", "g.b", "rest[0]", "rest[1]['k']", "scale"]
    unnamed = filters.Arguments.of(print, (1.0, 2.0))  # a builtin without a Python signature
    assert [label for label, _ in unnamed.labelled_leaves()] == ["args[0]", "args[1]"]


@dataclasses.dataclass
class PlainData:
    w: jax.Array


class PlainClass:
    def __init__(self, w):
        self.w = w


@pytest.mark.parametrize("value", [PlainData(jnp.ones(2)), PlainClass(jnp.ones(2))], ids=["dataclass", "class"])
def test_opaque_objects_are_refused_with_the_fix(value):
    with pytest.raises(TypeError) as error:
        filters.refuse_opaque("tk.gradient", [("model", value)])
    message = str(error.value)
    assert "tk.gradient: model is a" in message and "@tk.struct" in message and type(value).__name__ in message


def test_passive_leaves_are_not_refused():
    filters.refuse_opaque("tk.gradient", [("a", 1), ("b", "s"), ("c", len), ("d", jnp.ones(1)), ("e", float)])

"""Tests for ``@tk.struct``: arithmetic, errors, static fields, nesting and JAX transformations."""

import dataclasses
import json
import operator
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import toolkit as tk
from tests.compiles import compiled_names


@tk.struct
class GG:
    a: jax.Array
    b: jax.Array
    label: str = tk.field(static=True, default="gg")


@tk.struct
class HH:
    a: jax.Array
    b: jax.Array


@tk.struct
class Outer:
    inner: GG
    items: tuple
    table: dict
    scale: float = tk.field(static=True, default=1.0)


def gg(seed=0, shape=(3, 3), label="gg"):
    ka, kb = jax.random.split(jax.random.key(seed))
    return GG(jax.random.uniform(ka, shape) + 0.5, jax.random.uniform(kb, shape) + 0.5, label)


def fields(x):
    return np.asarray(x.a), np.asarray(x.b)


BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]


@pytest.mark.parametrize("op", BINARY, ids=lambda op: op.__name__)
def test_struct_op_struct_is_fieldwise(op):
    x, y = gg(0), gg(1)
    out = op(x, y)
    assert isinstance(out, GG) and out.label == "gg"
    for got, a, b in zip(fields(out), fields(x), fields(y)):
        np.testing.assert_allclose(got, op(a, b), rtol=1e-6)


@pytest.mark.parametrize("op", BINARY, ids=lambda op: op.__name__)
@pytest.mark.parametrize(
    "other",
    [2.0, 3, np.float32(1.5), jnp.arange(1.0, 4.0), np.arange(1.0, 4.0), jnp.ones((3, 3))],
    ids=["float", "int", "numpy-scalar", "jax-row", "numpy-row", "jax-matrix"],
)
def test_struct_op_array_on_either_side(op, other):
    x = gg(0)
    left, right = op(x, other), op(other, x)
    assert isinstance(left, GG) and isinstance(right, GG)
    for got_left, got_right, field_value in zip(fields(left), fields(right), fields(x)):
        np.testing.assert_allclose(got_left, op(field_value, np.asarray(other)), rtol=1e-6)
        np.testing.assert_allclose(got_right, op(np.asarray(other), field_value), rtol=1e-6)


@pytest.mark.parametrize("op", [operator.neg, operator.pos, abs], ids=["neg", "pos", "abs"])
def test_unary_ops(op):
    x = gg(0) - 1.0
    out = op(x)
    assert isinstance(out, GG)
    for got, field_value in zip(fields(out), fields(x)):
        np.testing.assert_allclose(got, op(field_value))


def test_broadcasting_changes_shapes_like_numpy():
    x = GG(jnp.ones(3), jnp.ones((2, 3)))
    out = x * jnp.arange(3.0)
    assert out.a.shape == (3,) and out.b.shape == (2, 3)
    np.testing.assert_allclose(out.b, np.ones((2, 3)) * np.arange(3.0))


_SHAPES = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


@given(_SHAPES, _SHAPES)
def test_a_field_and_an_array_combine_exactly_when_numpy_broadcasts_their_shapes(field, other):
    x = HH(jnp.ones(field), jnp.ones(field))
    try:
        expected = np.broadcast_shapes(field, other)
    except ValueError:
        with pytest.raises(ValueError, match=r"^HH\.a: shapes .* do not broadcast$"):
            x * jnp.ones(other)
        return
    out = x * jnp.full(other, 2.0)
    assert out.a.shape == out.b.shape == expected
    np.testing.assert_array_equal(out.a, np.full(expected, 2.0))


def test_shapes_that_do_not_broadcast_name_the_field():
    with pytest.raises(ValueError, match=r"^GG\.a: shapes \(3, 3\) and \(4,\) do not broadcast$"):
        gg() * jnp.arange(4.0)
    with pytest.raises(ValueError, match=r"GG\.a: shapes \(3, 3\) and \(2,\) do not broadcast"):
        gg() + gg(shape=(2,))


def test_mixing_struct_types_is_a_type_error():
    x = gg()
    with pytest.raises(TypeError, match="GG \\+ HH.*same type"):
        x + HH(x.a, x.b)
    with pytest.raises(TypeError, match="HH \\* GG"):
        HH(x.a, x.b) * x


def test_unequal_static_fields_name_the_field():
    with pytest.raises(ValueError, match=r"GG\.label: static fields differ \('gg' vs 'other'\)"):
        gg(label="gg") - gg(label="other")


def test_unsupported_operand_falls_back_to_python_type_error():
    with pytest.raises(TypeError, match="unsupported operand"):
        gg() + "text"
    with pytest.raises(TypeError, match="unsupported operand"):
        gg() + [1.0, 2.0]


def test_nested_structs_do_arithmetic_recursively():
    x = Outer(gg(0), (jnp.ones(2), 2.0), {"k": jnp.arange(3.0)})
    y = Outer(gg(1), (jnp.full(2, 3.0), 5.0), {"k": jnp.ones(3)})
    out = x * y + 1
    assert isinstance(out, Outer) and isinstance(out.inner, GG)
    np.testing.assert_allclose(out.inner.a, x.inner.a * y.inner.a + 1, rtol=1e-6)
    np.testing.assert_allclose(out.items[0], np.full(2, 4.0))
    assert float(out.items[1]) == 11.0
    np.testing.assert_allclose(out.table["k"], np.arange(3.0) + 1)
    assert float(tk.tree.sum(x)) == pytest.approx(float(jnp.sum(x.inner.a) + jnp.sum(x.inner.b)) + 2 + 2 + 3)


def test_nested_errors_name_the_full_path():
    x = Outer(gg(0), (jnp.ones(2), 2.0), {"k": jnp.arange(3.0)})
    bad_inner = Outer(gg(0, label="other"), x.items, x.table)
    with pytest.raises(ValueError, match=r"Outer\.inner\.label: static fields differ"):
        x + bad_inner
    bad_items = Outer(x.inner, (jnp.ones(5), 2.0), x.table)
    with pytest.raises(ValueError, match=r"Outer\.items\[0\]: shapes \(2,\) and \(5,\) do not broadcast"):
        x + bad_items
    short_items = Outer(x.inner, (jnp.ones(2),), x.table)
    with pytest.raises(ValueError, match=r"Outer\.items: tree structures differ"):
        x + short_items
    with pytest.raises(ValueError, match=r"Outer\.inner\.a: shapes \(3, 3\) and \(2,\) do not broadcast"):
        x + jnp.ones(2)
    bad_table = Outer(x.inner, x.items, {"k": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"Outer\.table\['k'\]: shapes \(3,\) and \(2,\) do not broadcast"):
        x - bad_table


def test_static_fields_must_be_hashable_at_construction():
    with pytest.raises(TypeError, match=r"GG\.label: static fields must be hashable, got a list"):
        GG(jnp.ones(2), jnp.ones(2), ["not", "hashable"])
    with pytest.raises(TypeError, match=r"GG\.label: a static field cannot hold an array \(got f32\[2\]\)"):
        GG(jnp.ones(2), jnp.ones(2), jnp.ones(2))
    with pytest.raises(TypeError, match=r"GG\.label: a static field cannot hold an array"):
        GG(jnp.ones(2), jnp.ones(2), np.ones(2))


def test_strings_in_data_fields_are_refused():
    with pytest.raises(TypeError, match=r"GG\.b: a string cannot be a data field.*static=True"):
        GG(jnp.ones(2), "label")


def test_static_fields_are_structure_not_leaves():
    x = gg(label="mine")
    leaves, treedef = jax.tree.flatten(x)
    assert len(leaves) == 2 and leaves[0] is x.a and leaves[1] is x.b
    assert jax.tree.unflatten(treedef, leaves).label == "mine"
    assert jax.tree.structure(gg(label="a")) != jax.tree.structure(gg(label="b"))


def test_structs_are_frozen_and_replace_is_out_of_place():
    x = gg()
    with pytest.raises(dataclasses.FrozenInstanceError):
        x.a = jnp.zeros(3)
    before = np.asarray(x.a).copy()
    y = x.replace(a=jnp.zeros((3, 3)))
    np.testing.assert_array_equal(y.a, np.zeros((3, 3)))
    np.testing.assert_array_equal(x.a, before)
    assert y.b is x.b and y.label == x.label
    with pytest.raises(TypeError, match=r"GG\.replace: no field named 'c'; fields are a, b, label"):
        x.replace(c=1.0)
    with pytest.raises(TypeError, match="must be hashable"):
        x.replace(label=["x"])


def test_repr_is_short_and_readable():
    text = repr(GG(jnp.ones((3, 3)), jnp.arange(2.0)))
    assert text.startswith("GG(a=f32[3,3] [1.0 1.0 1.0 …], b=f32[2] [0.0 1.0], label='gg')")
    assert "a=f32[] 2.0" in repr(GG(jnp.array(2.0), jnp.array(1.0)))
    nested = repr(Outer(GG(jnp.ones(1), jnp.ones(1)), (jnp.ones(2), 2.0), {"k": 1}))
    assert (
        nested
        == "Outer(inner=GG(a=f32[1] [1.0], b=f32[1] [1.0], label='gg'), items=(f32[2] [1.0 1.0], 2.0), table={'k': 1}, scale=1.0)"
    )


def test_repr_shows_about_five_significant_digits():
    # f32 values as a gradient step leaves them: 16 digits of float32 noise would be shown by float()
    x = GG(jnp.float32(1.0187489986419678), jnp.array([0.1, 2 / 3, -1.25e-5, 123456.0], dtype=jnp.float32))
    assert repr(x) == "GG(a=f32[] 1.0187, b=f32[4] [0.1 0.66667 -1.25e-05 …], label='gg')"
    y = GG(np.float64(0.98123496770858765), np.array([np.nan, -np.inf, 1e20]))
    assert repr(y) == "GG(a=f64[] 0.98123, b=f64[3] [nan -inf 1e+20], label='gg')"
    z = GG(jnp.arange(3), jnp.array([True, False]))
    assert repr(z) == "GG(a=i32[3] [0 1 2], b=bool[2] [True False], label='gg')"
    w = GG(jnp.array(0.1, dtype=jnp.bfloat16), jnp.array([1 + 2j, 0.5 - 1 / 3 * 1j], dtype=jnp.complex64))
    # bfloat16 holds 0.100097656 for 0.1
    assert repr(w) == "GG(a=bf16[] 0.1001, b=c64[2] [1.0+2.0j 0.5-0.33333j], label='gg')"


def test_colour_struct_repr_after_a_gradient_step():
    from toolkit.colour import RGB

    step = RGB(jnp.float32(1.0187489986419678), jnp.float32(0.9812349677085876), jnp.float32(0.9655806422233582))
    assert repr(step) == "RGB(r=f32[] 1.0187, g=f32[] 0.98123, b=f32[] 0.96558)"


def test_repr_of_traced_struct_shows_shapes_only(capsys):
    @jax.jit
    def show(x):
        print(repr(x))
        return x.a

    show(GG(jnp.ones(3), jnp.ones(3)))
    assert "GG(a=f32[3](traced), b=f32[3](traced), label='gg')" in capsys.readouterr().out


def test_user_methods_win_over_generated_ones():
    @tk.struct
    class Named:
        x: jax.Array

        def __repr__(self):
            return "custom"

    assert repr(Named(jnp.ones(1))) == "custom"


class _Counter:
    calls = 0


@tk.struct
class Validated:
    """Validation that would break on tracers/placeholders if re-run during unflattening."""

    a: jax.Array
    b: jax.Array

    def __post_init__(self):
        _Counter.calls += 1
        if not isinstance(self.a, (jax.Array, np.ndarray)) or np.shape(self.a) != np.shape(self.b):
            raise ValueError("a and b must be arrays of one shape")


@tk.struct
class FromSize:
    """A custom __init__ with a different signature from the fields (equinox#120)."""

    w: jax.Array
    n: int = tk.field(static=True)

    def __init__(self, n):
        object.__setattr__(self, "w", jnp.arange(float(n)))
        object.__setattr__(self, "n", n)


def test_unflattening_never_reruns_user_init_or_post_init():
    x = Validated(jnp.ones(3), jnp.ones(3))
    batch = Validated(jnp.ones((4, 3)), jnp.ones((4, 3)))
    before = _Counter.calls
    f = lambda v: tk.tree.sum(v * v)
    assert float(jax.jit(f)(x)) == 6.0
    grad = jax.grad(f)(x)
    assert type(grad) is Validated
    np.testing.assert_array_equal(grad.a, np.full(3, 2.0))
    np.testing.assert_array_equal(grad.b, np.full(3, 2.0))
    np.testing.assert_array_equal(jax.vmap(f)(batch), np.full(4, 6.0))
    nones = jax.tree.map(lambda leaf: None, x)  # placeholders of the wrong kind
    assert type(nones) is Validated and nones.a is None and nones.b is None
    treedef = jax.tree.structure(x)
    spec = jax.tree.unflatten(treedef, [0, None])  # an in_axes spec: leaves are 0 and None
    only_a_batched = jax.tree.unflatten(treedef, [jnp.ones((2, 3)), jnp.ones(3)])
    out = jax.vmap(lambda v: v.a + v.b, in_axes=(spec,))(only_a_batched)
    np.testing.assert_array_equal(out, np.full((2, 3), 2.0))
    assert _Counter.calls == before
    with pytest.raises(ValueError, match="one shape"):
        Validated(jnp.ones(3), jnp.ones(2))  # but user construction still validates

    y = FromSize(4)
    g = jax.grad(lambda v: tk.tree.sum(v * v))(y)
    assert isinstance(g, FromSize) and g.n == 4
    np.testing.assert_allclose(g.w, 2 * np.arange(4.0))


def test_jit_vmap_grad_over_structs():
    x = gg()
    doubled = jax.jit(lambda v: 2 * v)(x)
    assert isinstance(doubled, GG)
    np.testing.assert_allclose(doubled.a, 2 * np.asarray(x.a), rtol=1e-6)

    batched = GG(jnp.ones((5, 3)), jnp.arange(15.0).reshape(5, 3))
    sums = jax.vmap(tk.tree.sum)(batched)
    np.testing.assert_allclose(sums, 3 + np.arange(15.0).reshape(5, 3).sum(axis=1))

    g = jax.grad(lambda v: tk.tree.sum(v * v))(x)
    assert isinstance(g, GG) and g.label == "gg"
    np.testing.assert_allclose(g.a, 2 * np.asarray(x.a), rtol=1e-6)
    np.testing.assert_allclose(g.b, 2 * np.asarray(x.b), rtol=1e-6)

    jac = jax.jacrev(lambda s: GG(s * jnp.ones(2), s**2 * jnp.ones(2)))(3.0)
    assert isinstance(jac, GG)
    np.testing.assert_allclose(jac.b, [6.0, 6.0])


def test_static_fields_select_the_compiled_function():
    traces = []

    @jax.jit
    def scaled(v):
        traces.append(v.label)
        return v.a * len(v.label)

    assert float(scaled(GG(jnp.ones(()), jnp.ones(()), "ab"))) == 2.0
    assert float(scaled(GG(jnp.ones(()), jnp.ones(()), "abc"))) == 3.0
    assert float(scaled(GG(2 * jnp.ones(()), jnp.ones(()), "ab"))) == 4.0
    assert traces == ["ab", "abc"]


def test_keyword_only_structs_and_is_struct():
    @tk.struct(kw_only=True)
    class K:
        x: jax.Array

    with pytest.raises(TypeError, match="positional"):
        K(jnp.ones(1))
    assert tk.is_struct(K(x=jnp.ones(1))) and not tk.is_struct((1, 2)) and not tk.is_struct(K)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False, width=32)  # XLA flushes subnormals
TINY = np.finfo(np.float32).tiny
away_from_zero = finite.filter(lambda v: abs(v) > 1e-2)


def pair(elements):
    return st.tuples(arrays(np.float32, (2, 3), elements=elements), arrays(np.float32, (2, 3), elements=elements))


@pytest.mark.parametrize("op", BINARY[:3], ids=lambda op: op.__name__)
@given(xs=pair(finite), ys=pair(finite), scalar=finite)
def test_arithmetic_matches_numpy_float32(op, xs, ys, scalar):
    # NumPy in float32 is the oracle: + - * round once, as XLA does (which
    # flushes results below the smallest normal float to zero).
    x, y = GG(*map(jnp.asarray, xs)), GG(*map(jnp.asarray, ys))
    scalar = np.float32(scalar)
    for got, want in [
        (op(x, y), [op(a, b) for a, b in zip(xs, ys)]),
        (op(x, scalar), [op(a, scalar) for a in xs]),
        (op(scalar, x), [op(scalar, a) for a in xs]),
    ]:
        assert type(got) is GG
        np.testing.assert_allclose(got.a, want[0], rtol=0, atol=TINY)
        np.testing.assert_allclose(got.b, want[1], rtol=0, atol=TINY)


@given(xs=pair(finite), ys=pair(away_from_zero))
def test_division_and_negation_match_numpy_float32(xs, ys):
    x, y = GG(*map(jnp.asarray, xs)), GG(*map(jnp.asarray, ys))
    quotient, negated, absolute = x / y, -x, abs(y)
    for name, a, b in zip("ab", xs, ys):
        np.testing.assert_allclose(getattr(quotient, name), a / b, rtol=1e-6, atol=TINY)
        np.testing.assert_array_equal(getattr(negated, name), -a)
        np.testing.assert_array_equal(getattr(absolute, name), np.abs(b))


def test_subclasses_keep_inherited_user_methods():
    @tk.struct
    class Base:
        x: jax.Array

        def __repr__(self):
            return "custom"

        def __neg__(self):
            return "negated"

    @tk.struct
    class Derived(Base):
        y: jax.Array

    z = Derived(jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
    assert repr(z) == "custom" and -z == "negated"
    total = z + z  # what neither class wrote is still generated
    assert type(total) is Derived
    np.testing.assert_array_equal(total.x, [2.0, 4.0])
    np.testing.assert_array_equal(total.y, [6.0, 8.0])


# --- subclasses are structs, decorated or not ------------------------------------


class Sub(GG):  # no @tk.struct: inherits a, b and the static label
    pass


class Wider(HH):  # no @tk.struct, and a new field
    c: jax.Array


class Counted(Validated):  # no @tk.struct; Validated.__post_init__ counts its calls
    pass


def test_an_undecorated_subclass_is_a_pytree_of_its_fields():
    x = Sub(jnp.ones(2), jnp.zeros(2), "mine")
    leaves, treedef = jax.tree.flatten(x)
    assert len(leaves) == 2 and leaves[0] is x.a and leaves[1] is x.b
    rebuilt = jax.tree.unflatten(treedef, [jnp.full(2, 5.0), jnp.full(2, 6.0)])
    assert type(rebuilt) is Sub and rebuilt.label == "mine"
    np.testing.assert_array_equal(rebuilt.b, [6.0, 6.0])

    w = Wider(jnp.array(1.0), jnp.array(2.0), jnp.array(3.0))
    assert [f.name for f in dataclasses.fields(w)] == ["a", "b", "c"]
    assert [float(leaf) for leaf in jax.tree.leaves(w)] == [1.0, 2.0, 3.0]
    assert [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(w)] == [".a", ".b", ".c"]
    assert tk.is_struct(w) and repr(w) == "Wider(a=f32[] 1.0, b=f32[] 2.0, c=f32[] 3.0)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.c = jnp.zeros(())  # type: ignore[misc]


def test_gradient_of_an_undecorated_subclass_is_that_subclass():
    # f = sum(a² b + sin c): ∂a = 2ab, ∂b = a², ∂c = cos c
    f = lambda s: tk.tree.sum(s.a**2 * s.b + jnp.sin(s.c))
    a, b, c = np.array([1.0, 2.0]), np.array([3.0, -1.0]), np.array([0.5, 2.0])
    w = Wider(jnp.asarray(a), jnp.asarray(b), jnp.asarray(c))
    (g,) = tk.gradient(f, w)
    for grad in (g, jax.grad(f)(w)):
        assert type(grad) is Wider
        np.testing.assert_allclose(grad.a, 2 * a * b, rtol=1e-6)
        np.testing.assert_allclose(grad.b, a**2, rtol=1e-6)
        np.testing.assert_allclose(grad.c, np.cos(c), rtol=1e-6)

    (g,) = tk.gradient(lambda s: tk.tree.sum(s * s), Sub(jnp.asarray(a), jnp.asarray(b), "mine"))
    assert type(g) is Sub and g.label == "mine"
    np.testing.assert_allclose(g.a, 2 * a, rtol=1e-6)
    np.testing.assert_allclose(g.b, 2 * b, rtol=1e-6)


def test_jit_and_vmap_rebuild_an_undecorated_subclass_without_its_init():
    x = Counted(jnp.arange(3.0), jnp.ones(3))
    batch = Counted(jnp.arange(6.0).reshape(2, 3), jnp.ones((2, 3)))
    before = _Counter.calls
    doubled = jax.jit(lambda v: 2 * v)(x)
    shifted = jax.vmap(lambda v: v + v.a[0])(batch)  # each row shifted by its own first element
    assert _Counter.calls == before
    assert type(doubled) is Counted and type(shifted) is Counted
    np.testing.assert_array_equal(doubled.a, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(shifted.a, [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]])
    np.testing.assert_array_equal(shifted.b, [[1.0, 1.0, 1.0], [4.0, 4.0, 4.0]])
    with pytest.raises(ValueError, match="one shape"):
        Counted(jnp.ones(3), jnp.ones(2))  # constructing one yourself still validates
    assert _Counter.calls == before + 1


@tk.struct
class _Slotted:
    __slots__ = ("w", "b")  # no __dict__: rebuilt through the slots
    w: jax.Array
    b: jax.Array


@tk.struct
class _Plain:
    w: jax.Array
    b: jax.Array
    label: str = tk.field(static=True, default="a")


@pytest.mark.parametrize("cls", [_Slotted, _Plain], ids=["slots", "dict"])
def test_jit_and_tree_map_rebuild_structs_with_and_without_slots(cls):
    x = cls(jnp.array([1.0, 2.0]), jnp.array(-1.0))
    for rebuilt in (jax.jit(lambda v: v * 3)(x), jax.tree.map(lambda a: a * 3, x)):
        assert type(rebuilt) is cls and hasattr(rebuilt, "__dict__") is (cls is _Plain)
        np.testing.assert_array_equal(rebuilt.w, [3.0, 6.0])
        np.testing.assert_array_equal(rebuilt.b, -3.0)
        assert cls is _Slotted or rebuilt.label == "a"
        with pytest.raises(dataclasses.FrozenInstanceError):
            rebuilt.w = jnp.zeros(2)  # still frozen
        assert repr(rebuilt).startswith(cls.__name__ + "(w=")


def test_base_and_subclass_do_not_mix_in_arithmetic():
    x = gg()
    sub = Sub(x.a, x.b)
    with pytest.raises(TypeError, match=r"^GG: cannot compute GG \+ Sub; .*same type"):
        x + sub
    with pytest.raises(TypeError, match=r"^Sub: cannot compute Sub \* GG; .*same type"):
        sub * x
    total = sub + sub
    assert type(total) is Sub
    np.testing.assert_allclose(total.a, 2 * np.asarray(x.a), rtol=1e-6)


def test_undecorated_subclass_checks_its_static_fields():
    with pytest.raises(TypeError, match=r"Sub\.label: static fields must be hashable, got a list"):
        Sub(jnp.ones(2), jnp.ones(2), ["x"])


def test_decorated_subclasses_are_made_structs_once():
    @tk.struct
    class Plain(GG):
        c: jax.Array = 0.0  # type: ignore[assignment]

    @tk.struct(kw_only=True)
    class Keyword(GG):  # a field without a default after GG's defaulted label
        c: jax.Array

    for cls in (Plain, Keyword):
        static = {f.name: bool(f.metadata.get("toolkit.static")) for f in dataclasses.fields(cls)}
        assert static == {"a": False, "b": False, "label": True, "c": False}
    x = Keyword(a=jnp.ones(2), b=jnp.ones(2), c=jnp.full(2, 3.0))
    assert len(jax.tree.leaves(x)) == 3 and x.label == "gg"
    with pytest.raises(TypeError, match="positional"):
        Keyword(jnp.ones(2), jnp.ones(2), "gg", jnp.ones(2))  # type: ignore[misc]
    (g,) = tk.gradient(lambda s: tk.tree.sum(s.a * s.c), x)
    assert type(g) is Keyword
    np.testing.assert_array_equal(g.a, [3.0, 3.0])
    np.testing.assert_array_equal(g.c, [1.0, 1.0])
    assert tk.struct(GG) is GG  # decorating twice changes nothing
    assert [bool(f.metadata.get("toolkit.static")) for f in dataclasses.fields(GG)] == [False, False, True]


def test_subclasses_that_cannot_be_structs_as_written_say_to_decorate_them():
    class Ordered(GG):  # c has no default but follows GG's defaulted label
        c: jax.Array

    with pytest.raises(
        TypeError, match=r"Ordered subclasses the struct GG.*follows default.*@tk\.struct\(kw_only=True\)"
    ):
        Ordered(jnp.ones(1), jnp.ones(1), c=jnp.ones(1))  # type: ignore[call-arg]

    class Sized(FromSize):  # inherits FromSize's __init__(n), which cannot set `extra`
        extra: jax.Array

    with pytest.raises(TypeError, match=r"adds the field extra.*FromSize\.__init__.*Decorate it with @tk\.struct"):
        Sized(3)

    class SameFields(FromSize):  # nothing new: FromSize's own __init__ is kept
        pass

    x = SameFields(3)
    np.testing.assert_array_equal(x.w, [0.0, 1.0, 2.0])
    assert type(jax.tree.map(lambda w: w + 1, x)) is SameFields


def test_subclass_init_calling_super_is_validated_once_it_is_done():
    @tk.struct
    class Point:
        x: jax.Array

    class Doubled(Point):  # sets its own field after Point.__init__
        y: jax.Array

        def __init__(self, x):
            super().__init__(x)
            object.__setattr__(self, "y", 2 * x)

    d = Doubled(jnp.array([1.0, 2.0]))
    np.testing.assert_array_equal(d.y, [2.0, 4.0])
    (g,) = tk.gradient(lambda p: tk.tree.sum(p.x * p.y), d)
    assert type(g) is Doubled
    np.testing.assert_array_equal(g.x, [2.0, 4.0])
    np.testing.assert_array_equal(g.y, [1.0, 2.0])


def test_a_structs_own_init_subclass_still_runs():
    @tk.struct
    class Tagged:
        x: jax.Array

        def __init_subclass__(cls, tag="", **kwargs):  # does not call super()
            cls.tag = tag

    class Child(Tagged, tag="child"):
        y: jax.Array

    class Grandchild(Child, tag="grandchild"):
        pass

    assert Child.tag == "child" and Grandchild.tag == "grandchild"
    for cls in (Child, Grandchild):
        assert [float(leaf) for leaf in jax.tree.leaves(cls(jnp.array(1.0), jnp.array(2.0)))] == [1.0, 2.0]


# --- generated methods carry their names -----------------------------------------

GENERATED = [
    "replace", "__repr__", "__neg__", "__pos__", "__abs__",
    *(f"__{r}{name}__" for name in ("add", "sub", "mul", "truediv", "pow") for r in ("", "r")),
]  # fmt: skip


@pytest.mark.parametrize("cls", [GG, HH, Sub, Wider], ids=lambda cls: cls.__name__)
def test_generated_methods_are_named_for_their_class(cls):
    for name in GENERATED:
        method = cls.__dict__[name]
        assert (method.__name__, method.__qualname__) == (name, f"{cls.__name__}.{name}")
    assert GG.__add__ is not HH.__add__ and GG.__add__ is not Sub.__add__


# --- typing: dataclass_transform -------------------------------------------------


def test_struct_declares_dataclass_transform():
    # PEP 681's runtime record of what the decorator does, as type checkers read it
    # (Python 3.11 keeps frozen_default among "kwargs", 3.12 as a key of its own).
    spec = tk.struct.__dataclass_transform__  # type: ignore[attr-defined]
    assert spec["field_specifiers"] == (tk.field,) and spec["kw_only_default"] is False
    assert spec.get("frozen_default", spec.get("kwargs", {}).get("frozen_default")) is True


TYPED_USE = """
import toolkit as tk

@tk.struct
class GG:
    a: float
    b: float
    label: str = tk.field(static=True, default="gg")

@tk.struct(kw_only=True)
class K:
    x: float

g = GG(1.0, 2.0)
GG(a=1.0, b=2.0, label="x")
K(x=1.0)
first: float = g.a + 1.0
GG(a=1.0, c=2.0)
K(1.0)
g.a = 3.0
"""


def test_pyright_sees_the_fields_and_the_generated_init(tmp_path):
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which("pyright")
    assert pyright is not None, "pyright comes with the test extra: pip install -e '.[test]'"
    (tmp_path / "use.py").write_text(TYPED_USE)
    run = subprocess.run(
        [pyright, "--outputjson", "--pythonpath", sys.executable, str(tmp_path / "use.py")],
        check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert run.stdout.strip().startswith("{"), f"pyright did not run: {run.stderr[-300:]}"
    report = json.loads(run.stdout)
    errors = {(d["range"]["start"]["line"], d["message"].split("\n")[0]) for d in report["generalDiagnostics"]}
    line = TYPED_USE.splitlines().index  # pyright counts lines from 0, as this does
    assert errors == {  # the last three lines only; a checker blind to @tk.struct reports none
        (line("GG(a=1.0, c=2.0)"), 'Argument missing for parameter "b"'),
        (line("GG(a=1.0, c=2.0)"), 'No parameter named "c"'),
        (line("K(1.0)"), "Expected 0 positional arguments"),
        (line("g.a = 3.0"), 'Cannot assign to attribute "a" for class "GG"'),
    }


def test_field_takes_the_dataclass_field_arguments():
    @tk.struct
    class Options:
        x: jax.Array = tk.field(kw_only=True)
        tags: tuple = tk.field(static=True, default_factory=tuple)
        hidden: int = tk.field(static=True, init=False, default=7)

    o = Options(x=jnp.ones(1))
    assert (o.tags, o.hidden) == ((), 7) and len(jax.tree.leaves(o)) == 1
    with pytest.raises(TypeError, match="keyword-only argument: 'x'"):
        Options(jnp.ones(1))  # type: ignore[misc]


@tk.struct
class _Three:
    a: jax.Array
    b: jax.Array
    c: jax.Array
    tag: str = tk.field(static=True, default="t")


@pytest.mark.parametrize("symbol", ["+", "-", "*", "/"])
def test_arithmetic_on_concrete_fields_equals_the_field_by_field_jnp_operation(symbol):
    op = {"+": jnp.add, "-": jnp.subtract, "*": jnp.multiply, "/": jnp.divide}[symbol]
    x = _Three(jnp.array([1.0, 2.0]), jnp.asarray(3.0), jnp.array([[1, 2]], jnp.int32))  # weak f32, f32, int
    y = _Three(jnp.array([0.5, -1.0]), jnp.asarray(2.0), jnp.array([[3, 4]], jnp.int32))
    pick = {"+": lambda p, q: p + q, "-": lambda p, q: p - q, "*": lambda p, q: p * q, "/": lambda p, q: p / q}[symbol]
    for other in (0.5, 2, jnp.float32(4.0), jnp.array([1.0, 3.0]), y):
        forward, backward = pick(x, other), None if tk.is_struct(other) else pick(other, x)
        for f in ("a", "b", "c"):
            o = getattr(other, f) if tk.is_struct(other) else other
            want = op(getattr(x, f), o)
            got = getattr(forward, f)
            assert got.dtype == want.dtype and got.weak_type == want.weak_type and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            if backward is not None:
                want_r = op(o, getattr(x, f))
                got_r = getattr(backward, f)
                assert got_r.dtype == want_r.dtype and got_r.weak_type == want_r.weak_type
                np.testing.assert_array_equal(got_r, want_r)
        assert forward.tag == "t"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_structs_of_numbers_and_of_arrays_combine_in_one_call_as_the_field_by_field_jnp_operation(dtype):
    # RGB(1.0, 1.0, 1.0) - eta * g: the seed's colour starts with Python numbers, its gradient has arrays.
    numbers = _Three(1.0, 2, jnp.array([0.5, 1.5], dtype))  # a float, an int, an array
    arrays = _Three(jnp.array([0.25, -3.0], dtype), jnp.asarray(0.1, dtype), 2.0)
    names = compiled_names(lambda: [numbers - arrays, arrays * numbers])  # one program each
    assert len(names) == 2, names
    for symbol, op in (("-", jnp.subtract), ("*", jnp.multiply), ("/", jnp.divide)):
        pick = {"-": lambda p, q: p - q, "*": lambda p, q: p * q, "/": lambda p, q: p / q}[symbol]
        for x, y in ((numbers, arrays), (arrays, numbers)):
            got = pick(x, y)
            for f in ("a", "b", "c"):
                want = op(getattr(x, f), getattr(y, f))
                assert got_is_want(getattr(got, f), want), (symbol, f)
    other = _Three(3.0, 4, jnp.array([2.0, 4.0], dtype))  # other numbers: the same program
    assert not compiled_names(lambda: other - arrays)
    plain = _Three(1.0, 2.0, 3.0) - _Three(0.5, 1.0, 1.5)  # numbers only: numbers, as field-by-field Python
    assert [type(plain.a), type(plain.b), type(plain.c)] == [float, float, float] and plain.c == 1.5
    ints = _Three(jnp.array([1, 2]), 2.0, 1.0) - _Three(0.5, jnp.array([1, 3]), jnp.array(1, jnp.int8))
    assert got_is_want(ints.a, jnp.subtract(jnp.array([1, 2]), 0.5))  # an integer array and a number: jnp's rule
    assert got_is_want(ints.b, jnp.subtract(2.0, jnp.array([1, 3])))


def got_is_want(got, want) -> bool:
    """Same dtype, weak type, shape and bits (NaN where NaN)."""
    got, want = jnp.asarray(got), jnp.asarray(want)
    same = got.dtype == want.dtype and got.weak_type == want.weak_type and got.shape == want.shape
    return bool(same and np.array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64), equal_nan=True))


def test_arithmetic_under_jit_is_traced_field_by_field():
    x = _Three(jnp.ones(2), jnp.ones(()), jnp.ones(3))
    jaxpr = str(jax.make_jaxpr(lambda s: s * 2.0 - s)(x))
    assert "pjit" not in jaxpr and jaxpr.count("mul") == 3 and jaxpr.count("sub") == 3, jaxpr

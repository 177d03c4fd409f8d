"""Tests for ``@tk.struct``: arithmetic, errors, static fields, nesting and JAX transformations."""

import dataclasses
import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import toolkit as tk


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
    assert len(leaves) == 2
    assert jax.tree.unflatten(treedef, leaves).label == "mine"
    assert jax.tree.structure(gg(label="a")) != jax.tree.structure(gg(label="b"))


def test_structs_are_frozen_and_replace_is_out_of_place():
    x = gg()
    with pytest.raises(dataclasses.FrozenInstanceError):
        x.a = jnp.zeros(3)
    y = x.replace(a=jnp.zeros((3, 3)))
    assert float(jnp.sum(y.a)) == 0.0 and float(jnp.sum(x.a)) > 0
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
    assert nested == "Outer(inner=GG(a=f32[1] [1.0], b=f32[1] [1.0], label='gg'), items=(f32[2] [1.0 1.0], 2.0), table={'k': 1}, scale=1.0)"


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
    f = lambda v: tk.tree.sum(v * v)  # noqa: E731
    jax.jit(f)(x)
    jax.grad(f)(x)
    jax.vmap(f)(batch)
    jax.tree.map(lambda leaf: None, x)  # placeholders of the wrong kind
    treedef = jax.tree.structure(x)
    spec = jax.tree.unflatten(treedef, [0, None])  # an in_axes spec: leaves are 0 and None
    only_a_batched = jax.tree.unflatten(treedef, [jnp.ones((2, 3)), jnp.ones(3)])
    out = jax.vmap(lambda v: v.a + v.b, in_axes=(spec,))(only_a_batched)
    assert out.shape == (2, 3)
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

    with pytest.raises(TypeError):
        K(jnp.ones(1))
    assert tk.is_struct(K(x=jnp.ones(1))) and not tk.is_struct((1, 2)) and not tk.is_struct(K)


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
away_from_zero = finite.filter(lambda v: abs(v) > 1e-2)


def pair(elements):
    return st.tuples(arrays(np.float32, (2, 3), elements=elements), arrays(np.float32, (2, 3), elements=elements))


@given(pair(finite), pair(finite))
def test_addition_and_subtraction_undo_each_other(xs, ys):
    x, y = GG(*map(jnp.asarray, xs)), GG(*map(jnp.asarray, ys))
    assert bool(tk.tree.isapprox((x + y) - y, x, atol=1e-3))


@given(pair(finite))
def test_doubling_is_adding_to_itself(xs):
    x = GG(*map(jnp.asarray, xs))
    assert tk.tree.isapprox(2 * x, x + x, rtol=0.0) and tk.tree.isapprox(x * 2, 2 * x, rtol=0.0)
    assert tk.tree.isapprox(-(-x), x, rtol=0.0) and tk.tree.isapprox(x * 1, x, rtol=0.0)


@given(pair(finite), pair(away_from_zero))
def test_division_undoes_multiplication(xs, ys):
    x, y = GG(*map(jnp.asarray, xs)), GG(*map(jnp.asarray, ys))
    assert bool(tk.tree.isapprox((x * y) / y, x, atol=1e-3))


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

    z = Derived(jnp.ones(1), jnp.ones(1))
    assert repr(z) == "custom" and -z == "negated"
    assert isinstance(z + z, Derived)  # what neither class wrote is still generated

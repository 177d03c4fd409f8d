"""Tests for ``tk.tree``: maths over whole pytrees, against NumPy on the concatenated leaves."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk


@tk.struct
class Pair:
    x: jax.Array
    y: jax.Array
    name: str = tk.field(static=True, default="p")


def sample_tree(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "pair": Pair(jnp.asarray(rng.normal(size=(2, 3)), jnp.float32), jnp.asarray(rng.normal(size=4), jnp.float32)),
        "list": [jnp.asarray(rng.normal(size=()), jnp.float32), 1.5],
        "count": jnp.array([1, 2, 3]),
    }


def flat(tree):
    """The oracle's view: every leaf's elements concatenated, in float64."""
    return np.concatenate([np.ravel(np.asarray(leaf, dtype=np.float64)) for leaf in jax.tree.leaves(tree)])


def test_zero_keeps_structure_shapes_and_dtypes():
    tree = sample_tree()
    z = tk.zero(tree)
    assert jax.tree.structure(z) == jax.tree.structure(tree)
    for leaf, zero_leaf in zip(jax.tree.leaves(tree), jax.tree.leaves(z), strict=True):
        assert np.shape(zero_leaf) == np.shape(leaf)
        assert not np.any(np.asarray(zero_leaf))
    assert z["count"].dtype == tree["count"].dtype and z["pair"].x.dtype == jnp.float32
    assert tk.zero is tk.tree.zero


def test_sum_mean_size_match_numpy_on_all_elements():
    tree = sample_tree()
    values = flat(tree)
    assert tk.tree.size(tree) == values.size == 6 + 4 + 1 + 1 + 3
    np.testing.assert_allclose(float(tk.tree.sum(tree)), values.sum(), rtol=1e-5)
    np.testing.assert_allclose(float(tk.tree.mean(tree)), values.mean(), rtol=1e-5)
    assert float(tk.tree.sum({})) == 0.0 and tk.tree.size({}) == 0
    assert float(tk.tree.sum([True, jnp.array([True, False])])) == 2  # booleans count as 0/1
    with pytest.raises(ValueError, match="no elements"):
        tk.tree.mean({})


def test_dot_and_norms_match_numpy():
    a, b = sample_tree(0), sample_tree(1)
    np.testing.assert_allclose(float(tk.tree.dot(a, b)), flat(a) @ flat(b), rtol=1e-5)
    for p, expected in [
        (1, np.abs(flat(a)).sum()),
        (2, np.linalg.norm(flat(a))),
        (3, np.linalg.norm(flat(a), 3)),
        (math.inf, np.abs(flat(a)).max()),
    ]:
        np.testing.assert_allclose(float(tk.tree.norm(a, p)), expected, rtol=1e-5)
    complex_tree = (jnp.array([1 + 2j, 3 - 1j]),)
    assert complex(tk.tree.dot(complex_tree, complex_tree)) == pytest.approx(15.0)  # conjugates the first argument
    with pytest.raises(ValueError, match="p must be >= 1"):
        tk.tree.norm(a, 0.5)


def test_norm_has_zero_gradient_at_the_zero_tree():
    (g,) = tk.gradient(tk.tree.norm, Pair(jnp.zeros(3), jnp.zeros(2)))
    assert isinstance(g, Pair)
    assert all(np.all(np.asarray(leaf) == 0) for leaf in jax.tree.leaves(g))
    (g,) = tk.gradient(tk.tree.norm, Pair(jnp.array([3.0, 0, 0]), jnp.array([0.0, 4.0])))
    np.testing.assert_allclose(g.x, [0.6, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(g.y, [0, 0.8], rtol=1e-6)


def test_mismatched_trees_are_clear_errors():
    a = sample_tree()
    with pytest.raises(ValueError, match="tk.tree.dot: tree structures differ"):
        tk.tree.dot(a, {"pair": a["pair"]})
    b = {**a, "count": jnp.array([1, 2])}
    with pytest.raises(ValueError, match=r"tk.tree.isapprox: shapes differ at \['count'\]: \(3,\) vs \(2,\)"):
        tk.tree.isapprox(a, b)
    with pytest.raises(ValueError, match="tk.tree.map: argument 2 has a different structure"):
        tk.tree.map(jnp.add, (1.0, 2.0), (1.0,))


def test_non_numeric_leaves_are_named():
    with pytest.raises(TypeError, match=r"tk.tree.sum: the leaf at \['name'\] is a str.*static"):
        tk.tree.sum({"x": jnp.ones(2), "name": "label"})
    with pytest.raises(TypeError, match=r"tk.tree.size: the leaf at \[1\] is a object"):
        tk.tree.size([1.0, object()])


def test_isapprox_follows_julia_default_rtol():
    rtol32 = math.sqrt(np.finfo(np.float32).eps)
    x = jnp.array([3.0, 4.0])  # norm 5
    near = x + jnp.array([0.0, 0.9 * rtol32 * 5])
    far = x + jnp.array([0.0, 1.2 * rtol32 * 5])
    assert bool(tk.tree.isapprox(x, near)) and not bool(tk.tree.isapprox(x, far))
    assert bool(tk.tree.isapprox(x, far, rtol=2 * rtol32))
    # An explicit atol switches the default rtol off, as in Julia.
    assert not bool(tk.tree.isapprox(x, near, atol=1e-12))
    assert bool(tk.tree.isapprox(x, far, atol=1e-2))
    # Leaves are compared one by one: a tiny leaf must match on its own scale.
    assert not bool(tk.tree.isapprox((jnp.ones(3), jnp.zeros(2)), (jnp.ones(3), jnp.full(2, 1e-6))))


def test_isapprox_in_float64_uses_float64_tolerance(x64):
    x = jnp.array([1.0, 2.0], dtype=jnp.float64)
    assert not bool(tk.tree.isapprox(x, x * (1 + 1e-6)))
    assert bool(tk.tree.isapprox(x, x * (1 + 1e-9)))


def test_isapprox_on_integers_nans_and_infinities():
    assert bool(tk.tree.isapprox(jnp.array([1, 2]), jnp.array([1, 2])))
    assert not bool(tk.tree.isapprox(jnp.array([100000000, 2]), jnp.array([100000001, 2])))
    nan = jnp.array([1.0, jnp.nan])
    assert not bool(tk.tree.isapprox(nan, nan))
    assert bool(tk.tree.isapprox(nan, nan, nans=True))
    inf = jnp.array([1.0, jnp.inf])
    assert bool(tk.tree.isapprox(inf, inf))
    assert not bool(tk.tree.isapprox(inf, -inf))
    assert not bool(tk.tree.isapprox(inf, jnp.array([1.0, 1e30])))


def isapprox_by_hand(x, y):
    """Julia's isapprox with the default rtol, leaf by leaf in float64 NumPy: ‖a - b‖ <= √eps·max(‖a‖, ‖b‖),
    eps that of the leaf's dtype (float32 here), exact equality for integer leaves."""
    results = []
    for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True):
        if not jnp.issubdtype(jnp.result_type(a), jnp.inexact):
            results.append(np.array_equal(a, b))
            continue
        a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
        rtol = math.sqrt(np.finfo(np.float32).eps)
        results.append(np.linalg.norm(a - b) <= rtol * max(np.linalg.norm(a), np.linalg.norm(b)))
    return all(results)


def test_tree_maths_work_under_jit_and_vmap():
    a, b = sample_tree(0), sample_tree(1)
    rtol32 = math.sqrt(np.finfo(np.float32).eps)
    x = np.asarray(a["pair"].x)
    nudge = np.zeros_like(x)
    nudge[0, 1] = np.linalg.norm(x) * rtol32
    near = {**a, "pair": a["pair"].replace(x=jnp.asarray(x + 0.8 * nudge))}  # within √eps of ‖x‖
    far = {**a, "pair": a["pair"].replace(x=jnp.asarray(x + 1.25 * nudge))}  # just beyond it
    other_count = {**a, "count": jnp.array([1, 2, 4])}  # integer leaves must be equal
    isapprox = jax.jit(tk.tree.isapprox)
    for y, expected in ((near, True), (far, False), (other_count, False), (b, False)):
        assert isapprox_by_hand(a, y) is expected  # the oracle itself tells these apart
        close = isapprox(a, y)
        assert close.dtype == jnp.bool_ and bool(close) is expected
    np.testing.assert_allclose(float(jax.jit(tk.tree.dot)(a, b)), flat(a) @ flat(b), rtol=1e-5)
    np.testing.assert_allclose(float(jax.jit(tk.tree.norm)(a)), np.linalg.norm(flat(a)), rtol=1e-5)
    batch = Pair(jnp.arange(6.0).reshape(2, 3), jnp.ones((2, 2)))
    np.testing.assert_allclose(jax.vmap(tk.tree.mean)(batch), [(0 + 1 + 2 + 2) / 5, (3 + 4 + 5 + 2) / 5])
    np.testing.assert_allclose(jax.jit(jax.vmap(tk.tree.sum))(batch), [0 + 1 + 2 + 2, 3 + 4 + 5 + 2])
    rows = [Pair(batch.x[i], batch.y[i]) for i in range(2)]
    np.testing.assert_allclose(jax.vmap(tk.tree.norm)(batch), [np.linalg.norm(flat(r)) for r in rows], rtol=1e-6)


def test_is_differentiable_partition_combine():
    cases = [
        (jnp.ones(2), True),
        (1.0, True),
        (1j, True),
        (np.float64(1.0), True),
        (jnp.ones(2, jnp.bfloat16), True),
        (1, False),
        (True, False),
        (jnp.arange(2), False),
        (jnp.array([True]), False),
        ("s", False),
        (None, False),
    ]
    for leaf, expected in cases:
        assert tk.tree.is_differentiable(leaf) is expected, leaf
    tree = {"w": jnp.ones(2), "n": 3, "p": Pair(jnp.ones(1), jnp.arange(2))}
    diff, rest = tk.tree.partition(tree)
    assert diff["n"] is None and rest["w"] is None and diff["p"].y is None and rest["p"].x is None
    assert diff["p"].name == "p"
    back = tk.tree.combine(diff, rest)
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    assert back["n"] == 3 and back["p"].y is tree["p"].y


def test_norm_of_integer_leaves_does_not_overflow():
    # int32 squares of 10^5 overflow (and once came back as a norm of 0); Julia's norm of Ints is a float.
    big = jnp.array([100000, 100000])
    np.testing.assert_allclose(float(tk.tree.norm(big)), np.linalg.norm([1e5, 1e5]), rtol=1e-6)
    np.testing.assert_allclose(float(tk.tree.norm(big, 3)), np.linalg.norm([1e5, 1e5], 3), rtol=1e-6)
    huge = jnp.array([2**30, 2**30])  # their sum overflows int32
    assert float(tk.tree.norm(huge, 1)) == 2.0**31
    assert float(tk.tree.norm((huge, jnp.array([True])), math.inf)) == 2.0**30


def test_integer_and_boolean_leaves_count_with_their_values_without_wrapping():
    """Python's own arithmetic is the oracle: 2**31 - 1 + 1 does not wrap, True + True is 2."""
    assert float(tk.tree.sum([2**31 - 1, 1])) == float((2**31 - 1) + 1)
    total = float(tk.tree.sum({"a": jnp.array([2**31 - 1, 2**31 - 1], jnp.int32)}))
    assert total == pytest.approx(2.0 * (2**31 - 1), rel=1e-7)  # float32 rounding, never a wrapped negative
    assert float(tk.tree.dot([True, True], [True, False])) == 1.0
    assert float(tk.tree.dot(jnp.array([True, True, True]), jnp.array([True, True, False]))) == 2.0
    assert float(tk.tree.mean([jnp.array([True, False]), 3])) == pytest.approx(4 / 3)
    assert jnp.issubdtype(tk.tree.sum([1, 2]).dtype, jnp.floating)


def test_integer_sums_are_exact_in_float64_with_x64(x64):
    big = 2**40 + 3
    assert int(tk.tree.sum([jnp.array(big, jnp.int64), 1])) == big + 1

"""Implicit parameters: Param boxes, Params, tk.gradient(f, ps) -> Grads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk


def test_gradient_of_a_closure_with_respect_to_the_boxes_it_reads():
    z = tk.Param(jnp.array([[1.0, 2.0], [3.0, 4.0]]))
    b = tk.Param(jnp.array([0.5, -1.0]))
    x = jnp.array([1.0, -2.0])
    ps = tk.Params([z, b])

    def loss(z, b):
        return jnp.sum(jnp.tanh(z @ x + b) ** 2)

    gs = tk.gradient(lambda: loss(z.value, b.value), ps)
    dz, db = tk.gradient(loss, z.value, b.value)  # the explicit form is the oracle
    np.testing.assert_array_equal(gs[z], dz)
    np.testing.assert_array_equal(gs[b], db)
    assert isinstance(gs, tk.Grads) and list(gs) == [z, b] and len(gs) == 2


def test_boxes_keep_their_values_even_when_the_closure_raises():
    z = tk.Param(jnp.array(2.0))
    ps = tk.Params([z])
    tk.gradient(lambda: z.value**2, ps)
    assert float(z.value) == 2.0

    def failing():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        tk.gradient(failing, ps)
    assert float(z.value) == 2.0 and not isinstance(z.value, jax.core.Tracer)


def test_boxes_without_floats_get_none_and_struct_values_get_structs():
    @tk.struct
    class Affine:
        w: jax.Array
        n: int

    s = tk.Param(Affine(jnp.array([1.0, 2.0]), 3))
    k = tk.Param(4)
    gs = tk.gradient(lambda: jnp.sum(s.value.w**2) * s.value.n * k.value, tk.Params([s, k]))
    assert gs[k] is None
    assert isinstance(gs[s], Affine) and gs[s].n is None
    np.testing.assert_allclose(gs[s].w, [24.0, 48.0])


def test_gradient_with_params_works_inside_jit():
    z = tk.Param(jnp.array([1.0, 2.0]))
    ps = tk.Params([z])

    @jax.jit
    def grad_at(x):
        return tk.gradient(lambda: jnp.sum(z.value * x) ** 2, ps)[z]

    x = jnp.array([3.0, -1.0])
    np.testing.assert_allclose(grad_at(x), 2 * (1 * 3 - 2) * x)


def test_params_collection():
    a, b = tk.Param(jnp.ones(2)), tk.Param(jnp.zeros(1))
    ps = tk.Params([a, b, a])
    assert len(ps) == 2 and list(ps) == [a, b] and ps[1] is b
    assert a in ps and tk.Param(jnp.ones(2)) not in ps
    ps.append(tk.Param(1.0))
    assert len(ps) == 3
    assert "Param(f32[2]" in repr(ps)
    out = ps.call_with((jnp.full(2, 5.0), jnp.zeros(1), 2.0), lambda: a.value.sum() * ps[2].value)
    assert float(out) == 20.0 and float(a.value.sum()) == 2.0


def test_mistakes_are_explained():
    z = tk.Param(jnp.ones((3, 3)))
    with pytest.raises(TypeError, match=r"read its value first.*z.value @ x"):
        z @ jnp.ones(3)
    with pytest.raises(TypeError, match=r"z.value \* x"):
        jnp.ones(3) * z
    with pytest.raises(TypeError, match="holds tk.Param boxes, got a ArrayImpl"):
        tk.Params([jnp.ones(3)])
    gs = tk.gradient(lambda: jnp.sum(z.value), tk.Params([z]))
    with pytest.raises(KeyError, match="not one of the Params"):
        gs[tk.Param(1.0)]
    with pytest.raises(ValueError, match="got 1 values for 2 boxes"):
        tk.Params([z, tk.Param(1.0)]).assign([1.0])


def test_seed_loop_in_flux_form_converges():
    # The seed's first loop, implicit style: gradient(() -> loss(x), ps); update!(opt, ps, gs).
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    z = tk.Param(jax.random.uniform(k1, (3, 3)))
    z_target = jax.random.uniform(k2, (3, 3))
    ps, opt = tk.Params([z]), tk.Momentum(0.1)
    loss = jax.jit(lambda z, x: tk.mse(z @ x, z_target @ x))
    start = float(tk.tree.norm(z.value - z_target))
    for x in np.asarray(jax.random.uniform(k3, (100, 3))):  # NumPy rows: iterating a jax array compiles
        gs = tk.gradient(lambda: loss(z.value, x), ps)
        tk.update_(opt, ps, gs)
    assert float(tk.tree.norm(z.value - z_target)) < 0.05 * start


def test_grads_keep_the_boxes_they_were_taken_with():
    z = tk.Param(jnp.array([1.0, 2.0]))
    ps = tk.Params([z])
    gs = tk.gradient(lambda: jnp.sum(z.value**2), ps)
    w = tk.Param(jnp.ones(3))
    ps.append(w)  # after the gradient was taken: w has no gradient in gs
    assert len(gs) == 1 and list(gs) == [z] and w not in gs
    with pytest.raises(KeyError, match="not one of the Params this gradient was taken with"):
        gs[w]


def test_grads_repr_shows_each_box_and_its_gradient():
    @tk.struct
    class Affine:
        w: jax.Array
        n: int

    z = tk.Param(jnp.ones((3, 3)))
    d = tk.Param({"w": jnp.zeros(2), "b": jnp.float32(0.5)})
    s = tk.Param(Affine(jnp.array([1.0, 2.0]), 3))
    k = tk.Param(4)
    gs = tk.gradient(
        lambda: 1.5 * jnp.sum(z.value) + d.value["b"] ** 3 + jnp.sum(s.value.w**2) * s.value.n * k.value,
        tk.Params([z, d, s, k]),
    )
    # d/dz = 1.5 everywhere, d/db = 3 b^2 = 0.75, d/dw = 0, d/ds.w = 2 w n k = (24, 48); k holds no floats
    assert repr(gs) == (
        "Grads({Param(f32[3,3]): f32[3,3] [1.5 1.5 1.5 …], "
        "Param({'b': f32[], 'w': f32[2]}): {'b': f32[] 0.75, 'w': f32[2] [0.0 0.0]}, "
        "Param(Affine(w=f32[2], n=int)): Affine(w=f32[2] [24.0 48.0], n=None), "
        "Param(int): None})"
    )


def test_grads_repr_rounds_to_five_significant_digits():
    z = tk.Param(jnp.array([1.0, 2.0]))
    gs = tk.gradient(lambda: jnp.sum(z.value**2) / 3, tk.Params([z]))  # 2 z / 3 = (2/3, 4/3)
    assert repr(gs) == "Grads({Param(f32[2]): f32[2] [0.66667 1.3333]})"

"""tk.setup / tk.update on arrays, containers and structs; tk.update_ on implicit Params."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk


@tk.struct
class GG:
    a: jax.Array
    b: jax.Array


@tk.struct
class Layer:
    w: jax.Array
    n: int  # an integer data leaf: never updated
    mask: jax.Array  # a boolean array: never updated
    name: str = tk.field(static=True, default="dense")


def momentum_by_hand(x, grads, η=0.01, ρ=0.9):
    """Flux's Momentum on one array, written out: v = ρv - ηΔ; x += v."""
    v = np.zeros_like(x)
    for g in grads:
        v = ρ * v - η * g
        x = x + v
    return x


def test_update_on_a_struct_needs_no_per_type_code():
    # The seed's GG: Julia needed a hand-written update! for it; here the struct is just a pytree.
    a = GG(jnp.ones((3, 3)), jnp.zeros((3, 3)))
    target = GG(jnp.full((3, 3), 2.0), jnp.full((3, 3), -1.0))
    opt = tk.Momentum()
    state = tk.setup(opt, a)
    grads_seen = []
    for _ in range(5):
        (g,) = tk.gradient(lambda x: tk.tree.sum((x - target) * (x - target)) / 9, a)
        assert isinstance(g, GG)
        grads_seen.append(g)
        a, state = tk.update(opt, state, a, g)
    assert isinstance(a, GG)
    expected_a = momentum_by_hand(np.ones((3, 3), np.float32), [np.asarray(g.a) for g in grads_seen])
    expected_b = momentum_by_hand(np.zeros((3, 3), np.float32), [np.asarray(g.b) for g in grads_seen])
    np.testing.assert_allclose(a.a, expected_a, rtol=1e-6)
    np.testing.assert_allclose(a.b, expected_b, rtol=1e-6)


def test_non_float_leaves_are_untouched_and_their_none_gradients_accepted():
    layer = Layer(jnp.array([1.0, 2.0]), 3, jnp.array([True, False]), name="first")
    (g,) = tk.gradient(lambda p: jnp.sum(p.w**2) * p.n, layer)
    assert g.n is None and g.mask is None  # what tk.gradient gives for non-differentiable leaves
    opt = tk.Descent(0.1)
    new, _ = tk.update(opt, tk.setup(opt, layer), layer, g)
    np.testing.assert_allclose(new.w, [1.0 - 0.1 * 6, 2.0 - 0.1 * 12], rtol=1e-6)
    assert new.n == 3 and new.name == "first"
    np.testing.assert_array_equal(new.mask, [True, False])
    # Gradients given as arrays at non-float leaves are ignored, not applied.
    new2, _ = tk.update(opt, tk.setup(opt, layer), layer, g.replace(n=7, mask=jnp.array([1, 1])))
    assert new2.n == 3
    np.testing.assert_array_equal(new2.w, new.w)


def test_nested_containers():
    params = {"layers": [(jnp.ones(2), jnp.array(1.0)), (jnp.zeros(3), 4)], "scale": 2.0}
    grads = {"layers": [(jnp.full(2, 0.5), jnp.array(-1.0)), (jnp.ones(3), None)], "scale": 1.0}
    opt = tk.Descent(0.1)
    new, _ = tk.update(opt, tk.setup(opt, params), params, grads)
    np.testing.assert_allclose(new["layers"][0][0], [0.95, 0.95])
    np.testing.assert_allclose(new["layers"][0][1], 1.1)
    np.testing.assert_allclose(new["layers"][1][0], [-0.1, -0.1, -0.1])
    assert new["layers"][1][1] == 4
    np.testing.assert_allclose(new["scale"], 1.9)


def test_update_composes_with_jit_vmap_and_grad(x64):
    opt = tk.Momentum(0.1, 0.5)
    layer = Layer(jnp.array([1.0, -2.0]), 2, jnp.array([True, True]))

    def two_steps(layer):
        state = tk.setup(opt, layer)
        for _ in range(2):
            (g,) = tk.gradient(lambda p: jnp.sum(jnp.sin(p.w)) * p.n, layer)
            layer, state = tk.update(opt, state, layer, g)
        return layer

    jitted = jax.jit(two_steps)(layer)
    np.testing.assert_allclose(jitted.w, two_steps(layer).w, rtol=1e-12)
    batch = Layer(jnp.array([[1.0, -2.0], [0.5, 0.25]]), 2, jnp.array([[True, True], [True, False]]))
    batched = jax.vmap(two_steps, in_axes=(Layer(0, None, 0),))(batch)
    np.testing.assert_allclose(batched.w[1], two_steps(Layer(batch.w[1], 2, batch.mask[1])).w, rtol=1e-12)

    # Gradient through two optimiser steps, checked by central differences (float64).
    def final_loss(w):
        return jnp.sum(two_steps(layer.replace(w=w)).w ** 2)

    w = jnp.array([1.0, -2.0])
    grad = jax.grad(final_loss)(w)
    h = 1e-6
    fd = [(final_loss(w.at[i].add(h)) - final_loss(w.at[i].add(-h))) / (2 * h) for i in range(2)]
    np.testing.assert_allclose(grad, fd, rtol=1e-7)


def test_errors_name_the_problem():
    opt = tk.Descent()
    params = {"w": jnp.ones(3), "n": 2}
    state = tk.setup(opt, params)
    with pytest.raises(ValueError, match=r"gradient at \['w'\] is f32\[2\] but the parameter is f32\[3\]"):
        tk.update(opt, state, params, {"w": jnp.ones(2), "n": None})
    with pytest.raises(ValueError, match=r"gradient at \['w'\] is None"):
        tk.update(opt, state, params, {"w": None, "n": None})
    with pytest.raises(ValueError, match="grads must have the structure of params"):
        tk.update(opt, state, params, {"v": jnp.ones(3), "n": None})
    with pytest.raises(ValueError, match=r"no floating-point leaves.*i32\[3\]"):
        tk.setup(opt, {"i": jnp.arange(3)})
    with pytest.raises(TypeError, match=r"Did you mean Momentum\(\)"):
        tk.setup(tk.Momentum, params)
    with pytest.raises(TypeError, match="opt must be an optax.GradientTransformation"):
        tk.update("sgd", state, params, params)


def test_update_in_place_on_params_keeps_state_between_calls():
    z = tk.Param(jnp.array([1.0, 2.0]))
    k = tk.Param(3)  # a box with nothing to differentiate
    ps, opt = tk.Params([z, k]), tk.Momentum(0.1, 0.5)
    gradients = []
    for _ in range(3):
        gs = tk.gradient(lambda: jnp.sum(z.value**2) * k.value, ps)
        assert gs[k] is None
        gradients.append(np.asarray(gs[z]))
        tk.update_(opt, ps, gs)
    np.testing.assert_allclose(z.value, momentum_by_hand(np.array([1.0, 2.0], np.float32), gradients, 0.1, 0.5), rtol=1e-6)
    assert k.value == 3


def test_update_in_place_errors():
    z = tk.Param(jnp.ones(2))
    ps, opt = tk.Params([z]), tk.Descent()
    gs = tk.gradient(lambda: jnp.sum(z.value), ps)
    with pytest.raises(TypeError, match="tk.update_ updates tk.Params in place"):
        tk.update_(opt, {"z": jnp.ones(2)}, gs)
    with pytest.raises(TypeError, match="gs must be the tk.Grads"):
        tk.update_(opt, ps, {z: jnp.ones(2)})
    tk.update_(opt, ps, gs)
    z.value = jnp.ones(3)
    with pytest.raises(ValueError, match="changed structure, shape or dtype"):
        tk.update_(opt, ps, tk.gradient(lambda: jnp.sum(z.value), ps))


def test_update_in_place_on_python_float_numpy_and_non_numeric_boxes():
    # The first step turns a Python float or a NumPy float64 array (float32 mode) into a float32 array:
    # later steps must keep the state, not call it a change of dtype.
    f, a, label = tk.Param(1.0), tk.Param(np.array([1.0, -2.0])), tk.Param("layer 1")
    ps, opt = tk.Params([f, a, label]), tk.Momentum(0.1, 0.5)
    gradients = []
    for _ in range(3):
        gs = tk.gradient(lambda: (f.value**2 + jnp.sum(a.value**2)) * (label.value == "layer 1"), ps)
        assert gs[label] is None
        gradients.append((float(gs[f]), np.asarray(gs[a])))
        tk.update_(opt, ps, gs)
    np.testing.assert_allclose(f.value, momentum_by_hand(np.float32(1.0), [g for g, _ in gradients], 0.1, 0.5), rtol=1e-6)
    np.testing.assert_allclose(a.value, momentum_by_hand(np.array([1.0, -2.0], np.float32), [g for _, g in gradients], 0.1, 0.5), rtol=1e-6)
    assert label.value == "layer 1"

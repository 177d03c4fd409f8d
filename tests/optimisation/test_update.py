"""tk.setup / tk.update on arrays, containers and structs; tk.update_ on implicit Params."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toolkit as tk
from tests.compiles import compiled_names


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


def flux_by_hand(rule, x, gradient, steps, η, ρ=None, β=None, ϵ=None):
    """Flux's rule (``Flux.Optimise``, ``optimisers.jl``) written out in float64 NumPy: ``steps`` steps from
    ``x``, the gradient Δ being ``gradient(x)`` at the current ``x``. The oracle for every test here."""
    x = np.asarray(x, np.float64)
    v, m, s = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    for t in range(1, steps + 1):
        Δ = np.asarray(gradient(x), np.float64)
        if rule == "Descent":  # x -= ηΔ
            x = x - η * Δ
        elif rule == "Momentum":  # v = ρv - ηΔ; x += v
            v = ρ * v - η * Δ
            x = x + v
        elif rule == "Nesterov":  # d = ρ²v - (1 + ρ)ηΔ; v = ρv - ηΔ; x += d
            d = ρ * ρ * v - (1 + ρ) * η * Δ
            v = ρ * v - η * Δ
            x = x + d
        elif rule == "Adam":  # bias-corrected moments, ϵ added outside the square root
            β1, β2 = β
            m = β1 * m + (1 - β1) * Δ
            s = β2 * s + (1 - β2) * Δ * Δ
            m_hat, s_hat = m / (1 - β1**t), s / (1 - β2**t)
            x = x - η * m_hat / (np.sqrt(s_hat) + ϵ)
        else:
            raise ValueError(rule)
    return x


def test_update_on_a_struct_needs_no_per_type_code():
    # The seed's GG: Julia needed a hand-written update! for it; here the struct is just a pytree.
    a = GG(jnp.ones((3, 3)), jnp.zeros((3, 3)))
    target = GG(jnp.full((3, 3), 2.0), jnp.full((3, 3), -1.0))
    opt = tk.Momentum()
    state = tk.setup(opt, a)
    for _ in range(5):
        (g,) = tk.gradient(lambda x: tk.tree.sum((x - target) * (x - target)) / 9, a)
        assert isinstance(g, GG)
        a, state = tk.update(opt, state, a, g)
    assert isinstance(a, GG)
    # Oracle: Flux's Momentum (η = 0.01, ρ = 0.9) by hand, with the analytic gradient 2(x - target)/9 per field.
    expected_a = flux_by_hand("Momentum", np.ones((3, 3)), lambda x: 2 * (x - 2.0) / 9, 5, η=0.01, ρ=0.9)
    expected_b = flux_by_hand("Momentum", np.zeros((3, 3)), lambda x: 2 * (x + 1.0) / 9, 5, η=0.01, ρ=0.9)
    np.testing.assert_allclose(a.a, expected_a, rtol=1e-6)
    np.testing.assert_allclose(a.b, expected_b, rtol=1e-6)
    assert not np.allclose(expected_a, 1.0) and not np.allclose(expected_b, 0.0)  # the steps did move them


def test_non_float_leaves_are_untouched_and_their_none_gradients_accepted():
    layer = Layer(jnp.array([1.0, 2.0]), 3, jnp.array([True, False]), name="first")
    (g,) = tk.gradient(lambda p: jnp.sum(p.w**2) * p.n, layer)
    assert g.n is None and g.mask is None  # what tk.gradient gives for non-differentiable leaves
    opt = tk.Descent(0.1)
    new, _ = tk.update(opt, tk.setup(opt, layer), layer, g)
    expected = [1.0 - 0.1 * 6, 2.0 - 0.1 * 12]  # x - η·2nx
    np.testing.assert_allclose(new.w, expected, rtol=1e-6)
    assert new.n == 3 and new.name == "first"
    np.testing.assert_array_equal(new.mask, [True, False])
    # Gradients given as arrays at non-float leaves are ignored, not applied.
    new2, _ = tk.update(opt, tk.setup(opt, layer), layer, g.replace(n=7, mask=jnp.array([1, 1])))
    assert new2.n == 3
    np.testing.assert_array_equal(new2.mask, [True, False])
    np.testing.assert_allclose(new2.w, expected, rtol=1e-6)


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


# Each rule with hyperparameters away from the defaults, and the same rule's hyperparameters for the oracle.
RULES = [
    (tk.Descent(0.1), "Descent", dict(η=0.1)),
    (tk.Momentum(0.1, 0.5), "Momentum", dict(η=0.1, ρ=0.5)),
    (tk.Nesterov(0.1, 0.5), "Nesterov", dict(η=0.1, ρ=0.5)),
    (tk.Adam(0.1, (0.8, 0.9), 1e-3), "Adam", dict(η=0.1, β=(0.8, 0.9), ϵ=1e-3)),
]


@pytest.mark.parametrize("opt, rule, hyper", RULES, ids=[r for _, r, _ in RULES])
def test_update_composes_with_jit_vmap_and_grad(x64, opt, rule, hyper):
    # loss(p) = n·Σ sin(w): Δ = n·cos(w). Oracle: three steps of Flux's rule by hand in float64 NumPy.
    steps, n = 3, 2

    def by_hand(w):
        return flux_by_hand(rule, w, lambda x: n * np.cos(x), steps, **hyper)

    def three_steps(layer):
        state = tk.setup(opt, layer)
        for _ in range(steps):
            (g,) = tk.gradient(lambda p: jnp.sum(jnp.sin(p.w)) * p.n, layer)
            layer, state = tk.update(opt, state, layer, g)
        return layer

    w0 = np.array([1.0, -2.0])
    layer = Layer(jnp.asarray(w0), n, jnp.array([True, True]))
    expected = by_hand(w0)
    assert np.all(np.abs(expected - w0) > 0.05)  # the steps really move w
    eager, jitted = three_steps(layer), jax.jit(three_steps)(layer)
    for name, result in (("eager", eager), ("jit", jitted)):
        assert isinstance(result, Layer) and result.n == n, name
        np.testing.assert_allclose(result.w, expected, rtol=1e-12, err_msg=name)

    batch_w = np.array([[1.0, -2.0], [0.5, 0.25], [3.0, -0.1]])
    batch = Layer(jnp.asarray(batch_w), n, jnp.array([[True, True], [True, False], [False, False]]))
    for name, run in (
        ("vmap", jax.vmap(three_steps, in_axes=(Layer(0, None, 0),))),
        ("jit(vmap)", jax.jit(jax.vmap(three_steps, in_axes=(Layer(0, None, 0),)))),
    ):
        batched = run(batch)
        for i in range(len(batch_w)):
            np.testing.assert_allclose(batched.w[i], by_hand(batch_w[i]), rtol=1e-12, err_msg=f"{name}, problem {i}")
        np.testing.assert_array_equal(batched.mask, batch.mask)

    # Gradient through the three optimiser steps, against central differences of the hand-written steps.
    def final_loss(w):
        return jnp.sum(three_steps(layer.replace(w=w)).w ** 2)

    def final_loss_by_hand(w):
        return np.sum(by_hand(w) ** 2)

    h = 1e-5
    differences = [
        (
            8 * (final_loss_by_hand(w0 + h * e) - final_loss_by_hand(w0 - h * e))
            - (final_loss_by_hand(w0 + 2 * h * e) - final_loss_by_hand(w0 - 2 * h * e))
        )
        / (12 * h)
        for e in np.eye(2)
    ]
    assert np.all(np.abs(differences) > 1e-3)
    for name, grad in (
        ("grad", jax.grad(final_loss)),
        ("grad(jit)", jax.grad(jax.jit(final_loss))),
        ("jit(grad)", jax.jit(jax.grad(final_loss))),
    ):
        np.testing.assert_allclose(grad(jnp.asarray(w0)), differences, rtol=1e-7, err_msg=name)


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
    for _ in range(3):
        gs = tk.gradient(lambda: jnp.sum(z.value**2) * k.value, ps)
        assert gs[k] is None
        tk.update_(opt, ps, gs)
    # Oracle: Momentum by hand with the analytic gradient 2·k·z = 6z, its velocity kept across the three calls
    # (a velocity reset at each call would make the steps those of Descent(0.1), which end elsewhere).
    expected = flux_by_hand("Momentum", [1.0, 2.0], lambda x: 6 * x, 3, η=0.1, ρ=0.5)
    np.testing.assert_allclose(z.value, expected, rtol=1e-6)
    assert not np.allclose(expected, flux_by_hand("Descent", [1.0, 2.0], lambda x: 6 * x, 3, η=0.1))
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
    for _ in range(3):
        gs = tk.gradient(lambda: (f.value**2 + jnp.sum(a.value**2)) * (label.value == "layer 1"), ps)
        assert gs[label] is None
        tk.update_(opt, ps, gs)
    # Oracle: Momentum by hand with the analytic gradients 2f and 2a.
    by_hand = functools.partial(flux_by_hand, "Momentum", gradient=lambda x: 2 * x, steps=3, η=0.1, ρ=0.5)
    np.testing.assert_allclose(f.value, by_hand(1.0), rtol=1e-6)
    np.testing.assert_allclose(a.value, by_hand([1.0, -2.0]), rtol=1e-6)
    assert label.value == "layer 1"


def _rosenbrock(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def test_update_passes_extra_arguments_to_optimisers_that_ask_for_them(x64):
    """optax.lbfgs's line search needs value=, grad=, value_fn=: given to tk.update, its steps are optax's own
    (a hand-jitted loop of opt.update with the same arguments), bit for bit."""
    opt = optax.lbfgs()

    @jax.jit
    def by_hand(p, s):
        v, g = jax.value_and_grad(_rosenbrock)(p)
        u, s = opt.update(g, s, p, value=v, grad=g, value_fn=_rosenbrock)
        return optax.apply_updates(p, u), s

    p = hand = jnp.array([-1.2, 1.0])
    state, hand_state = tk.setup(opt, p), opt.init(hand)
    for _ in range(12):
        hand, hand_state = by_hand(hand, hand_state)
        v, (g,) = tk.withgradient(_rosenbrock, p)
        p, state = tk.update(opt, state, p, g, value=v, grad=g, value_fn=_rosenbrock)
        np.testing.assert_array_equal(p, hand)


def test_extra_arguments_see_whole_parameters_and_a_new_lambda_each_step_compiles_once(x64):
    """On a struct with an integer leaf and a static field, value_fn gets the whole struct (as the loss does), not
    only its float leaves; a value_fn made anew each step, closing over a new array, reuses the compiled step and
    reads that array."""

    @tk.struct
    class Model:
        w: jax.Array
        power: jax.Array  # an integer leaf: not optimised, but the loss reads it
        scale: int = tk.field(static=True, default=3)

    opt, targets = optax.lbfgs(), [jnp.array([1.0, -1.0]), jnp.array([2.0, 0.5])]

    def steps(target, model, state, n):
        for _ in range(n):
            loss = lambda m: m.scale * jnp.sum(jnp.abs(m.w - target) ** m.power)  # noqa: E731 - new each step
            v, (g,) = tk.withgradient(loss, model)
            model, state = tk.update(opt, state, model, g, value=v, grad=g, value_fn=loss)
        return model, state

    model = Model(jnp.zeros(2), jnp.asarray(2))
    model, state = steps(targets[0], model, tk.setup(opt, model), 3)
    names = compiled_names(lambda: steps(targets[1], model, state, 30))
    assert not [n for n in names if "step" in n], names  # the update's program is reused
    moved, _ = steps(targets[1], model, state, 30)
    assert isinstance(moved, Model) and moved.scale == 3 and int(moved.power) == 2
    np.testing.assert_allclose(moved.w, targets[1], atol=1e-8)  # the closure's new target was read


def test_extra_arguments_errors():
    p = jnp.array([1.0, 2.0])
    (g,) = tk.gradient(_rosenbrock, p)
    plain = optax.GradientTransformation(optax.sgd(0.1).init, optax.sgd(0.1).update)  # takes no extra arguments
    with pytest.raises(TypeError, match=r"tk.update: value=\.\.\. go to optimisers that take extra arguments.*"):
        tk.update(plain, plain.init(p), p, g, value=1.0)
    opt = optax.lbfgs()
    with pytest.raises(TypeError) as raised:  # optax's own error, with how to pass what it needs
        tk.update(opt, tk.setup(opt, p), p, g)
    assert any("tk.update(opt, state, params, g, value=loss_value" in note for note in raised.value.__notes__)
    z = tk.Param(p)
    ps = tk.Params([z])
    with pytest.raises(TypeError) as raised:  # the in-place form has no room for them: the note says where to go
        tk.update_(opt, ps, tk.gradient(lambda: _rosenbrock(z.value), ps))
    assert any(note.startswith("tk.update_: ") and "tk.update(opt, state" in note for note in raised.value.__notes__)

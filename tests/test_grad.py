"""Tests for Zygote's API on JAX: gradient, withgradient, pullback, jacobian, hessian."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk


@tk.struct
class GG:
    a: jax.Array
    b: jax.Array
    label: str = tk.field(static=True, default="gg")


@tk.struct
class Counted:
    w: jax.Array
    n: jax.Array  # integer data: not differentiable


def central_difference(f, x, h=1e-6):
    """Float64 central differences of scalar ``f`` with respect to the array ``x``."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (float(f(jnp.asarray(x + step))) - float(f(jnp.asarray(x - step)))) / (2 * h)
    return grad


def loss(x, y, scale):
    return tk.tree.sum(jnp.sin(x.a) * x.b * y["w"]) * scale + jnp.sum(y["w"] ** 3)


def test_gradient_matches_finite_differences_for_struct_and_dict(x64):
    rng = np.random.default_rng(0)
    x = GG(jnp.asarray(rng.normal(size=(2, 3))), jnp.asarray(rng.normal(size=(2, 3))))
    y = {"w": jnp.asarray(rng.normal(size=3))}
    gx, gy, gscale = tk.gradient(loss, x, y, 2.5)
    assert isinstance(gx, GG) and gx.label == "gg" and set(gy) == {"w"}
    np.testing.assert_allclose(gx.a, central_difference(lambda a: loss(x.replace(a=a), y, 2.5), x.a), rtol=1e-7)
    np.testing.assert_allclose(gx.b, central_difference(lambda b: loss(x.replace(b=b), y, 2.5), x.b), rtol=1e-7)
    np.testing.assert_allclose(gy["w"], central_difference(lambda w: loss(x, {"w": w}, 2.5), y["w"]), rtol=1e-7)
    np.testing.assert_allclose(gscale, central_difference(lambda s: loss(x, y, s), 2.5), rtol=1e-7)


def test_non_differentiable_arguments_get_none():
    f = lambda x, n, s, flag, idx, nothing: jnp.sum(x[idx] ** n) if flag else 0.0  # noqa: E731
    grads = tk.gradient(f, jnp.array([1.0, 2.0, 3.0]), 2, "text", True, jnp.array([0, 2]), None)
    np.testing.assert_allclose(grads[0], [2.0, 0.0, 6.0])
    assert grads[1:] == (None, None, None, None, None)


def test_integer_leaves_inside_a_struct_get_none():
    x = Counted(jnp.array([1.0, 2.0]), jnp.array([3, 4]))
    (g,) = tk.gradient(lambda c: jnp.sum(c.w * c.n), x)
    assert isinstance(g, Counted) and g.n is None
    np.testing.assert_allclose(g.w, [3.0, 4.0])
    with pytest.raises(TypeError, match=r"no argument holds floating-point values.*c\.w is i32\[2\]"):
        tk.gradient(lambda c: 1.0 * jnp.sum(c.n), Counted(jnp.array([1, 2]), jnp.array([3])))


@pytest.mark.parametrize(
    ("output", "described"),
    [
        (lambda x: x, "f32[3]"),
        (lambda x: jnp.sum(x).astype(jnp.int32), "i32[]"),
        (lambda x: (x[0], x[1]), "tuple"),
        (lambda x: GG(x, x), "GG"),
        (lambda x: 3, "int"),
        (lambda x: jnp.sum(x) * 1j, "c64[]"),
    ],
    ids=["vector", "integer", "tuple", "struct", "python-int", "complex"],
)
def test_non_scalar_output_is_a_clear_type_error(output, described):
    for caller, fn in [("tk.gradient", tk.gradient), ("tk.withgradient", tk.withgradient)]:
        expected = rf"{caller}: f must return a real floating-point scalar, but it returned {re.escape(described)}\."
        with pytest.raises(TypeError, match=expected):
            fn(output, jnp.ones(3))
    with pytest.raises(TypeError, match=rf"tk.hessian: .* returned {re.escape(described)}\."):
        tk.hessian(output, jnp.ones(3))


def test_withgradient_returns_value_and_gradients():
    value, (gx, gy) = tk.withgradient(lambda x, y: jnp.sum(x * y), jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
    assert float(value) == 11.0
    np.testing.assert_allclose(gx, [3.0, 4.0])
    np.testing.assert_allclose(gy, [1.0, 2.0])


def test_gradient_of_python_float_and_zero_arguments():
    assert float(tk.gradient(lambda x: x**3, 2.0)[0]) == 12.0
    assert tk.gradient(lambda: jnp.float32(1.0)) == ()
    with pytest.raises(TypeError, match="returned f32\\[2\\]"):
        tk.gradient(lambda: jnp.ones(2))


def test_pullback_with_structured_output():
    x = GG(jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
    out, back = tk.pullback(lambda v, k: {"sum": v.a + v.b, "prod": v.a * v.b * k}, x, 2)
    np.testing.assert_allclose(out["prod"], [6.0, 16.0])
    gx, gk = back({"sum": jnp.array([1.0, 0.0]), "prod": jnp.array([0.0, 1.0])})
    assert isinstance(gx, GG) and gk is None
    np.testing.assert_allclose(gx.a, [1.0, 8.0])  # ∂sum0/∂a0 = 1, ∂prod1/∂a1 = b1·k = 8
    np.testing.assert_allclose(gx.b, [1.0, 4.0])
    # Python scalars are accepted as cotangents and cast to the output dtype.
    _, back_scalar = tk.pullback(lambda v: jnp.sum(v**2), jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(back_scalar(1)[0], [2.0, 4.0])


def test_pullback_checks_the_cotangent():
    _, back = tk.pullback(lambda v: 2 * v, jnp.ones(3))
    with pytest.raises(ValueError, match=r"tk.pullback: Δ has shape \(2,\) where f's output has f32\[3\]"):
        back(jnp.ones(2))
    with pytest.raises(ValueError, match="tk.pullback: Δ must have the structure of f's output"):
        back((jnp.ones(3), jnp.ones(3)))


def test_jacobian_per_argument_and_struct_outputs():
    x, y = jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0, 5.0])
    jx, jy, jn = tk.jacobian(lambda a, b, n: jnp.outer(a, b).ravel() * n, x, y, 2)
    assert jx.shape == (6, 2) and jy.shape == (6, 3) and jn is None
    np.testing.assert_allclose(jx, 2 * np.kron(np.eye(2), np.asarray(y)[:, None]))
    (js,) = tk.jacobian(lambda s: GG(s * x, s**2 * x), 3.0)
    assert isinstance(js, GG)
    np.testing.assert_allclose(js.b, 6.0 * np.asarray(x))


def test_hessian_of_struct_and_of_array():
    np.testing.assert_allclose(tk.hessian(lambda v: jnp.sum(v**3), jnp.array([1.0, 2.0])), np.diag([6.0, 12.0]))
    x = GG(jnp.array([1.0]), jnp.array([2.0]))
    h = tk.hessian(lambda v: jnp.sum(v.a**2 * v.b), x)
    assert isinstance(h, GG) and isinstance(h.a, GG)
    np.testing.assert_allclose(h.a.a, [[4.0]])  # ∂²/∂a² = 2b
    np.testing.assert_allclose(h.a.b, [[2.0]])  # ∂²/∂a∂b = 2a
    np.testing.assert_allclose(h.b.b, [[0.0]])
    with pytest.raises(TypeError, match=r"tk.hessian: no argument holds floating-point values.*\(n is int\)"):
        tk.hessian(lambda n: 1.0 * n, 3)


def test_everything_composes_with_jit_and_vmap():
    xs = jnp.arange(12.0).reshape(4, 3)
    f = lambda v: jnp.sum(jnp.sin(v))  # noqa: E731
    expected = np.cos(np.asarray(xs))

    np.testing.assert_allclose(jax.jit(lambda v: tk.gradient(f, v)[0])(xs[0]), expected[0], rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(lambda v: tk.gradient(f, v)[0])(xs), expected, rtol=1e-6)
    values, grads = jax.jit(jax.vmap(lambda v: tk.withgradient(f, v)))(xs)
    np.testing.assert_allclose(grads[0], expected, rtol=1e-6)
    np.testing.assert_allclose(values, np.sin(np.asarray(xs)).sum(axis=1), rtol=1e-6)
    pulled = jax.vmap(lambda v: tk.pullback(jnp.sin, v)[1](jnp.ones(3))[0])(xs)
    np.testing.assert_allclose(pulled, expected, rtol=1e-6)
    jacs = jax.jit(jax.vmap(lambda v: tk.jacobian(jnp.sin, v)[0]))(xs)
    np.testing.assert_allclose(jacs, np.stack([np.diag(row) for row in expected]), rtol=1e-6)
    hessians = jax.vmap(lambda v: tk.hessian(f, v))(xs)
    np.testing.assert_allclose(
        hessians, np.stack([np.diag(-np.sin(row)) for row in np.asarray(xs)]), rtol=1e-5, atol=1e-6
    )
    # A None slot survives jit.
    assert jax.jit(lambda v: tk.gradient(lambda a, n: jnp.sum(a) * n, v, 3))(xs[0])[1] is None


def test_pullback_refuses_a_complex_cotangent_for_a_real_output():
    _, back = tk.pullback(lambda v: 2 * v, jnp.ones(2))
    with pytest.raises(TypeError, match=r"tk.pullback: Δ is c64\[2\], but f's output is f32\[2\]"):
        back(jnp.ones(2) * 1j)  # casting would silently drop the imaginary part


def test_implicit_params_work_with_withgradient_and_pullback():
    z = tk.Param(jnp.array([1.0, 2.0]))
    w = tk.Param(jnp.array(3.0))
    ps = tk.Params([z, w])
    value, gs = tk.withgradient(lambda: jnp.sum(z.value**2) * w.value, ps)
    assert float(value) == 15.0 and isinstance(gs, tk.Grads)
    np.testing.assert_allclose(gs[z], [6.0, 12.0])
    assert float(gs[w]) == 5.0
    out, back = tk.pullback(lambda: z.value * w.value, ps)
    np.testing.assert_allclose(out, [3.0, 6.0])
    gs = back(jnp.array([1.0, 10.0]))
    np.testing.assert_allclose(gs[z], [3.0, 30.0])
    assert float(gs[w]) == 21.0
    np.testing.assert_allclose(z.value, [1.0, 2.0])  # the boxes keep their values


@pytest.mark.parametrize("fn", [tk.gradient, tk.withgradient, tk.pullback], ids=lambda fn: fn.__name__)
def test_params_mixed_with_other_arguments_is_a_clear_error(fn):
    ps = tk.Params([tk.Param(jnp.ones(2))])
    with pytest.raises(TypeError, match=rf"tk.{fn.__name__}: a tk.Params must be the only argument"):
        fn(lambda x: jnp.sum(x), ps, jnp.ones(2))


# --- what cannot be differentiated is said, not returned as None or a wrong number --------------


def test_no_float_argument_blames_the_arguments_and_shows_the_fix():
    with pytest.raises(TypeError) as error:
        tk.gradient(lambda x: jnp.mean(x**2), jnp.array([1, 2, 3]))
    message = str(error.value)
    assert "no argument holds floating-point values" in message and "x is i32[3]" in message
    assert "jnp.array([1., 2., 3.])" in message and "returned" not in message  # the output is not blamed
    np.testing.assert_allclose(
        tk.gradient(lambda x: jnp.mean(x**2), jnp.array([1.0, 2.0, 3.0]))[0], [2 / 3, 4 / 3, 2.0]
    )


@dataclasses.dataclass
class PlainModel:
    w: jax.Array


class PlainObject:
    def __init__(self, w):
        self.w = w


@pytest.mark.parametrize("fn", [tk.gradient, tk.withgradient, tk.pullback, tk.jacobian, tk.hessian])
@pytest.mark.parametrize("model", [PlainModel(jnp.ones(2)), PlainObject(jnp.ones(2))], ids=["dataclass", "class"])
def test_a_plain_class_instance_is_refused_not_given_a_silent_none(fn, model):
    """jax.grad refuses such a value too (it is not a valid JAX type); toolkit says how to fix it."""
    with pytest.raises(TypeError):
        jax.grad(lambda m: jnp.sum(m.w))(model)
    with pytest.raises(TypeError, match=r"m is a Plain\w+, a plain (dataclass|class) instance.*@tk.struct"):
        fn(lambda m: jnp.sum(m.w), model)


def test_a_param_box_passed_explicitly_points_to_params():
    z = tk.Param(jnp.ones(2))
    with pytest.raises(TypeError, match=r"z is a tk.Param box.*tk.Params\(\[z\]\)"):
        tk.gradient(lambda z: jnp.sum(z.value), z)


def test_a_loss_returning_a_python_float_is_accepted():
    value, (g,) = tk.withgradient(lambda x: 1.5, jnp.ones(2))
    assert float(value) == 1.5
    np.testing.assert_array_equal(g, [0.0, 0.0])


# --- complex parameters: Zygote's convention, so descent descends --------------------------------


def finite_difference_complex_gradient(f, z, h=1e-6):
    """∂f/∂x + i∂f/∂y by float64 central differences along the real and the imaginary axis."""
    z = np.asarray(z, dtype=np.complex128)
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[i] = h
        dx = (float(f(jnp.asarray(z + e))) - float(f(jnp.asarray(z - e)))) / (2 * h)
        dy = (float(f(jnp.asarray(z + 1j * e))) - float(f(jnp.asarray(z - 1j * e)))) / (2 * h)
        g[i] = dx + 1j * dy
    return g


def test_complex_gradient_is_zygotes_and_the_conjugate_of_jax_grad(x64):
    target = jnp.array([1 + 2j, -0.5 + 0.25j])
    loss = lambda w: jnp.sum(jnp.abs(w - target) ** 2) + jnp.sum(jnp.real(w) * jnp.imag(w))  # noqa: E731
    w = jnp.array([0.3 - 0.1j, 2.0 + 1.0j])
    (g,) = tk.gradient(loss, w)
    np.testing.assert_allclose(g, finite_difference_complex_gradient(loss, w), rtol=1e-7)
    np.testing.assert_allclose(g, np.conj(jax.grad(loss)(w)), rtol=1e-12)


def test_complex_pullback_follows_the_same_convention(x64):
    c = 2.0 - 3.0j
    _, back = tk.pullback(lambda z: c * z, jnp.array(1.0 + 1.0j))
    np.testing.assert_allclose(back(jnp.array(1.0 + 0j))[0], np.conj(c))  # Zygote: conj(f'(z)) Δ
    _, back = tk.pullback(lambda z: jnp.abs(z) ** 2, jnp.array(3.0 + 4.0j))
    np.testing.assert_allclose(back(jnp.array(1.0))[0], 2 * (3.0 + 4.0j))  # the gradient of |z|²: 2z


@pytest.mark.parametrize("fn", [tk.jacobian, tk.hessian])
def test_jacobian_and_hessian_refuse_complex_arguments(fn):
    with pytest.raises(TypeError, match=r"argument 1 is complex \(c64\[2\]\).*real and imaginary parts"):
        fn(lambda z: jnp.sum(jnp.abs(z) ** 2), jnp.array([1 + 1j, 2 - 1j], dtype=jnp.complex64))


@pytest.mark.parametrize(
    "opt",
    [tk.Descent(0.1), tk.Momentum(0.001), tk.Nesterov(0.001), tk.Adam(0.1)],
    ids=["Descent", "Momentum", "Nesterov", "Adam"],
)
def test_every_optimiser_steps_complex_parameters_downhill(opt):
    """Optimisers.jl's complex-parameter test: the loss falls at every step."""
    target = jnp.array([1 + 2j, -3 + 0.5j], dtype=jnp.complex64)
    loss = lambda w: jnp.sum(jnp.abs(w - target) ** 2)  # noqa: E731
    w = jnp.zeros(2, jnp.complex64)
    state = tk.setup(opt, w)
    losses = [float(loss(w))]
    for _ in range(10):
        (g,) = tk.gradient(loss, w)
        w, state = tk.update(opt, state, w, g)
        losses.append(float(loss(w)))
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    result = tk.optimise(loss, jnp.zeros(2, jnp.complex64), opt, steps=10)
    np.testing.assert_allclose(result.losses[1:], losses[1:10], rtol=1e-5)  # the same steps, compiled

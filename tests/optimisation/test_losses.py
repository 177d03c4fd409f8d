"""tk.mse / tk.mae: Flux's definitions and its size check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk

RNG = np.random.default_rng(1)


def test_definitions_against_numpy(x64):
    ŷ, y = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    np.testing.assert_allclose(tk.mse(ŷ, y), np.mean((ŷ - y) ** 2), rtol=1e-14)
    np.testing.assert_allclose(tk.mae(ŷ, y), np.mean(np.abs(ŷ - y)), rtol=1e-14)
    np.testing.assert_allclose(tk.mse(ŷ, y, agg=jnp.sum), np.sum((ŷ - y) ** 2), rtol=1e-14)
    c, d = ŷ + 1j * y, y - 0.5j * ŷ
    np.testing.assert_allclose(tk.mse(c, d), np.mean(np.abs(c - d) ** 2), rtol=1e-14)  # abs2 for complex


def test_a_constant_label_passes_the_size_check():
    np.testing.assert_allclose(tk.mse(jnp.array([1.0, 3.0]), 1.0), 2.0)


def test_mismatched_shapes_are_an_error_not_a_broadcast():
    with pytest.raises(ValueError, match=r"tk.mse: ŷ is f32\[3\] but y is f32\[3,1\]"):
        tk.mse(jnp.ones(3), jnp.ones((3, 1)))
    with pytest.raises(ValueError, match=r"tk.mae: ŷ is f32\[2\] but y is f32\[3\]"):
        tk.mae(jnp.ones(2), jnp.ones(3))


def test_losses_compose_with_jit_vmap_and_grad(x64):
    ŷ, y = RNG.normal(size=5), RNG.normal(size=5)
    np.testing.assert_allclose(jax.grad(tk.mse)(ŷ, y), 2 * (ŷ - y) / 5, rtol=1e-13)
    np.testing.assert_allclose(jax.grad(tk.mae)(ŷ, y), np.sign(ŷ - y) / 5, rtol=1e-13)
    np.testing.assert_allclose(jax.grad(tk.mse, argnums=1)(ŷ, y), -2 * (ŷ - y) / 5, rtol=1e-13)
    np.testing.assert_allclose(jax.jit(tk.mse)(ŷ, y), np.mean((ŷ - y) ** 2), rtol=1e-14)
    np.testing.assert_allclose(jax.jit(tk.mae)(ŷ, y), np.mean(np.abs(ŷ - y)), rtol=1e-14)
    rows = jax.vmap(tk.mse)(jnp.stack([ŷ, y, 2 * y]), jnp.stack([y, y, y]))
    np.testing.assert_allclose(rows, [np.mean((ŷ - y) ** 2), 0.0, np.mean(y**2)], rtol=1e-14, atol=1e-15)
    # the gradient is that of Flux's definition for complex numbers too: d/dŷ of mean(abs2(ŷ - y)) is
    # 2(ŷ - y)/n in Zygote's convention, whose conjugate jax.grad returns
    c, d = ŷ + 1j * y, y - 0.5j * ŷ
    np.testing.assert_allclose(np.conj(jax.grad(tk.mse)(c, d)), 2 * (c - d) / 5, rtol=1e-13)

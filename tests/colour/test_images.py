"""``mean_difference``: the mean ΔE of two images and its gradient, in blocks, against the plain mean and colour-science.

Oracles: ``jnp.mean(colordiff(...))`` differentiated by plain autodiff (the
definition the blocked pass must reproduce), and colour-science's ``delta_E`` on
the same pixels for the value.
"""

import colour as colour_science
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toolkit.colour import colordiff, mean_difference


def images(shape, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.random(shape, np.float32)), jnp.asarray(rng.random(shape, np.float32))


def plain(a, b, metric="CIEDE2000", **settings):
    return jnp.mean(colordiff(a, b, metric, arrays="RGB", **settings))


@pytest.mark.parametrize(
    "shape, rows, metric",
    [((10, 7, 3), 4, "CIEDE2000"), ((2, 3, 5, 3), 4, "CIE76"), ((3, 4, 3), 64, "CIE76")],
    ids=["blocks and a remainder", "leading axes", "one partial block"],
)
def test_value_and_gradient_equal_the_plain_mean_whatever_the_blocks(shape, rows, metric):
    a, b = images(shape)
    value, grads = jax.value_and_grad(mean_difference, argnums=(0, 1))(a, b, metric, rows_per_block=rows)
    want, want_grads = jax.value_and_grad(plain, argnums=(0, 1))(a, b, metric)
    np.testing.assert_allclose(value, want, rtol=1e-6)
    for g, w in zip(grads, want_grads):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6 * float(jnp.abs(w).max()))  # float32, in another order


def test_the_value_is_colour_sciences_mean():
    a, b = images((6, 5, 3), seed=3)
    lab = [colour_science.XYZ_to_Lab(colour_science.sRGB_to_XYZ(np.asarray(x, np.float64))) for x in (a, b)]
    want = np.mean(colour_science.delta_E(lab[0], lab[1], method="CIE 2000"))
    np.testing.assert_allclose(mean_difference(a, b), want, rtol=1e-5)


def test_under_jit_vmap_and_with_other_metrics():
    a, b = images((9, 4, 3), seed=1)
    jitted = jax.jit(jax.value_and_grad(lambda x, y: mean_difference(x, y, "CIE94", rows_per_block=4)))
    value, g = jitted(a, b)
    want, want_g = jax.value_and_grad(lambda x, y: plain(x, y, "CIE94"))(a, b)
    np.testing.assert_allclose(value, want, rtol=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-4, atol=1e-6 * float(jnp.abs(want_g).max()))
    per_pair = jax.vmap(jax.grad(lambda x, y: mean_difference(x, y, "CIE76", rows_per_block=2)))
    stacked = per_pair(jnp.stack([a, b]), jnp.stack([b, a]))
    np.testing.assert_allclose(stacked[1], jax.grad(plain)(b, a, "CIE76"), rtol=1e-4, atol=1e-6)


def test_a_chain_rule_through_it_scales_the_gradient():
    a, b = images((5, 5, 3), seed=2)
    g = jax.grad(lambda x: 3.0 * mean_difference(x, b, "CIE76", rows_per_block=2) ** 2)(a)
    v, want = jax.value_and_grad(plain)(a, b, "CIE76")
    np.testing.assert_allclose(g, 6.0 * v * want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "a, b, kwargs, message",
    [
        (
            jnp.zeros((4, 3)),
            jnp.zeros((5, 3)),
            {},
            r"one shape \(\.\.\., height, width, 3\), got shapes \(4, 3\) and \(5, 3\)",
        ),
        (jnp.zeros((4, 4)), jnp.zeros((4, 4)), {}, r"one shape"),
        (jnp.zeros((0, 4, 3)), jnp.zeros((0, 4, 3)), {}, r"no pixels"),
        (jnp.zeros((2, 4, 3)), jnp.zeros((2, 4, 3)), {"rows_per_block": 0}, r"rows_per_block must be a positive int"),
    ],
)
def test_bad_input_is_a_clear_error(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mean_difference(a, b, **kwargs)

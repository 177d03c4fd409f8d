"""Colour structs and the struct-or-array helpers every colour function uses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk
from toolkit.colour import RGB, XYZ, Lab, as_array, channels, from_channels, like


def test_colours_are_structs_with_arithmetic_and_gradients():
    a, b = RGB(1.0, 0.5, 0.0), RGB(0.0, 0.5, 1.0)
    mid = (a + b) / 2
    assert isinstance(mid, RGB) and (float(mid.r), float(mid.g), float(mid.b)) == (0.5, 0.5, 0.5)
    (grad,) = tk.gradient(lambda c: c.l * c.a + c.b, Lab(2.0, 3.0, 4.0))
    assert isinstance(grad, Lab) and (float(grad.l), float(grad.a), float(grad.b)) == (3.0, 2.0, 1.0)


def test_channels_of_arrays_and_structs_agree():
    x = jnp.arange(12.0).reshape(4, 3)
    r, g, b = channels(x, RGB, "f", "rgb")
    np.testing.assert_array_equal(r, x[:, 0])
    np.testing.assert_array_equal(g, x[:, 1])
    np.testing.assert_array_equal(b, x[:, 2])
    again = channels(RGB(x[:, 0], x[:, 1], x[:, 2]), RGB, "f", "rgb")
    for i, u in enumerate(again):
        np.testing.assert_array_equal(u, x[:, i])


def test_channels_broadcast_struct_fields_and_promote_integers():
    r, g, b = channels(RGB(jnp.arange(3), 1, jnp.zeros((2, 1), jnp.float32)), RGB, "f", "rgb")
    assert r.shape == g.shape == b.shape == (2, 3)
    assert r.dtype == g.dtype == b.dtype == jnp.float32
    np.testing.assert_array_equal(r, [[0.0, 1.0, 2.0]] * 2)
    np.testing.assert_array_equal(g, np.ones((2, 3)))
    np.testing.assert_array_equal(b, np.zeros((2, 3)))
    (x, y, z) = channels(jnp.array([1, 2, 3]), XYZ, "f", "xyz")
    assert x.dtype == jnp.float32 and (float(x), float(y), float(z)) == (1.0, 2.0, 3.0)
    with jax.enable_x64(True):
        assert channels(jnp.ones(3, jnp.float64), XYZ, "f", "xyz")[0].dtype == jnp.float64


def test_from_channels_returns_the_kind_it_was_given():
    values = tuple(jnp.array([1.0, 2.0, 3.0]))
    struct = from_channels(RGB(0.0, 0.0, 0.0), values, Lab)
    assert isinstance(struct, Lab) and (float(struct.l), float(struct.a), float(struct.b)) == (1.0, 2.0, 3.0)
    stacked = from_channels(jnp.zeros(3), values, Lab)
    np.testing.assert_array_equal(stacked, [1.0, 2.0, 3.0])


def test_as_array_and_like_round_trip():
    lab = Lab(jnp.ones(2), jnp.zeros(2), 2.0)
    array = as_array(lab)
    np.testing.assert_array_equal(array, [[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]])  # fields broadcast, stacked last
    back = like(lab, array, Lab)
    assert isinstance(back, Lab)
    np.testing.assert_array_equal(back.l, [1.0, 1.0])
    np.testing.assert_array_equal(back.a, [0.0, 0.0])
    np.testing.assert_array_equal(back.b, [2.0, 2.0])
    np.testing.assert_array_equal(
        like(jnp.zeros(3), jnp.array([4.0, 5.0, 6.0]), Lab), [4.0, 5.0, 6.0]
    )  # arrays stay arrays


def test_errors_name_the_function_the_argument_and_the_fix():
    with pytest.raises(
        ValueError,
        match=r"f: lab must be a Lab struct or an array whose last axis has length 3 \(l, a, b\), got f32\[2\].*jnp.stack",
    ):
        channels(jnp.ones(2), Lab, "f", "lab")
    with pytest.raises(TypeError, match=r"f: rgb is an XYZ struct, expected RGB"):
        channels(XYZ(1.0, 1.0, 1.0), RGB, "f", "rgb")
    with pytest.raises(TypeError, match=r"f: rgb must be real, got complex values"):
        channels(jnp.ones(3) * 1j, RGB, "f", "rgb")
    with pytest.raises(ValueError, match=r"expected an RGB/Lab/XYZ struct or an array whose last axis has length 3"):
        as_array(jnp.ones((3, 2)))

"""``toolkit.closures``: what a function reads besides its arguments, against what Python itself would read.

Oracle: calling the rebuilt function must give exactly what calling the original
gives once its arrays are replaced by hand (the rebuilt function reads the
replacement arrays, everything else as the original), and keys must be equal
exactly when the function would compute the same thing.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toolkit as tk
from toolkit.closures import capture

TARGET = jnp.array([1.0, 2.0])
SCALE = 3


def reads_globals(p):
    return jnp.sum((p - TARGET) ** 2) * SCALE


def test_arrays_in_globals_and_closures_are_found_and_replaced():
    offset = jnp.array([10.0, 20.0])
    f = lambda p: reads_globals(p) + jnp.sum(p * offset)  # noqa: E731
    captured = capture(f)
    assert sorted(a.tolist() for a in captured.arrays) == [[1.0, 2.0], [10.0, 20.0]]
    replaced = [jnp.zeros(2) if a.tolist() == [1.0, 2.0] else jnp.ones(2) for a in captured.arrays]
    p = jnp.array([0.5, -1.0])
    expected = jnp.sum(p**2) * 3 + jnp.sum(p)  # TARGET -> 0, offset -> 1, by hand
    np.testing.assert_allclose(captured.rebuild(replaced)(p), expected)
    np.testing.assert_allclose(f(p), reads_globals(p) + jnp.sum(p * offset))  # the original is untouched


def test_keys_are_equal_exactly_when_the_program_is():
    def make(n):
        return lambda p: jnp.sum(p**n)

    assert capture(make(2)).key == capture(make(2)).key  # a new lambda of the same code and the same number
    assert capture(make(2)).key != capture(make(3)).key  # a changed int: another program

    def adder(array):
        return lambda p: p + array

    assert capture(adder(jnp.ones(2))).key == capture(adder(jnp.zeros(2))).key  # values come in as inputs
    assert capture(adder(jnp.ones(2))).key != capture(adder(jnp.ones(3))).key  # another shape: another program


def test_optimisers_made_anew_key_the_same():
    assert capture(optax.adam(1e-3)).key == capture(optax.adam(1e-3)).key
    assert capture(optax.adam(1e-3)).key != capture(optax.adam(2e-3)).key
    assert capture(tk.Momentum(0.1)).key == capture(tk.Momentum(0.1)).key


class Model:
    def __init__(self, w):
        self.w = w
        self.power = 2

    def loss(self, p):
        return jnp.sum((p - self.w) ** self.power)


def test_bound_methods_read_their_objects_arrays():
    model = Model(jnp.array([1.0, -1.0]))
    captured = capture(model.loss)
    assert capture(model.loss).key == captured.key  # a new bound method object each access, the same key
    assert [a.tolist() for a in captured.arrays] == [[1.0, -1.0]]
    rebuilt = captured.rebuild([jnp.array([3.0, 3.0])])
    assert float(rebuilt(jnp.zeros(2))) == 18.0  # (0-3)² + (0-3)²
    assert model.w.tolist() == [1.0, -1.0]  # the user's object is not changed
    model.power = 4
    assert capture(model.loss).key != captured.key


def test_partials_nested_closures_and_containers():
    weights = {"a": jnp.array(2.0), "b": [jnp.array(3.0)]}

    def outer(scale):
        def inner(p, factor):
            return jnp.sum(p * weights["a"] * weights["b"][0]) * scale * factor

        return inner

    f = functools.partial(outer(5.0), factor=jnp.array(7.0))
    captured = capture(f)
    assert len(captured.arrays) == 3
    rebuilt = captured.rebuild([jnp.ones(()) for _ in captured.arrays])
    np.testing.assert_allclose(rebuilt(jnp.ones(2)), 2 * 5.0)  # every array now 1: sum(p) * 5


def test_rebuilt_functions_work_under_jit_with_replaced_tracers():
    captured = capture(lambda p: jnp.sum((p - TARGET) ** 2))
    traced = jax.jit(lambda p, arrays: captured.rebuild(arrays)(p))
    np.testing.assert_allclose(traced(jnp.zeros(2), (jnp.array([3.0, 4.0]),)), 25.0)


def test_recursion_and_empty_cells_do_not_break_the_walk():
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)

    assert capture(fact).key == capture(fact).key

    def later():
        return helper()  # noqa: F821 - assigned below: an empty cell when captured

    captured = capture(later)
    assert captured.arrays == ()

    def helper():
        return 1


@pytest.mark.parametrize("value", [None, 3, "text", (1, 2.0), {"k": 1}, np.float32(2.0)])
def test_plain_values_key_by_value(value):
    assert capture(value).key == capture(value).key

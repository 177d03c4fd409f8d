"""The compiled loop sees current values, compiles only when the program changes, and keeps nothing alive.

Oracles: the closed-form minimiser of each loss (so a stale target is caught by
value), JAX's own compile log (``jax.log_compiles``) for what compiled, and
``weakref`` + ``gc`` for what was kept.
"""

import dataclasses
import gc
import logging
import types
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import optax

import toolkit as tk

TARGET = jnp.array([1.0, 2.0])


def loss_to_global(p):
    return tk.mse(p, TARGET)


def compiles_of(f, caplog):
    """How many XLA compilations running ``f`` caused."""
    caplog.clear()
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        f()
    return sum("Finished XLA compilation" in r.getMessage() for r in caplog.records)


def test_a_changed_global_array_is_seen_on_the_next_call():
    global TARGET
    first = tk.optimise(loss_to_global, jnp.zeros(2), tk.Descent(0.5), steps=200).params
    saved, TARGET = TARGET, jnp.array([-3.0, 5.0])
    try:
        second = tk.optimise(loss_to_global, jnp.zeros(2), tk.Descent(0.5), steps=200).params
    finally:
        TARGET = saved
    np.testing.assert_allclose(first, [1.0, 2.0], rtol=1e-5)
    np.testing.assert_allclose(second, [-3.0, 5.0], rtol=1e-5)  # the minimiser of the new target, not the old


def test_a_changed_closure_array_and_a_changed_int_are_seen():
    def make(target, k):
        return lambda p: jnp.sum((p - k * target) ** 2)  # the minimiser is k·target

    for target, k in (([1.0, 1.0], 1), ([4.0, -2.0], 1), ([4.0, -2.0], 3)):
        p = tk.optimise(make(jnp.array(target), k), jnp.zeros(2), tk.Descent(0.25), steps=200).params
        np.testing.assert_allclose(p, k * np.array(target), rtol=1e-5)


def test_a_box_read_by_the_loss_or_the_sampler_is_read_at_each_call():
    """A ``tk.Param`` the loss or sampler reads (not among the optimised parameters) holds its value of that call."""
    box = tk.Param(jnp.array([1.0, -2.0]))
    loss = lambda p: tk.mse(p, box.value)  # noqa: E731  the same object each call
    sample = lambda key: box.value + 0 * jax.random.normal(key, (2,))  # noqa: E731
    z = tk.Param(jnp.zeros(2))
    runs = {
        "loss": lambda: tk.optimise(loss, jnp.zeros(2), tk.Descent(0.5), steps=100).params,
        "sampler": lambda: (
            tk.optimise(tk.mse, jnp.zeros(2), tk.Descent(0.5), steps=100, data=sample, key=jax.random.key(0)).params
        ),
        "implicit": lambda: (
            tk.optimise(lambda: tk.mse(z.value, box.value), tk.Params([z]), tk.Descent(0.5), steps=100).params[0].value
        ),
    }
    for name, run in runs.items():
        for target in ([1.0, -2.0], [7.0, 3.0], [-4.0, 0.5]):
            box.value = jnp.array(target)
            np.testing.assert_allclose(run(), target, rtol=1e-5, err_msg=name)  # the minimiser: the box's value now
            np.testing.assert_array_equal(box.value, target)  # and the box keeps it (no tracer left in it)


@dataclasses.dataclass
class Target:
    w: jax.Array


def test_an_array_held_by_a_dataclass_or_a_namespace_the_loss_reads_is_read_at_each_call():
    for holder in (Target(jnp.zeros(2)), types.SimpleNamespace(w=jnp.zeros(2))):
        loss = lambda p: tk.mse(p, holder.w)  # noqa: E731  the same object each call, and so the same program
        for target in ([1.0, -2.0], [7.0, 3.0]):
            holder.w = jnp.array(target)
            np.testing.assert_allclose(tk.optimise(loss, jnp.zeros(2), tk.Descent(0.5), steps=100).params, target)


LEARNING_RATE = jnp.array(0.1)


def test_an_optimiser_whose_schedule_reads_a_global_or_a_box_sees_its_value_at_each_call():
    """One step of plain descent on sum(p²) from ones is 1 - 2·lr: the learning rate the schedule reads now."""
    global LEARNING_RATE
    box = tk.Param(jnp.array(0.1))
    optimisers = {
        "optax, global": optax.sgd(lambda count: LEARNING_RATE),
        "tk rule, global": tk.Descent(lambda count: LEARNING_RATE),
        "optax, box": optax.sgd(lambda count: box.value),
        "tk rule, box": tk.Descent(lambda count: box.value),
    }
    saved = LEARNING_RATE
    try:
        for name, opt in optimisers.items():
            for lr in (0.1, 0.25, 0.125):
                LEARNING_RATE = box.value = jnp.array(lr)
                p = tk.optimise(lambda p: jnp.sum(p**2), jnp.ones(2), opt, steps=1).params
                np.testing.assert_allclose(p, 1 - 2 * lr, rtol=1e-6, err_msg=f"{name}, lr={lr}")
    finally:
        LEARNING_RATE = saved


def test_the_plain_loop_sees_a_schedule_that_reads_a_global_change_mid_loop():
    """``tk.update`` / ``tk.update_`` with a schedule reading a global: from the step it changes, the new rate."""
    global LEARNING_RATE
    saved = LEARNING_RATE
    rates = [0.1] * 4 + [0.25] * 4
    expected = np.prod([1 - 2 * lr for lr in rates])  # sum(p²) from ones: each step multiplies by 1 - 2·lr
    try:
        for make in (lambda: optax.sgd(lambda count: LEARNING_RATE), lambda: tk.Descent(lambda count: LEARNING_RATE)):
            opt = make()
            z, state = jnp.ones(2), tk.setup(opt, jnp.ones(2))
            box = tk.Param(jnp.ones(2))
            ps, implicit_opt = tk.Params([box]), make()
            for lr in rates:
                LEARNING_RATE = jnp.array(lr)
                (g,) = tk.gradient(lambda z: jnp.sum(z**2), z)
                z, state = tk.update(opt, state, z, g)
                tk.update_(implicit_opt, ps, tk.gradient(lambda: jnp.sum(box.value**2), ps))
            np.testing.assert_allclose(z, expected, rtol=1e-5)
            np.testing.assert_allclose(box.value, expected, rtol=1e-5)
    finally:
        LEARNING_RATE = saved


class Model:
    def __init__(self, w):
        self.w = w

    def loss(self, p):
        return tk.mse(p, self.w)


def test_bound_methods_and_new_optimiser_objects_do_not_recompile(caplog):
    model = Model(jnp.array([2.0, -1.0]))
    run = lambda eta: tk.optimise(model.loss, jnp.zeros(2), tk.Adam(eta), steps=300).params  # noqa: E731
    compiles_of(lambda: run(0.1), caplog)  # the first call compiles
    assert compiles_of(lambda: run(0.1), caplog) == 0  # a new bound method and a new tk.Adam(0.1)
    assert compiles_of(lambda: run(0.05), caplog) == 0  # another η: an input, not a constant
    model.w = jnp.array([5.0, 5.0])  # a changed attribute is seen too
    np.testing.assert_allclose(run(0.1), [5.0, 5.0], atol=0.05)


def test_a_finished_run_keeps_nothing_it_closed_over_alive():
    def make():
        big = np.ones(10**6, np.float32)
        return (lambda p: jnp.sum((p - big[:2]) ** 2)), weakref.ref(big)

    loss, alive = make()
    tk.optimise(loss, jnp.zeros(2), tk.Descent(0.1), steps=5)
    del loss
    gc.collect()
    assert alive() is None


def test_an_optax_transformation_made_anew_each_call_does_not_recompile(caplog):
    import optax

    run = lambda: tk.optimise(loss_to_global, jnp.zeros(2), optax.adam(1e-2), steps=50).params  # noqa: E731
    compiles_of(run, caplog)
    assert compiles_of(run, caplog) == 0


def test_a_rule_used_with_x64_on_then_off_gives_float32_inputs_and_no_warning():
    import warnings

    with jax.enable_x64(True):
        wide = tk.optimise(lambda p: jnp.sum((p - 1.0) ** 2), jnp.zeros(2, jnp.float64), tk.Momentum(0.0125), steps=20)
    assert wide.params.dtype == jnp.float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a float64 hyperparameter made under x64 would warn when passed in now
        narrow = tk.optimise(lambda p: jnp.sum((p - 1.0) ** 2), jnp.zeros(2), tk.Momentum(0.0125), steps=20)
    assert narrow.params.dtype == jnp.float32
    np.testing.assert_allclose(narrow.params, wide.params, rtol=1e-6)


def test_a_function_like_one_seen_before_keys_and_reads_as_the_walk_says():
    # The walk (closures.capture) is the oracle: a planned part has its key and its arrays, in its order.
    from toolkit import closures
    from toolkit.optimisation import programs

    class Model:
        def __init__(self, w):
            self.w = w

        def loss(self, z):
            return jnp.sum((z - self.w) ** 2)

    def make(target, power):
        return lambda z: jnp.sum(jnp.abs(z - target) ** power)

    cases = [
        [make(jnp.ones(2), 2), make(jnp.zeros(2), 2), make(jnp.zeros(3), 2), make(jnp.zeros(2), 3)],
        [Model(jnp.ones(2)).loss, Model(jnp.zeros(2)).loss, Model(np.zeros(2)).loss],
    ]
    for functions in cases:
        for f in functions * 2:  # the second time round every one of them has been seen
            part, walked = programs.function_part(f), closures.capture(f)
            assert part.key == walked.key
            assert len(part.arrays) == len(walked.arrays)
            assert all(a is b for a, b in zip(part.arrays, walked.arrays))
            x = jnp.array([0.5, -1.0, 2.0])[: walked.arrays[0].shape[0]]
            rebuilt, boxes = part.rebuild(walked.arrays)
            assert boxes == ()  # it reads no tk.Param
            np.testing.assert_allclose(rebuilt(x), f(x), rtol=1e-6)

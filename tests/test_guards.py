"""Guard plans (``toolkit.guards``) against their oracle, the capture walk's key (``toolkit.closures``).

A plan may pass only where the walk gives an equal key and the same arrays, in
the same order; it should pass where only array values changed (else it buys
nothing). Each case below is a value and changes of it; every pair is checked
both ways. End to end: results through plans against ``with tk.eager():`` and
hand-worked gradients, for the changes a plan must notice.
"""

import functools
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toolkit as tk
from toolkit import closures, compiled, guards

W = jnp.array([1.0, 2.0])
N = 2


@tk.struct
class Pair:
    a: jax.Array
    b: float


@tk.struct
class Labelled:
    a: jax.Array
    b: float
    label: str = tk.field(static=True, default="x")


class Model:
    def __init__(self, w, n):
        self.w, self.n = w, n

    def loss(self, x):
        return jnp.sum((self.w * x) ** self.n * W)


def _variants():
    """Named values; those in one group differ only as the name says."""
    box = tk.Param(jnp.ones(3))
    model = Model(jnp.ones(2), 2)
    opt = optax.sgd(0.1)
    x = jnp.ones(3)

    def closing(v, n):
        return lambda y: jnp.sum(v * y**n)

    return {
        "closure": {
            "base": closing(jnp.ones(3), 2),
            "new array values": closing(jnp.zeros(3), 2),
            "numpy array": closing(np.ones(3, np.float32), 2),
            "other shape": closing(jnp.ones(4), 2),
            "other dtype": closing(jnp.ones(3, jnp.int32), 2),
            "weak type": closing(jnp.asarray(1.0), 2),
            "other number": closing(jnp.ones(3), 3),
            "float number": closing(jnp.ones(3), 2.0),
            "other code": (lambda v, n: lambda y: jnp.sum(v + y**n))(jnp.ones(3), 2),
        },
        "scalars": {  # alike but for weak typing, where JAX's abstract values differ and the plan reads the fields
            "base": closing(jnp.asarray(1.0, jnp.float32), 2),
            "new value": closing(jnp.asarray(2.0, jnp.float32), 2),
            "computed": closing(jax.jit(lambda a: a * 3)(jnp.asarray(1.0, jnp.float32)), 2),
            "weak": closing(jnp.asarray(1.0), 2),
            "computed weak": closing(jax.jit(lambda: jnp.asarray(1.0) * 2)(), 2),
            "bfloat16": closing(jnp.asarray(1.0, jnp.bfloat16), 2),
            "numpy": closing(np.asarray(1.0, np.float32), 2),
        },
        "containers": {
            "base": ({"a": x, "b": [x, 1]}, (x, "s")),
            "new array values": ({"a": 2 * x, "b": [x, 1]}, (x, "s")),
            "other key order": ({"b": [x, 1], "a": x}, (x, "s")),
            "list for tuple": ({"a": x, "b": (x, 1)}, (x, "s")),
            "longer": ({"a": x, "b": [x, 1, 2]}, (x, "s")),
            "other string": ({"a": x, "b": [x, 1]}, (x, "t")),
        },
        "boxes": {
            "base": (lambda: jnp.sum(box.value), tk.Params([box])),
            "new box": (lambda: jnp.sum(box.value), tk.Params([tk.Param(jnp.ones(3))])),
            "two boxes": (lambda: jnp.sum(box.value), tk.Params([box, tk.Param(x)])),
        },
        "objects": {
            "base": model.loss,
            "same object": model.loss,
            "other object": Model(jnp.ones(2), 2).loss,
            "partial": functools.partial(Model.loss, model),
            "function": Model.loss,
        },
        "optimisers": {
            "base": (opt, opt.init(x)),
            "new state values": (opt, opt.init(2 * x)),
            "new optimiser": (optax.sgd(0.1), opt.init(x)),
            "momentum": (optax.sgd(0.1, 0.9), opt.init(x)),
        },
        "structs": {
            "base": Pair(jnp.ones(2), 1.0),
            "new array values": Pair(jnp.zeros(2), 1.0),
            "other float": Pair(jnp.ones(2), 2.0),
            "other type": (jnp.ones(2), 1.0),
            # a plan made from a struct whose fields are its leaves reads them straight off it: each change of
            # what a field holds (same leaf count or not) must still fail it, as a changed treedef does
            "field holding a tuple of one": Pair((jnp.ones(2),), 1.0),
            "number field holding a tuple": Pair(jnp.ones(2), (1.0,)),
            "field holding None": Pair(None, 1.0),
            "field holding a struct": Pair(Pair(jnp.ones(2), 1.0), 1.0),
            "static field": Labelled(jnp.ones(2), 1.0),
            "static field, new array values": Labelled(jnp.zeros(2), 1.0),
            "other static value": Labelled(jnp.ones(2), 1.0, "y"),
            "other number in a static struct": Labelled(jnp.ones(2), 3.0),
        },
        "partials": {
            "base": functools.partial(jnp.dot, jnp.ones(3)),
            "new array values": functools.partial(jnp.dot, jnp.zeros(3)),
            "other function": functools.partial(jnp.vdot, jnp.ones(3)),
            "keyword": functools.partial(jnp.dot, b=jnp.ones(3)),
        },
    }


CASES = [(group, name) for group, values in _variants().items() for name in values]


@pytest.mark.parametrize("group", sorted(_variants()))
def test_a_plan_passes_exactly_where_the_key_is_equal_with_the_same_arrays(group):
    values = _variants()[group]
    for made_from, first in values.items():
        captured = closures.capture(first)
        match = guards.plan(first, captured.key)
        assert match is not None, f"{group}/{made_from}: no plan"
        for name, other in values.items():
            arrays: list = []
            passed = match(other, arrays)
            walked = closures.capture(other)
            if passed:
                assert walked.key == captured.key, f"{group}: the plan of {made_from} passes {name}, the key differs"
                assert len(arrays) == len(walked.arrays)
                assert all(a is b for a, b in zip(arrays, walked.arrays)), f"{group}/{name}: other arrays"
            elif walked.key == captured.key and _same_types(walked.arrays, captured.arrays):
                pytest.fail(f"{group}: the plan of {made_from} fails {name}, whose key and array types are equal")


def _same_types(a, b):
    return len(a) == len(b) and all(type(x) is type(y) for x, y in zip(a, b))


def test_a_plan_is_not_looser_than_the_key_for_functions_met_twice():
    def times(n):
        return lambda y: y * n

    first = second = times(2.0)  # one function met twice: the key has its code only, the second time
    f = lambda y: jnp.sum(first(y) + second(y))  # noqa: E731
    captured = closures.capture(f)
    match = guards.plan(f, captured.key)
    assert match is not None and match(f, [])
    second = times(3.0)  # same code, another number: walked in full now, another key
    assert closures.capture(f).key != captured.key
    assert not match(f, [])


def test_a_function_whose_effects_are_judged_through_attributes_gets_no_plan():
    holder = types.SimpleNamespace(log=types.SimpleNamespace(items=[]))
    f = lambda x: holder.log.items.append(x)  # noqa: E731
    assert guards.plan(f, closures.capture(f).key) is None


def test_repeated_calls_do_not_walk_again(monkeypatch):
    z = tk.Param(jnp.ones((2, 2)))
    ps = tk.Params([z])
    walks = []
    real = closures.capture
    monkeypatch.setattr(closures, "capture", lambda v: walks.append(1) or real(v))
    for i in range(5):
        x = jnp.array([1.0, 2.0]) * i  # a new lambda closing over a new array each step
        gs = tk.gradient(lambda: jnp.sum((z.value @ x) ** 2), ps)
        np.testing.assert_allclose(gs[z], 2 * np.outer(np.asarray(z.value) @ np.asarray(x), np.asarray(x)), 1e-6)
    assert len(walks) <= 2  # the first call's walk (and its trace's): the others replay the plan


def test_a_builtin_shadowed_by_a_new_global_is_seen():
    scope = {"jnp": jnp}
    exec("def loss(x):\n    return jnp.sum(abs(x))", scope)
    x = jnp.array([-1.0, 2.0])
    np.testing.assert_allclose(tk.gradient(scope["loss"], x)[0], [-1.0, 1.0])
    np.testing.assert_allclose(tk.gradient(scope["loss"], x)[0], [-1.0, 1.0])  # through the plan
    scope["abs"] = lambda v: 3 * v  # a global now, where the builtin was
    np.testing.assert_allclose(tk.gradient(scope["loss"], x)[0], [3.0, 3.0])


def test_a_side_effect_that_appears_through_an_attribute_is_seen_every_call():
    class Pure:
        def append(self, value):
            return value

    class Holder:
        __slots__ = ("items",)  # keyed by identity: nothing of it is walked

    holder = Holder()
    holder.items = Pure()

    def loss(x):
        holder.items.append(1)
        return jnp.sum(x**2)

    x = jnp.array([1.0, 2.0])
    for _ in range(2):
        np.testing.assert_allclose(tk.gradient(loss, x)[0], [2.0, 4.0])
    holder.items = []  # now an outer list: appending is a side effect, so every call must append
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tk.EagerFallbackWarning)
        for _ in range(3):
            np.testing.assert_allclose(tk.gradient(loss, x)[0], [2.0, 4.0])
    assert holder.items == [1, 1, 1]


def test_plans_follow_the_x64_mode():
    x = np.array([1.0, 2.0])  # float64 NumPy: float32 without x64, float64 with it
    f = lambda v: jnp.sum(v**2)  # noqa: E731
    for _ in range(2):
        assert tk.gradient(f, x)[0].dtype == jnp.float32
    with jax.enable_x64(True):
        for _ in range(2):
            assert tk.gradient(f, x)[0].dtype == jnp.float64
    assert tk.gradient(f, x)[0].dtype == jnp.float32


def test_a_cleared_jax_cache_retraces_through_a_plan():
    w = jnp.array([2.0, 3.0])
    x = jnp.array([1.0, 1.0])
    f = lambda v: jnp.sum(w * v**2)  # noqa: E731
    np.testing.assert_allclose(tk.gradient(f, x)[0], [4.0, 6.0])
    jax.clear_caches()
    w = jnp.array([1.0, -1.0])
    np.testing.assert_allclose(tk.gradient(lambda v: jnp.sum(w * v**2), x)[0], [2.0, -2.0])


def test_calls_whose_plans_keep_failing_stop_making_them_and_stay_right():
    x = jnp.array([1.0, 2.0])
    for _ in range(3 * compiled._PLANS_PER_ENTRY):
        helper = lambda v: 2.0 * v  # noqa: E731  made anew each step and met twice: its plan checks identity
        twice = lambda v: helper(v) + helper(v)  # noqa: E731
        f = lambda v: jnp.sum(helper(v) * twice(v))  # noqa: E731  sum(8 v²)
        np.testing.assert_allclose(tk.gradient(f, x)[0], 16 * np.asarray(x), rtol=1e-6)
    entry = compiled._PLANS[tk.grad._explicit_gradient][0].entry
    assert entry.plans == compiled._PLANS_PER_ENTRY


def test_a_closure_over_an_optimiser_and_a_box_read_twice_plan_as_the_walk_keys():
    # A closure cell holding a remembered library tuple (an optimiser), and one box read both through a closure
    # and through the Params: the plan matches the call it was made from, and the arrays are the walk's.
    opt = tk.Momentum()
    z = tk.Param(jnp.ones(2))
    ps = tk.Params([z])
    f = lambda: jnp.sum(z.value * 2) + 0 * len(opt)  # noqa: E731
    values = ("tk.gradient", f, ps, False)
    captured = closures.capture(values)
    match = guards.plan(values, captured.key)
    assert match is not None
    arrays: list = []
    assert match(values, arrays)
    assert len(arrays) == len(captured.arrays) and all(a is b for a, b in zip(arrays, captured.arrays))
    z.value = jnp.ones(3)  # another shape: no match
    assert not match(values, [])

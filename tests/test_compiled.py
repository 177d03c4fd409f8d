"""Eager calls run compiled (``toolkit.compiled``): never stale, falling back rather than breaking, nothing kept alive.

Oracles: gradients worked out by hand (``d/dz mean((z x - t x)²)`` and the like),
the same call inside ``with tk.eager():`` (plain JAX, re-traced every call, which is
what toolkit did before it compiled), and Python's own ``gc``/``weakref``.
"""

import dataclasses
import gc
import itertools
import threading
import types
import warnings
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toolkit as tk

SCALE = jnp.array([1.0, 2.0, 3.0])
POWER = 2


def by_global(x):
    return jnp.sum(SCALE * x**POWER)


def grad_of_mse(z, x, t):
    """d/dz mean((z @ x - t @ x)²) for z of shape (n, n): 2/n (z x - t x) xᵀ."""
    r = z @ x - t @ x
    return 2.0 / r.size * np.outer(r, x)


def test_a_new_lambda_each_step_closing_over_a_new_array_is_never_stale():
    z = tk.Param(jnp.eye(3))
    ps = tk.Params([z])
    target = jnp.arange(9.0).reshape(3, 3)
    for i in range(5):
        x = jnp.array([1.0, -1.0, 0.5]) * (i + 1)  # a new x every step
        gs = tk.gradient(lambda: tk.mse(z.value @ x, target @ x), ps)
        np.testing.assert_allclose(gs[z], grad_of_mse(np.asarray(z.value), np.asarray(x), np.asarray(target)), 1e-5)
        z.value = z.value + 0.1 * i  # the box changes too


def test_a_changed_global_array_is_seen_and_a_changed_global_number_compiles_anew():
    global SCALE, POWER
    x = jnp.array([1.0, 2.0, 3.0])
    old_scale, old_power = SCALE, POWER
    try:
        np.testing.assert_allclose(tk.gradient(by_global, x)[0], 2 * np.asarray(SCALE) * np.asarray(x))
        SCALE = jnp.array([-1.0, 0.0, 10.0])
        np.testing.assert_allclose(tk.gradient(by_global, x)[0], 2 * np.asarray(SCALE) * np.asarray(x))
        POWER = 3
        np.testing.assert_allclose(tk.gradient(by_global, x)[0], 3 * np.asarray(SCALE) * np.asarray(x) ** 2)
    finally:
        SCALE, POWER = old_scale, old_power


def test_changed_closure_contents_of_every_kind_are_seen():
    x = jnp.array([1.0, 2.0])
    w = jnp.array([3.0, 4.0])
    n = 2
    act = jnp.sin

    def loss(x):
        return jnp.sum(act(w * x) ** n)

    def expected():
        u = np.asarray(w) * np.asarray(x)
        if act is jnp.sin:
            return n * np.sin(u) ** (n - 1) * np.cos(u) * np.asarray(w)
        return n * np.tanh(u) ** (n - 1) * (1 - np.tanh(u) ** 2) * np.asarray(w)

    for change in range(4):
        np.testing.assert_allclose(tk.gradient(loss, x)[0], expected(), rtol=1e-5)
        if change == 0:
            w = jnp.array([-1.0, 0.5])  # an array: an input
        elif change == 1:
            n = 3  # a number: a new program
        elif change == 2:
            act = jnp.tanh  # a function: a new program


def test_nested_closures_and_functions_reached_through_them():
    def make(offset):
        def inner(x):
            return jnp.sum((x - offset) ** 2)

        def outer(x):
            return inner(x) * 2

        return outer

    x = jnp.array([1.0, 2.0])
    for offset in (jnp.zeros(2), jnp.array([5.0, -5.0])):
        np.testing.assert_allclose(tk.gradient(make(offset), x)[0], 4 * (np.asarray(x) - np.asarray(offset)))


class Model:
    def __init__(self, w):
        self.w = w

    def loss(self, x):
        return jnp.sum((self.w * x - SCALE) ** 2)


def test_methods_of_objects_read_their_attributes_and_their_globals():
    global SCALE
    model = Model(jnp.array([1.0, 2.0, 3.0]))
    x = jnp.array([1.0, 1.0, 1.0])
    old = SCALE
    try:
        for _ in range(2):
            want = 2 * (np.asarray(model.w) * np.asarray(x) - np.asarray(SCALE)) * np.asarray(model.w)
            np.testing.assert_allclose(tk.gradient(model.loss, x)[0], want)
            np.testing.assert_allclose(tk.gradient(lambda x: model.loss(x), x)[0], want)  # the method called inside
            model.w = jnp.array([-2.0, 0.5, 4.0])
            SCALE = jnp.array([7.0, 8.0, 9.0])  # a global the method reads
    finally:
        SCALE = old


@dataclasses.dataclass
class Config:
    w: jax.Array


@dataclasses.dataclass(frozen=True)
class FrozenConfig:
    w: jax.Array


@dataclasses.dataclass(slots=True)
class SlottedConfig:
    w: jax.Array
    n: int = 2


class Slotted:
    __slots__ = ("w", "unset")

    def __init__(self, w):
        self.w = w

    def times(self, x):
        return x * self.w


class UnhashableByEq:
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, w):
        self.w = w

    def __eq__(self, other):
        return self is other


def _set_w(holder, value):
    object.__setattr__(holder, "w", value)  # a frozen dataclass too: it may still be changed this way


HOLDERS = {
    "dataclass": Config,
    "frozen dataclass": FrozenConfig,
    "dataclass(slots=True)": SlottedConfig,
    "__slots__ class": Slotted,
    "__eq__ without __hash__": UnhashableByEq,
    "SimpleNamespace": lambda w: types.SimpleNamespace(w=w),
}


@pytest.mark.parametrize("make", HOLDERS.values(), ids=HOLDERS.keys())
def test_an_array_held_by_a_dataclass_a_slotted_or_an_unhashable_object_is_never_stale(make):
    """d/dx (x · holder.w) is holder.w now; these objects once keyed by identity, their arrays baked in."""
    holder = make(jnp.array(1.0))
    for value in (1.0, 5.0, -2.0):
        _set_w(holder, jnp.array(value))
        assert float(tk.gradient(lambda x: x * holder.w, 1.0)[0]) == value
        with tk.eager():
            assert float(tk.gradient(lambda x: x * holder.w, 1.0)[0]) == value  # the oracle: plain JAX
    assert float(holder.w) == -2.0 and type(holder.w) is type(jnp.array(0.0))  # the user's value, untouched
    if isinstance(holder, Slotted):
        assert float(tk.gradient(lambda x: holder.times(x), 1.0)[0]) == -2.0  # through a method
        assert not hasattr(holder, "unset")  # an unset slot stays unset


@dataclasses.dataclass(eq=False)
class Linked:
    w: jax.Array
    other: "Linked | None" = None


def test_an_object_met_twice_or_in_a_cycle_is_walked_once_and_read_at_each_call():
    a, b = Linked(jnp.array(1.0)), Linked(jnp.array(2.0))
    a.other, b.other = b, a  # a cycle
    shared = {"again": a}  # and a met a second time through a dict
    f = lambda x: x * (a.w + a.other.w + shared["again"].w)  # noqa: E731
    for wa, wb in ((1.0, 2.0), (3.0, -5.0), (0.5, 0.25)):
        a.w, b.w = jnp.array(wa), jnp.array(wb)
        assert float(tk.gradient(f, 1.0)[0]) == 2 * wa + wb
    assert a.other is b and b.other is a and shared["again"] is a  # the user's objects as they were


class SlottedReadingAGlobal:
    __slots__ = ("k",)

    def __init__(self):
        self.k = 1.0

    def scaled(self, x):
        return x * SCALE[0] * self.k


def test_a_slotted_object_whose_method_reads_a_global_array_is_an_error_not_a_stale_result():
    holder = SlottedReadingAGlobal()
    with pytest.raises(TypeError, match=r"SlottedReadingAGlobal has __slots__.*scaled read arrays from globals"):
        tk.gradient(lambda x: holder.scaled(x), 1.0)


def test_a_box_read_but_not_differentiated_is_an_input():
    a, b = tk.Param(jnp.array(2.0)), tk.Param(jnp.array(3.0))
    ps = tk.Params([a])
    for value in (3.0, -1.5):
        b.value = jnp.array(value)
        gs = tk.gradient(lambda: a.value**2 * b.value, ps)
        assert float(gs[a]) == pytest.approx(2 * float(a.value) * value)
    assert float(a.value) == 2.0 and float(b.value) == -1.5  # the boxes hold the user's values again


def test_the_seed_loop_written_literally_converges():
    k1, k2 = jax.random.split(jax.random.key(0))
    target = jax.random.uniform(jax.random.key(1), (3, 3))
    z = tk.Param(jax.random.uniform(k1, (3, 3)))
    ps, opt = tk.Params([z]), tk.Momentum()
    for i in range(2000):
        x = jax.random.uniform(jax.random.fold_in(k2, i), (3,))
        gs = tk.gradient(lambda: tk.mse(z.value @ x, target @ x), ps)
        tk.update_(opt, ps, gs)
    np.testing.assert_allclose(z.value, target, atol=2e-2)


def test_update_keeps_the_types_of_leaves_it_does_not_optimise():
    params = {"w": jnp.array([1.0, 2.0]), "n": 3, "ids": np.array([4, 5]), "name": "a"}
    opt = tk.Descent(0.5)
    new, _ = tk.update(opt, tk.setup(opt, params), params, {"w": jnp.ones(2), "n": None, "ids": None, "name": None})
    assert new["n"] == 3 and type(new["n"]) is int
    assert new["ids"] is params["ids"] and new["name"] == "a"
    np.testing.assert_allclose(new["w"], [0.5, 1.5])


def test_python_if_on_a_value_falls_back_once_with_the_line_and_the_same_results():
    traced = itertools.count()

    def relu_loss(x):
        next(traced)
        if jnp.sum(x) > 0:  # a Python if on a value: cannot be traced
            return jnp.sum(x**2)
        return -jnp.sum(x)

    with pytest.warns(tk.EagerFallbackWarning, match=r"relu_loss.*test_compiled\.py:\d+ .*if jnp\.sum\(x\) > 0"):
        (g,) = tk.gradient(relu_loss, jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [2.0, 4.0])
    assert next(traced) == 2  # the trace that failed, and the eager call
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: no second warning
        (g,) = tk.gradient(relu_loss, jnp.array([-1.0, -2.0]))
    np.testing.assert_allclose(g, [-1.0, -1.0])
    assert next(traced) == 4  # one eager call (3), not a retried trace: remembered


@pytest.mark.parametrize(
    "needs_value",
    [lambda x, n: jnp.sum(x) * n.item(), lambda x, n: jnp.sum(x) * float(np.sum(np.asarray(n)))],
    ids=["item", "numpy"],
)
def test_item_and_numpy_on_values_fall_back(needs_value):
    x, n = jnp.array([1.0, 2.0]), jnp.array(3)  # n is not differentiated: eagerly, it is a concrete array
    with pytest.warns(tk.EagerFallbackWarning, match="needs a concrete value"):
        got = tk.gradient(needs_value, x, n)
    np.testing.assert_allclose(got[0], [3.0, 3.0])
    assert got[1] is None


def test_the_function_is_traced_once_and_every_call_gives_the_same_bits():
    traces = itertools.count()

    def loss(x):
        next(traces)  # runs when the function runs in Python: only when a program is traced
        return jnp.sum(jnp.sin(x) * jnp.exp(x))

    x = jnp.array([0.3, 1.7, -0.4])
    results = [tk.gradient(loss, x)[0] for _ in range(4)]
    np.testing.assert_allclose(results[0], (np.cos(x) + np.sin(x)) * np.exp(x), rtol=1e-6)
    assert all(np.array_equal(r, results[0]) for r in results)  # the first call runs the same program as the rest
    assert next(traces) == 1


def test_printing_runs_every_call(capsys):
    def noisy(x):
        print("called")
        return jnp.sum(x**2)

    with pytest.warns(tk.EagerFallbackWarning, match=r"calls print\(\)"):
        tk.gradient(noisy, jnp.ones(2))
    for _ in range(3):
        tk.gradient(noisy, jnp.ones(2))
    assert capsys.readouterr().out.count("called") == 4


def test_appending_to_an_outer_list_happens_every_call():
    seen = []

    def logging_loss(x):
        loss = jnp.sum(x**2)
        seen.append(loss)
        return loss

    with pytest.warns(tk.EagerFallbackWarning, match=r"seen\.append"):
        for i in range(3):
            tk.gradient(logging_loss, jnp.full(2, float(i)))
    assert len(seen) == 3


def test_eager_block_runs_plain_jax_without_warnings(capsys):
    def noisy(x):
        print("called")
        return jnp.sum(x**2)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tk.eager():
            for _ in range(2):
                (g,) = tk.gradient(noisy, jnp.ones(2))
    np.testing.assert_allclose(g, [2.0, 2.0])
    assert capsys.readouterr().out.count("called") == 2


def test_the_cache_keeps_no_user_object_alive():
    class Big:
        def __init__(self):
            self.w = jnp.ones(1000)

        def loss(self, x):
            return jnp.sum(self.w * x)

    def use() -> weakref.ref:
        big = Big()
        tk.gradient(big.loss, jnp.ones(1000))
        tk.gradient(lambda x: big.loss(x), jnp.ones(1000))
        z = tk.Param(jnp.ones(3))
        tk.update_(tk.Momentum(), tk.Params([z]), tk.gradient(lambda: big.loss(z.value[0]), tk.Params([z])))
        return weakref.ref(big)

    dead = use()
    gc.collect()
    assert dead() is None


def test_under_an_outer_jit_vmap_and_grad_it_is_just_traced():
    f = lambda x: jnp.sum(jnp.sin(x))  # noqa: E731
    x = jnp.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(jax.jit(lambda x: tk.gradient(f, x)[0])(x), np.cos(x), rtol=1e-6)
    np.testing.assert_allclose(
        jax.vmap(lambda x: tk.gradient(f, x)[0])(jnp.stack([x, 2 * x])), np.cos([x, 2 * x]), 1e-6
    )
    np.testing.assert_allclose(jax.grad(lambda x: jnp.sum(tk.gradient(f, x)[0]))(x), -np.sin(x), rtol=1e-6)

    def closes_over_traced(x):
        return tk.gradient(lambda y: jnp.sum(x * y**2), x)[0]  # x is a tracer in the closure

    np.testing.assert_allclose(jax.jit(closes_over_traced)(x), 2 * np.asarray(x) ** 2, rtol=1e-6)  # d/dy x y²


def test_has_aux_returns_the_aux_as_the_function_made_it():
    def loss(x):
        return jnp.sum(x**2), {"max": jnp.max(x), "label": "run", "n": 3}

    x = jnp.array([1.0, -3.0])
    (g,), aux = tk.gradient(loss, x, has_aux=True)
    np.testing.assert_allclose(g, [2.0, -6.0])
    assert aux["label"] == "run" and aux["n"] == 3 and type(aux["n"]) is int and float(aux["max"]) == 1.0
    (value, aux), (g,) = tk.withgradient(loss, x, has_aux=True)
    assert float(value) == 10.0 and aux["n"] == 3
    z = tk.Param(x)
    gs, aux = tk.gradient(lambda: loss(z.value), tk.Params([z]), has_aux=True)
    np.testing.assert_allclose(gs[z], [2.0, -6.0])
    with pytest.raises(TypeError, match=r"has_aux=True, f must return a pair \(loss, aux\)"):
        tk.gradient(lambda x: jnp.sum(x), x, has_aux=True)


def test_pullback_jacobian_and_hessian_compiled_match_by_hand():
    x = jnp.array([0.5, 1.5])
    y, back = tk.pullback(lambda x: jnp.sin(x) * 3, x)
    np.testing.assert_allclose(y, 3 * np.sin(x), rtol=1e-6)
    np.testing.assert_allclose(back(jnp.array([1.0, 2.0]))[0], 3 * np.cos(x) * [1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(tk.jacobian(lambda x: x**3, x)[0], np.diag(3 * np.asarray(x) ** 2), rtol=1e-6)
    np.testing.assert_allclose(tk.hessian(lambda x: jnp.sum(x**3), x), np.diag(6 * np.asarray(x)), rtol=1e-6)


def test_x64_switched_between_calls_gives_each_mode_its_dtype():
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    assert tk.gradient(f, 1.5)[0].dtype == jnp.float32
    with jax.enable_x64(True):
        g = tk.gradient(f, 1.5)[0]
        assert g.dtype == jnp.float64 and float(g) == 3.0
    assert tk.gradient(f, 1.5)[0].dtype == jnp.float32


def test_what_a_function_reads_off_the_users_own_module_is_never_stale(tmp_path, monkeypatch):
    (tmp_path / "user_model.py").write_text(
        "import jax.numpy as jnp\nDATA = jnp.array([1.0, 2.0])\ndef loss(p):\n    return jnp.sum((p - DATA) ** 2)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_model  # noqa: PLC0415  (made by this test)

    f = lambda p: user_model.loss(p) + jnp.sum(p * user_model.DATA)  # noqa: E731
    p = jnp.array([0.5, 0.5])
    for data in ([1.0, 2.0], [10.0, -20.0]):
        user_model.DATA = jnp.array(data)  # read through the module, in `loss` and in `f`
        np.testing.assert_allclose(tk.gradient(f, p)[0], 2 * (np.asarray(p) - data) + np.asarray(data))


def test_the_x64_mode_read_each_call_is_jaxs_own_in_every_mode_and_thread():
    """``compiled.float64_now`` (read on every call, part of every key) is the very dtype
    ``jax.dtypes.canonicalize_dtype(np.float64)`` gives: globally, inside ``jax.enable_x64`` either way, and in
    a thread started inside it (JAX's context managers are per thread)."""
    from toolkit import compiled

    def both():
        return compiled.float64_now(), jax.dtypes.canonicalize_dtype(np.float64)

    seen = [both()]
    for mode in (True, False):
        with jax.enable_x64(mode):
            seen.append(both())
            thread_seen = []
            thread = threading.Thread(target=lambda: thread_seen.append(both()))
            thread.start()
            thread.join()
            seen += thread_seen
    assert all(ours is jaxs for ours, jaxs in seen), seen
    assert {jaxs for _, jaxs in seen} == {np.dtype(np.float32), np.dtype(np.float64)}  # both modes were met

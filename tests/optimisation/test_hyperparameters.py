"""The rules' hyperparameters: names and aliases, arrays and traced values, inject_hyperparams, repr and equality,
and Adam in half precision; each step checked against the NumPy transcription of Flux in test_rules."""

import copy
import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toolkit as tk
from tests.optimisation.test_rules import (
    flux_adam,
    flux_descent,
    flux_momentum,
    flux_nesterov,
    flux_trajectory,
)

GRADIENTS = np.random.default_rng(21).normal(size=(12, 3))
X0 = np.random.default_rng(22).normal(size=3)


def trajectory(opt, x0=X0, gradients=GRADIENTS, dtype=None):
    """``tk.update`` on the fixed gradients, one jitted step at a time: every iterate."""
    step = jax.jit(lambda state, x, g: tk.update(opt, state, x, g))
    x = jnp.asarray(x0, dtype)
    state, path = tk.setup(opt, x), []
    for g in gradients:
        x, state = step(state, x, jnp.asarray(g, x.dtype))
        path.append(np.asarray(x))
    return np.array(path)


def expected(rule, x0=X0, gradients=GRADIENTS):
    return flux_trajectory(rule, x0, lambda x, t: gradients[t], len(gradients))


# --- names --------------------------------------------------------------------------------------------------


def test_signatures_use_the_ascii_names():
    names = {rule: list(inspect.signature(getattr(tk, rule)).parameters) for rule in ("Descent", "Momentum", "Adam")}
    assert names == {
        "Descent": ["eta", "aliases"],
        "Momentum": ["eta", "rho", "aliases"],
        "Adam": ["eta", "beta", "epsilon", "aliases"],
    }
    assert list(inspect.signature(tk.Nesterov).parameters) == ["eta", "rho", "aliases"]


SPELLINGS = [
    # (rule, Flux's transcription, every spelling of the same hyperparameters)
    ("Descent", flux_descent(0.05), [tk.Descent(0.05), tk.Descent(eta=0.05), tk.Descent(η=0.05)]),
    (
        "Momentum",
        flux_momentum(0.02, 0.7),
        [tk.Momentum(0.02, 0.7), tk.Momentum(eta=0.02, rho=0.7), tk.Momentum(η=0.02, ρ=0.7), tk.Momentum(0.02, ρ=0.7)],
    ),
    (
        "Nesterov",
        flux_nesterov(0.02, 0.7),
        [tk.Nesterov(0.02, 0.7), tk.Nesterov(η=0.02, rho=0.7), tk.Nesterov(**{"η": 0.02, "ρ": 0.7})],
    ),
    (
        "Adam",
        flux_adam(0.05, (0.8, 0.9), 0.5),  # an ϵ large enough to change every step, so an ignored alias shows
        [
            tk.Adam(0.05, (0.8, 0.9), 0.5),
            tk.Adam(eta=0.05, beta=(0.8, 0.9), epsilon=0.5),
            tk.Adam(η=0.05, β=(0.8, 0.9), ϵ=0.5),  # ϵ in source: Python reads it as ε (U+03B5)
            tk.Adam(0.05, [0.8, 0.9], **{"ϵ": 0.5}),  # U+03F5, Flux's, as a dict key is not normalised
            tk.Adam(0.05, (0.8, 0.9), **{"ε": 0.5}),  # U+03B5
        ],
    ),
]


@pytest.mark.parametrize(("name", "rule", "spellings"), SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_every_spelling_is_the_same_rule_and_steps_as_flux(x64, name, rule, spellings):
    assert "\u03f5" != "\u03b5"  # the two epsilons really are different strings
    assert all(opt == spellings[0] for opt in spellings)
    assert len({repr(opt) for opt in spellings}) == 1
    flux = expected(rule)
    for opt in spellings:
        np.testing.assert_allclose(trajectory(opt), flux, rtol=1e-12, atol=1e-14)
    default = {"Descent": flux_descent(0.1), "Momentum": flux_momentum(0.01, 0.9)}.get(
        name, flux_nesterov(0.001, 0.9) if name == "Nesterov" else flux_adam(0.05, (0.8, 0.9), 1e-8)
    )
    assert np.max(np.abs(expected(default) - flux)) > 1e-3  # the hyperparameters given really changed the steps


def test_unknown_doubled_and_misplaced_names_are_clear_errors():
    with pytest.raises(TypeError, match=r"^tk\.Adam: unknown hyperparameter 'lr'; tk\.Adam takes eta \(or η\), "):
        tk.Adam(lr=0.1)
    with pytest.raises(TypeError, match=r"beta \(or β\), epsilon \(or ϵ, ε\)\. Example: tk\.Adam\(eta=0\.001, "):
        tk.Adam(eps=1e-6)
    with pytest.raises(TypeError, match=r"^tk\.Descent: unknown hyperparameter 'ρ'; tk\.Descent takes eta \(or η\)\."):
        tk.Descent(ρ=0.9)
    with pytest.raises(TypeError, match=r"^tk\.Adam: got epsilon \(ϵ\) twice, as epsilon=1e-06 and as ε=1e-07; "):
        tk.Adam(epsilon=1e-6, ε=1e-7)
    with pytest.raises(TypeError, match=r"got epsilon \(ϵ\) twice, as ϵ=1e-06 and as ε=1e-07; pass only one"):
        tk.Adam(**{"\u03f5": 1e-6, "\u03b5": 1e-7})
    with pytest.raises(TypeError, match=r"got beta \(β\) twice, positionally \(\(0\.8, 0\.9\)\) and as beta="):
        tk.Adam(0.1, (0.8, 0.9), beta=(0.8, 0.9))
    with pytest.raises(TypeError, match=r"got eta \(η\) twice, as eta=0\.1 and as η=0\.2"):
        tk.Descent(eta=0.1, η=0.2)
    # inject_hyperparams binds by the signature: the Greek names cannot be injected, and the error says so
    with pytest.raises(TypeError, match=r"inject_hyperparams passes hyperparameters by their ASCII names; write eta="):
        optax.inject_hyperparams(tk.Momentum)(η=0.1).init(jnp.ones(2))


# --- values: numbers, arrays, schedules, traced values ---------------------------------------------------


def test_zero_dimensional_arrays_are_hyperparameters_and_step_as_flux(x64):
    f64 = functools.partial(jnp.asarray, dtype=jnp.float64)
    cases = [
        (tk.Descent(f64(0.05)), flux_descent(0.05)),
        (tk.Momentum(np.array(0.02), f64(0.7)), flux_momentum(0.02, 0.7)),
        (tk.Nesterov(eta=f64(0.02), ρ=np.float64(0.7)), flux_nesterov(0.02, 0.7)),
        (tk.Adam(f64(0.05), (f64(0.8), np.array(0.9)), f64(0.5)), flux_adam(0.05, (0.8, 0.9), 0.5)),
        (tk.Momentum(f64(0.02), jnp.asarray(1, jnp.int32)), flux_momentum(0.02, 1.0)),  # an integer ρ = 1: the end
    ]
    for opt, rule in cases:
        np.testing.assert_allclose(trajectory(opt), expected(rule), rtol=1e-12, atol=1e-14)
    opt = tk.Adam(f64(0.05), (f64(0.8), 0.9))
    assert isinstance(opt.eta, jax.Array) and isinstance(opt.beta, tuple) and opt.beta[1] == 0.9


BAD_VALUES = [
    (lambda v: tk.Descent(v), r"eta \(η\) must be a finite number", [np.nan, jnp.array(np.inf), jnp.array([0.1])]),
    (lambda v: tk.Momentum(rho=v), r"rho \(ρ\) must be a number in \[0, 1\]", [1.5, jnp.array(-0.1), np.array(2)]),
    (lambda v: tk.Nesterov(ρ=v), r"rho \(ρ\) must be a number in \[0, 1\]", [jnp.array(np.nan), lambda t: 0.9]),
    (lambda v: tk.Adam(beta=(0.9, v)), r"beta\[1\] \(β₂\) must be a number in \[0, 1\)", [1.0, jnp.array(1.0)]),
    (lambda v: tk.Adam(β=(v, 0.9)), r"beta\[0\] \(β₁\) must be a number in \[0, 1\)", [jnp.array(-1e-3), "0.9"]),
    (lambda v: tk.Adam(ϵ=v), r"epsilon \(ϵ\) must be a finite number >= 0", [jnp.array(-1e-8), jnp.array(np.inf)]),
    (lambda v: tk.Adam(beta=v), r"beta \(β\) must be a pair \(β₁, β₂\) such as", [jnp.array([0.9, 0.999]), 0.9]),
]
REFUSED_TYPES = [True, np.bool_(False), jnp.array(True), jnp.array(0.1j), jax.random.key(0), None, "0.1", [0.1]]


@pytest.mark.parametrize(("make", "message", "values"), BAD_VALUES, ids=[b[1][:14] for b in BAD_VALUES])
def test_concrete_values_are_checked(make, message, values):
    for value in values:
        with pytest.raises(ValueError, match=message):
            make(value)


@pytest.mark.parametrize("value", REFUSED_TYPES, ids=lambda v: type(v).__name__)
def test_booleans_complex_numbers_keys_and_non_numbers_are_refused(value):
    for make in (tk.Descent, lambda v: tk.Momentum(rho=v), lambda v: tk.Adam(beta=(v, 0.9)), lambda v: tk.Adam(ϵ=v)):
        with pytest.raises(ValueError, match=r"^tk\.\w+: \w+(\[\d\])? \(.+\) must be"):
            make(value)


def test_traced_hyperparameters_pass_through_jit_vmap_and_grad(x64):
    x, g = jnp.asarray(X0), jnp.asarray(GRADIENTS[0])

    def first_step(make, *hyper):
        opt = make(*hyper)
        return tk.update(opt, tk.setup(opt, x), x, g)[0]

    # vmap over η: one Descent step per η
    etas = jnp.array([0.1, 0.2, -0.3])
    np.testing.assert_allclose(jax.vmap(lambda η: first_step(tk.Descent, η))(etas), X0 - etas[:, None] * g, rtol=1e-14)

    # jit over every Adam hyperparameter: two steps, against the transcription
    def two_steps(eta, b1, b2, eps):
        opt = tk.Adam(eta, (b1, b2), eps)
        x_, state = tk.update(opt, tk.setup(opt, x), x, g)
        return tk.update(opt, state, x_, 2 * g)[0]

    flux = flux_trajectory(flux_adam(0.05, (0.8, 0.9), 0.5), X0, lambda x, t: (1 + t) * GRADIENTS[0], 2)[-1]
    np.testing.assert_allclose(jax.jit(two_steps)(0.05, 0.8, 0.9, 0.5), flux, rtol=1e-13)
    # traced values are not checked: ρ = 1.5 (out of range) is passed to optax as it is
    got = jax.jit(lambda ρ: first_step(tk.Nesterov, 0.1, ρ))(1.5)
    np.testing.assert_allclose(got, X0 - (1 + 1.5) * 0.1 * GRADIENTS[0], rtol=1e-14)
    # and grad sees through a rule: d(x - η g)/dη = -g
    np.testing.assert_allclose(jax.jacobian(lambda η: first_step(tk.Descent, η))(0.1), -GRADIENTS[0], rtol=1e-14)


def test_inject_hyperparams_puts_them_in_the_state_for_every_rule(x64):
    # One step at η = 0.1, then state.hyperparams["eta"] = 0.2 and a second step: against Flux with its η set
    # to 0.1 and then 0.2 (the transcription's η as a schedule t -> η_t).
    η = lambda t: (0.1, 0.2)[t]
    cases = [
        (tk.Descent, dict(eta=0.1), flux_descent(η), flux_descent(0.1)),
        (tk.Momentum, dict(eta=0.1, rho=0.5), flux_momentum(η, 0.5), flux_momentum(0.1, 0.5)),
        (tk.Nesterov, dict(eta=0.1, rho=0.5), flux_nesterov(η, 0.5), flux_nesterov(0.1, 0.5)),
        (
            tk.Adam,
            dict(eta=0.1, beta=(0.8, 0.9), epsilon=0.5),
            flux_adam(η, (0.8, 0.9), 0.5),
            flux_adam(0.1, (0.8, 0.9), 0.5),
        ),
    ]
    for make, hyper, rule, unchanged in cases:
        opt = optax.inject_hyperparams(make)(**hyper)
        step = jax.jit(lambda state, x, g: tk.update(opt, state, x, g))
        x = jnp.asarray(X0)
        state = tk.setup(opt, x)
        numeric = {k for k, v in hyper.items() if not isinstance(v, tuple)}  # a tuple (β) stays a static argument
        assert set(state.hyperparams) == numeric, make
        assert float(state.hyperparams["eta"]) == 0.1
        x, state = step(state, x, jnp.asarray(GRADIENTS[0]))
        state.hyperparams["eta"] = 0.2
        x, state = step(state, x, jnp.asarray(GRADIENTS[1]))
        flux = expected(rule, gradients=GRADIENTS[:2])[-1]
        np.testing.assert_allclose(x, flux, rtol=1e-13, err_msg=make.__name__)
        assert np.max(np.abs(expected(unchanged, gradients=GRADIENTS[:2])[-1] - flux)) > 1e-3  # η = 0.2 was used
    # the defaults are injected too, and the injected ϵ can be changed
    opt = optax.inject_hyperparams(tk.Adam)()
    assert {k: float(v) for k, v in opt.init(jnp.ones(2)).hyperparams.items()} == {"eta": 0.001, "epsilon": 1e-8}


# --- printing, attributes, optax compatibility ----------------------------------------------------------------


def decay(count):
    return 0.1 / (1 + count)


def test_rules_print_as_the_call_that_makes_them():
    assert repr(tk.Momentum()) == "Momentum(eta=0.01, rho=0.9)"
    assert repr(tk.Adam(eta=0.1)) == "Adam(eta=0.1, beta=(0.9, 0.999), epsilon=1e-08)"
    assert repr(tk.Descent(0.5)) == "Descent(eta=0.5)"
    assert str(tk.Nesterov(ρ=0.5)) == "Nesterov(eta=0.001, rho=0.5)"
    assert repr(tk.Adam(0.1, [0.8, 0.9], 1)) == "Adam(eta=0.1, beta=(0.8, 0.9), epsilon=1.0)"
    assert repr(tk.Descent(decay)) == "Descent(eta=decay)"
    assert repr(tk.Descent(optax.linear_schedule(0.1, 0.0, 10))).startswith("Descent(eta=polynomial_schedule.")
    assert repr(tk.Momentum(jnp.array(0.5, jnp.float32))) == "Momentum(eta=Array(0.5, dtype=float32), rho=0.9)"


def test_rules_stay_optax_named_tuples_with_their_hyperparameters_as_attributes():
    opt = tk.Adam(0.1, (0.8, 0.9))
    assert isinstance(opt, optax.GradientTransformation) and isinstance(opt, tuple) and len(opt) == 2
    init, update = opt
    assert (init, update) == (opt.init, opt.update) and opt._fields == ("init", "update")
    assert (opt.eta, opt.beta, opt.epsilon) == (opt.η, opt.β, opt.ϵ) == (0.1, (0.8, 0.9), 1e-8)
    lunate, plain = "\u03f5", "\u03b5"  # the two epsilons as strings: getattr does not normalise them
    assert getattr(opt, lunate) == getattr(opt, plain) == 1e-8
    assert dict(opt.hyperparameters) == {"eta": 0.1, "beta": (0.8, 0.9), "epsilon": 1e-8} and opt.rule == "Adam"
    assert tk.Momentum().rho == 0.9 and tk.Descent().eta == 0.1
    with pytest.raises(AttributeError, match=r"tk\.Adam: an optimiser is immutable.*inject_hyperparams"):
        opt.eta = 0.2
    with pytest.raises(TypeError):
        opt.hyperparameters["eta"] = 0.2
    with pytest.raises(AttributeError, match="rho"):
        opt.rho
    # optax composition, copies and tree maps keep it working (and keep what it is)
    x = jnp.array([1.0, -1.0])
    chained = optax.chain(optax.clip(1.0), tk.Adam(0.1))
    clipped = np.array([1.0, -0.5])  # the first Adam step is η m̂ / (√ŝ + ϵ) = η Δ / (|Δ| + ϵ), Δ clipped
    np.testing.assert_allclose(
        tk.update(chained, tk.setup(chained, x), x, jnp.array([3.0, -0.5]))[0],
        [1.0, -1.0] - 0.1 * clipped / (np.abs(clipped) + 1e-8),
        rtol=1e-6,
    )
    for same in (copy.copy(opt), copy.deepcopy(opt), jax.tree.map(lambda f: f, opt)):
        assert same == opt and repr(same) == repr(opt) and same.update is opt.update
    replaced = opt._replace(update=optax.sgd(0.1).update)  # other functions: no longer this rule
    assert type(replaced) is optax.GradientTransformation


def test_rules_equal_and_hash_by_hyperparameters(x64):
    assert tk.Adam(0.01) == tk.Adam(0.01) == tk.Adam(eta=0.01, β=(0.9, 0.999), epsilon=1e-8)
    assert hash(tk.Adam(0.01)) == hash(tk.Adam(eta=0.01)) and hash(tk.Descent()) == hash(tk.Descent(0.1))
    assert tk.Adam(0.01) != tk.Adam(0.02) and tk.Adam(0.01) != tk.Adam(0.01, epsilon=1e-7)
    assert tk.Descent(0.1) != tk.Momentum(0.1, 0.0) and tk.Momentum(0.1, 0.5) != tk.Nesterov(0.1, 0.5)
    assert not (tk.Adam(0.01) != tk.Adam(0.01))
    # schedules by identity; arrays by dtype and value
    assert tk.Descent(decay) == tk.Descent(decay) and hash(tk.Descent(decay)) == hash(tk.Descent(decay))
    assert tk.Descent(decay) != tk.Descent(lambda count: decay(count))
    assert tk.Descent(jnp.array(0.1)) == tk.Descent(jnp.array(0.1)) != tk.Descent(jnp.array(0.2))
    assert tk.Descent(jnp.array(0.1, jnp.float32)) != tk.Descent(jnp.array(0.1, jnp.float64))
    assert len({tk.Adam(0.01), tk.Adam(0.01), tk.Adam(0.02), tk.Momentum()}) == 3
    # a new but equal rule each call reuses the compiled step
    traces = []

    @functools.partial(jax.jit, static_argnums=0)
    def step(opt, x, g):
        traces.append(opt)
        return tk.update(opt, tk.setup(opt, x), x, g)[0]

    x = jnp.ones(2)
    for opt in (tk.Adam(0.01), tk.Adam(0.01), tk.Adam(eta=0.01), tk.Adam(0.02)):
        step(opt, x, x)
    assert len(traces) == 2
    # a rule built from traced values compares by identity and cannot be a key
    seen = []

    @jax.jit
    def built_inside(eta):
        opt = tk.Descent(eta)
        seen.extend([opt == opt, opt == tk.Descent(eta + 0.0)])
        with pytest.raises(TypeError, match="a hyperparameter is traced"):
            hash(opt)
        return tk.update(opt, (), x, x)[0]

    np.testing.assert_allclose(built_inside(0.25), [0.75, 0.75])
    assert seen == [True, False]


# --- Adam in half precision -----------------------------------------------------------------------------------

HALF_STEPS = 10
HALF_GRADIENTS = np.random.default_rng(23).normal(size=(HALF_STEPS, 6)) * 10.0 ** np.random.default_rng(24).uniform(
    -3, 1, size=(HALF_STEPS, 6)
)
HALF_GRADIENTS[0, :2] = 0.0  # a zero gradient from the zero state: 0 / (0 + ϵ)
HALF_GRADIENTS[4:7, 1:3] = 0.0  # zeros after non-zero gradients
HALF_GRADIENTS[:, 5] = 0.0  # a coordinate that never gets a gradient: it must never move
HALF_GRADIENTS[2, 3] = 1e-7  # Δ² underflows in float16 (and Δ is 0 there)
HALF_X0 = np.random.default_rng(25).normal(size=6)


def flux_adam_in(dtype, η, x0, gradients):
    """Flux's Adam on ``dtype`` parameters: the state and the step in float64, the step stored in the gradient's
    ``dtype`` (``apply!`` writes it into ``Δ``) and ``x .-= Δ`` rounded to ``dtype``."""
    apply, init = flux_adam(η, (0.9, 0.999), 1e-8)
    x, state, path = np.asarray(x0, dtype), init(np.zeros(len(x0))), []
    for t, g in enumerate(gradients):
        step, state = apply(np.asarray(g, np.float64), state, t)
        x = (x.astype(np.float64) - step.astype(dtype).astype(np.float64)).astype(dtype)
        path.append(x)
    return np.array(path)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_adam_on_half_precision_matches_flux_rounded_and_never_divides_zero_by_zero(dtype):
    η = 0.01
    grads = np.asarray(HALF_GRADIENTS, dtype)  # the gradients as the parameters' dtype holds them
    got = trajectory(tk.Adam(η), HALF_X0, grads, dtype)
    assert got.dtype == dtype and np.all(np.isfinite(got.astype(np.float64)))
    flux = flux_adam_in(dtype, η, HALF_X0, grads)
    np.testing.assert_array_equal(got.astype(np.float64), flux.astype(np.float64))
    assert np.all(got[:, 5] == np.asarray(HALF_X0[5], dtype)) and np.all(got[0, :2] == np.asarray(HALF_X0[:2], dtype))
    # each update is the float32 computation rounded to the dtype, and the moments are float32
    opt = tk.Adam(η)
    state16, state32 = tk.setup(opt, jnp.asarray(HALF_X0, dtype)), tk.setup(opt, jnp.asarray(HALF_X0, jnp.float32))
    assert {leaf.dtype for leaf in jax.tree.leaves(state16)} == {jnp.dtype(jnp.float32), jnp.dtype(jnp.int32)}
    for g in grads:
        u16, state16 = opt.update(jnp.asarray(g), state16)
        u32, state32 = opt.update(jnp.asarray(g, jnp.float32), state32)
        assert u16.dtype == dtype
        np.testing.assert_array_equal(np.asarray(u16), np.asarray(u32.astype(dtype)))


def test_optax_adam_alone_divides_zero_by_zero_in_float16():
    # what the float32 state avoids: ϵ = 1e-8 is 0 in float16, and the first zero gradient gives 0 / 0
    x = jnp.ones(2, jnp.float16)
    step = tk.update(optax.adam(0.01), tk.setup(optax.adam(0.01), x), x, jnp.array([0.0, 1.0], jnp.float16))[0]
    assert np.isnan(np.asarray(step[0]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_in_single_and_double_precision_is_optax_adam_bit_for_bit(dtype):
    with jax.enable_x64(dtype == "float64"):
        ours, theirs = tk.Adam(0.01, (0.8, 0.99), 1e-7), optax.adam(0.01, b1=0.8, b2=0.99, eps=1e-7)
        x = jnp.asarray(X0, dtype)
        state, reference = ours.init(x), theirs.init(x)
        for g in GRADIENTS[:5]:
            u, state = ours.update(jnp.asarray(g, dtype), state)
            v, reference = theirs.update(jnp.asarray(g, dtype), reference)
            assert u.dtype == dtype
            np.testing.assert_array_equal(u, v)

"""Flux's optimisers: each rule against a float64 NumPy transcription of Flux's ``apply!``, and Optimisers.jl's rule tests."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toolkit as tk

STEPS = 1000
RNG = np.random.default_rng(0)
A = RNG.normal(size=(5, 5)) / 3
B = RNG.normal(size=5)
NOISE = RNG.normal(size=(STEPS, 5))  # a fixed "stochastic" part, so gradients vary step to step
X0 = RNG.normal(size=5)


def gradient_at(x, t):
    """Gradient of ½‖Ax - b‖² plus a fixed per-step perturbation (NumPy, float64)."""
    return A.T @ (A @ x - B) + 0.1 * NOISE[t]


# --- Flux.Optimise, transcribed (src/optimise/optimisers.jl): x .-= apply!(opt, x, Δ) ---------------
# Each rule is (apply, init): init(x) is the zero state, apply(Δ, state, t) returns (step, state) for the
# step after t earlier ones. η may be a number or a schedule t -> η_t (optax's convention: η(0) first).


def rate(η, t):
    return float(η(t)) if callable(η) else η


def flux_descent(η):
    def apply(Δ, state, t):
        return rate(η, t) * Δ, state

    return apply, lambda x: None


def flux_momentum(η, ρ):
    def apply(Δ, v, t):
        v = ρ * v - rate(η, t) * Δ
        return -v, v

    return apply, np.zeros_like


def flux_nesterov(η, ρ):
    def apply(Δ, v, t):
        d = ρ**2 * v - (1 + ρ) * rate(η, t) * Δ
        v = ρ * v - rate(η, t) * Δ
        return -d, v

    return apply, np.zeros_like


def flux_adam(η, β, ϵ):
    def apply(Δ, state, t):
        mt, vt, βp = state
        mt = β[0] * mt + (1 - β[0]) * Δ
        vt = β[1] * vt + (1 - β[1]) * Δ * np.conj(Δ)
        step = mt / (1 - βp[0]) / (np.sqrt(vt / (1 - βp[1])) + ϵ) * rate(η, t)
        return step, (mt, vt, (βp[0] * β[0], βp[1] * β[1]))

    return apply, lambda x: (np.zeros_like(x), np.zeros_like(x), β)


def flux_trajectory(rule, x0=X0, gradient=gradient_at, steps=STEPS):
    """Flux's loop in NumPy: ``x .-= apply!(opt, x, gradient(x, t))`` for t = 0, 1, ...; every iterate."""
    apply, init = rule
    x, state, path = np.array(x0), init(np.array(x0)), []
    for t in range(steps):
        step, state = apply(gradient(x, t), state, t)
        x = x - step
        path.append(x)
    return np.array(path)


def toolkit_trajectory(opt):
    a, b = jnp.asarray(A), jnp.asarray(B)

    def step(carry, noise):
        x, state = carry
        x, state = tk.update(opt, state, x, a.T @ (a @ x - b) + 0.1 * noise)
        return (x, state), x

    x0 = jnp.asarray(X0)
    return np.asarray(jax.lax.scan(step, (x0, tk.setup(opt, x0)), jnp.asarray(NOISE))[1])


CASES = [
    ("Descent", tk.Descent(0.1), flux_descent(0.1)),
    ("Momentum", tk.Momentum(0.01, 0.9), flux_momentum(0.01, 0.9)),
    ("Nesterov", tk.Nesterov(0.05, 0.8), flux_nesterov(0.05, 0.8)),
    ("Adam", tk.Adam(0.01, (0.8, 0.99), 1e-6), flux_adam(0.01, (0.8, 0.99), 1e-6)),
]


@pytest.mark.parametrize(("name", "opt", "rule"), CASES, ids=[c[0] for c in CASES])
def test_rule_matches_flux_transcription_for_1000_steps(x64, name, opt, rule):
    ours, flux = toolkit_trajectory(opt), flux_trajectory(rule)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, flux, rtol=1e-11, atol=1e-13)
    assert np.max(np.abs(flux[-1] - flux[0])) > 0.1  # the trajectory really moved


# Flux's defaults, and the ASCII aliases at values other than the defaults (so an ignored alias shows),
# each against the transcription: one step from a zero state could not see Momentum's ρ or Adam's β.
DEFAULTS_AND_ALIASES = [
    ("Descent()", tk.Descent(), flux_descent(0.1)),
    ("Momentum()", tk.Momentum(), flux_momentum(0.01, 0.9)),
    ("Nesterov()", tk.Nesterov(), flux_nesterov(0.001, 0.9)),
    ("Adam()", tk.Adam(), flux_adam(0.001, (0.9, 0.999), 1e-8)),
    ("Descent(eta)", tk.Descent(eta=0.05), flux_descent(0.05)),
    ("Momentum(eta, rho)", tk.Momentum(eta=0.02, rho=0.8), flux_momentum(0.02, 0.8)),
    ("Nesterov(eta, rho)", tk.Nesterov(eta=0.05, rho=0.8), flux_nesterov(0.05, 0.8)),
    ("Adam(eta, beta, epsilon)", tk.Adam(eta=0.01, beta=(0.8, 0.99), epsilon=1e-6), flux_adam(0.01, (0.8, 0.99), 1e-6)),
]


@pytest.mark.parametrize(("name", "opt", "rule"), DEFAULTS_AND_ALIASES, ids=[c[0] for c in DEFAULTS_AND_ALIASES])
def test_flux_defaults_and_ascii_aliases(x64, name, opt, rule):
    np.testing.assert_allclose(toolkit_trajectory(opt), flux_trajectory(rule), rtol=1e-11, atol=1e-13)


# Random gradients, unrelated to x, for a (2, 3) parameter: each rule's state must carry over exactly.
RANDOM_GRADIENTS = np.random.default_rng(3).normal(size=(40, 2, 3))
RANDOM_X0 = np.random.default_rng(4).normal(size=(2, 3))


def decay(count):
    """A schedule (count -> η): 0.05 / (1 + count / 4), as optax calls it and as NumPy computes it.

    (optax.linear_schedule would do, but it evaluates in float32 even with 64-bit types on.)
    """
    return 0.05 / (1 + 0.25 * count)


RANDOM_CASES = [
    ("Descent", lambda η: tk.Descent(η), lambda η: flux_descent(η)),
    ("Momentum", lambda η: tk.Momentum(η, 0.9), lambda η: flux_momentum(η, 0.9)),
    ("Nesterov", lambda η: tk.Nesterov(η, 0.8), lambda η: flux_nesterov(η, 0.8)),
    ("Adam", lambda η: tk.Adam(η, (0.8, 0.99), 1e-7), lambda η: flux_adam(η, (0.8, 0.99), 1e-7)),
]


@pytest.mark.parametrize("schedule", [False, True], ids=["constant η", "scheduled η"])
@pytest.mark.parametrize(("name", "ours", "flux"), RANDOM_CASES, ids=[c[0] for c in RANDOM_CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_rule_stepped_on_random_gradients_matches_flux(name, ours, flux, schedule, dtype):
    η = decay if schedule else 0.03
    expected = flux_trajectory(flux(η), RANDOM_X0, lambda x, t: RANDOM_GRADIENTS[t], len(RANDOM_GRADIENTS))
    with jax.enable_x64(dtype == "float64"):
        opt = ours(η)
        step = jax.jit(lambda state, x, g: tk.update(opt, state, x, g))
        x = jnp.asarray(RANDOM_X0, dtype)
        state, got = tk.setup(opt, x), []
        for g in RANDOM_GRADIENTS:
            x, state = step(state, x, jnp.asarray(g, dtype))
            got.append(np.asarray(x))
    got = np.array(got)
    assert got.dtype == dtype
    tolerance = {"float64": dict(rtol=1e-12, atol=1e-14), "float32": dict(rtol=2e-5, atol=2e-6)}[dtype]
    np.testing.assert_allclose(got, expected, **tolerance)
    assert np.max(np.abs(expected[-1] - RANDOM_X0)) > 0.1  # the iterate really moved


def test_momentum_under_a_schedule_is_flux_not_optax_sgd(x64):
    # Flux scales by η_t before accumulating v; optax.sgd accumulates raw gradients and scales after.
    def η(count):
        return 0.05 / (1 + 0.01 * count)

    flux = flux_trajectory(flux_momentum(η, 0.9))  # Flux's Momentum with its η set to η_t before each step
    np.testing.assert_allclose(toolkit_trajectory(tk.Momentum(η, 0.9)), flux, rtol=1e-11, atol=1e-13)
    sgd = toolkit_trajectory(optax.sgd(η, momentum=0.9))
    assert not np.allclose(sgd, flux, rtol=1e-3)


def test_rules_are_optax_transformations_that_chain_like_optimisers_jl():
    # Optimisers.jl's OptimiserChain(ClipGrad(0.5), Momentum()) (here ClipGrad(0.2): these gradients are
    # smaller) and OptimiserChain(WeightDecay(), Adam(...)), each against the transcription fed the clipped
    # (Δ clamped to [-0.2, 0.2]) or decayed (Δ + λx, Flux's default λ = 5e-4) gradient.
    for opt in (tk.Descent(), tk.Momentum(), tk.Nesterov(), tk.Adam()):
        assert isinstance(opt, optax.GradientTransformation)
    with jax.enable_x64(True):
        clipped = toolkit_trajectory(optax.chain(optax.clip(0.2), tk.Momentum()))
        decayed = toolkit_trajectory(optax.chain(optax.add_decayed_weights(5e-4), tk.Adam(0.01)))
    np.testing.assert_allclose(
        clipped,
        flux_trajectory(flux_momentum(0.01, 0.9), gradient=lambda x, t: np.clip(gradient_at(x, t), -0.2, 0.2)),
        rtol=1e-11,
        atol=1e-13,
    )
    np.testing.assert_allclose(
        decayed,
        flux_trajectory(flux_adam(0.01, (0.9, 0.999), 1e-8), gradient=lambda x, t: gradient_at(x, t) + 5e-4 * x),
        rtol=1e-11,
        atol=1e-13,
    )
    # and the chained transformation really acted: without it the transcription goes elsewhere
    assert np.max(np.abs(clipped - flux_trajectory(flux_momentum(0.01, 0.9)))) > 1e-2
    assert np.max(np.abs(decayed - flux_trajectory(flux_adam(0.01, (0.9, 0.999), 1e-8)))) > 1e-5


def test_both_names_or_unknown_names_are_errors():
    with pytest.raises(TypeError, match=r"got eta \(η\) twice, as eta=0\.2 and as η=0\.1; pass only one"):
        tk.Momentum(η=0.1, eta=0.2)
    with pytest.raises(TypeError, match=r"got rho \(ρ\) twice, positionally \(0\.5\) and as rho=0\.2"):
        tk.Nesterov(0.1, 0.5, rho=0.2)
    with pytest.raises(TypeError, match=r"got rho \(ρ\) twice, as rho=0\.5 and as ρ=0\.2"):
        tk.Nesterov(0.1, rho=0.5, ρ=0.2)
    with pytest.raises(TypeError, match=r"got eta \(η\) twice, positionally \(0\.1\) and as eta=0\.2"):
        tk.Descent(0.1, eta=0.2)
    with pytest.raises(TypeError, match=r"unknown hyperparameter 'lr'.*eta \(or η\), rho \(or ρ\)"):
        tk.Momentum(lr=0.1)
    with pytest.raises(TypeError, match=r"unknown hyperparameter 'rho'.*epsilon \(or ϵ, ε\)"):
        tk.Adam(rho=0.9)


def test_bad_values_are_errors_naming_the_hyperparameter():
    with pytest.raises(ValueError, match=r"eta \(η\) must be a finite number"):
        tk.Descent(float("nan"))
    with pytest.raises(ValueError, match=r"rho \(ρ\) must be a number in \[0, 1\]"):
        tk.Momentum(ρ=1.5)
    with pytest.raises(ValueError, match=r"beta\[1\] \(β₂\) must be a number in \[0, 1\)"):
        tk.Adam(β=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"beta \(β\) must be a pair"):
        tk.Adam(beta=0.9)
    with pytest.raises(ValueError, match=r"epsilon \(ϵ\) must be a finite number >= 0"):
        tk.Adam(epsilon=-1.0)
    with pytest.raises(ValueError, match=r"rho \(ρ\) must be a number"):
        tk.Momentum(rho="0.9")


def flux_first_adam_step(x, g, η, ϵ=1e-8):
    """One Flux Adam step from the zero state: m̂ = Δ, ŝ = Δ², so x - η Δ / (|Δ| + ϵ)."""
    return x - η * g / (np.abs(g) + ϵ)


def test_rules_compose_with_jit_vmap_and_grad(x64):
    opt = tk.Adam(0.1)
    x = jnp.asarray(X0[:3])
    g = jnp.array([1.0, -2.0, 0.5])
    step = jax.jit(lambda x, g: tk.update(opt, tk.setup(opt, x), x, g)[0])
    expected = flux_first_adam_step(X0[:3], np.asarray(g), 0.1)
    np.testing.assert_allclose(step(x, g), expected, rtol=1e-13, atol=1e-15)
    batched = jax.vmap(step)(jnp.stack([x, 2 * x]), jnp.stack([g, -g]))
    np.testing.assert_allclose(batched[0], expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(
        batched[1], flux_first_adam_step(2 * X0[:3], -np.asarray(g), 0.1), rtol=1e-13, atol=1e-15
    )
    # d/dx of one Momentum step is the identity (the update does not depend on x) ...
    jac = jax.jacobian(lambda x: tk.update(tk.Momentum(), tk.setup(tk.Momentum(), x), x, g)[0])(x)
    np.testing.assert_allclose(jac, np.eye(3), atol=1e-15)
    # ... and d/dg of one Descent(η) step is -η I.
    jac = jax.jacobian(lambda g: tk.update(tk.Descent(0.25), tk.setup(tk.Descent(0.25), x), x, g)[0])(g)
    np.testing.assert_allclose(jac, -0.25 * np.eye(3), atol=1e-15)


# --- Optimisers.jl's rule tests (test/rules.jl), ported: every rule at Flux's defaults -------------------

DEFAULT_RULES = {"Descent": tk.Descent(), "Adam": tk.Adam(), "Momentum": tk.Momentum(), "Nesterov": tk.Nesterov()}


def scanned(opt, loss, params, steps):
    """``steps`` of ``tk.update`` on ``jax.grad(loss)``, compiled as one scan."""

    def step(carry, _):
        p, state = carry
        p, state = tk.update(opt, state, p, jax.grad(loss)(p))
        return (p, state), None

    run = jax.jit(lambda p: jax.lax.scan(step, (p, tk.setup(opt, p)), length=steps)[0][0])
    return run(params)


@pytest.mark.parametrize("name", DEFAULT_RULES)
def test_optimisers_jl_original(name):
    # w′ = (α = rand(3, 3), β = rand(3, 3)); w = (α = 5rand(3, 3), β = rand(3, 3)); 10^4 steps of
    # mean((x.α .* x.β .- y.α .* y.β) .^ 2): above 1 before, below 0.001 after.
    rng = np.random.default_rng(11)
    target = {"α": jnp.asarray(rng.random((3, 3)), jnp.float32), "β": jnp.asarray(rng.random((3, 3)), jnp.float32)}
    w = {"α": jnp.asarray(5 * rng.random((3, 3)), jnp.float32), "β": jnp.asarray(rng.random((3, 3)), jnp.float32)}

    def loss(x):
        return jnp.mean((x["α"] * x["β"] - target["α"] * target["β"]) ** 2)

    assert loss(w) > 1
    assert loss(scanned(DEFAULT_RULES[name], loss, w, 10**4)) < 0.001


@pytest.mark.parametrize("name", DEFAULT_RULES)
def test_optimisers_jl_simple_sum(name):
    # m = shuffle!(reshape(1:64, 8, 8) .+ 0.0); 10^5 steps of sum(abs2, x + x'): sum(m) < sum(1:64), and < 1.
    m = jnp.asarray(np.random.default_rng(12).permutation(np.arange(1.0, 65.0)).reshape(8, 8), jnp.float32)
    m = scanned(DEFAULT_RULES[name], lambda x: jnp.sum((x + x.T) ** 2), m, 10**5)
    assert float(jnp.sum(m)) < sum(range(1, 65))
    assert float(jnp.sum(m)) < 1


@pytest.mark.parametrize("name", DEFAULT_RULES)
def test_optimisers_jl_independence(name):
    # w, w′ = randn(10, 10); 10^5 steps of mean((w*x .- w′*x) .^ 2), a fresh x = rand(10, 20) each step:
    # above 1 on a random x before, below 0.01 after (run here by tk.optimise with a sampler).
    rng = np.random.default_rng(13)
    w, w_target = (jnp.asarray(rng.normal(size=(10, 10)), jnp.float32) for _ in range(2))
    probe = jnp.asarray(rng.random((10, 10)), jnp.float32)

    def loss(w, x):
        return jnp.mean((w @ x - w_target @ x) ** 2)

    assert loss(w, probe) > 1
    result = tk.optimise(
        loss, w, DEFAULT_RULES[name], steps=10**5, data=lambda k: jax.random.uniform(k, (10, 20)), key=jax.random.key(1)
    )
    assert result.stop_reason == "reached steps=100000"
    assert loss(result.params, probe) < 0.01


@pytest.mark.parametrize("name", DEFAULT_RULES)
def test_optimisers_jl_element_types(x64, name):
    # marray = (Float32[1,2], Float64[3,4], Float16[5,6]); update(setup(o, marray), marray, marray) keeps each
    # leaf's element type. The values are checked too, against one step of the transcription.
    params = (
        jnp.array([1.0, 2.0], jnp.float32),
        jnp.array([3.0, 4.0], jnp.float64),
        jnp.array([5.0, 6.0], jnp.float16),
    )
    opt = DEFAULT_RULES[name]
    new, _ = tk.update(opt, tk.setup(opt, params), params, params)
    assert tuple(leaf.dtype for leaf in new) == (jnp.float32, jnp.float64, jnp.float16)
    rule = {
        "Descent": flux_descent(0.1),
        "Momentum": flux_momentum(0.01, 0.9),
        "Nesterov": flux_nesterov(0.001, 0.9),
        "Adam": flux_adam(0.001, (0.9, 0.999), 1e-8),
    }[name]
    for leaf, got, rtol in zip(params, new, (1e-6, 1e-14, 1e-3)):
        x = np.asarray(leaf, np.float64)
        np.testing.assert_allclose(
            np.asarray(got, np.float64), flux_trajectory(rule, x, lambda x, t: x, 1)[0], rtol=rtol
        )


@pytest.mark.parametrize("name", DEFAULT_RULES)
def test_optimisers_jl_gradient_types(name):
    # x = (a = ones(2,2), b = ...); update(s, x, (a = [1 2; 3 4], b = nothing)) moves a and leaves b alone.
    # Here b is an integer leaf, whose gradient may be None; a is checked against the transcription.
    x = {"a": jnp.ones((2, 2)), "b": jnp.ones((2, 2), jnp.int32)}
    opt = DEFAULT_RULES[name]
    g = np.array([[1.0, 2.0], [3.0, 4.0]])
    new, _ = tk.update(opt, tk.setup(opt, x), x, {"a": jnp.asarray(g, jnp.float32), "b": None})
    rule = {
        "Descent": flux_descent(0.1),
        "Momentum": flux_momentum(0.01, 0.9),
        "Nesterov": flux_nesterov(0.001, 0.9),
        "Adam": flux_adam(0.001, (0.9, 0.999), 1e-8),
    }[name]
    np.testing.assert_allclose(new["a"], flux_trajectory(rule, np.ones((2, 2)), lambda x, t: g, 1)[0], rtol=1e-6)
    assert not np.any(np.asarray(new["a"]) == 1.0)
    assert new["b"].dtype == jnp.int32 and np.array_equal(new["b"], np.ones((2, 2)))


COMPLEX_RULES = {
    "Adam": (tk.Adam(1e-2), flux_adam(1e-2, (0.9, 0.999), 1e-8)),
    "Descent": (tk.Descent(1e-2), flux_descent(1e-2)),
    "Momentum": (tk.Momentum(1e-2), flux_momentum(1e-2, 0.9)),
    "Nesterov": (tk.Nesterov(1e-2), flux_nesterov(1e-2, 0.9)),
}
X_COMPLEX = 1 + 1j


def complex_loss(w):
    """Optimisers.jl's Flux#1776 problem: learn f(x) = conj(x) as f(x) = w x, for x = 1 + i."""
    return jnp.sum(jnp.abs(w * X_COMPLEX - np.conj(X_COMPLEX)) ** 2)


def complex_gradient(w):
    """Zygote's (and Flux's) gradient of complex_loss, ∂L/∂Re w + i ∂L/∂Im w = 2 (w x - x̄) x̄, by hand."""
    return 2 * (w * X_COMPLEX - np.conj(X_COMPLEX)) * np.conj(X_COMPLEX)  # NumPy or JAX arrays alike


@pytest.mark.parametrize("name", COMPLEX_RULES)
def test_complex_parameters_step_as_flux_on_zygotes_gradient(x64, name):
    opt, rule = COMPLEX_RULES[name]
    w = jnp.zeros(1, jnp.complex128)
    step = jax.jit(lambda state, w: tk.update(opt, state, w, complex_gradient(w)))
    state, got = tk.setup(opt, w), []
    for _ in range(10):
        w, state = step(state, w)
        got.append(np.asarray(w))
    expected = flux_trajectory(rule, np.zeros(1, complex), lambda w, t: complex_gradient(w), 10)
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-12, atol=1e-15)
    assert complex_loss(expected[-1]) < 1.9


def falls_at_every_step(name, losses, start=2.0):
    """Optimisers.jl's check: each loss below the one before (Momentum and Nesterov: the first 8 steps only)."""
    checked = 8 if name in ("Momentum", "Nesterov") else len(losses)
    return all(b < a for a, b in zip([start, *losses[: checked - 1]], losses[:checked]))


@pytest.mark.parametrize("name", COMPLEX_RULES)
def test_optimisers_jl_complex_numbers_flux_1776(name):
    # model = (w = zeros(ComplexF64, 1),); 10 steps with the AD system's gradient (here tk.gradient): the loss,
    # 2.0 at the start, falls at every step and ends below 1.9.
    opt, _ = COMPLEX_RULES[name]
    model = {"w": jnp.zeros(1, jnp.complex64)}
    assert float(complex_loss(model["w"])) == pytest.approx(2.0)
    step = jax.jit(
        lambda state, model: tk.update(opt, state, model, tk.gradient(lambda m: complex_loss(m["w"]), model)[0])
    )
    state, losses = tk.setup(opt, model), []
    for _ in range(10):
        model, state = step(state, model)
        losses.append(float(complex_loss(model["w"])))
    assert falls_at_every_step(name, losses), losses
    assert losses[-1] < 1.9


@pytest.mark.parametrize("name", COMPLEX_RULES)
def test_optimisers_jl_complex_numbers_flux_1776_through_optimise(name):
    # The same 10 steps run by tk.optimise: result.losses[k] is the loss before step k + 1.
    opt, _ = COMPLEX_RULES[name]
    result = tk.optimise(lambda m: complex_loss(m["w"]), {"w": jnp.zeros(1, jnp.complex64)}, opt, steps=10)
    losses = [*result.losses[1:], float(complex_loss(result.params["w"]))]
    assert result.losses[0] == pytest.approx(2.0)
    assert falls_at_every_step(name, losses), losses
    assert losses[-1] < 1.9

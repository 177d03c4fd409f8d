"""Flux's optimisers: each rule against a float64 transcription of Flux's ``apply!`` over 1,000 steps."""

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


def flux_descent(η):
    def apply(x, Δ, state):
        return η * Δ, state

    return apply, None


def flux_momentum(η, ρ):
    def apply(x, Δ, v):
        v = ρ * v - η * Δ
        return -v, v

    return apply, np.zeros(5)


def flux_nesterov(η, ρ):
    def apply(x, Δ, v):
        d = ρ**2 * v - (1 + ρ) * η * Δ
        v = ρ * v - η * Δ
        return -d, v

    return apply, np.zeros(5)


def flux_adam(η, β, ϵ):
    def apply(x, Δ, state):
        mt, vt, βp = state
        mt = β[0] * mt + (1 - β[0]) * Δ
        vt = β[1] * vt + (1 - β[1]) * Δ * np.conj(Δ)
        step = mt / (1 - βp[0]) / (np.sqrt(vt / (1 - βp[1])) + ϵ) * η
        return step, (mt, vt, (βp[0] * β[0], βp[1] * β[1]))

    return apply, (np.zeros(5), np.zeros(5), β)


def flux_trajectory(rule):
    apply, state = rule
    x, path = X0.copy(), []
    for t in range(STEPS):
        step, state = apply(x, gradient_at(x, t), state)
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


def _run(opt, steps=50):
    x = jnp.asarray(X0, jnp.float32)
    state = tk.setup(opt, x)
    for t in range(steps):
        x, state = tk.update(opt, state, x, jnp.asarray(gradient_at(np.asarray(x, np.float64), t), jnp.float32))
    return x


def test_momentum_is_bitwise_optax_chain_scale_then_trace():
    schedule = optax.linear_schedule(0.05, 0.001, 40)
    for η in (0.01, schedule):
        ours = _run(tk.Momentum(η, 0.9))
        chain = _run(optax.chain(optax.scale_by_learning_rate(η), optax.trace(decay=0.9)))
        np.testing.assert_array_equal(ours, chain)


def test_momentum_under_a_schedule_is_flux_not_optax_sgd(x64):
    # Flux scales by η_t before accumulating v; optax.sgd accumulates raw gradients and scales after.
    def η(count):
        return 0.05 / (1 + 0.01 * count)

    def flux_scheduled(x, Δ, state):
        v, t = state
        v = 0.9 * v - float(η(t)) * Δ
        return -v, (v, t + 1)

    flux = flux_trajectory((flux_scheduled, (np.zeros(5), 0)))
    np.testing.assert_allclose(toolkit_trajectory(tk.Momentum(η, 0.9)), flux, rtol=1e-11, atol=1e-13)
    sgd = toolkit_trajectory(optax.sgd(η, momentum=0.9))
    assert not np.allclose(sgd, flux, rtol=1e-3)


def test_rules_are_optax_transformations():
    for opt in (tk.Descent(), tk.Momentum(), tk.Nesterov(), tk.Adam()):
        assert isinstance(opt, optax.GradientTransformation)


def test_both_names_or_unknown_names_are_errors():
    with pytest.raises(TypeError, match="both η and its alias eta"):
        tk.Momentum(η=0.1, eta=0.2)
    with pytest.raises(TypeError, match="both ρ and its alias rho"):
        tk.Nesterov(0.1, 0.5, rho=0.2)
    with pytest.raises(TypeError, match=r"unknown hyperparameter 'lr'.*η \(or eta\), ρ \(or rho\)"):
        tk.Momentum(lr=0.1)
    with pytest.raises(TypeError, match="unknown hyperparameter 'rho'"):
        tk.Adam(rho=0.9)


def test_bad_values_are_errors_naming_the_hyperparameter():
    with pytest.raises(ValueError, match="η must be a finite number"):
        tk.Descent(float("nan"))
    with pytest.raises(ValueError, match=r"ρ must be a number in \[0, 1\]"):
        tk.Momentum(ρ=1.5)
    with pytest.raises(ValueError, match=r"β\[1\] must be a number in \[0, 1\)"):
        tk.Adam(β=(0.9, 1.0))
    with pytest.raises(ValueError, match="β must be a pair"):
        tk.Adam(beta=0.9)
    with pytest.raises(ValueError, match="ϵ must be a finite number >= 0"):
        tk.Adam(epsilon=-1.0)
    with pytest.raises(ValueError, match="ρ must be a number"):
        tk.Momentum(rho="0.9")


def test_rules_compose_with_jit_vmap_and_grad():
    opt = tk.Adam(0.1)
    x = jnp.asarray(X0[:3], jnp.float32)
    g = jnp.array([1.0, -2.0, 0.5])
    step = jax.jit(lambda x, g: tk.update(opt, tk.setup(opt, x), x, g)[0])
    eager = tk.update(opt, tk.setup(opt, x), x, g)[0]
    np.testing.assert_allclose(step(x, g), eager, rtol=1e-6)
    batched = jax.vmap(step)(jnp.stack([x, 2 * x]), jnp.stack([g, -g]))
    np.testing.assert_allclose(batched[1], step(2 * x, -g), rtol=1e-6)
    # d/dx of one Momentum step is the identity (the update does not depend on x).
    jac = jax.jacobian(lambda x: tk.update(tk.Momentum(), tk.setup(tk.Momentum(), x), x, g)[0])(x)
    np.testing.assert_allclose(jac, np.eye(3), atol=1e-7)

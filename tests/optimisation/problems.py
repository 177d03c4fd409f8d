"""Problems shared by the optimise tests: one set of objects, so each compiled loop is built once per session."""

import collections

import jax

import toolkit as tk

TRACES = collections.Counter()  # how often the seed loss and sampler were traced

KEY = jax.random.key(0)
_K1, _K2 = jax.random.split(jax.random.key(1))
Z0 = jax.random.uniform(_K1, (3, 3))
Z_TARGET = jax.random.uniform(_K2, (3, 3))
MOMENTUM = tk.Momentum()


def seed_loss(z, x):
    """The seed's loss: Flux.mse(z * x, z′ * x)."""
    TRACES["loss"] += 1
    return tk.mse(z @ x, Z_TARGET @ x)


def seed_sample(key):
    """The seed's x = rand(3), one per step."""
    TRACES["sample"] += 1
    return jax.random.uniform(key, (3,))


def quadratic(p):
    """½‖p‖² over every leaf: with Descent(η), p_k = (1 - η)^k p_0 exactly in real arithmetic."""
    return 0.5 * tk.tree.sum(jax.tree.map(lambda a: a * a, p))


DESCENT = tk.Descent(0.1)


def seed_run(**kwargs):
    """tk.optimise on the seed problem with the shared objects (kwargs override)."""
    settings = dict(steps=1000, data=seed_sample, key=KEY)
    settings.update(kwargs)
    start = settings.pop("start", Z0)
    return tk.optimise(seed_loss, start, MOMENTUM, **settings)


def quadratic_run(start, **kwargs):
    return tk.optimise(quadratic, start, DESCENT, **{"steps": 1000, **kwargs})


def first_step_where(condition, sequence):
    return next(i for i, value in enumerate(sequence, start=1) if condition(value))

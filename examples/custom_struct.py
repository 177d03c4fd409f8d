"""The seed's custom-struct example: move one ``GG`` onto another with Momentum.

In Julia the post had to define ``+ - * /``, ``zero``, ``sum`` and even
``update!`` for ``GG`` by hand. Here ``@tk.struct`` gives the arithmetic, the
gradient of a ``GG`` comes back as a ``GG``, and optax's Momentum updates it.

Run: python examples/custom_struct.py
"""

import jax
import jax.numpy as jnp
import optax

import toolkit as tk


@tk.struct
class GG:
    a: jax.Array
    b: jax.Array


def main(steps: int = 10**5) -> bool:
    ka, kb, kc, kd = jax.random.split(jax.random.key(0), 4)
    a = GG(jax.random.uniform(ka, (3, 3)), jax.random.uniform(kb, (3, 3)))
    b = GG(jax.random.uniform(kc, (3, 3)), jax.random.uniform(kd, (3, 3)))

    def loss(x: GG) -> jax.Array:
        return tk.tree.sum((x - b) * (x - b)) / 9

    opt = optax.sgd(0.01, momentum=0.9)

    def step(carry, _):
        x, state = carry
        (g,) = tk.gradient(loss, x)  # a GG, like x
        updates, state = opt.update(g, state, x)
        return (optax.apply_updates(x, updates), state), None

    (a, _), _ = jax.jit(lambda x: jax.lax.scan(step, (x, opt.init(x)), length=steps))(a)
    print("a =", a)
    print("b =", b)
    print("loss(a) =", float(loss(a)))
    close = bool(tk.tree.isapprox(a, b))
    print("a ≈ b:", close)
    return close


if __name__ == "__main__":
    main()

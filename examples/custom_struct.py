"""The seed's custom-struct example: move one ``GG`` onto another with Momentum.

In Julia the post had to define ``+ - * /``, ``zero``, ``sum`` and even
``update!`` for ``GG`` by hand. Here ``@tk.struct`` gives the arithmetic, the
gradient of a ``GG`` comes back as a ``GG``, and ``tk.optimise`` runs all 10^5
Momentum steps as one compiled loop, with no optimiser code written for ``GG``.

Run: python examples/custom_struct.py
"""

import jax

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

    result = tk.optimise(loss, a, tk.Momentum(), steps=steps)
    a = result.params  # a GG again
    print("a =", a)
    print("b =", b)
    print(f"loss(a) = {float(loss(a)):.3g} after {result.steps} steps ({result.stop_reason})")
    close = bool(tk.tree.isapprox(a, b))
    print("a ≈ b:", close)
    return close


if __name__ == "__main__":
    main()

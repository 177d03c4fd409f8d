"""The seed's custom-struct example: move one ``GG`` onto another with Momentum.

In Julia the post had to define ``+ - * /``, ``zero``, ``sum`` and even
``update!`` for ``GG`` by hand. Here ``@tk.struct`` gives the arithmetic and the
gradient of a ``GG`` comes back as a ``GG``. First the seed's loop as written
(``tk.gradient`` then ``tk.update``, 10^5 times: each call runs a cached compiled
program), then ``tk.optimise`` running all 10^5 Momentum steps as one compiled
loop, with no optimiser code written for ``GG`` in either.

Run: python examples/custom_struct.py [--steps N] (default 10^5)
"""

import time

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

    # 1. The seed's loop, as written.
    opt = tk.Momentum()
    state = tk.setup(opt, a)
    x = a
    began = time.perf_counter()
    for _ in range(steps):
        gs = tk.gradient(lambda x: tk.tree.sum((x - b) * (x - b)) / 9, x)
        x, state = tk.update(opt, state, x, gs[0])
    seconds = time.perf_counter() - began
    literal = bool(tk.tree.isapprox(x, b))
    print(
        f"the seed's loop as written, {steps} steps: {seconds:.2f} s ({seconds / steps * 1e6:.0f} µs/step), a ≈ b: {literal}"
    )

    # 2. The same steps as one compiled loop.
    began = time.perf_counter()
    result = tk.optimise(loss, a, tk.Momentum(), steps=steps)
    seconds = time.perf_counter() - began
    a = result.params  # a GG again
    print("a =", a)
    print("b =", b)
    print(
        f"tk.optimise: loss(a) = {float(loss(a)):.3g} after {result.steps} steps ({result.stop_reason}) in {seconds:.2f} s"
    )
    close = literal and bool(tk.tree.isapprox(a, b))
    print("a ≈ b:", close)
    return close


if __name__ == "__main__":
    import sys

    main(int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 10**5)

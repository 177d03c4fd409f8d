"""The seed's first loop: move a random 3x3 ``z`` onto ``z′`` with Momentum, a fresh random ``x`` each step.

In Flux, with implicit parameters::

    z = rand(3,3); z′ = rand(3,3)
    loss(x) = Flux.mse(z * x, z′ * x)
    opt = Momentum(); ps = Params([z])
    for i = 1:10^5
      x = rand(3)
      gs = gradient(ps) do
        loss(x)
      end
      Flux.Optimise.update!(opt, ps, gs)
    end
    z ≈ z′ # true

Here: first the same loop line by line, all 10^5 steps (a new lambda each step,
closing over a new ``x``: each call finds the program compiled for the first one
and runs it on the current values, so the plain loop takes seconds, not
minutes), then the whole loop compiled into one program with ``tk.optimise``,
first on the same implicit ``Params``, then in the explicit style, which is the
recommended one (Flux itself deprecated implicit parameters).

Run: python examples/basic_loop.py [--steps N] (default 10^5)
"""

import time

import jax
import numpy as np

import toolkit as tk


def main(steps: int = 10**5) -> bool:
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    z = tk.Param(jax.random.uniform(k1, (3, 3)))  # a mutable box: JAX arrays themselves are immutable
    z_target = jax.random.uniform(k2, (3, 3))
    z_start = z.value

    def loss(x):
        return tk.mse(z.value @ x, z_target @ x)

    opt = tk.Momentum()
    ps = tk.Params([z])

    # 1. Flux's loop, implicit style, as the seed writes it.
    rng = np.random.default_rng(0)
    began = time.perf_counter()
    for _ in range(steps):
        x = rng.random(3, dtype=np.float32)  # rand(3)
        gs = tk.gradient(lambda: loss(x), ps)
        tk.update_(opt, ps, gs)
    seconds = time.perf_counter() - began
    literal = bool(tk.tree.isapprox(z.value, z_target))
    print(
        f"the seed's loop as written, {steps} steps: {seconds:.2f} s ({seconds / steps * 1e6:.0f} µs/step), z ≈ z′: {literal}"
    )
    z.value = z_start

    # 2. The whole loop compiled; the boxes are read once and written back at the end.
    def rand3(key):
        return jax.random.uniform(key, (3,))

    began = time.perf_counter()
    result = tk.optimise(loss, ps, opt, steps=steps, data=rand3, key=k3)
    print(
        f"tk.optimise on Params: {result.stop_reason} in {time.perf_counter() - began:.2f} s, "
        f"final loss {result.losses[-1]:.3g}"
    )

    # 3. Explicit style: the parameters go in, the optimised ones come out.
    explicit = tk.optimise(
        lambda z, x: tk.mse(z @ x, z_target @ x), z_start, tk.Momentum(), steps=steps, data=rand3, key=k3
    )
    print(f"explicit style: ‖z - z′‖ = {float(tk.tree.norm(explicit.params - z_target)):.2e}")

    close = literal and bool(tk.tree.isapprox(z.value, z_target)) and bool(tk.tree.isapprox(explicit.params, z_target))
    print("tk.tree.isapprox(z, z′):", close)
    return close


if __name__ == "__main__":
    import sys

    main(int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 10**5)

"""The seed's custom adjoint for ``sqrt``, written once and used by every JAX transformation.

In Julia the post wrote

    @adjoint Base.sqrt(x::Real) = Base.sqrt(x), Δ -> (Δ * inv(2 * sqrt(x)),)

Here the same rule is one decorated function. This script checks it against
float64 finite differences, compares its gradient with JAX's own for
``jnp.sqrt``, and takes a Hessian through it (forward over reverse), which a
plain ``jax.custom_vjp`` would refuse.

Run: python examples/sqrt_adjoint.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import toolkit as tk


@tk.adjoint
def sqrt(x):
    y = jnp.sqrt(x)
    return y, lambda Δ: (Δ / (2 * y),)  # Δ * inv(2 * sqrt(x)), reusing the forward's y


def main() -> bool:
    x = jnp.array([0.25, 1.0, 4.0, 9.0])
    print("sqrt(x) =", sqrt(x))

    tk.check_adjoint(sqrt, x)  # raises AssertionError with a per-leaf report if the rule were wrong
    print("tk.check_adjoint(sqrt, x): passed (reverse and forward, plain, jit and vmap, vs float64 differences)")

    (ours,) = tk.gradient(lambda x: jnp.sum(sqrt(x)), x)
    jaxs = jax.vmap(jax.grad(jnp.sqrt))(x)
    print("tk.gradient through the rule:", ours)
    print("jax.grad(jnp.sqrt):          ", jaxs)
    gradients_agree = bool(np.allclose(ours, jaxs, rtol=1e-6))
    print("gradients agree:", gradients_agree)

    hessian = jax.hessian(lambda x: jnp.sum(sqrt(x)))(x)
    exact = jnp.diag(-0.25 * x**-1.5)
    print("diag(jax.hessian):", jnp.diag(hessian), " exact -x^(-3/2)/4:", jnp.diag(exact))
    hessian_agrees = bool(np.allclose(hessian, exact, rtol=1e-5))
    print("hessian agrees:", hessian_agrees)
    print("all agree:", gradients_agree and hessian_agrees)
    return gradients_agree and hessian_agrees


if __name__ == "__main__":
    main()

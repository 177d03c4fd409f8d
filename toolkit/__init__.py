"""toolkit: differentiable programming on JAX, the Flux/Zygote way.

Import it as ``tk``::

    import toolkit as tk

Structs (``tk.struct``), pytree maths (``tk.tree``), Zygote's gradient API
(``tk.gradient`` and friends).
"""

# Structs and pytree maths.
from toolkit import tree
from toolkit.struct import field, is_struct, struct
from toolkit.tree import zero

# Gradients.
from toolkit.grad import gradient, hessian, jacobian, pullback, withgradient

# Custom adjoints.
from toolkit import safe
from toolkit.adjoint import adjoint
from toolkit.check import check_adjoint, check_grad

# Optimisation.
# (the name tk.optimise is the function; its package is toolkit.optimise, imported here first)
from toolkit.optimise import Adam, Descent, Momentum, Nesterov, Result, mae, mse, optimise, setup, update, update_
from toolkit.params import Grads, Param, Params

__version__ = "0.1.0"

__all__ = [
    "struct",
    "field",
    "is_struct",
    "tree",
    "zero",
    "gradient",
    "withgradient",
    "pullback",
    "jacobian",
    "hessian",
    "adjoint",
    "check_adjoint",
    "check_grad",
    "safe",
    "Descent",
    "Momentum",
    "Nesterov",
    "Adam",
    "setup",
    "update",
    "update_",
    "optimise",
    "Result",
    "mse",
    "mae",
    "Param",
    "Params",
    "Grads",
]

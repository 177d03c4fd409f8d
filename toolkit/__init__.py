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
]

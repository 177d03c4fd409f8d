"""toolkit: differentiable programming on JAX, the Flux/Zygote way.

Import it as ``tk``::

    import toolkit as tk

Structs (``tk.struct``), pytree maths (``tk.tree``), Zygote's gradient API
(``tk.gradient`` and friends), one-line custom rules (``tk.adjoint``) with a
checker (``tk.check_grad``) and safe primitives (``tk.safe``), Flux's
optimisers and a compiled loop (``tk.Momentum``, ``tk.optimise``), and
differentiable colour science (``tk.colour``, loaded on first use because
colour-science takes seconds to import).
"""

import importlib
from typing import TYPE_CHECKING, Any

from toolkit import safe, tree
from toolkit.adjoints import adjoint
from toolkit.check import check_adjoint, check_grad
from toolkit.compiled import EagerFallbackWarning, eager
from toolkit.grad import gradient, hessian, jacobian, pullback, withgradient
from toolkit.optimisation import Adam, Descent, Momentum, Nesterov, Result, mae, mse, optimise, setup, update, update_
from toolkit.params import Grads, Param, Params
from toolkit.structs import field, is_struct, struct
from toolkit.tree import zero

if TYPE_CHECKING:  # loaded on first use at run time (see __getattr__)
    from toolkit import colour

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "colour":  # importing the submodule also binds it here, so this runs once
        return importlib.import_module("toolkit.colour")
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")


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
    "eager",
    "EagerFallbackWarning",
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
    "colour",
]

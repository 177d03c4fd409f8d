"""Optimisation: Flux's optimisers on optax, ``update`` for any pytree, and the compiled ``optimise`` loop.

Modules: ``rules`` (Descent, Momentum, Nesterov, Adam), ``update`` (setup, update,
update_), ``losses`` (mse, mae), ``loop`` (optimise), ``result`` (Result),
``data`` (where each step's sample comes from), ``chunk`` (the compiled loop),
``programs`` (what it is keyed on), ``plans`` (what a repeat call remembers),
``checkpoint`` (save and resume).
"""

from toolkit.optimisation.loop import optimise
from toolkit.optimisation.losses import mae, mse
from toolkit.optimisation.result import Result
from toolkit.optimisation.rules import Adam, Descent, Momentum, Nesterov
from toolkit.optimisation.update import setup, update, update_

__all__ = [
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
]

"""What depends on what in a jaxpr: the one dependency walk behind toolkit's checks of user functions.

Used to tell a pullback's cotangents that ignore Δ (``toolkit._pullbacks``) and a
data sampler that ignores its key (``toolkit.optimisation.data``). The walk is
conservative: an equation with any dependent input makes all its outputs
dependent (sub-jaxprs are not looked into), so an output reported independent
of the inputs certainly is.
"""

from __future__ import annotations

from typing import Any

from jax.extend.core import Literal

__all__ = ["dependents", "depends", "is_literal"]


def is_literal(v: Any) -> bool:
    return isinstance(v, Literal)


def dependents(jaxpr: Any) -> set[Any]:
    """The variables of ``jaxpr`` (its inputs included) computed from at least one of its inputs."""
    found = set(jaxpr.invars)
    for eqn in jaxpr.eqns:
        if any(not is_literal(v) and v in found for v in eqn.invars):
            found.update(eqn.outvars)
    return found


def depends(v: Any, found: set[Any]) -> bool:
    """Whether the jaxpr variable (or literal) ``v`` is in ``found`` (a literal never is)."""
    return not is_literal(v) and v in found

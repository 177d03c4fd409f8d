"""What ``tk.optimise`` returns, and the words it uses for why a run stopped."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from toolkit._show import short_repr

__all__ = ["Result", "RUNNING", "TOL", "GTOL", "DIVERGED", "stop_reason"]

# Per-problem status codes carried through the compiled loop.
RUNNING, TOL, GTOL, DIVERGED = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class Result:
    """The outcome of ``tk.optimise``.

    Attributes:
        params: the final parameters, with the structure (and struct types) you
            passed; for ``tk.Params`` the same ``Params``, its boxes updated.
            After a divergence, the last finite iterate.
        state: the optimiser state that goes with ``params`` (pass it on to keep
            momenta when you continue by hand).
        losses: the loss at every completed step, ``losses[k]`` being the loss
            evaluated at step ``k + 1`` before its update (a NumPy array of length
            ``steps``). With ``batched=True`` its shape is ``(T, batch)``, ``T`` the
            largest step count, and a problem's column holds NaN after it stopped.
        steps: the number of completed steps (an int array with ``batched=True``).
        stop_reason: why the run ended (a tuple, one per problem, with
            ``batched=True``): ``"reached steps=N"``, ``"tol: |Δloss| <= … at step N"``,
            ``"gtol: gradient norm <= … at step N"``, ``"diverged at step N"`` or
            ``"interrupted at step N"``.
    """

    params: Any
    state: Any
    losses: np.ndarray
    steps: int | np.ndarray
    stop_reason: str | tuple[str, ...]

    def __repr__(self) -> str:
        return (
            f"Result(steps={self.steps!r}, stop_reason={self.stop_reason!r}, "
            f"final loss={short_repr(self.losses[-1:])}, params={short_repr(self.params)})"
        )


def stop_reason(status: int, steps: int, max_steps: int, interrupted: bool, tol: Any, gtol: Any) -> str:
    """The human-readable reason for one problem's status after ``steps`` completed steps."""
    if status == TOL:
        return f"tol: |Δloss| <= {tol} at step {steps}"
    if status == GTOL:
        return f"gtol: gradient norm <= {gtol} at step {steps}"
    if status == DIVERGED:
        return f"diverged at step {steps + 1}"
    if interrupted and steps < max_steps:
        return f"interrupted at step {steps}"
    return f"reached steps={max_steps}"

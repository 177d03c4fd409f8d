"""Flux's classic optimisers (``Descent``, ``Momentum``, ``Nesterov``, ``Adam``) built from optax parts.

Each constructor takes Flux's hyperparameter names and defaults and returns a
plain ``optax.GradientTransformation``, so it works anywhere optax does and any
optax transformation works wherever these do. The update rules are the ones in
``Flux.Optimise`` (``src/optimise/optimisers.jl``), where ``Δ`` is the gradient:

=============  ===============================================================
``Descent``    ``x -= η Δ``
``Momentum``   ``v = ρ v - η Δ;  x += v``
``Nesterov``   ``d = ρ² v - (1 + ρ) η Δ;  v = ρ v - η Δ;  x += d``
``Adam``       ``m = β₁ m + (1 - β₁) Δ;  s = β₂ s + (1 - β₂) Δ²;``
               ``x -= η m̂ / (√ŝ + ϵ)`` with ``m̂ = m / (1 - β₁ᵗ)``, ``ŝ = s / (1 - β₂ᵗ)``
=============  ===============================================================

Flux's ``Momentum`` scales by ``η`` *before* accumulating the velocity, so under
a learning-rate schedule it is not ``optax.sgd(η, momentum=ρ)`` (which scales
after); it is exactly ``optax.chain(optax.scale_by_learning_rate(η), optax.trace(decay=ρ))``.

Every hyperparameter may be given by its Greek name (``η ρ β ϵ``, as in Flux)
or its ASCII alias (``eta rho beta epsilon``), positionally or by keyword.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import optax

__all__ = ["Descent", "Momentum", "Nesterov", "Adam"]

LearningRate = float | Callable[[Any], Any]

_ALIASES = {"eta": "η", "rho": "ρ", "beta": "β", "epsilon": "ϵ"}


class _DefaultFloat(float):
    """A default that shows as a plain number in signatures but is known not to be user-given."""


class _DefaultPair(tuple):
    """The tuple counterpart of :class:`_DefaultFloat`."""


def _given(value: Any) -> bool:
    return not isinstance(value, (_DefaultFloat, _DefaultPair))


def _resolve(rule: str, greek: dict[str, Any], ascii_names: dict[str, Any]) -> dict[str, Any]:
    """Merge ASCII aliases into the Greek-named hyperparameters, rejecting unknown or doubled names."""
    accepted = [f"{name} (or {alias})" for alias, name in _ALIASES.items() if name in greek]
    for alias, value in ascii_names.items():
        name = _ALIASES.get(alias)
        if name not in greek:
            raise TypeError(
                f"tk.{rule}: unknown hyperparameter {alias!r}; tk.{rule} takes {', '.join(accepted)}. "
                f"Example: tk.{rule}({', '.join(f'{n}=...' for n in greek)})"
            )
        if _given(greek[name]):
            raise TypeError(f"tk.{rule}: got both {name} and its alias {alias}; pass only one of them.")
        greek[name] = value
    return greek


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_rate(rule: str, η: Any) -> LearningRate:
    if callable(η):
        return η  # an optax schedule: step -> learning rate
    if not _is_number(η) or not math.isfinite(η):
        raise ValueError(
            f"tk.{rule}: η must be a finite number or an optax schedule (step -> rate), got {η!r}; "
            f"pass a Python number such as η=0.1 (float(η) for a 0-d array)."
        )
    return float(η)


def _check_unit(rule: str, name: str, value: Any, *, closed: bool) -> float:
    in_range = _is_number(value) and 0 <= value and (value <= 1 if closed else value < 1)
    if not in_range:
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"tk.{rule}: {name} must be a number in {interval} (e.g. {name}=0.9), got {value!r}.")
    return float(value)


def Descent(η: LearningRate = _DefaultFloat(0.1), **ascii_names: Any) -> optax.GradientTransformation:
    """Plain gradient descent, ``x -= η Δ`` (Flux's ``Descent``; default ``η = 0.1``).

    Flux's ``Descent`` never checks for convergence: with too large an ``η`` it
    diverges if the loop is not stopped (``tk.optimise`` stops it and says so).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> opt = tk.Descent(0.5)
        >>> x = jnp.array([1.0, 2.0])
        >>> x, state = tk.update(opt, tk.setup(opt, x), x, jnp.array([1.0, 1.0]))
        >>> x
        Array([0.5, 1.5], dtype=float32)
    """
    h = _resolve("Descent", {"η": η}, ascii_names)
    return optax.scale_by_learning_rate(_check_rate("Descent", h["η"]))


def Momentum(
    η: LearningRate = _DefaultFloat(0.01), ρ: float = _DefaultFloat(0.9), **ascii_names: Any
) -> optax.GradientTransformation:
    """Flux's ``Momentum``: ``v = ρ v - η Δ; x += v`` (defaults ``η = 0.01``, ``ρ = 0.9``).

    Bitwise the same as ``optax.chain(optax.scale_by_learning_rate(η), optax.trace(decay=ρ))``.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> opt = tk.Momentum(eta=0.1, rho=0.5)
        >>> x, g = jnp.array(1.0), jnp.array(1.0)
        >>> state = tk.setup(opt, x)
        >>> x, state = tk.update(opt, state, x, g)   # v = -0.1
        >>> x, state = tk.update(opt, state, x, g)   # v = 0.5 * -0.1 - 0.1
        >>> round(float(x), 6)
        0.75
    """
    h = _resolve("Momentum", {"η": η, "ρ": ρ}, ascii_names)
    return optax.chain(
        optax.scale_by_learning_rate(_check_rate("Momentum", h["η"])),
        optax.trace(decay=_check_unit("Momentum", "ρ", h["ρ"], closed=True)),
    )


def Nesterov(
    η: LearningRate = _DefaultFloat(0.001), ρ: float = _DefaultFloat(0.9), **ascii_names: Any
) -> optax.GradientTransformation:
    """Flux's ``Nesterov``: ``d = ρ² v - (1 + ρ) η Δ; v = ρ v - η Δ; x += d`` (defaults ``η = 0.001``, ``ρ = 0.9``).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> opt = tk.Nesterov(0.1, 0.5)
        >>> x = jnp.array(1.0)
        >>> x, _ = tk.update(opt, tk.setup(opt, x), x, jnp.array(1.0))   # d = -(1 + 0.5) * 0.1
        >>> round(float(x), 6)
        0.85
    """
    h = _resolve("Nesterov", {"η": η, "ρ": ρ}, ascii_names)
    return optax.chain(
        optax.scale_by_learning_rate(_check_rate("Nesterov", h["η"])),
        optax.trace(decay=_check_unit("Nesterov", "ρ", h["ρ"], closed=True), nesterov=True),
    )


def Adam(
    η: LearningRate = _DefaultFloat(0.001),
    β: tuple[float, float] = _DefaultPair((0.9, 0.999)),
    ϵ: float = _DefaultFloat(1e-8),
    **ascii_names: Any,
) -> optax.GradientTransformation:
    """Flux's ``Adam`` (Kingma & Ba, arXiv:1412.6980): defaults ``η = 0.001``, ``β = (0.9, 0.999)``, ``ϵ = 1e-8``.

    ``ϵ`` is added to ``√ŝ`` (outside the square root), as in Flux and optax.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> opt = tk.Adam(eta=0.1)
        >>> x = jnp.array([1.0, -1.0])
        >>> x, _ = tk.update(opt, tk.setup(opt, x), x, jnp.array([3.0, -0.5]))
        >>> x.round(4)   # the first Adam step moves every coordinate by about η
        Array([ 0.9, -0.9], dtype=float32)
    """
    h = _resolve("Adam", {"η": η, "β": β, "ϵ": ϵ}, ascii_names)
    β = h["β"]
    if not isinstance(β, (tuple, list)) or len(β) != 2:
        raise ValueError(f"tk.Adam: β must be a pair (β₁, β₂) such as (0.9, 0.999), got {β!r}.")
    β1, β2 = (_check_unit("Adam", f"β[{i}]", b, closed=False) for i, b in enumerate(β))
    ϵ = h["ϵ"]
    if not _is_number(ϵ) or not (0 <= ϵ < math.inf):
        raise ValueError(f"tk.Adam: ϵ must be a finite number >= 0 (the default is ϵ=1e-8), got {ϵ!r}.")
    return optax.adam(_check_rate("Adam", h["η"]), b1=β1, b2=β2, eps=float(ϵ))

"""Flux's regression losses: ``mse`` and ``mae``, with Flux's size check.

Flux (``src/losses/functions.jl``): ``mse(ŷ, y; agg = mean) = agg(abs2.(ŷ .- y))``
and ``mae(ŷ, y; agg = mean) = agg(abs.(ŷ .- y))``, after ``_check_sizes`` refuses
arrays of different sizes (a plain number ``y``, a constant label, passes).
Here arrays must have equal shapes; broadcasting one against the other is the
classic silent bug this check exists to catch.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from toolkit._show import describe

__all__ = ["mse", "mae"]


def _difference(caller: str, ŷ: Any, y: Any) -> jax.Array:
    if not isinstance(ŷ, (numbers.Number, np.generic)) and not isinstance(y, (numbers.Number, np.generic)):
        if np.shape(ŷ) != np.shape(y):
            raise ValueError(
                f"tk.{caller}: ŷ is {describe(ŷ)} but y is {describe(y)}; their shapes must be equal. "
                f"Reshape one of them (e.g. y.reshape(ŷ.shape)) if the mismatch is a stray axis."
            )
    return jnp.asarray(ŷ) - jnp.asarray(y)


def mse(ŷ: Any, y: Any, *, agg: Callable[[jax.Array], jax.Array] = jnp.mean) -> jax.Array:
    """Mean squared error, ``agg(|ŷ - y|²)`` (Flux's ``mse``); ``agg=jnp.sum`` gives the sum.

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.mse(jnp.array([1.0, 2.0, 3.0]), jnp.array([1.0, 0.0, 0.0]))
        Array(4.3333335, dtype=float32)
    """
    d = _difference("mse", ŷ, y)
    return agg((d * jnp.conj(d)).real)


def mae(ŷ: Any, y: Any, *, agg: Callable[[jax.Array], jax.Array] = jnp.mean) -> jax.Array:
    """Mean absolute error, ``agg(|ŷ - y|)`` (Flux's ``mae``).

    Example:
        >>> import jax.numpy as jnp, toolkit as tk
        >>> tk.mae(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 0.0, 0.0]))
        Array(2., dtype=float32)
    """
    return agg(jnp.abs(_difference("mae", ŷ, y)))

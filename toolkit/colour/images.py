"""The mean colour difference between two images, with a gradient that costs one blocked pass and little memory.

``jnp.mean(colordiff(image1, image2, arrays="RGB"))`` differentiated as it is
keeps every intermediate of every pixel for the backward pass (about 6 GiB for
two 4096x4096 images in float32). Re-computing blocks of rows with
``jax.checkpoint`` bounds the memory but computes the forward pass twice.

A colour difference is computed pixel by pixel, so the gradient of the mean with
respect to a pixel is that pixel's own gradient divided by the number of pixels.
:func:`mean_difference` therefore computes, block of rows by block of rows
(``jax.lax.map``), the value and the per-pixel gradient together, and keeps only
the gradient (one array the size of each image) for the backward pass, which is
then one multiplication: one pass, no re-computation, memory about that of the
images and their gradients. It is a ``jax.custom_vjp``, so it works eagerly,
under ``jax.jit`` and ``jax.vmap``, and a call that is not differentiated runs
the plain (forward-only) mean.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["mean_difference"]


def mean_difference(
    image1: Any,
    image2: Any,
    metric: str | Callable[..., jax.Array] = "CIEDE2000",
    *,
    arrays: str = "RGB",
    rows_per_block: int = 64,
    **settings: Any,
) -> jax.Array:
    """The mean of ``colordiff(image1, image2, metric)`` over every pixel, differentiable in one blocked pass.

    Args:
        image1, image2: arrays of shape ``(..., height, width, 3)`` (the same shape),
            holding ``arrays`` (``"RGB"``, ``"Lab"`` or ``"XYZ"``).
        metric, arrays, settings: as for :func:`~toolkit.colour.colordiff`
            (``space``, ``linear``, ``illuminant``, ``observer``, ``reference_white``).
        rows_per_block: rows of pixels (along the axis before ``width``, all
            leading axes flattened into it) whose value and gradient are computed
            at once: larger is faster up to a point and takes more memory.

    The value is that of ``jnp.mean(colordiff(image1, image2, metric, arrays=arrays))``
    and so is the gradient (the same per-pixel derivatives, summed in another
    order); only the memory and time differ.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from toolkit.colour import mean_difference
        >>> a = jnp.zeros((4, 5, 3)).at[..., 0].set(1.0)   # red
        >>> b = jnp.ones((4, 5, 3))                        # white
        >>> value, (ga, gb) = jax.value_and_grad(mean_difference, argnums=(0, 1))(a, b, rows_per_block=2)
        >>> round(float(value), 2), ga.shape
        (45.81, (4, 5, 3))
    """
    if isinstance(rows_per_block, bool) or not isinstance(rows_per_block, (int, np.integer)) or rows_per_block < 1:
        raise ValueError(f"mean_difference: rows_per_block must be a positive int, got {rows_per_block!r}; e.g. 64.")
    shapes = (np.shape(image1), np.shape(image2))
    if shapes[0] != shapes[1] or len(shapes[0]) < 2 or shapes[0][-1] != 3:
        raise ValueError(
            f"mean_difference: image1 and image2 must be arrays of one shape (..., height, width, 3), got shapes "
            f"{shapes[0]} and {shapes[1]}; for colours of other shapes use jnp.mean(colordiff(a, b, arrays=...))."
        )
    if not np.prod(shapes[0][:-1]):
        raise ValueError(f"mean_difference: the images have no pixels (shape {shapes[0]}); the mean needs one.")
    try:
        program = _program(metric, arrays, int(rows_per_block), tuple(sorted(settings.items())))
    except TypeError:  # a setting that does not hash (an array): traced each call
        program = _program.__wrapped__(metric, arrays, int(rows_per_block), tuple(sorted(settings.items())))
    return program(jnp.asarray(image1), jnp.asarray(image2))


@functools.lru_cache(maxsize=64)
def _program(metric: Any, arrays: str, rows: int, settings: tuple) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The jitted mean for these settings, made once: eagerly, each call then runs a compiled program."""
    from toolkit.colour import colordiff  # noqa: PLC0415 (the package's own, wherever it is defined)

    pixelwise = functools.partial(colordiff, metric=metric, arrays=arrays, **dict(settings))
    return jax.jit(functools.partial(_blocked_mean, pixelwise, rows))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _blocked_mean(pixelwise: Callable, rows: int, image1: jax.Array, image2: jax.Array) -> jax.Array:
    return jnp.mean(pixelwise(image1, image2))


def _blocked_forward(pixelwise: Callable, rows: int, image1: jax.Array, image2: jax.Array) -> tuple[jax.Array, tuple]:
    shape, count = image1.shape, np.prod(image1.shape[:-1])
    flat1, flat2 = image1.reshape(-1, shape[-2], 3), image2.reshape(-1, shape[-2], 3)
    total, grad1, grad2 = _sums_and_gradients(pixelwise, rows, flat1, flat2)
    scale = 1 / count
    value = (total * scale).astype(jnp.result_type(total))
    residuals = (
        (grad1 * scale).reshape(shape).astype(image1.dtype),
        (grad2 * scale).reshape(shape).astype(image2.dtype),
    )
    return value, residuals


def _blocked_backward(pixelwise: Callable, rows: int, residuals: tuple, cotangent: jax.Array) -> tuple:
    grad1, grad2 = residuals
    return (grad1 * cotangent).astype(grad1.dtype), (grad2 * cotangent).astype(grad2.dtype)


_blocked_mean.defvjp(_blocked_forward, _blocked_backward)


def _sums_and_gradients(pixelwise: Callable, rows: int, flat1: jax.Array, flat2: jax.Array) -> tuple[jax.Array, ...]:
    """The sum of the differences over all rows, and each pixel's gradient: whole blocks by ``lax.map``, then the rest."""

    def block(pair: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
        value, grads = jax.value_and_grad(lambda x, y: jnp.sum(pixelwise(x, y)), argnums=(0, 1))(*pair)
        return value, *grads

    whole = flat1.shape[0] // rows * rows
    parts = []
    if whole:
        width = flat1.shape[1]
        blocks = (flat1[:whole].reshape(-1, rows, width, 3), flat2[:whole].reshape(-1, rows, width, 3))
        sums, g1, g2 = jax.lax.map(block, blocks)
        parts.append((jnp.sum(sums), g1.reshape(whole, width, 3), g2.reshape(whole, width, 3)))
    if whole < flat1.shape[0]:
        parts.append(block((flat1[whole:], flat2[whole:])))
    total = functools.reduce(jnp.add, [p[0] for p in parts])
    grad1 = jnp.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    grad2 = jnp.concatenate([p[2] for p in parts]) if len(parts) > 1 else parts[0][2]
    return total, grad1, grad2

"""Colour types: ``RGB``, ``Lab`` and ``XYZ`` structs whose fields are scalars or batches.

Each is a ``@tk.struct`` with three data fields, so colours add, scale and
differentiate like any other struct. Every colour function also accepts a
plain array whose trailing axis has length 3; :func:`as_array` and
:func:`like` convert between the two forms.
"""

from __future__ import annotations

from typing import Any, Union

import jax
import jax.numpy as jnp

from toolkit.struct import struct

__all__ = ["RGB", "Lab", "XYZ", "Colour", "as_array", "like"]


@struct
class RGB:
    """Non-linear (encoded) or linear RGB, depending on the function that reads it.

    Example:
        >>> from toolkit.colour import RGB
        >>> RGB(1.0, 0.0, 0.0).r
        1.0
    """

    r: Any
    g: Any
    b: Any


@struct
class Lab:
    """CIE 1976 L*a*b*: lightness ``l`` (0-100) and opponent axes ``a``, ``b``.

    Example:
        >>> from toolkit.colour import Lab
        >>> Lab(50.0, 10.0, -5.0).l
        50.0
    """

    l: Any
    a: Any
    b: Any


@struct
class XYZ:
    """CIE 1931 tristimulus values, scaled so that the white's ``y`` is 1.

    Example:
        >>> from toolkit.colour import XYZ
        >>> XYZ(0.95, 1.0, 1.09).y
        1.0
    """

    x: Any
    y: Any
    z: Any


Colour = Union[RGB, Lab, XYZ, jax.Array]


def as_array(colour: Any, name: str = "colour") -> jax.Array:
    """A colour struct or array as an array with a trailing axis of 3.

    Example:
        >>> from toolkit.colour import RGB, as_array
        >>> as_array(RGB(1.0, 0.5, 0.0)).tolist()
        [1.0, 0.5, 0.0]
    """
    if isinstance(colour, (RGB, Lab, XYZ)):
        return jnp.stack(jnp.broadcast_arrays(*jax.tree.leaves(colour)), axis=-1)
    array = jnp.asarray(colour)
    if array.ndim == 0 or array.shape[-1] != 3:
        raise ValueError(
            f"{name}: expected an RGB/Lab/XYZ struct or an array whose last axis has length 3, "
            f"got an array of shape {array.shape}"
        )
    return array


def like(template: Any, array: jax.Array, kind: type) -> Any:
    """``array`` (trailing axis 3) in the form of ``template``: a ``kind`` struct if it was a struct.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import RGB, Lab, like
        >>> like(RGB(1.0, 1.0, 1.0), jnp.array([100.0, 0.0, 0.0]), Lab).l
        Array(100., dtype=float32)
    """
    if isinstance(template, (RGB, Lab, XYZ)):
        return kind(array[..., 0], array[..., 1], array[..., 2])
    return array

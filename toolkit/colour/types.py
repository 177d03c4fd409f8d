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

from toolkit._show import describe
from toolkit.structs import struct

__all__ = ["RGB", "Lab", "XYZ", "Colour", "as_array", "like", "channels", "from_channels"]

Channels = tuple[jax.Array, jax.Array, jax.Array]


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


def channels(colour: Any, kind: type, caller: str, name: str) -> Channels:
    """The three channels of a ``kind`` struct or of an array whose last axis has length 3, as floats.

    Integer and boolean values become the default float type; the channels
    share one floating dtype and one (broadcast) shape. ``caller`` and
    ``name`` make the errors say which argument of which function was wrong.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import RGB, channels
        >>> r, g, b = channels(jnp.ones((4, 3)), RGB, "f", "rgb")
        >>> r.shape, r.dtype
        ((4,), dtype('float32'))
    """
    if isinstance(colour, (RGB, Lab, XYZ)):
        if not isinstance(colour, kind):
            raise TypeError(
                f"{caller}: {name} is {_ARTICLE[type(colour)]} {type(colour).__name__} struct, expected {kind.__name__} "
                f"(or an array whose last axis holds the 3 {kind.__name__} channels)."
            )
        parts = [jnp.asarray(leaf) for leaf in jax.tree.leaves(colour)]
        try:
            shape = jnp.broadcast_shapes(*(p.shape for p in parts))
        except ValueError:
            fields = ", ".join(f"{f}: {describe(p)}" for f, p in zip(_FIELDS[kind], parts))
            raise ValueError(f"{caller}: the fields of {name} do not broadcast together ({fields}).") from None
        parts = [jnp.broadcast_to(p, shape) for p in parts]
    else:
        array = jnp.asarray(colour)
        if array.ndim == 0 or array.shape[-1] != 3:
            fields = ", ".join(_FIELDS[kind])
            raise ValueError(
                f"{caller}: {name} must be {_ARTICLE[kind]} {kind.__name__} struct or an array whose last axis has length 3 "
                f"({fields}), got {describe(array)}. Stack channels with jnp.stack([...], axis=-1), "
                f"or build {kind.__name__}({fields})."
            )
        parts = [array[..., 0], array[..., 1], array[..., 2]]
    dtype = _float_dtype(caller, name, *parts)
    return tuple(p.astype(dtype) for p in parts)  # type: ignore[return-value]


def from_channels(template: Any, values: Channels, kind: type) -> Any:
    """Three channels in the form of ``template``: a ``kind`` struct if it was a struct, else a stacked array.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import Lab, RGB, from_channels
        >>> from_channels(RGB(1.0, 1.0, 1.0), tuple(jnp.array([100.0, 0.0, 0.0])), Lab).l
        Array(100., dtype=float32)
    """
    if isinstance(template, (RGB, Lab, XYZ)):
        return kind(*values)
    return jnp.stack(values, axis=-1)


_FIELDS = {RGB: ("r", "g", "b"), Lab: ("l", "a", "b"), XYZ: ("x", "y", "z")}
_ARTICLE = {RGB: "an", Lab: "a", XYZ: "an"}


def _float_dtype(caller: str, name: str, *parts: jax.Array) -> Any:
    dtype = jnp.result_type(*parts)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"{caller}: {name} must be real, got complex values ({dtype}); pass its .real part.")
    if not jnp.issubdtype(dtype, jnp.floating):
        return jnp.result_type(float)
    return dtype

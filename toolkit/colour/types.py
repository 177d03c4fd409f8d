"""Colour types: ``RGB``, ``Lab`` and ``XYZ`` structs whose fields are scalars or batches.

Each is a ``@tk.struct`` with three data fields, so colours add, scale and
differentiate like any other struct. Every colour function also accepts a
plain array whose trailing axis has length 3; :func:`as_array` and
:func:`like` convert between the two forms.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit._show import describe
from toolkit.colour._dtypes import float_dtype
from toolkit.filters import is_numeric
from toolkit.structs import struct

__all__ = [
    "RGB",
    "Lab",
    "XYZ",
    "Colour",
    "as_array",
    "like",
    "channels",
    "from_channels",
    "checked",
    "well_formed",
    "batch_shape",
]

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

    def __post_init__(self) -> None:
        _refuse_strings(self)


@struct
class Lab:
    """CIE 1976 L*a*b*: lightness ``l`` (0-100) and opponent axes ``a``, ``b``.

    Example:
        >>> from toolkit.colour import Lab
        >>> Lab(50.0, 10.0, -5.0).l
        50.0
    """

    l: Any  # noqa: E741 (CIE's name for lightness)
    a: Any
    b: Any

    def __post_init__(self) -> None:
        _refuse_strings(self)


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

    def __post_init__(self) -> None:
        _refuse_strings(self)


Colour = RGB | Lab | XYZ | jax.Array


def _refuse_strings(colour: Any) -> None:
    """A ``TypeError`` naming the channel if a field of a colour struct holds a string (JAX cannot trace one)."""
    for field in _FIELDS[type(colour)]:
        value = getattr(colour, field)
        if isinstance(value, (jax.Array, np.ndarray, float, int)):
            continue  # the common case, cheaply
        for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
            if isinstance(leaf, (str, bytes)):
                raise TypeError(
                    f"{type(colour).__name__}.{field}{jax.tree_util.keystr(path)}: a colour channel holds numbers, "
                    f"got the {type(leaf).__name__} {leaf!r}; convert it first, e.g. float(value)."
                )


def as_array(colour: Any, name: str = "colour") -> jax.Array:
    """A colour struct or array as an array with a trailing axis of 3.

    Example:
        >>> from toolkit.colour import RGB, as_array
        >>> as_array(RGB(1.0, 0.5, 0.0)).tolist()
        [1.0, 0.5, 0.0]
    """
    colour = checked(colour, None, "as_array", name)
    if isinstance(colour, (RGB, Lab, XYZ)):
        return jnp.stack(_broadcast_fields(colour, "as_array", name), axis=-1)
    array = jnp.asarray(colour)
    if array.ndim == 0 or array.shape[-1] != 3:
        raise ValueError(
            f"as_array: {name}: expected an RGB/Lab/XYZ struct or an array whose last axis has length 3, "
            f"got {describe(array)}. Stack channels with jnp.stack([...], axis=-1), or build a struct such as "
            f"RGB(r, g, b)."
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
    _check_kind("like", kind)
    if isinstance(template, (RGB, Lab, XYZ)):
        array = checked(array, kind, "like", "array")
        if isinstance(array, (RGB, Lab, XYZ)):
            return array  # a kind struct already (checked raises for another kind)
        array = jnp.asarray(array)
        if array.ndim == 0 or array.shape[-1] != 3:
            raise ValueError(
                f"like: array must have a last axis of length 3 ({', '.join(_FIELDS[kind])}) to become a "
                f"{kind.__name__} struct, got {describe(array)}."
            )
        return kind(array[..., 0], array[..., 1], array[..., 2])
    return array


def channels(colour: Any, kind: type, caller: str, name: str) -> Channels:
    """The three channels of a ``kind`` struct or of an array whose last axis has length 3, as floats.

    The channels share one floating dtype, JAX's promotion of the inputs' dtypes
    (integers and booleans become floats as ``jnp.sin`` makes them: float32,
    or float64 for 64-bit integers), and one (broadcast) shape. ``caller`` and
    ``name`` make the errors say which argument of which function was wrong.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import RGB, channels
        >>> r, g, b = channels(jnp.ones((4, 3)), RGB, "f", "rgb")
        >>> r.shape, r.dtype
        ((4,), dtype('float32'))
    """
    _check_kind("channels", kind)
    if isinstance(colour, (RGB, Lab, XYZ)):
        parts = _broadcast_fields(checked(colour, kind, caller, name), caller, name)
    else:
        array = jnp.asarray(checked(colour, kind, caller, name))
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
    _check_kind("from_channels", kind)
    if isinstance(values, (jax.Array, np.ndarray)) and np.ndim(values) > 0:
        values = tuple(values)  # type: ignore[assignment] (unpacked along its first axis, as Python would)
    if not isinstance(values, (tuple, list)) or len(values) != 3:
        raise TypeError(
            f"from_channels: values must be a tuple of the 3 {kind.__name__} channels "
            f"({', '.join(_FIELDS[kind])}), got {_count(values)}."
        )
    values = tuple(checked(v, None, "from_channels", f"values[{i}]") for i, v in enumerate(values))
    if isinstance(template, (RGB, Lab, XYZ)):
        return kind(*values)
    return jnp.stack(_broadcast(values, "from_channels", "values", ("values[0]", "values[1]", "values[2]")), axis=-1)


def _count(values: Any) -> str:
    return f"{len(values)} of them" if isinstance(values, (tuple, list)) else describe(values)


def _check_kind(caller: str, kind: Any) -> None:
    if not (isinstance(kind, type) and kind in _FIELDS):
        raise TypeError(f"{caller}: kind must be the class RGB, Lab or XYZ (e.g. tk.colour.Lab), got {kind!r}.")


def _broadcast_fields(colour: Any, caller: str, name: str) -> list[jax.Array]:
    """The three fields of a colour struct as arrays of one shape, else a ``ValueError`` naming ``name``'s fields."""
    fields = _FIELDS[type(colour)]
    values = [jnp.asarray(getattr(colour, f)) for f in fields]
    return _broadcast(values, caller, f"the fields of {name}", fields)


def _broadcast(values: Any, caller: str, what: str, names: tuple[str, ...]) -> list[jax.Array]:
    parts = [jnp.asarray(v) for v in values]
    try:
        shape = jnp.broadcast_shapes(*(p.shape for p in parts))
    except ValueError:
        shapes = ", ".join(f"{n}: {describe(p)}" for n, p in zip(names, parts))
        raise ValueError(
            f"{caller}: {what} do not broadcast together ({shapes}); give them equal shapes, "
            f"or shapes that broadcast (a number, or size-1 axes)."
        ) from None
    return [jnp.broadcast_to(p, shape) for p in parts]


_FIELDS = {RGB: ("r", "g", "b"), Lab: ("l", "a", "b"), XYZ: ("x", "y", "z")}
_ARTICLE = {RGB: "an", Lab: "a", XYZ: "an"}


def _float_dtype(caller: str, name: str, *parts: jax.Array) -> Any:
    dtype = jnp.result_type(*parts)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"{caller}: {name} must be real, got complex values ({dtype}); pass its .real part.")
    return float_dtype(dtype)


def checked(colour: Any, kind: type | None, caller: str, name: str) -> Any:
    """``colour`` with each value a real number or array of real numbers, else a ``TypeError`` naming ``name``.

    Cheap (no array is built for arrays already), so public functions run it
    before ``jit``, whose own error would name an internal function. Lists and
    tuples become arrays; a struct of another kind than ``kind`` is a ``TypeError``.

    Example:
        >>> from toolkit.colour import RGB
        >>> from toolkit.colour.types import checked
        >>> checked([0.5, "red", 0.5], RGB, "f", "rgb")
        Traceback (most recent call last):
            ...
        TypeError: f: rgb must be an RGB struct or an array of real numbers whose last axis holds r, g, b; got a list that JAX cannot read as an array of numbers.
    """
    if isinstance(colour, (RGB, Lab, XYZ)):
        if kind is not None and not isinstance(colour, kind):
            raise TypeError(
                f"{caller}: {name} is {_ARTICLE[type(colour)]} {type(colour).__name__} struct, expected {kind.__name__} "
                f"(or an array whose last axis holds the 3 {kind.__name__} channels)."
            )
        fields = _FIELDS[type(colour)]
        values = [_checked_value(getattr(colour, f), caller, f"{name}.{f}", type(colour)) for f in fields]
        if any(v is not getattr(colour, f) for v, f in zip(values, fields)):
            return type(colour)(*values)
        return colour
    return _checked_value(colour, caller, name, kind)


def well_formed(colour: Any, kind: type) -> bool:
    """Whether :func:`channels` accepts ``colour`` as a ``kind`` (judged by its type and shapes alone).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import Lab, RGB
        >>> from toolkit.colour.types import well_formed
        >>> well_formed(jnp.ones((4, 3)), RGB), well_formed(jnp.ones(4), RGB), well_formed(Lab(1.0, 0.0, 0.0), RGB)
        (True, False, False)
    """
    if isinstance(colour, (RGB, Lab, XYZ)):
        if not isinstance(colour, kind):
            return False
        try:
            jnp.broadcast_shapes(*(np.shape(getattr(colour, f)) for f in _FIELDS[kind]))
        except ValueError:
            return False
        return True
    shape = np.shape(colour)
    return len(shape) > 0 and shape[-1] == 3


def batch_shape(colour: Any) -> tuple[int, ...]:
    """The batch shape of a colour :func:`well_formed` accepts: its fields' broadcast shape, or its shape less the 3.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour import Lab
        >>> from toolkit.colour.types import batch_shape
        >>> batch_shape(jnp.ones((4, 3))), batch_shape(Lab(jnp.ones(2), 0.0, 0.0))
        ((4,), (2,))
    """
    if isinstance(colour, (RGB, Lab, XYZ)):
        return np.broadcast_shapes(*(np.shape(getattr(colour, f)) for f in _FIELDS[type(colour)]))
    return np.shape(colour)[:-1]


def _checked_value(value: Any, caller: str, name: str, kind: type | None) -> Any:
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        if not is_numeric(value):
            raise TypeError(_not_numbers(caller, name, kind, _non_number(value)))
        dtype = value.dtype
    elif isinstance(value, (bool, int, float, complex)):
        dtype = jnp.result_type(value)
    else:
        try:
            value = jnp.asarray(value)
        except (TypeError, ValueError, OverflowError):
            raise TypeError(
                _not_numbers(caller, name, kind, f"{type(value).__name__} that JAX cannot read as an array of numbers")
            ) from None
        dtype = value.dtype
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"{caller}: {name} must be real, got complex values ({np.dtype(dtype)}); pass its .real part.")
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer) or dtype == np.bool_):
        raise TypeError(_not_numbers(caller, name, kind, f"values of dtype {np.dtype(dtype)}"))
    return value


def _is_key(dtype: Any) -> bool:
    try:
        return bool(jnp.issubdtype(dtype, jax.dtypes.prng_key))
    except TypeError:  # a NumPy dtype JAX does not know (strings, objects)
        return False


def _non_number(value: Any) -> str:
    if _is_key(value.dtype):
        return f"PRNG key array ({describe(value)}), which holds no numbers: draw them first, e.g. jax.random.uniform(key, (n, 3))"
    return f"values of dtype {value.dtype}"


def _not_numbers(caller: str, name: str, kind: type | None, got: str) -> str:
    if "." in name:
        return f"{caller}: {name} must be a real number or an array of real numbers; got {_a(got)}."
    if kind is None:
        return f"{caller}: {name} must be an RGB, Lab or XYZ struct or an array of real numbers; got {_a(got)}."
    fields = ", ".join(_FIELDS[kind])
    return (
        f"{caller}: {name} must be {_ARTICLE[kind]} {kind.__name__} struct or an array of real numbers whose last axis "
        f"holds {fields}; got {_a(got)}."
    )


def _a(noun: str) -> str:
    return noun if noun.startswith("values") else ("an " if noun[0] in "aeiou" else "a ") + noun

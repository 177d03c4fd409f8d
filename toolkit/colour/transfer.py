"""Transfer functions in JAX: encoded (non-linear) RGB code values to linear light and back.

``*_decode`` maps code values to linear light (colour-science's ``cctf_decoding``),
``*_encode`` maps linear light to code values (``cctf_encoding``). Each works
channel by channel on an array of any shape or on a colour struct, and follows
colour-science's conventions outside [0, 1] so that out-of-gamut colours are
carried through, never clipped:

* piecewise curves (sRGB, BT.709, BT.2020) continue their linear segment below
  the cut, negatives included, and their power segment above one;
* pure gamma curves (Adobe RGB (1998), DCI-P3, ...) are mirrored about zero,
  ``sign(x) * |x| ** exponent``: colour-science's ``negative_number_handling="Mirror"``
  (its default, ``"Indeterminate"``, returns NaN for negative values).

Each function returns its input's dtype; float16 and bfloat16 are computed in
float32 and rounded once (integers become float32, or float64 for 64-bit ones).

Gradients are finite everywhere. The power segment of a piecewise curve is
evaluated on a substitute argument wherever the linear segment is selected, so
its singular point (and the NaN of a fractional power of a negative number)
never meets a cotangent. The encoding gamma ``sign(x) * |x| ** (1/γ)`` has an
infinite slope at 0; there the gradient is :func:`toolkit.safe.pow`'s
subgradient, 0.

References:
    IEC 61966-2-1:1999, Multimedia systems and equipment - Colour measurement and
    management - Part 2-1: Default RGB colour space - sRGB.
    Recommendation ITU-R BT.709-6 (2015), Parameter values for the HDTV standards, item 1.2.
    Recommendation ITU-R BT.2020-2 (2015), Parameter values for ultra-high definition
    television systems, table 4.
    Adobe Systems (2005), Adobe RGB (1998) Color Image Encoding, version 2005-05, 4.3.1.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import filters, safe
from toolkit._show import describe
from toolkit.colour._dtypes import float_dtype, working_dtype
from toolkit.colour.types import RGB, XYZ, Lab, checked

__all__ = [
    "Curve",
    "PiecewiseCurve",
    "GammaCurve",
    "LINEAR",
    "SRGB",
    "BT709",
    "BT2020",
    "srgb_decode",
    "srgb_encode",
    "bt709_decode",
    "bt709_encode",
    "bt2020_decode",
    "bt2020_encode",
    "gamma_decode",
    "gamma_encode",
    "positive_power",
]


def _elementwise(f: Callable[[jax.Array], jax.Array], x: Any, caller: str, name: str) -> Any:
    """``f`` on every channel of a colour struct, or on an array of any shape; ``name`` is the argument's."""
    if isinstance(x, (RGB, Lab, XYZ)):
        return jax.tree_util.tree_map_with_path(
            lambda path, leaf: _elementwise(f, leaf, caller, name + jax.tree_util.keystr(path)),
            x,
            is_leaf=lambda leaf: leaf is None,  # a None channel is refused, not skipped
        )
    x = _real_array(x, caller, name)
    dtype = float_dtype(x.dtype)  # integers as jnp computes them: float32, float64 for 64-bit integers
    work = working_dtype(dtype)  # float32 for half precision (see toolkit.colour._dtypes)
    if work == x.dtype:
        return _compiled(f, x)
    return _compiled(f, x.astype(work)).astype(dtype)


def _real_array(x: Any, caller: str, name: str) -> jax.Array:
    """``x`` as an array of real numbers, else a ``TypeError`` naming ``name``."""
    if _is_complex(x):
        raise TypeError(
            f"{caller}: expected real values, got complex values for {name} ({describe(x)}); "
            f"pass the real part (x.real)."
        )
    return jnp.asarray(checked(x, None, caller, name))


def _is_complex(x: Any) -> bool:
    return isinstance(x, complex) or (filters.is_array(x) and filters.is_numeric(x) and np.dtype(x.dtype).kind == "c")


def _checked_exponent(caller: str, exponent: Any) -> float:
    """``exponent`` as a Python float, if it is one finite number > 0 known now; else an error naming it."""
    real = isinstance(exponent, numbers.Real) or (filters.is_array(exponent) and filters.is_numeric(exponent))
    if isinstance(exponent, (bool, np.bool_)) or not real or _is_complex(exponent) or getattr(exponent, "ndim", 0) != 0:
        raise TypeError(f"{caller}: exponent must be one real number > 0, such as 2.2, got {describe(exponent)}.")
    value = filters.concrete(exponent)
    if value is None:
        raise TypeError(
            f"{caller}: exponent is traced ({describe(exponent)}), but it selects the curve to compile; "
            f"pass a Python float (for jax.jit, mark it static: static_argnums)."
        )
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(
            f"{caller}: exponent must be finite and > 0 (Adobe RGB (1998) decodes with 563 / 256), got {float(value)!r}."
        )
    return float(value)


# One fused kernel per curve and shape when called outside jit; inlined inside it.
@functools.partial(jax.jit, static_argnums=0)
def _compiled(f: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    return f(x)


class Curve(Protocol):
    """A transfer function pair: ``decode`` (code value -> linear light) and ``encode`` (its inverse)."""

    def decode(self, code: jax.Array) -> jax.Array: ...

    def encode(self, linear: jax.Array) -> jax.Array: ...


@dataclasses.dataclass(frozen=True)
class _Linear:
    """The identity: linear RGB needs no transfer function."""

    def decode(self, code: jax.Array) -> jax.Array:
        return code

    def encode(self, linear: jax.Array) -> jax.Array:
        return linear


@dataclasses.dataclass(frozen=True)
class PiecewiseCurve:
    """``slope * L`` up to ``cut``, ``scale * L ** exponent - offset`` above it (``L`` linear light).

    ``linear_at_cut`` says which segment owns ``L == cut`` exactly (and the
    matching code value when decoding), as the standard (and colour-science) does.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import SRGB
        >>> [round(v, 4) for v in SRGB.encode(jnp.array([0.0, 0.18, 1.0])).tolist()]
        [0.0, 0.4614, 1.0]
    """

    cut: float
    slope: float
    scale: float
    offset: float
    exponent: float
    linear_at_cut: bool

    @property
    def code_cut(self) -> float:
        """The code value where the segments meet: the encoding of ``cut`` by the segment that owns it."""
        if self.linear_at_cut:
            return self.cut * self.slope
        return self.scale * self.cut**self.exponent - self.offset

    def _on_linear_segment(self, x: jax.Array, cut: float) -> jax.Array:
        return x <= cut if self.linear_at_cut else x < cut

    def encode(self, linear: jax.Array) -> jax.Array:
        straight = self._on_linear_segment(linear, self.cut)
        # 1.0 stands in for the power segment's argument where it is not used, so
        # that its infinite slope at 0 never meets a cotangent.
        curved = jnp.where(straight, 1.0, linear)
        return jnp.where(
            straight, linear * self.slope, self.scale * positive_power(curved, self.exponent) - self.offset
        )

    def decode(self, code: jax.Array) -> jax.Array:
        straight = self._on_linear_segment(code, self.code_cut)
        curved = jnp.where(straight, 1.0, code)
        power = positive_power((curved + self.offset) / self.scale, 1 / self.exponent)
        return jnp.where(straight, code / self.slope, power)


def positive_power(x: jax.Array, p: float) -> jax.Array:
    """``x ** p`` for ``x > 0`` only, as ``exp(p * log(x))``.

    XLA's CPU ``pow`` and ``cbrt`` handle every sign and special case and are
    2-5x slower than its vectorised ``exp``/``log``; the result is within a few
    ulp of ``x ** p``. Callers guarantee ``x > 0`` (as on a power segment).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import positive_power
        >>> round(float(positive_power(jnp.float32(8.0), 1 / 3)), 5)
        2.0
    """
    return jnp.exp(p * jnp.log(x))


@dataclasses.dataclass(frozen=True)
class GammaCurve:
    """A pure power law, mirrored about zero: ``decode(V) = sign(V) * |V| ** exponent``.

    ``encode_exponent`` is the exponent of the inverse (colour-science stores both).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import GammaCurve
        >>> GammaCurve(2.0, 0.5).decode(jnp.array([-0.5, 0.5])).tolist()
        [-0.25, 0.25]
    """

    exponent: float
    encode_exponent: float

    def decode(self, code: jax.Array) -> jax.Array:
        return safe.pow(code, self.exponent, signed=True)

    def encode(self, linear: jax.Array) -> jax.Array:
        return safe.pow(linear, self.encode_exponent, signed=True)


LINEAR = _Linear()
"""No transfer function (linear RGB)."""

SRGB = PiecewiseCurve(cut=0.0031308, slope=12.92, scale=1.055, offset=0.055, exponent=1 / 2.4, linear_at_cut=True)
"""IEC 61966-2-1 sRGB (also Display P3's transfer function)."""

BT709 = PiecewiseCurve(cut=0.018, slope=4.5, scale=1.099, offset=0.099, exponent=0.45, linear_at_cut=False)
"""ITU-R BT.709 opto-electronic transfer function (OETF)."""

BT2020 = PiecewiseCurve(cut=0.018, slope=4.5, scale=1.099, offset=1.099 - 1, exponent=0.45, linear_at_cut=False)
"""ITU-R BT.2020 OETF with the 10-bit constants (alpha = 1.099, beta = 0.018), as colour-science's default.

The standard writes the offset as alpha - 1, which in floating point is not BT.709's 0.099."""


def srgb_decode(code: Any) -> Any:
    """sRGB code values to linear light (the IEC 61966-2-1 EOTF); accepts arrays or colour structs.

    Linear below 0.04045 (negatives included), ``((V + 0.055) / 1.055) ** 2.4`` above (values > 1 included).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import srgb_decode
        >>> [round(v, 4) for v in srgb_decode(jnp.array([-0.1, 0.5, 1.12])).tolist()]
        [-0.0077, 0.214, 1.295]
    """
    return _elementwise(SRGB.decode, code, "srgb_decode", "code")


def srgb_encode(linear: Any) -> Any:
    """Linear light to sRGB code values (inverse of :func:`srgb_decode`); accepts arrays or colour structs.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import srgb_encode
        >>> [round(v, 4) for v in srgb_encode(jnp.array([-0.01, 0.2140411, 1.0])).tolist()]
        [-0.1292, 0.5, 1.0]
    """
    return _elementwise(SRGB.encode, linear, "srgb_encode", "linear")


def bt709_decode(code: Any) -> Any:
    """ITU-R BT.709 code values to scene-linear light (the inverse OETF, colour-science's ``cctf_decoding``).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import bt709_decode
        >>> [round(v, 4) for v in bt709_decode(jnp.array([0.0, 0.5, 1.0])).tolist()]
        [0.0, 0.2596, 1.0]
    """
    return _elementwise(BT709.decode, code, "bt709_decode", "code")


def bt709_encode(linear: Any) -> Any:
    """Scene-linear light to ITU-R BT.709 code values (the OETF).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import bt709_encode
        >>> [round(v, 4) for v in bt709_encode(jnp.array([0.0, 0.18, 1.0])).tolist()]
        [0.0, 0.409, 1.0]
    """
    return _elementwise(BT709.encode, linear, "bt709_encode", "linear")


def bt2020_decode(code: Any) -> Any:
    """ITU-R BT.2020 code values to scene-linear light (the inverse OETF, 10-bit constants).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import bt2020_decode
        >>> [round(v, 4) for v in bt2020_decode(jnp.array([0.0, 0.5, 1.0])).tolist()]
        [0.0, 0.2596, 1.0]
    """
    return _elementwise(BT2020.decode, code, "bt2020_decode", "code")


def bt2020_encode(linear: Any) -> Any:
    """Scene-linear light to ITU-R BT.2020 code values (the OETF, 10-bit constants).

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import bt2020_encode
        >>> [round(v, 4) for v in bt2020_encode(jnp.array([0.0, 0.18, 1.0])).tolist()]
        [0.0, 0.409, 1.0]
    """
    return _elementwise(BT2020.encode, linear, "bt2020_encode", "linear")


def gamma_decode(code: Any, exponent: float) -> Any:
    """``sign(V) * |V| ** exponent``: a pure gamma curve, mirrored for negative values.

    Adobe RGB (1998) decodes with ``exponent = 563 / 256``.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import gamma_decode
        >>> gamma_decode(jnp.array([-0.5, 0.5]), 2.0).tolist()
        [-0.25, 0.25]
    """
    exponent = _checked_exponent("gamma_decode", exponent)
    return _elementwise(GammaCurve(exponent, 1 / exponent).decode, code, "gamma_decode", "code")


def gamma_encode(linear: Any, exponent: float) -> Any:
    """``sign(L) * |L| ** (1 / exponent)``: inverse of :func:`gamma_decode` with the same ``exponent``.

    The slope at 0 is infinite; the gradient there is 0, :func:`toolkit.safe.pow`'s subgradient.

    Example:
        >>> import jax.numpy as jnp
        >>> from toolkit.colour.transfer import gamma_encode
        >>> gamma_encode(jnp.array([-0.25, 0.25]), 2.0).tolist()
        [-0.5, 0.5]
    """
    exponent = _checked_exponent("gamma_encode", exponent)
    return _elementwise(GammaCurve(exponent, 1 / exponent).encode, linear, "gamma_encode", "linear")

"""Colour differences with finite, documented gradients everywhere: CIEDE2000, CIE94, CMC, CIE76 and ``colordiff``.

Each metric takes two colours in CIE L*a*b* (``Lab`` structs or arrays whose
last axis holds L*, a*, b*), with any leading batch shapes that broadcast
together, and returns ΔE as an array of the broadcast shape. Values match
colour-science's ``delta_E`` (float64, to about 1e-12). Everything composes with
``jax.jit``, ``jax.vmap`` and ``jax.grad``. ΔE has the dtype the colours and the
weights promote to; half precision (float16, bfloat16) is computed in float32
and rounded once (see :mod:`toolkit.colour` on dtypes).

**Gradients.** The formulas are continuous, but not differentiable everywhere:

* at ΔE = 0 (a square root of a quadratic form that vanishes): the gradient
  there is **0** (``safe.sqrt``), the minimum-norm subgradient, and ΔE is at
  its minimum;
* on the grey axis, a* = b* = 0, where chroma is a cone and the hue angle is
  undefined. A grey colour's chroma gets the gradient along the *other*
  colour's hue (see ``toolkit.colour._chroma``), and in CIEDE2000 a grey colour
  takes the other colour's hue. The values are exactly the standards'; the
  gradient with respect to the grey colour's (a*, b*) is then parallel to the
  other colour's (a*, b*) and equals the one-sided derivative of ΔE along it,
  so **at a grey colour the negative gradient is a descent direction toward a
  chromatic colour**: an optimisation started at white leaves the grey axis.
  When both colours are grey, the (a*, b*) gradient is 0 (ΔE is flat there to
  first order, or at its minimum). Through a conversion (a gradient with
  respect to RGB) the step in Lab is J·Jᵀ·g, turned off that hue by up to
  about 50°, and at a grey ΔE grows to first order in directions far enough
  from it; no single gradient can avoid that for every J. So in RGB the first
  step from an exact grey always leaves the grey axis, but does not always
  reduce ΔE (measured on sRGB greys: CIEDE2000 toward blue, CMC from white
  toward red, CIE94 from black toward blue); from there on it is an ordinary
  gradient;
* along CIEDE2000's 180° seam and the branch points of CMC (see each metric):
  the gradient is that of the branch the standard selects.

**Huge values.** Every finite input gives a finite value (where ΔE itself is
representable) and finite gradients: a* and b* beyond 2^40 are divided by a
power of two before they are squared, lightness differences are taken in
halves, and the terms are combined as ``hypot`` combines
(``toolkit.colour._scale``).

Near (not on) the grey axis CIEDE2000's true gradient grows like
``sqrt(C_other / C)`` in the hue direction when its rotation term R_T is not 0
(hues near 275°): that is the formula's own behaviour, finite for any chroma
that is not subnormal (subnormals are flushed to 0 by XLA on CPU, so count as grey).

References:
    CIE 142-2001, Improvement to industrial colour-difference evaluation (CIEDE2000).
    Sharma G., Wu W., Dalal E. N. (2005), The CIEDE2000 color-difference formula:
    implementation notes, supplementary test data, and mathematical observations,
    Color Research & Application 30(1), 21-30.
    CIE 116-1995, Industrial colour-difference evaluation (CIE94).
    Clarke F. J. J., McDonald R., Rigg B. (1984), Modification to the JPC79
    colour-difference formula, J. Soc. Dyers Colour. 100, 128-132 (CMC).
    CIE 15:2004, Colorimetry, 3rd edition (CIE 1976 ΔE*ab).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import filters, safe
from toolkit._show import describe
from toolkit.adjoints import adjoint
from toolkit.colour._chroma import chroma
from toolkit.colour._dtypes import as_they_are, cast, needs_cast, promoted, working_dtype
from toolkit.colour._hue import hue, hue_difference, mean_hue, shared_hues, wraps
from toolkit.colour._scale import chroma_scale, cross, norm3, rescaled
from toolkit.colour.types import RGB, XYZ, Lab, batch_shape, channels, checked, well_formed

__all__ = ["ciede2000", "cie94", "cmc", "cie76", "hyab", "hych"]

_25_TO_7 = 25.0**7
_COS = {d: float(np.cos(np.radians(d))) for d in (6, 30, 63)}  # of the phase angles in T
_SIN = {d: float(np.sin(np.radians(d))) for d in (6, 30, 63)}


# --- inputs ---------------------------------------------------------------------


def _pair(caller: str, names: tuple[str, str], lab1: Any, lab2: Any) -> tuple[jax.Array, ...]:
    """The six channels L1, a1, b1, L2, a2, b2 of two Lab colours, in one dtype and one broadcast shape."""
    first = channels(_channels_first(lab1), Lab, caller, names[0])
    second = channels(_channels_first(lab2), Lab, caller, names[1])
    try:
        shape = jnp.broadcast_shapes(first[0].shape, second[0].shape)
    except ValueError:
        raise ValueError(
            f"{caller}: the batch shapes of {names[0]} {first[0].shape} and {names[1]} {second[0].shape} "
            f"do not broadcast together (the trailing L*, a*, b* axis excluded). Give them equal shapes, "
            f"or size-1 axes to broadcast along, e.g. {names[0]}[:, None] against {names[1]}[None, :]."
        ) from None
    dtype = jnp.result_type(first[0], second[0])
    return tuple(jnp.broadcast_to(c, shape).astype(dtype) for c in first + second)


def _run(
    kernel: Callable[..., jax.Array], caller: str, names: tuple[str, str], lab1: Any, lab2: Any, **named: Any
) -> jax.Array:
    """``kernel(lab1, lab2, *weights)`` in the working dtype, returned in the dtype the inputs promote to.

    The colours are cast to the working dtype (float32 for half precision, see
    ``toolkit.colour._dtypes``) before the kernel, unless they need no cast or
    the kernel will reject one (so that its error describes it as given).
    Scalar weights go in as Python floats, whatever their type: they count in
    the dtype returned, and the kernel computes in the colours' dtype, so one
    kernel serves ``kL=1.0`` and ``kL=np.float64(1.0)`` alike.
    """
    weights = tuple(named.values())
    if as_they_are((lab1, lab2), weights):
        return kernel(lab1, lab2, *weights)
    lab1, lab2 = checked(lab1, Lab, caller, names[0]), checked(lab2, Lab, caller, names[1])
    dtype = promoted(lab1, lab2, *weights)
    work = working_dtype(dtype)
    colours = (lab1, lab2)
    if well_formed(lab1, Lab) and well_formed(lab2, Lab):
        _check_weight_shapes(caller, names, lab1, lab2, named)
        if needs_cast(colours, work):
            colours = cast(colours, work)
    out = kernel(*colours, *(_weight(w, work) for w in weights))
    return out if out.dtype == dtype else out.astype(dtype)


def _weight(w: Any, work: Any) -> Any:
    """A weight for a kernel computing in ``work``: a Python float if it is a known scalar, else a ``work`` array."""
    if type(w) in (bool, int, float):  # not np.float64, a subclass of float but strongly typed
        return w
    if isinstance(w, np.generic) or (np.ndim(w) == 0 and filters.concrete(w) is not None):
        return float(w)
    return cast(w, work)


def _channels_first(lab: Any) -> Any:
    """An array with a trailing axis of 3 as a Lab struct of contiguous channels (others as they are).

    One transpose up front: the gradient then comes back through three
    contiguous arrays instead of strided slices, about 15% faster on CPU.
    """
    if isinstance(lab, (RGB, Lab, XYZ)):
        return lab
    array = jnp.asarray(lab)
    if array.ndim == 0 or array.shape[-1] != 3:
        return array  # channels() says what is wrong with it
    return Lab(*jnp.moveaxis(array, -1, 0))


def _check_weight_shapes(caller: str, names: tuple[str, str], lab1: Any, lab2: Any, weights: dict[str, Any]) -> None:
    """A ``ValueError`` naming the weight whose shape does not broadcast with the colours' batch shape."""
    try:
        batch = np.broadcast_shapes(batch_shape(lab1), batch_shape(lab2))
    except ValueError:
        return  # _pair says so, naming both colours
    for name, value in weights.items():
        try:
            np.broadcast_shapes(batch, np.shape(value))
        except ValueError:
            raise ValueError(
                f"{caller}: {name} ({describe(value)}) does not broadcast with the batch shape {batch} of "
                f"{names[0]} and {names[1]}; pass a number, or an array whose axes equal the batch's or are 1."
            ) from None


def _positive(caller: str, **weights: Any) -> dict[str, Any]:
    """The weights, each checked to be > 0 wherever its value is known (real wherever it is traced); lists become arrays."""
    return {name: _checked_weight(caller, name, value) for name, value in weights.items()}


def _checked_weight(caller: str, name: str, value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        value = _weight_array(caller, name, value)
    if isinstance(value, (bool, np.bool_)) or (filters.is_array(value) and value.dtype == bool):
        raise TypeError(
            f"{caller}: {name} is a weight, a number > 0, not a boolean (got {describe(value)}); "
            f"pass a number, e.g. {name}=2.0."
        )
    if filters.is_array(value) and not filters.is_numeric(value):  # PRNG keys, strings, objects
        raise TypeError(f"{caller}: {name} must be a real number or array of real numbers, got {describe(value)}.")
    if filters.is_array(value) and filters.concrete(value) is None:  # traced: its values are not known yet
        _check_real(caller, name, value)
    else:
        _check_positive(caller, name, value)
    return value


def _weight_array(caller: str, name: str, value: Any) -> jax.Array:
    try:
        return jnp.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{caller}: {name} must be a real number or array of real numbers, got a {type(value).__name__} "
            f"that is not one ({value!r})."
        ) from None


def _check_real(caller: str, name: str, value: jax.Array) -> None:
    if not (jnp.issubdtype(value.dtype, jnp.integer) or jnp.issubdtype(value.dtype, jnp.floating)):
        raise TypeError(
            f"{caller}: {name} must be a real number or array of real numbers, got {describe(value)} (traced)."
        )


def _check_positive(caller: str, name: str, value: Any) -> None:
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{caller}: {name} must be a real number or array of real numbers, got {value!r}.")
    positive = array > 0
    if np.all(positive):
        return
    if isinstance(value, numbers.Real):
        shown = repr(value)
    elif array.ndim == 0:
        shown = f"{describe(value)} ({array.item()!r})"
    else:
        shown = f"{describe(value)} (first bad value: {array[~positive][0].item()!r})"
    raise ValueError(f"{caller}: {name} is a weight that divides a difference, so it must be > 0; got {name}={shown}.")


# --- CIEDE2000 --------------------------------------------------------------------


@adjoint
def _saturating(c: jax.Array):
    """sqrt(c^7 / (c^7 + 25^7)), the chroma weighting of G and R_C, with its derivative written out.

    The derivative 3.5·25^7·c^2.5 / (c^7 + 25^7)^1.5 is finite (0) at c = 0,
    where autodiff of the square root would divide 0 by 0; one residual instead
    of a chain keeps the gradient of CIEDE2000 about 10% cheaper. c is capped at
    1e5, where the ratio is 1 to within 1e-25, so that c^7 cannot overflow
    (in float32 it would from c ≈ 3e5).
    """
    c = jnp.minimum(c, 1e5)
    c7 = c**7
    total = c7 + _25_TO_7
    slope = 3.5 * _25_TO_7 * c * c * jnp.sqrt(c) / (total * jnp.sqrt(total))
    return jnp.sqrt(c7 / total), lambda Δ: (Δ * slope,)


def _hue_weight(h: jax.Array) -> jax.Array:
    """T of CIEDE2000 (Sharma et al. 2005, eq. 15), from one sine and cosine of h̄'.

    cos(h - 30), cos 2h, cos(3h + 6) and cos(4h - 63) are expanded with the
    multiple-angle formulas: the same numbers, to rounding, for a third of the
    trigonometry, which dominates the cost of the gradient on CPU.
    """
    radians = jnp.radians(h)
    c, s = jnp.cos(radians), jnp.sin(radians)
    c2, s2 = 2 * c * c - 1, 2 * s * c
    c3, s3 = c * (2 * c2 - 1), s * (2 * c2 + 1)
    c4, s4 = 2 * c2 * c2 - 1, 2 * s2 * c2
    return (
        1
        - 0.17 * (c * _COS[30] + s * _SIN[30])
        + 0.24 * c2
        + 0.32 * (c3 * _COS[6] - s3 * _SIN[6])
        - 0.20 * (c4 * _COS[63] + s4 * _SIN[63])
    )


def _lightness_weight(L1: jax.Array, L2: jax.Array) -> jax.Array:
    """S_L of CIEDE2000, 1 + 0.015·(L̄' - 50)² / sqrt(20 + (L̄' - 50)²), written so that no square overflows.

    As t·w with t = |L̄' - 50| and w = t / sqrt(20 + t²) (w is 1 to rounding from
    t = 2^40, where t is capped inside w).
    """
    t = jnp.abs(L1 / 2 + L2 / 2 - 50)  # not 0.5 * L1 + 0.5 * L2, which XLA factors into 0.5 * (L1 + L2)
    capped = jnp.minimum(t, 2.0**40)
    return 1 + 0.015 * t * (capped / jnp.sqrt(20 + capped * capped))


def _ciede2000_terms(L1, a1, b1, L2, a2, b2, kL: Any, kC: Any, kH: Any) -> tuple[jax.Array, ...]:
    """Halves of CIEDE2000's ΔL'/(kL·S_L), ΔC'/(kC·S_C), ΔH'/(kH·S_H), and R_T (Sharma et al. 2005, eq. 1-22)."""
    s, r = chroma_scale(a1, b1, a2, b2)  # a*, b* divided by s (exactly): chromas below are in units of s
    a1, b1, a2, b2 = a1 * r, b1 * r, a2 * r, b2 * r
    mean_chroma = (chroma(a1, b1, a2, b2) + chroma(a2, b2, a1, b1)) / 2
    scale = 1 + 0.5 * (1 - _saturating(jnp.minimum(mean_chroma * s, 1e5)))  # 1 + G: stretches a* near grey
    C1, C2 = chroma(a1, b1, a2, b2, scale), chroma(a2, b2, a1, b1, scale)
    h1, h2 = shared_hues(hue(b1, scale * a1), hue(b2, scale * a2), C1 == 0, C2 == 0)
    wrapped = wraps(h1, h2, cross(a1, b1, a2, b2))

    dC = C2 - C1
    dH = 2 * safe.sqrt(C1 * C2) * jnp.sin(jnp.radians(hue_difference(h1, h2, wrapped) / 2))
    C_mean, h_mean = (C1 + C2) / 2, mean_hue(h1, h2, wrapped)
    S_C = r + 0.045 * C_mean  # S_C / s, and S_H / s
    S_H = r + 0.015 * C_mean * _hue_weight(h_mean)
    rotation = 30 * jnp.exp(-(((h_mean - 275) / 25) ** 2))
    R_T = -jnp.sin(jnp.radians(2 * rotation)) * 2 * _saturating(jnp.minimum(C_mean * s, 1e5))

    # Halves of the standard's three terms (so that L2 - L1 cannot overflow), combined as hypot combines.
    l = (L2 / 2 - L1 / 2) / (kL * _lightness_weight(L1, L2))  # noqa: E741 (the standard's names)
    c, h = 0.5 * dC / (kC * S_C), 0.5 * dH / (kH * S_H)
    return l, c, h, R_T


def _ciede2000(lab1: Any, lab2: Any, kL: Any, kC: Any, kH: Any) -> jax.Array:
    L1, a1, b1, L2, a2, b2 = _pair("ciede2000", ("lab1", "lab2"), lab1, lab2)
    l, c, h, R_T = _ciede2000_terms(L1, a1, b1, L2, a2, b2, kL, kC, kH)  # noqa: E741
    return 2 * norm3(l, c, h, R_T)


_ciede2000_compiled = jax.jit(_ciede2000)


def ciede2000(lab1: Any, lab2: Any, kL: Any = 1.0, kC: Any = 1.0, kH: Any = 1.0) -> jax.Array:
    """CIEDE2000 colour difference ΔE00 between two CIE L*a*b* colours (CIE 142-2001; Sharma et al. 2005).

    Symmetric in its arguments. ``kL``, ``kC``, ``kH`` are the parametric
    weights (1 under reference conditions; ``kL=2`` is colour-science's
    ``textiles=True``): numbers, or arrays that broadcast with the batch, > 0.
    Matches colour-science's ``delta_E(..., method="CIE 2000")``.

    **The 180° seam.** The mean hue h̄' jumps by 180° where the two hues are
    exactly opposite, and ΔE00 with it (by up to about 50 at high chroma). At a
    difference of exactly 180° the standard's "≤ 180°" case applies, so the value
    (and the gradient) there is the limit from the side where |Δh'| < 180°.
    Swapping the arguments does not change the value, at the seam too. The side
    of the seam is read from the colours' values, not from their rounded hue
    angles (which round by about 1e-5° in float32): from the sign of
    a1·b2 - b1·a2, computed to about ε² (see ``toolkit.colour._hue.wraps``). So
    float32 agrees with colour-science's float64 on the same numbers to about
    1e-4 right up to the seam (measured: 9.5e-5 on 10^5 pairs within 1e-3° of
    it, 1.2e-4 on 10^7 random pairs; ``benchmarks/colour_difference.py --part
    seam``). Exactly opposite colours, (a*, b*) and (-k·a*, -k·b*) with k a
    power of two, get the standard's value, among them Sharma et al.'s pairs 10
    and 14 (7.1792 and 4.8045, in float32 and float64); colour-science's rounded
    angles may put them (and pairs within about 1e-13° of the seam) on the other
    side. (a*, b*) and (-k·a*, -k·b*) for other k are rounded, not quite
    opposite, and take the side their rounded values lie on.

    **Huge and tiny values.** a*, b* beyond 2^40 are divided by a power of two
    first (exactly, see ``toolkit.colour._scale``), and the three terms are
    combined as ``hypot`` combines, so every finite input gives a finite value
    and finite gradients (``ciede2000([50, 1e30, 0], [50, 0, 0])`` is 44.44 in
    float32, as colour-science's). Chromas below about 1e-30 (float32) count as grey.

    **Gradients** (see the module documentation): 0 at ΔE = 0; at a grey
    colour, along the other colour's hue (a descent direction toward it); the
    chosen branch's at the seam. The standard is also discontinuous, by at most
    3e-4 degrees of the rotation angle, where h̄' wraps from 360° to 0°.

    Example:
        >>> from toolkit.colour import Lab, ciede2000
        >>> round(float(ciede2000(Lab(50.0, 2.6772, -79.7751), Lab(50.0, 0.0, -82.7485))), 4)
        2.0425
    """
    weights = _positive("ciede2000", kL=kL, kC=kC, kH=kH)
    return _run(_ciede2000_compiled, "ciede2000", ("lab1", "lab2"), lab1, lab2, **weights)


# --- CIE94 and CMC: reference and sample --------------------------------------------


def _hue_difference(a1, b1, C1, a2, b2, C2) -> jax.Array:
    """ΔH = 2·sqrt(C1·C2)·sin(Δh/2), whose square is Δa² + Δb² - ΔC² (the sign does not matter).

    The textbook difference Δa² + Δb² - ΔC² cancels: at equal hues (every grey
    against any colour, for one) it is rounding noise of either sign, which would
    need a clip, and a clip that decides on noise can be decided differently by
    the compiler in the value and in the gradient (we measured gradients off by
    0.3 that way). The product form is exactly 0 at equal hues, and a grey colour
    takes the other colour's hue, as in CIEDE2000.
    """
    h1, h2 = shared_hues(hue(b1, a1), hue(b2, a2), C1 == 0, C2 == 0)
    return 2 * safe.sqrt(C1 * C2) * jnp.sin(jnp.radians(h2 - h1) / 2)


def _scaled_chromas(a1, b1, a2, b2) -> tuple[jax.Array, ...]:
    """s, 1/s and (a1, b1, C1, a2, b2, C2) in units of s (see ``toolkit.colour._scale.chroma_scale``).

    Divided by ``rescaled``: every term computed from them must be multiplied back by ``rescaled(·, s)``.
    """
    s, r = chroma_scale(a1, b1, a2, b2)
    a1, b1, a2, b2 = (rescaled(x, r) for x in (a1, b1, a2, b2))
    return s, r, a1, b1, chroma(a1, b1, a2, b2), a2, b2, chroma(a2, b2, a1, b1)


def _cie94(reference: Any, sample: Any, textiles: bool) -> jax.Array:
    L1, a1, b1, L2, a2, b2 = _pair("cie94", ("reference", "sample"), reference, sample)
    k1, k2, kL = (0.048, 0.014, 2.0) if textiles else (0.045, 0.015, 1.0)
    s, _, a1, b1, C1, a2, b2, C2 = _scaled_chromas(a1, b1, a2, b2)
    S_C, S_H = 1 + k1 * (C1 * s), 1 + k2 * (C1 * s)  # the reference's chroma, in the colours' units
    l = (L1 / 2 - L2 / 2) / kL  # noqa: E741 (the standard's names; halves, see _ciede2000)
    c = rescaled((C1 - C2) / (2 * S_C), s)
    h = rescaled(_hue_difference(a1, b1, C1, a2, b2, C2) / (2 * S_H), s)
    return 2 * norm3(l, c, h)


_cie94_compiled = jax.jit(_cie94, static_argnums=2)


def cie94(reference: Any, sample: Any, textiles: bool = False) -> jax.Array:
    """CIE94 colour difference ΔE94 of ``sample`` from ``reference`` (CIE 116-1995).

    Not symmetric: the weights S_C and S_H use the chroma of ``reference``, the
    first argument (the standard's reference, colour-science's ``Lab_1``).
    ``textiles=True`` uses kL = 2, K1 = 0.048, K2 = 0.014 instead of 1, 0.045, 0.015.
    Matches colour-science's ``delta_E(reference, sample, method="CIE 1994")``.

    Gradients: 0 at ΔE = 0; at a grey colour, along the other colour's hue (a
    descent direction toward it). ΔH (whose square is Δa² + Δb² - ΔC²) is
    computed as 2·sqrt(C1·C2)·sin(Δh/2), which needs no clip (see
    ``_hue_difference``). Finite values and gradients for every finite input, as
    :func:`ciede2000`; a float32 hue angle is only as fine as ε·C*, so at huge
    chromas ΔH is as accurate as ε times the chroma.

    Example:
        >>> from toolkit.colour import Lab, cie94
        >>> round(float(cie94(Lab(50.0, 10.0, 10.0), Lab(52.0, 12.0, 8.0))), 4)
        3.0693
    """
    if not isinstance(textiles, (bool, np.bool_)):
        raise TypeError(f"cie94: textiles must be True or False, got {textiles!r}.")
    textiles = bool(textiles)
    return _run(lambda r, s: _cie94_compiled(r, s, textiles), "cie94", ("reference", "sample"), reference, sample)


def _cmc_hue_weight(h: jax.Array) -> jax.Array:
    """T of CMC(l:c): one formula for hues in [164°, 345°], another elsewhere."""
    inside = 0.56 + jnp.abs(0.2 * jnp.cos(jnp.radians(h + 168)))
    outside = 0.36 + jnp.abs(0.4 * jnp.cos(jnp.radians(h + 35)))
    return jnp.where((h >= 164) & (h <= 345), inside, outside)


def _cmc(reference: Any, sample: Any, l: Any, c: Any) -> jax.Array:  # noqa: E741 (CMC(l:c))
    L1, a1, b1, L2, a2, b2 = _pair("cmc", ("reference", "sample"), reference, sample)
    s, _, a1, b1, C1, a2, b2, C2 = _scaled_chromas(a1, b1, a2, b2)
    S_L = jnp.where(L1 < 16, 0.511, 0.040975 * L1 / (1 + 0.01765 * L1))
    # S_C is its limit 0.638 + 0.0638 / 0.0131 to 1e-18 from C = 1e20; an infinite a* or b* gives NaN, as in
    # colour-science (inf / inf there): the formula has no value at infinity.
    weighed = jnp.minimum(C1 * s, 1e20) + 0 * (a1 + b1)
    S_C = 0.0638 * weighed / (1 + 0.0131 * weighed) + 0.638
    C4 = jnp.minimum(weighed, 1e5) ** 4  # f is 1 to 1e-17 from C = 1e5; C^4 would overflow float32 at 4e9
    f = safe.sqrt(C4 / (C4 + 1900))
    S_H = S_C * (f * _cmc_hue_weight(hue(b1, a1)) + 1 - f)
    v_L = (L1 / 2 - L2 / 2) / (l * S_L)  # halves of the three terms, as in _ciede2000
    v_C = rescaled((C1 - C2) / (2 * c * S_C), s)
    v_H = rescaled(_hue_difference(a1, b1, C1, a2, b2, C2) / (2 * S_H), s)
    return 2 * norm3(v_L, v_C, v_H)


_cmc_compiled = jax.jit(_cmc)


def cmc(reference: Any, sample: Any, l: Any = 2.0, c: Any = 1.0) -> jax.Array:  # noqa: E741 (CMC(l:c))
    """CMC(l:c) colour difference of ``sample`` from ``reference`` (Clarke, McDonald & Rigg 1984).

    Not symmetric: the weights use the lightness, chroma and hue of
    ``reference``, the first argument (colour-science's ``Lab_1``). ``l:c`` is 2:1
    for acceptability (default) and 1:1 for perceptibility (numbers, or arrays
    that broadcast with the batch, > 0). Matches
    colour-science's ``delta_E(reference, sample, method="CMC", l=l, c=c)``.

    Gradients: as :func:`cie94`. The formula itself has branch points in the
    reference colour: S_L switches formula at L* = 16 and T at hues 164° and 345°
    (small jumps in value), and T has kinks (an absolute value) at hues 55° and
    282°; the gradient there is that of the branch the formula selects (JAX's
    derivative of ``abs`` at 0 is 1). The hue of a grey reference is 0, where
    its weight f is 0, so it does not affect the value.

    Example:
        >>> from toolkit.colour import Lab, cmc
        >>> round(float(cmc(Lab(50.0, 10.0, 10.0), Lab(52.0, 12.0, 8.0))), 4)
        4.6415
    """
    weights = _positive("cmc", l=l, c=c)
    return _run(_cmc_compiled, "cmc", ("reference", "sample"), reference, sample, **weights)


# --- CIE76 ---------------------------------------------------------------------------


def _cie76(lab1: Any, lab2: Any) -> jax.Array:
    L1, a1, b1, L2, a2, b2 = _pair("cie76", ("lab1", "lab2"), lab1, lab2)
    return 2 * norm3(L1 / 2 - L2 / 2, a1 / 2 - a2 / 2, b1 / 2 - b2 / 2)  # halves cannot overflow


_cie76_compiled = jax.jit(_cie76)


def cie76(lab1: Any, lab2: Any) -> jax.Array:
    """CIE 1976 colour difference ΔE*ab: the Euclidean distance in L*a*b* (CIE 15:2004).

    Smooth except at ΔE = 0, where the gradient is 0 (``safe.norm``).

    Example:
        >>> from toolkit.colour import Lab, cie76
        >>> float(cie76(Lab(50.0, 3.0, 0.0), Lab(50.0, 0.0, 4.0)))
        5.0
    """
    return _run(_cie76_compiled, "cie76", ("lab1", "lab2"), lab1, lab2)


# --- HyAB and HyCH ---------------------------------------------------------------------


@jax.custom_jvp
def _abs(x: jax.Array) -> jax.Array:
    """|x| with derivative 0 at x = 0 (the minimum-norm subgradient; ``jnp.abs``'s is 1 there)."""
    return jnp.abs(x)


@_abs.defjvp
def _abs_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * dx


def _hyab(lab1: Any, lab2: Any) -> jax.Array:
    L1, a1, b1, L2, a2, b2 = _pair("hyab", ("lab1", "lab2"), lab1, lab2)
    return 2 * (_abs(L1 / 2 - L2 / 2) + safe.hypot(a1 / 2 - a2 / 2, b1 / 2 - b2 / 2))  # halves cannot overflow


_hyab_compiled = jax.jit(_hyab)


def hyab(lab1: Any, lab2: Any) -> jax.Array:
    """HyAB colour difference: |ΔL*| + sqrt(Δa*² + Δb*²), city block in lightness (Abasi et al. 2020).

    For large differences (about 10 ΔE*ab and more). As colour-science's ``delta_E(lab1, lab2, method="HyAB")``.
    Symmetric. Kinks at ΔL* = 0 and at Δa* = Δb* = 0: the gradient of each term is **0** there (the
    minimum-norm subgradient), so it is 0 at identical colours.

    Reference:
        Abasi S., Amani Tehran M., Fairchild M. D. (2020), Distance metrics for very large color
        differences, Color Research & Application 45(2), 208-223.

    Example:
        >>> from toolkit.colour import Lab, hyab
        >>> round(float(hyab(Lab(39.91531343, 51.16658481, 146.12933781), Lab(53.12207516, -39.92365056, 249.54831278))), 4)
        151.0215
    """
    return _run(_hyab_compiled, "hyab", ("lab1", "lab2"), lab1, lab2)


def _hych(lab1: Any, lab2: Any, textiles: bool) -> jax.Array:
    L1, a1, b1, L2, a2, b2 = _pair("hych", ("lab1", "lab2"), lab1, lab2)
    l, c, h, _ = _ciede2000_terms(L1, a1, b1, L2, a2, b2, 2.0 if textiles else 1.0, 1.0, 1.0)  # noqa: E741
    return 2 * (_abs(l) + safe.hypot(c, h))  # the halves of CIEDE2000's terms, doubled


_hych_compiled = jax.jit(_hych, static_argnums=2)


def hych(lab1: Any, lab2: Any, textiles: bool = False) -> jax.Array:
    """HyCH colour difference: |ΔL'/S_L| + sqrt((ΔC'/S_C)² + (ΔH'/S_H)²), from CIEDE2000's terms (Abasi et al. 2020).

    CIEDE2000's weighted lightness, chroma and hue differences (without its rotation term), lightness
    city block; ``textiles=True`` uses k_L = 2. As colour-science's ``delta_E(lab1, lab2, method="HyCH")``.
    Symmetric. Gradients: **0** where ΔL' = 0 (for that term) and at identical colours; at a grey colour
    along the other colour's hue, as :func:`ciede2000` (see :mod:`toolkit.colour.difference`), and
    CIEDE2000's 180° seam as there.

    Reference:
        Abasi S., Amani Tehran M., Fairchild M. D. (2020), Distance metrics for very large color
        differences, Color Research & Application 45(2), 208-223.

    Example:
        >>> from toolkit.colour import Lab, hych
        >>> round(float(hych(Lab(39.91531343, 51.16658481, 146.12933781), Lab(53.12207516, -39.92365056, 249.54831278))), 4)
        48.6643
    """
    if not isinstance(textiles, (bool, np.bool_)):
        raise TypeError(f"hych: textiles must be True or False, got {textiles!r}.")
    flag = bool(textiles)
    return _run(lambda x, y: _hych_compiled(x, y, flag), "hych", ("lab1", "lab2"), lab1, lab2)


def __getattr__(name: str) -> Any:
    """``colordiff`` and ``METRICS``, which live in :mod:`toolkit.colour.metrics`, importable from here as before."""
    if name in ("colordiff", "METRICS"):
        from toolkit.colour import metrics  # noqa: PLC0415 (metrics imports this module)

        return getattr(metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Differentiable colour science: colour types, conversions and colour differences.

Every colour difference colour-science's ``delta_E`` offers (``METRICS``; ``colordiff`` takes each of
its names): CIEDE2000, CIE94, CMC, CIE76, DIN99, HyAB, HyCH (on CIE L*a*b*), ITP (on ICtCp) and
CAM02-LCD/SCD/UCS, CAM16-LCD/SCD/UCS (on J′a′b′, from ``xyz_to_ucs``), with the conversions they need
(``xyz_to_ciecam02``, ``xyz_to_cam16``, ``lab_to_din99``, ``xyz_to_ictcp``, ``pq_encode``).

Import colour-science as ``colour_science`` beside this module to avoid the
name clash (``import colour as colour_science``).

Dtypes. Every conversion and colour difference returns the dtype JAX's type
promotion gives its inputs (the colours' channels and numeric settings such as
``kL``), and its gradients come back in each input's own dtype:

* float64 (with ``jax_enable_x64`` on) is computed in float64 and matches
  colour-science to about 1e-12; without x64 a float64 input is float32, as
  everywhere in JAX;
* float32 is computed in float32 (errors about 1e-6 of the values' scale), and stays
  float32 with x64 on: the constants (colour-science's float64 matrices
  included) are weakly typed Python floats. A Python float mixed in
  (``Lab(50.0, a, b)``, ``kL=2.0``) keeps the colours' dtype; a NumPy scalar
  does not (``np.float64(2.0)`` makes the result float64 with x64 on);
* float16 and bfloat16 (and the float8 types) are computed in float32 and
  rounded once to their dtype, so the error is about half a unit in the last
  place (2^-11 and 2^-8 relative) at most: float16 could not hold CIEDE2000's 25^7
  or the inverse lightness function's (L* + 16)^3, and bfloat16 would lose
  digits at every step;
* integers and booleans are computed as ``jnp`` computes them: float32, or
  float64 for 64-bit integers (x64 on), so ``jnp.array([50, 0, 0])`` is a
  float Lab colour. Their values are used as they are: scale 8-bit RGB code
  values to [0, 1] (divide by 255) first;
* complex numbers, strings and other non-numbers are a ``TypeError`` that
  names the function and the argument.
"""

from toolkit.colour import transfer
from toolkit.colour.cam import SURROUNDS, Appearance, Surround, xyz_to_cam16, xyz_to_ciecam02
from toolkit.colour.convert import lab_to_rgb, lab_to_xyz, rgb_to_lab, rgb_to_xyz, xyz_to_lab, xyz_to_rgb
from toolkit.colour.difference import cie76, cie94, ciede2000, cmc, hyab, hych
from toolkit.colour.din99 import din99, lab_to_din99
from toolkit.colour.ictcp import itp, pq_encode, rgb_to_ictcp, xyz_to_ictcp
from toolkit.colour.images import mean_difference
from toolkit.colour.metrics import METRIC_INPUTS, METRICS, colordiff
from toolkit.colour.spaces import DEFAULT_OBSERVER, rgb_space, supported_spaces, whitepoint
from toolkit.colour.types import RGB, XYZ, Lab, as_array, channels, from_channels, like
from toolkit.colour.ucs import (
    cam02_lcd,
    cam02_scd,
    cam02_ucs,
    cam16_lcd,
    cam16_scd,
    cam16_ucs,
    jmh_to_ucs,
    xyz_to_ucs,
)

__all__ = [
    "RGB",
    "Lab",
    "XYZ",
    "as_array",
    "like",
    "channels",
    "from_channels",
    "DEFAULT_OBSERVER",
    "rgb_space",
    "supported_spaces",
    "whitepoint",
    "rgb_to_xyz",
    "xyz_to_rgb",
    "xyz_to_lab",
    "lab_to_xyz",
    "rgb_to_lab",
    "lab_to_rgb",
    "transfer",
    "ciede2000",
    "cie94",
    "cmc",
    "cie76",
    "hyab",
    "hych",
    "din99",
    "lab_to_din99",
    "itp",
    "pq_encode",
    "rgb_to_ictcp",
    "xyz_to_ictcp",
    "Surround",
    "SURROUNDS",
    "Appearance",
    "xyz_to_ciecam02",
    "xyz_to_cam16",
    "jmh_to_ucs",
    "xyz_to_ucs",
    "cam02_lcd",
    "cam02_scd",
    "cam02_ucs",
    "cam16_lcd",
    "cam16_scd",
    "cam16_ucs",
    "colordiff",
    "mean_difference",
    "METRICS",
    "METRIC_INPUTS",
]

"""Differentiable colour science: colour types, conversions and colour differences.

Import colour-science as ``colour_science`` beside this module to avoid the
name clash (``import colour as colour_science``).
"""

from toolkit.colour.types import XYZ, Lab, RGB, as_array, channels, from_channels, like
from toolkit.colour.spaces import DEFAULT_OBSERVER, rgb_space, supported_spaces, whitepoint
from toolkit.colour.convert import lab_to_rgb, lab_to_xyz, rgb_to_lab, rgb_to_xyz, xyz_to_lab, xyz_to_rgb
from toolkit.colour import transfer
from toolkit.colour.difference import METRICS, cie76, cie94, ciede2000, cmc, colordiff

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
    "colordiff",
    "METRICS",
]

"""Differentiable colour science: colour types, conversions and colour differences.

Import colour-science as ``colour_science`` beside this module to avoid the
name clash (``import colour as colour_science``).
"""

from toolkit.colour.types import XYZ, Lab, RGB, as_array, like

__all__ = ["RGB", "Lab", "XYZ", "as_array", "like"]

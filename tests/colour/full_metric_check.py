"""The full comparison with colour-science: every metric on 10^4 random inputs in float64 (run by hand).

``python tests/colour/full_metric_check.py`` prints, per metric, the largest |toolkit - colour-science| on
10^4 pairs of sRGB colours in and out of gamut ([-0.1, 1.1]), converted as colour-science converts them
(Lab, ICtCp at 100 cd/m² for Y = 1, or J'a'b'), the metric alone and through ``colordiff``, and whether NaN
falls where colour-science's does. Not collected by pytest (tests/colour/test_metrics.py runs 10^3).
"""

import jax
import numpy as np

from tests.colour.test_metrics import cs_delta_e, cs_inputs
from toolkit.colour import METRICS, RGB, colordiff


def main() -> None:
    jax.config.update("jax_enable_x64", True)  # here, not on import: pytest's doctest collection imports this file
    rgb1, rgb2 = np.random.default_rng(2024).uniform(-0.1, 1.1, (2, 10_000, 3))
    print(f"{'metric':<10} {'max |metric - colour-science|':>30} {'via colordiff':>14}  NaN where colour-science's")
    for name, f in METRICS.items():
        a, b = cs_inputs(name, rgb1), cs_inputs(name, rgb2)
        want = cs_delta_e(name, a, b)
        got = np.asarray(f(a, b))
        via = np.asarray(colordiff(RGB(*rgb1.T), RGB(*rgb2.T), name))
        same_nan = bool(np.all(np.isnan(got) == np.isnan(want)) and np.all(np.isnan(via) == np.isnan(want)))
        usual = np.abs(want) < 1e4  # (ITP: off the pole of PQ's odd extension, where both exceed 1e25)
        error, through = np.nanmax(np.abs(got - want)[usual]), np.nanmax(np.abs(via - want)[usual])
        print(
            f"{name:<10} {error:>30.3g} {through:>14.3g}  {same_nan}  ({(~usual).sum()} pairs NaN or ΔE >= 1e4 left out)"
        )


if __name__ == "__main__":
    main()

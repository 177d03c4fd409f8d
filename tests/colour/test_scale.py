"""The scaled norm under the colour differences (``toolkit.colour._scale.norm3``), and what it protects.

Under ``jax.jit`` XLA folds a constant term into the products around it, so a literal 0 (a grey written as
``Lab(L, 0, 0)``) once turned the scaled squares into ``0·(1/p)² = 0·inf`` and ΔE into NaN, in value and
gradient, for CIEDE2000, CIE94, CMC, CIE76, DIN99 and ITP, while eagerly they were right. The oracles:
float64 NumPy for the norm and its gradient, colour-science (float64) and its central differences for the
metrics.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.colour.test_metrics import cs_delta_e  # colour-science's delta_E under our metric names
from toolkit.colour import METRIC_INPUTS, METRICS
from toolkit.colour._scale import norm3

MAGNITUDES = [0.0, 1e-30, 1e-20, 1e-3, 1.0, 1e20, 1e30]  # float32 normals (XLA's CPU flushes subnormals)


def _reference(x, y, z, r):
    """The norm sqrt(x² + y² + z² + r·y·z) and its gradient in float64 (gradient 0 where the norm is 0)."""
    x, y, z = (np.asarray(t, np.float64) for t in (x, y, z))
    n = np.sqrt(x * x + y * y + z * z + r * y * z)
    safe = np.where(n == 0, 1.0, n)
    grads = [np.where(n == 0, 0.0, g / safe) for g in (x, y + r * z / 2, z + r * y / 2)]
    return n, grads


@pytest.mark.parametrize("constant_at", [0, 1, 2])
@pytest.mark.parametrize("rotation", ["none", "literal", "traced"])
def test_norm3_with_a_compile_time_constant_term_is_right_under_jit(constant_at, rotation):
    grid = np.array(list(itertools.product(MAGNITUDES, repeat=2)), np.float32)
    grid[:, 1] *= -1
    for constant in (0.0, 1e-30):

        def f(a, b, r, constant=constant):
            terms = [a, b]
            terms.insert(constant_at, jnp.float32(constant))  # a literal: XLA sees its value
            if rotation == "none":
                return norm3(*terms)
            return norm3(*terms, 0.5 if rotation == "literal" else r)

        a, b = jnp.asarray(grid[:, 0]), jnp.asarray(grid[:, 1])
        r = jnp.float32(0.5)
        value, grads = jax.jit(jax.vmap(jax.value_and_grad(f, (0, 1)), (0, 0, None)))(a, b, r)
        terms = [grid[:, 0], grid[:, 1]]
        terms.insert(constant_at, np.full(len(grid), constant))
        want, want_grads = _reference(*terms, 0.0 if rotation == "none" else 0.5)
        del want_grads[constant_at]
        np.testing.assert_allclose(np.asarray(value), want, rtol=2e-6, atol=0)
        for got, expected in zip(grads, want_grads, strict=True):
            np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)  # |gradient| <= ~1.2


# --- the public metrics on greys written with literal zeros ----------------------------------------------

LAB_METRICS = [name for name, kind in METRIC_INPUTS.items() if kind == "Lab"]


def _cs_delta_e(name, first, second):
    return float(cs_delta_e(name, first, second))


THROUGH_NORM3 = [name for name in [*LAB_METRICS, "ITP"] if name not in ("HyAB", "HyCH")]
GREY_CASES = [(name, False) for name in [*LAB_METRICS, "ITP"]] + [(name, True) for name in THROUGH_NORM3]


@pytest.mark.parametrize(("name", "x64"), GREY_CASES)
def test_greys_written_with_literal_zeros_compare_right_under_jit(name, x64):
    with jax.enable_x64(x64):
        _check_greys(name, jnp.float64 if x64 else jnp.float32)


def _check_greys(name, dtype):
    f = METRICS[name]
    light = (0.5, 0.52) if name == "ITP" else (50.0, 51.0)  # ICtCp's intensity or CIE L*

    def between_greys(l1, l2):
        zero = jnp.zeros((), dtype)  # a literal to XLA, as 0.0 is
        return f(jnp.stack([l1, zero, zero]), jnp.stack([l2, zero, zero]))

    both = jax.jit(jax.value_and_grad(between_greys, (0, 1)))  # one program for the value and the gradient
    same = dtype(light[0])
    value, grad = both(same, same)
    assert float(value) == 0
    assert [float(g) for g in grad] == [0.0, 0.0]

    l1, l2 = light
    grey = lambda lightness: np.array([lightness, 0.0, 0.0])
    value, grad = both(dtype(l1), dtype(l2))
    np.testing.assert_allclose(float(value), _cs_delta_e(name, grey(l1), grey(l2)), rtol=1e-5)
    h = 1e-6 * max(abs(l1), 1.0)
    fd = [
        (_cs_delta_e(name, grey(l1 + h), grey(l2)) - _cs_delta_e(name, grey(l1 - h), grey(l2))) / (2 * h),
        (_cs_delta_e(name, grey(l1), grey(l2 + h)) - _cs_delta_e(name, grey(l1), grey(l2 - h))) / (2 * h),
    ]
    np.testing.assert_allclose([float(g) for g in grad], fd, rtol=1e-4)

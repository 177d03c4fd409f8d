"""colour-science's own tests of ``delta_E`` and of the CIECAM02 / CAM16 forward models, run on toolkit's functions.

How: the test modules shipped with colour-science (``colour/difference/tests/test_delta_e.py``,
``test_din99.py``, ``test_cam02_ucs.py``, ``test_cam16_ucs.py``, ``colour/appearance/tests/test_ciecam02.py``,
``test_cam16.py``) import the functions they test into their own namespace; each of those names is replaced
(``monkeypatch.setattr`` on the test module) by a wrapper that calls toolkit's function in float64 and returns
NumPy, and the test method is called as colour-science wrote it. The wrappers only adapt the interface: NumPy
in and out, colour-science's argument names, and its domain-range scale (``"1"`` and ``"100"``: inputs are
scaled to the reference domain before toolkit's function and results back after, as colour-science's own
``to_domain_100``/``from_range_100`` do).

Not run (toolkit has no such function): ``TestIntermediateAttributes_CIE2000`` (CIEDE2000's intermediate
terms), and the inverse models ``TestCIECAM02_to_XYZ``, ``TestCAM16_to_XYZ``.
"""

import importlib

import colour as colour_science
import jax
import numpy as np
import pytest
from colour.appearance import CAM_Specification_CAM16, CAM_Specification_CIECAM02
from colour.utilities import from_range_100, from_range_degrees, to_domain_100

import toolkit.colour as C


def _numpy(f):
    def wrapped(*args, **kwargs):
        with jax.enable_x64(True):
            return np.asarray(f(*args, **kwargs), np.float64)

    return wrapped


def _lab_metric(f, **weights_of_textiles):
    @_numpy
    def metric(Lab_1, Lab_2, textiles=False, **kwargs):
        extra = weights_of_textiles if textiles else {}
        return f(to_domain_100(Lab_1), to_domain_100(Lab_2), **extra, **kwargs)

    return metric


def _textiles(f):
    @_numpy
    def metric(Lab_1, Lab_2, textiles=False):
        return f(to_domain_100(Lab_1), to_domain_100(Lab_2), textiles=textiles)

    return metric


@_numpy
def _itp(ICtCp_1, ICtCp_2):
    return C.itp(np.asarray(ICtCp_1, np.float64), np.asarray(ICtCp_2, np.float64))


def _luo2006(model):
    @_numpy
    def metric(Jpapbp_1, Jpapbp_2, coefficients):
        kind = {0.77: "LCD", 1.24: "SCD", 1.0: "UCS"}[float(coefficients.values[0])]
        return getattr(C, f"{model}_{kind.lower()}")(np.asarray(Jpapbp_1, np.float64), np.asarray(Jpapbp_2, np.float64))

    return metric


def _model(f, specification):
    def forward(XYZ, XYZ_w, L_A, Y_b, surround=None, discount_illuminant=False, compute_H=True):
        surround = C.SURROUNDS["Average"] if surround is None else surround
        with jax.enable_x64(True):
            spec = f(
                to_domain_100(XYZ),
                to_domain_100(XYZ_w),
                np.asarray(L_A, np.float64),
                np.asarray(Y_b, np.float64),
                surround,
                discount_illuminant=discount_illuminant,
            )
            J, Cc, h, s, Q, M, H = (np.array(v, np.float64) for v in spec)  # writable: from_range_* scale in place
        H = H if compute_H else np.full(h.shape, np.nan)
        return specification(
            J=from_range_100(J),
            C=from_range_100(Cc),
            h=from_range_degrees(h),
            s=from_range_100(s),
            Q=from_range_100(Q),
            M=from_range_100(M),
            H=from_range_degrees(H, 400),
            HC=None,
        )

    return forward


SWAPS = {  # test module -> {name in it: toolkit's function wrapped}
    "colour.difference.tests.test_delta_e": {
        "delta_E_CIE1976": _lab_metric(C.cie76),
        "delta_E_CIE1994": _textiles(C.cie94),
        "delta_E_CIE2000": _lab_metric(C.ciede2000, kL=2.0),
        "delta_E_CMC": _lab_metric(C.cmc),
        "delta_E_ITP": _itp,
        "delta_E_HyAB": _lab_metric(C.hyab),
        "delta_E_HyCH": _textiles(C.hych),
    },
    "colour.difference.tests.test_din99": {"delta_E_DIN99": _textiles(C.din99)},
    "colour.difference.tests.test_cam02_ucs": {
        "delta_E_Luo2006": _luo2006("cam02"),
        "delta_E_CAM02LCD": _numpy(C.cam02_lcd),
        "delta_E_CAM02SCD": _numpy(C.cam02_scd),
        "delta_E_CAM02UCS": _numpy(C.cam02_ucs),
    },
    "colour.difference.tests.test_cam16_ucs": {"delta_E_Li2017": _luo2006("cam16")},
    "colour.appearance.tests.test_ciecam02": {"XYZ_to_CIECAM02": _model(C.xyz_to_ciecam02, CAM_Specification_CIECAM02)},
    "colour.appearance.tests.test_cam16": {"XYZ_to_CAM16": _model(C.xyz_to_cam16, CAM_Specification_CAM16)},
}
NOT_APPLICABLE = {"TestIntermediateAttributes_CIE2000", "TestCIECAM02_to_XYZ", "TestCAM16_to_XYZ"}


def _collected():
    tests = []
    for module_name in SWAPS:
        module = importlib.import_module(module_name)
        for class_name in module.__all__:
            if class_name in NOT_APPLICABLE:
                continue
            cls = getattr(module, class_name)
            for method in sorted(m for m in dir(cls) if m.startswith("test_")):
                tests.append(pytest.param(module_name, class_name, method, id=f"{class_name}.{method}"))
    return tests


TESTS = _collected()


def test_the_harness_runs_colour_sciences_tests_of_every_metric():
    assert colour_science.__version__.startswith("0.4")
    assert len(TESTS) >= 45, len(TESTS)
    names = {p.values[1] for p in TESTS}
    assert {"TestDelta_E_ITP", "TestDelta_E_HyCH", "TestDelta_E_DIN99", "TestDelta_E_Li2017"} <= names


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
@pytest.mark.parametrize(("module_name", "class_name", "method"), TESTS)
def test_colour_sciences_test_passes_with_toolkits_function(module_name, class_name, method, monkeypatch):
    module = importlib.import_module(module_name)
    for name, wrapper in SWAPS[module_name].items():
        monkeypatch.setattr(module, name, wrapper, raising=False)
    instance = getattr(module, class_name)()
    if class_name == "TestDelta_E_Li2017":  # inherits test_cam02_ucs's methods, which read that module's names
        parent = importlib.import_module("colour.difference.tests.test_cam02_ucs")
        monkeypatch.setattr(parent, "delta_E_Luo2006", SWAPS[module_name]["delta_E_Li2017"])
    getattr(instance, method)()

"""Sharded runs on 8 simulated CPU devices: the same answers as one device, the same layouts, the expected collectives.

The suite runs on one device, so the checks run in one fresh process
(``_sharded_checks.py``) whose ``XLA_FLAGS`` give it 8 host devices before JAX
starts, and which has XLA dump the optimised HLO of every ``tk.optimise`` chunk:
the collectives asserted on are those of tk.optimise's own compiled program.
The oracle of every case is the same call on one device, in that process.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

CHECKS = pathlib.Path(__file__).with_name("_sharded_checks.py")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    dump = tmp_path_factory.mktemp("hlo")
    flags = f"--xla_force_host_platform_device_count=8 --xla_dump_to={dump} --xla_dump_hlo_as_text"
    env = {**os.environ, "XLA_FLAGS": flags + " --xla_dump_hlo_module_re=jit_run", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, str(CHECKS), str(dump)], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _case(report, name):
    (case,) = [c for c in report["optimise"] if c["case"] == name]
    return case


def _ops(case, op):
    return [c["type"] for c in case["collectives"] if c["op"] == op]


GRADIENT = ("f32[8,16]", "f32[8]")  # the gradients of W (16x8, laid out as 8x16) and b, all-reduced together

CASES = [
    # (case, the same reduction order as one device, so bitwise)
    ("data-parallel, full batch", False),
    ("data-parallel, shuffled minibatches", True),
    ("data-parallel, sampler", True),
    ("FSDP-style, W split over 'model'", False),
    ("2-D ('data', 'model') mesh", False),
    ("batched=True, problems split", False),
]


@pytest.mark.parametrize(("name", "bitwise"), CASES, ids=[c[0] for c in CASES])
def test_same_run_as_one_device_and_same_layout(report, name, bitwise):
    case = _case(report, name)
    assert case["params"]["close"] and case["losses"]["close"], case
    if bitwise:
        assert case["params"]["bitwise"] and case["losses"]["bitwise"], case
    assert case["steps_equal"], case
    assert case["params_layout_kept"], case  # result.params placed as the parameters were given
    assert case["moments_layout_kept"], case  # Adam's moments placed like their parameters
    assert case["compiles"] == 1, case  # the program tk.optimise ran, compiled once


@pytest.mark.parametrize("name", ["data-parallel, full batch", "data-parallel, sampler"])
def test_data_parallel_all_reduces_the_gradient_once_per_step(report, name):
    case = _case(report, name)
    reduced = _ops(case, "all-reduce")
    # One step body (the fast program; the guarded rerun is a program of its own, compiled only when needed,
    # see toolkit.optimisation.chunk): one all-reduce of the gradient (with the loss); nothing else crosses
    # devices, and the data is never gathered.
    assert len(reduced) == 1 and all(all(g in t for g in GRADIENT) for t in reduced), case["collectives"]
    assert {c["op"] for c in case["collectives"]} == {"all-reduce"}, case["collectives"]


def test_minibatches_gather_their_rows_and_all_reduce_the_gradient(report):
    case = _case(report, "data-parallel, shuffled minibatches")
    reduced = _ops(case, "all-reduce")
    assert sum(all(g in t for g in GRADIENT) for t in reduced) == 1, case["collectives"]
    # The minibatch's rows come from every device (a masked gather, summed): 16 rows, not all 64 examples.
    assert all("f32[64" not in t for t in _ops(case, "all-gather") + reduced), case["collectives"]


def test_fsdp_reduces_partial_products_and_never_gathers_the_weights(report):
    case = _case(report, "FSDP-style, W split over 'model'")
    assert not _ops(case, "all-gather"), case["collectives"]
    assert _ops(case, "all-reduce").count("f32[64,8]{1,0}") == 1, case["collectives"]  # x @ W's partial sums
    assert all("f32[16,8]" not in c["type"] and "f32[8,16]" not in c["type"] for c in case["collectives"])


def test_two_dimensional_mesh_reduces_the_gradient_over_data(report):
    case = _case(report, "2-D ('data', 'model') mesh")
    # W's columns split over 'model' (2): each device's gradient is 4 of the 8 columns, summed over 'data'.
    reduced = [c for c in case["collectives"] if c["op"] == "all-reduce" and "f32[4,16]" in c["type"]]
    assert len(reduced) == 1, case["collectives"]  # one step body (the guarded rerun is a program of its own)
    assert not _ops(case, "all-gather"), case["collectives"]


def test_batched_problems_exchange_no_floats(report):
    case = _case(report, "batched=True, problems split")
    # Independent problems: only the loop's bookkeeping (is any problem running, the step counts) crosses devices.
    assert case["collectives"], case
    assert all(c["type"].startswith(("pred", "s32")) for c in case["collectives"]), case["collectives"]


def test_params_and_data_on_different_meshes_is_a_clear_error(report):
    message = report["mismatch"]
    assert message.startswith("tk.optimise: params['W'] is placed on NamedSharding"), message
    assert "(devices 0, 1, 2, 3), but data[0] on NamedSharding" in message, message
    assert "(devices 4, 5, 6, 7)" in message and "same devices (one mesh)" in message, message
    assert "jax.device_put(" in message, message


def test_a_mesh_with_explicit_axes_is_a_clear_error(report):
    message = report["explicit"]
    assert message.startswith("tk.optimise: data is placed on NamedSharding"), message
    assert "a mesh with Explicit axes" in message and "axis_types=(jax.sharding.AxisType.Auto,)" in message, message


COLOUR = [
    "conversions",  # rgb_to_xyz, xyz_to_lab, lab_to_xyz, rgb_to_lab, lab_to_rgb, every result compared
    "ciede2000",
    "colordiff arrays",
    "colordiff RGB structs",
]


@pytest.mark.parametrize("name", COLOUR)
def test_colour_on_an_image_sharded_over_rows(report, name):
    case = report["colour"][name]
    assert case["value"]["bitwise"] and case["value_layout_kept"], case  # elementwise: bitwise
    assert case["tk.gradient"]["bitwise"] and case["tk.gradient_layout_kept"], case


def test_blocked_image_gradient_on_a_sharded_image(report):
    case = report["colour"]["blocked image gradient"]
    assert case["value"]["close"], case  # a sum over the image: its order differs
    assert case["gradient"]["bitwise"] and case["gradient_layout_kept"], case
    assert case["all_gathers"] == 0, case  # each device works on its own rows

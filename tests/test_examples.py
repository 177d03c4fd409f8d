"""Smoke tests: every example script runs to completion and prints what it promises."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

# (script, its arguments, text its output must contain). The slow examples run at
# a small size (--quick), where the line checked is one that holds at that size.
CASES = [
    ("custom_struct.py", ("--steps", "20000"), "a ≈ b: True"),  # the seed's 10^5 steps take a few seconds more
    ("basic_loop.py", ("--steps", "20000"), "tk.tree.isapprox(z, z′): True"),
    ("sqrt_adjoint.py", (), "all agree: True"),
    ("optimise_colour.py", (), "ends within ΔE00 < 1 of red: True"),
    ("data_parallel.py", (), "agree: True"),
    ("colour_correction.py", ("--quick",), "table printed: True"),
    ("distinct_palette.py", ("--quick",), "table printed: True"),
]


@pytest.mark.parametrize(("script", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_example_runs(script, args, expected, tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout, result.stdout


def test_every_example_is_covered():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == {script for script, _, _ in CASES}

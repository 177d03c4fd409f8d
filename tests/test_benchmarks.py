"""``benchmarks/run_all.py`` at a tiny size: every benchmark runs, records its rows, and the table is written.

This checks the pipeline (each script's exit status, that each records what it
measured, the environment header), never the numbers: timings are benchmarks' business.
"""

import pathlib
import re
import subprocess
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


def test_run_all_writes_one_table_with_a_row_from_every_benchmark(tmp_path):
    out = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert re.search(r"- backend: cpu, \d+ x ", text) and "- versions: jax " in text
    scripts = sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| benchmark")]
    for script in scripts:  # every benchmark is run and records at least one measurement
        assert any(row.startswith(f"| {script} |") for row in rows), f"no row from {script}:\n{text}"
        assert f"### `{script}`" in text and "exit 0)" in text
    values = [row.split(" | ")[2] for row in rows]  # | benchmark | measurement | value | target | verdict |
    assert all(re.fullmatch(r"-?[0-9.]+(e[-+]\d+)?(x| \S+)?\s*", v) for v in values), values

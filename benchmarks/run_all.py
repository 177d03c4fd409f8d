"""Every benchmark on whatever backend JAX finds, and one Markdown table of what each measured against its target.

Runs each script in ``benchmarks/`` in a process of its own (so one's compiles
and memory do not touch the next), with ``TOOLKIT_BENCH_RECORD`` pointing at a
file where each records its rows (``benchmarks/_record.py``), then writes the
table: the backend, device, versions and date on top, then one row per
measurement with its value, target and verdict. Each script's full output is
kept below the table, so a surprising number can be traced to its run. Nothing
is tuned per backend: on a GPU the same code runs as on the CPU.

``--quick`` runs each script at a tiny size (seconds each: for the test suite,
which checks that the pipeline works, not the numbers).

Run: python benchmarks/run_all.py [--quick] [--out docs/benchmarks.md] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# script -> (arguments of the full run, arguments of the quick run)
BENCHMARKS = {
    "optimise_loop.py": ([], ["--quick", "--part", "fixed"]),
    "eager_loop.py": ([], ["--quick"]),
    "adjoint_overhead.py": (["--part", "vjp"], ["--part", "vjp", "--size", "1000", "--repeats", "2"]),
    "colour_difference.py": (["--part", "speed"], ["--part", "speed", "--pairs", "1000", "--repeats", "1"]),
}


def environment() -> list[str]:
    """What the numbers were measured on, asked of a fresh process (this one never imports JAX)."""
    probe = (
        "import jax, jaxlib, optax, flax, numpy, toolkit; d = jax.devices()[0]; "
        "print(jax.default_backend(), d.device_kind, len(jax.devices()), jax.__version__, jaxlib.__version__, "
        "optax.__version__, flax.__version__, numpy.__version__, toolkit.__version__, sep='|')"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    backend, kind, count, jax_v, jaxlib_v, optax_v, flax_v, numpy_v, toolkit_v = out.strip().split("|")
    return [
        f"- date: {datetime.date.today().isoformat()}",
        f"- backend: {backend}, {count} x {kind}; host: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"- versions: jax {jax_v}, jaxlib {jaxlib_v}, optax {optax_v}, flax {flax_v}, numpy {numpy_v}, "
        f"toolkit {toolkit_v}",
    ]


def run(script: str, arguments: list[str], record: str, timeout: float) -> tuple[int, str, float]:
    """Run one benchmark; its exit status, output and seconds."""
    env = {**os.environ, "TOOLKIT_BENCH_RECORD": record}
    began = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, os.path.join(HERE, script), *arguments],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        status, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as timed_out:
        status, output = -1, f"{timed_out.stdout or ''}\n(stopped after {timeout:.0f} s)"
    return status, output if isinstance(output, str) else output.decode(), time.perf_counter() - began


def table(rows: list[dict]) -> list[str]:
    lines = ["| benchmark | measurement | value | target | verdict |", "|---|---|---:|---|---|"]
    for row in rows:
        verdict = "" if row["met"] is None else ("met" if row["met"] else "**NOT met**")
        value = f"{row['value']:.3g} {row['unit']}".replace(" x", "x")
        lines.append(f"| {row['benchmark']} | {row['measurement']} | {value} | {row['target']} | {verdict} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the pipeline, not the numbers")
    parser.add_argument("--out", default=None, help="where to write the Markdown (default: print it)")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these scripts")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one script may take")
    args = parser.parse_args()
    lines = ["# Benchmarks", "", *environment(), ""]
    outputs, failed = [], []
    with tempfile.TemporaryDirectory() as folder:
        record = os.path.join(folder, "rows.jsonl")
        open(record, "w").close()
        for script in args.only or BENCHMARKS:
            full, quick = BENCHMARKS[script]
            status, output, seconds = run(script, quick if args.quick else full, record, args.timeout)
            print(f"{script}: exit {status} after {seconds:.0f} s", file=sys.stderr)
            outputs += [f"### `{script}` ({seconds:.0f} s, exit {status})", "", "```", output.rstrip(), "```", ""]
            if status != 0:
                failed.append(script)
        with open(record, encoding="utf-8") as file:
            rows = [json.loads(line) for line in file if line.strip()]
    lines += table(rows) + [""]
    if failed:
        lines += [f"Failed: {', '.join(failed)} (see its output below).", ""]
    lines += ["## Each script's output", "", *outputs]
    text = "\n".join(lines)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as file:
            file.write(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Each benchmark's measurements against its targets, as JSON lines for ``run_all.py`` to put in one table.

A benchmark calls :func:`record` where it prints a verdict; the line goes to the
file named by ``TOOLKIT_BENCH_RECORD`` (set by ``run_all.py``), and nowhere when
that is unset, so each script still runs on its own.
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ["record"]


def record(measurement: str, value: float, unit: str, target: str = "", met: bool | None = None) -> None:
    """One row: what was measured (``value`` in ``unit``, e.g. ``"x"`` for a ratio), its target and whether it is met."""
    path = os.environ.get("TOOLKIT_BENCH_RECORD")
    if not path:
        return
    script = os.path.basename(sys.argv[0])
    row = {"benchmark": script, "measurement": measurement, "value": value, "unit": unit, "target": target, "met": met}
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(row) + "\n")

"""Stored baselines: one JSON file per scenario in a folder (results/baselines by default).

The document is made by `sim.analysis.baseline.baseline_document`; written
atomically, read back with JSON's nulls (it has no infinity or NaN) as NaN.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sim.results.schema import UNBOUNDED
from sim.results.writer import write_json_atomic

__all__ = ["read_baseline", "write_baseline"]


def write_baseline(folder: str | Path, doc: dict[str, Any]) -> Path:
    """Write `doc` as `<folder>/<doc["scenario"]>.json`; return its path."""
    return write_json_atomic(Path(folder) / f"{doc['scenario']}.json", doc)


def read_baseline(folder: str | Path, name: str) -> dict[str, Any]:
    """The baseline of scenario `name` in `folder`; FileNotFoundError saying how to record one."""
    folder = Path(folder)
    path = folder / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no baseline for {name} in {folder} (record one: failover-sim baseline record SCENARIO --into {folder})"
        )
    doc = json.loads(path.read_text())
    # JSON has no infinity or NaN: null (undefined) reads back as NaN, "> run" (beyond the run) as infinity
    for metrics in doc["strategies"].values():
        for m in metrics.values():
            for key in ("value", "low", "high"):
                m[key] = math.nan if m[key] is None else math.inf if m[key] == UNBOUNDED else float(m[key])
    return doc

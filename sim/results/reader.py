"""Read a results folder back: the tables with their schema dtypes and the JSON files."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.results.schema import ADDED, OPTIONAL_TABLES, TABLES, UNBOUNDED, from_table, to_table
from sim.results.shape import check_manifest, check_summary
from sim.results.writer import FILES

__all__ = ["RunResults", "open_run", "read_json", "summary_frame"]

SUMMARY_FRAME_COLUMNS: tuple[str, ...] = ("strategy", "metric", "mean", "ci_low", "ci_high")


def _number(value: Any) -> float:
    # JSON null stands for an undefined value (see writer.to_jsonable): NaN here;
    # "> run" for a recovery percentile beyond the end of the run: infinity.
    if value == UNBOUNDED:
        return math.inf
    return math.nan if value is None else float(value)


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif value is None or value == UNBOUNDED or isinstance(value, int | float):
        out[prefix] = _number(value)


def summary_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """The summary.json dict as a tidy frame: strategy, metric, mean, ci_low, ci_high.

    Nested metrics get dotted names (``recovery_s.p99``), as in the contract;
    metrics without a confidence interval have NaN bounds.
    """
    rows: list[dict[str, Any]] = []
    for strategy, metrics in summary.get("strategies", {}).items():
        values: dict[str, float] = {}
        _flatten("", {k: v for k, v in metrics.items() if k != "ci95"}, values)
        ci: dict[str, Any] = metrics.get("ci95", {})
        for metric, value in values.items():
            low, high = ci.get(metric) or (None, None)
            rows.append(
                {
                    "strategy": strategy,
                    "metric": metric,
                    "mean": value,
                    "ci_low": _number(low),
                    "ci_high": _number(high),
                }
            )
    frame = pd.DataFrame(rows, columns=list(SUMMARY_FRAME_COLUMNS))
    return frame.astype({"mean": float, "ci_low": float, "ci_high": float})


@dataclass(frozen=True)
class RunResults:
    """One run's results folder, loaded."""

    path: Path
    summary: dict[str, Any]
    manifest: dict[str, Any]
    clients: pd.DataFrame
    timeline: pd.DataFrame
    replications: pd.DataFrame
    figures: dict[str, Path] = field(default_factory=dict)  # stem -> PNG path
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)
    # What a folder written by an older version lacks ("targets.parquet",
    # "clients.switched_at", ...): filled with no rows or NaN when read.
    lacks: tuple[str, ...] = ()

    @property
    def summary_frame(self) -> pd.DataFrame:
        """``summary`` as a tidy frame (see :func:`summary_frame`)."""
        return summary_frame(self.summary)


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} is not a results folder: {name} is missing "
            f"(expected {', '.join(FILES.values())})"
        )
    return path


# A written summary.json is a few KB and a manifest holds the scenario (at
# most 256 KiB of YAML, sim.scenario.safeyaml): 16 MiB is far above either
# and keeps a wrong file from being read whole into memory.
MAX_JSON_BYTES = 16 * 1024 * 1024


def read_json(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"{path}: {size / 2**20:.0f} MiB; a results JSON file is at most {MAX_JSON_BYTES // 2**20} MiB")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"{path}: not a results file: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_table(path: Path, schema: pa.Schema, name: str, lacks: list[str]) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path}: not a readable Parquet file: {exc}") from exc
    frame = table.to_pandas()
    for column in ADDED.get(name, ()):
        if column not in frame.columns:
            # A folder from before the column existed: no value, said so.
            frame[column] = math.nan
            lacks.append(f"{name}.{column}")
    try:
        # Round-trip through the schema: checks columns and pins the dtypes.
        return from_table(to_table(frame, schema))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _read_tables(folder: Path) -> tuple[dict[str, pd.DataFrame], tuple[str, ...]]:
    lacks: list[str] = []
    tables = {}
    for name, schema in TABLES.items():
        if name in OPTIONAL_TABLES and not (folder / FILES[name]).is_file():
            lacks.append(FILES[name])
            tables[name] = from_table(to_table(pd.DataFrame({c: [] for c in schema.names}), schema))
            continue
        tables[name] = _read_table(_require(folder, FILES[name]), schema, name, lacks)
    return tables, tuple(lacks)


def open_run(path: str | os.PathLike[str]) -> RunResults:
    """Load the results folder at ``path``.

    Raises FileNotFoundError when the folder or one of its files is missing, and
    ValueError naming the file when a file is corrupt or has the wrong columns.
    """
    folder = Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"results folder {folder} does not exist")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a results folder: it is a file, not a directory")
    summary_path, manifest_path = _require(folder, FILES["summary"]), _require(folder, FILES["manifest"])
    summary, manifest = read_json(summary_path), read_json(manifest_path)
    check_summary(summary_path, summary)
    check_manifest(manifest_path, manifest)
    tables, lacks = _read_tables(folder)
    figures_dir = folder / "figures"
    figures = (
        {p.stem: p for p in sorted(figures_dir.glob("*.png"))} if figures_dir.is_dir() else {}
    )
    return RunResults(
        path=folder,
        summary=summary,
        manifest=manifest,
        clients=tables["clients"],
        timeline=tables["timeline"],
        replications=tables["replications"],
        figures=figures,
        targets=tables["targets"],
        lacks=lacks,
    )

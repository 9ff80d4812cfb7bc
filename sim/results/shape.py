"""The shape of summary.json and manifest.json, checked where they are read.

A results folder may be edited by hand, truncated or written by another
version; `report` and `compare` index into these dicts everywhere, so a
wrong type met there was a traceback (13 in the issue-21 corpus). Here each
is refused once, naming the file and the field: `RESULTS/summary.json:
strategies.eip_remap.availability: expected a number or null, got str 'high'`.
Unknown keys are allowed, so a newer writer's additions still read.
"""

from __future__ import annotations

import math
import reprlib
from pathlib import Path
from typing import Any

from sim.results.schema import UNBOUNDED

__all__ = ["ShapeError", "check_manifest", "check_summary"]

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40
_REPR.maxlist = _REPR.maxdict = 3
_REPR.maxlevel = 1


class ShapeError(ValueError):
    """A results file whose content has the wrong shape; the message names file and field."""

    def __init__(self, path: Path, field: str, expected: str, got: Any) -> None:
        where = f"{path}: {field}:" if field else f"{path}:"
        super().__init__(f"{where} expected {expected}, got {_describe(got)}")


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {_REPR.repr(value)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_or_null(path: Path, field: str, value: Any) -> None:
    # "> run": a value beyond the run (an unbounded percentile or drain), as the summary stores it
    if value is not None and value != UNBOUNDED and not _is_number(value):
        raise ShapeError(path, field, f'a number, "{UNBOUNDED}" or null', value)


def _typed(path: Path, field: str, value: Any, kind: type | tuple[type, ...], expected: str) -> None:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ShapeError(path, field, expected, value)


def check_summary(path: Path, summary: dict[str, Any]) -> None:
    """Raise ShapeError unless `summary` has the shape `sim.runner` writes (docs/scenario.md, "Results")."""
    for key in ("scenario", "engine"):
        _typed(path, key, summary.get(key), str, "a string")
    for key in ("seed", "replications"):
        value = summary.get(key)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise ShapeError(path, key, "a whole number >= 0", value)
    times = summary.get("fault_times", [])
    _typed(path, "fault_times", times, list, "a list of seconds")
    for i, t in enumerate(times):
        if not _is_number(t):
            raise ShapeError(path, f"fault_times[{i}]", "a number of seconds", t)
    refused = summary.get("refused", {})
    _typed(path, "refused", refused, dict, "a mapping of strategy to reason")
    strategies = summary.get("strategies")
    _typed(path, "strategies", strategies, dict, "a mapping of strategy name to its metrics")
    for name, metrics in strategies.items():
        _check_metrics(path, f"strategies.{name}", metrics)


# The metrics the table, the report and compare read (docs/scenario.md,
# "Results"); other keys are left to whoever wrote them.
_NUMBERS = ("requests", "failed", "availability", "clients_affected", "stragglers_5m", "dns_queries", "dropped")
_NESTED = ("recovery_s", "latency_ms")


def _check_metrics(path: Path, field: str, metrics: Any) -> None:
    _typed(path, field, metrics, dict, "a mapping of metric to value")
    for metric in _NUMBERS:
        _number_or_null(path, f"{field}.{metric}", metrics.get(metric))
    for metric in _NESTED:
        value = metrics.get(metric, {})
        _typed(path, f"{field}.{metric}", value, dict, "a mapping of statistic to value")
        for inner, number in value.items():
            _number_or_null(path, f"{field}.{metric}.{inner}", number)
    _check_intervals(path, f"{field}.ci95", metrics.get("ci95", {}))


def _check_intervals(path: Path, field: str, intervals: Any) -> None:
    _typed(path, field, intervals, dict, "a mapping of metric to [low, high]")
    for metric, bounds in intervals.items():
        if bounds is None:
            continue
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ShapeError(path, f"{field}.{metric}", "[low, high] or null", bounds)
        for bound in bounds:
            _number_or_null(path, f"{field}.{metric}", bound)


def check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Raise ShapeError unless `manifest` has the shape `sim.results.manifest` writes."""
    scenario = manifest.get("scenario", {})
    _typed(path, "scenario", scenario, dict, "the scenario as a mapping")
    name = scenario.get("name", "")
    _typed(path, "scenario.name", name, str, "a string")
    for key in ("engine", "created", "scenario_sha256", "git_commit", "version"):
        value = manifest.get(key)
        if value is not None:
            _typed(path, key, value, str, "a string or null")
    for key in ("seed", "replications"):
        value = manifest.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise ShapeError(path, key, "a whole number >= 0 or null", value)
    wall = manifest.get("wall_time_s")
    if wall is not None and not (_is_number(wall) and math.isfinite(wall)):
        raise ShapeError(path, "wall_time_s", "a number of seconds or null", wall)

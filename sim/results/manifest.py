"""manifest.json: what is needed to reproduce a run and to tell two runs apart."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sim._version import __version__
from sim.results.writer import to_jsonable

__all__ = ["git_commit", "manifest", "scenario_sha256"]


def scenario_sha256(scenario: dict[str, Any]) -> str:
    """SHA-256 of the scenario's canonical JSON (sorted keys, no whitespace).

    Two runs with the same hash ran the same scenario, whatever the YAML looked like
    (comments, key order, "60s" against "1m"), since the dict is the loaded form.
    """
    canonical = json.dumps(
        to_jsonable(scenario), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parents[1],  # the sim/ folder
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # git missing, or hung: the manifest must not fail a finished run
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> str | None:
    """HEAD of the checkout the package runs from; None outside git or without git."""
    return _git("rev-parse", "HEAD") or None


def _git_dirty() -> bool | None:
    # A commit alone does not reproduce a run made from uncommitted edits.
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def manifest(
    scenario_dict: dict[str, Any],
    *,
    engine: str,
    wall_time_s: float,
    seed: int,
    replications: int,
) -> dict[str, Any]:
    """The manifest.json dict for one run.

    ``scenario_dict`` is the scenario as loaded (every default filled in, durations
    in seconds), e.g. ``Scenario.model_dump(mode="json")``.
    """
    commit = git_commit()
    return {
        "scenario": to_jsonable(scenario_dict),
        "scenario_sha256": scenario_sha256(scenario_dict),
        "version": __version__,
        "git_commit": commit,
        "git_dirty": _git_dirty() if commit else None,
        "engine": engine,
        "seed": int(seed),
        "replications": int(replications),
        "wall_time_s": float(wall_time_s),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "argv": list(sys.argv),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }

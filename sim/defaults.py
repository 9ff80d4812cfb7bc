"""Defaults the command line and the API share, low enough for any module to import."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_SCENARIO", "default_scenario"]

# The scenario `failover-sim run` runs without one, relative to the checkout's root.
DEFAULT_SCENARIO = Path("scenarios/elb-blowup.yaml")


def default_scenario() -> Path:
    """DEFAULT_SCENARIO from the working folder when it is there (the checkout's root); from
    elsewhere, the scenarios folder beside the installed (editable) package."""
    if DEFAULT_SCENARIO.is_file():
        return DEFAULT_SCENARIO
    beside = Path(__file__).resolve().parent.parent / DEFAULT_SCENARIO
    return beside if beside.is_file() else DEFAULT_SCENARIO

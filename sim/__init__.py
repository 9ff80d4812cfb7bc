"""failover-sim: how long users are down when a load balancer fails.

The Python API (docs/api.md): `sim.load`, `sim.run`, `sim.sweep`,
`sim.open_results`, `sim.write_report`, and `Scenario.replace` /
`Scenario.with_values` for edits; for notebooks also `sim.cohort_table` (who
is down, per cohort) and `sim.LabOptions` (the lab engine's options).
Imported lazily, so `import sim` stays cheap for the command line and for
modules (`sim.policy`, `sim.core`) that must not pull in an engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim._version import __version__

__all__ = [
    "FittedScenario",
    "LabOptions",
    "RunError",
    "Scenario",
    "ScenarioError",
    "StoredResults",
    "__version__",
    "available_engines",
    "cohort_table",
    "fit_logs",
    "has_sweep",
    "load",
    "open_results",
    "run",
    "sweep",
    "write_report",
]

_API = {"FittedScenario", "available_engines", "fit_logs", "has_sweep", "load", "open_results", "run", "sweep", "StoredResults", "write_report"}
_SCENARIO = {"Scenario", "ScenarioError"}

if TYPE_CHECKING:
    from sim.analysis.table import cohort_table
    from sim.api import (
        FittedScenario,
        StoredResults,
        available_engines,
        fit_logs,
        has_sweep,
        load,
        open_results,
        run,
        sweep,
        write_report,
    )
    from sim.lab.world import LabOptions
    from sim.runner import RunError
    from sim.scenario import Scenario, ScenarioError


def __getattr__(name: str) -> Any:
    if name in _API:
        from sim import api

        return getattr(api, name)
    if name in _SCENARIO:
        from sim import scenario

        return getattr(scenario, name)
    if name == "RunError":
        from sim.runner import RunError

        return RunError
    if name == "cohort_table":
        from sim.analysis.table import cohort_table

        return cohort_table
    if name == "LabOptions":
        from sim.lab.world import LabOptions

        return LabOptions
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

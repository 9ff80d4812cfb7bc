"""failover-sim: how long users are down when a load balancer fails.

The Python API (docs/api.md): `sim.load`, `sim.run`, `sim.sweep`,
`sim.open_results`, and `Scenario.replace` / `Scenario.with_values` for edits.
Imported lazily, so `import sim` stays cheap for the command line and for
modules (`sim.policy`, `sim.core`) that must not pull in an engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Scenario",
    "ScenarioError",
    "StoredResults",
    "__version__",
    "available_engines",
    "has_sweep",
    "load",
    "open_results",
    "run",
    "sweep",
]

_API = {"available_engines", "has_sweep", "load", "open_results", "run", "sweep", "StoredResults"}
_SCENARIO = {"Scenario", "ScenarioError"}

if TYPE_CHECKING:
    from sim.api import StoredResults, available_engines, has_sweep, load, open_results, run, sweep
    from sim.scenario import Scenario, ScenarioError


def __getattr__(name: str) -> Any:
    if name in _API:
        from sim import api

        return getattr(api, name)
    if name in _SCENARIO:
        from sim import scenario

        return getattr(scenario, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The scenario contract: typed, validated, units converted to seconds.

Imports no engine (docs/design.md): every engine reads a `Scenario`.
"""

from sim.scenario.loader import Problem, ScenarioError, load_data, load_file, load_text
from sim.scenario.models import STRATEGIES, Scenario
from sim.scenario.units import parse_distribution, parse_duration, parse_rate
from sim.scenario.zones import Violation, strategy_refusals, zone_violations

__all__ = [
    "STRATEGIES",
    "Problem",
    "Scenario",
    "ScenarioError",
    "Violation",
    "load_data",
    "load_file",
    "load_text",
    "parse_distribution",
    "parse_duration",
    "parse_rate",
    "strategy_refusals",
    "zone_violations",
]

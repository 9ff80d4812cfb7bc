"""A sweep's grid: `--set PATH=V1,V2` options, their combinations, and each unit's seed.

A unit of work is (cell, strategy, replication). Seeds come from the
scenario's seed by `SeedSequence.spawn`: one child per cell in grid order,
one grandchild per replication; every strategy of a (cell, replication)
gets a fresh copy of the same grandchild (common random numbers, as `run`
does). So a unit's numbers depend only on its place in the grid, never on
the executor, the worker count or the order units finish in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from sim.scenario import Scenario, ScenarioError


class GridError(ValueError):
    """A --set option that cannot be used (the message names it)."""


def parse_set(option: str) -> tuple[str, list[Any]]:
    """`dns.service_ttl=30s,60s` -> ("dns.service_ttl", ["30s", "60s"]); values as YAML scalars."""
    path, sep, values = option.partition("=")
    path = path.strip()
    if not sep or not path or not values.strip():
        raise GridError(f"--set {option}: expected PATH=V1,V2,... such as dns.service_ttl=30s,60s,300s")
    parsed = []
    for text in values.split(","):
        text = text.strip()
        if not text:
            raise GridError(f"--set {option}: an empty value")
        try:
            parsed.append(yaml.safe_load(text))
        except yaml.YAMLError:
            parsed.append(text)
    return path, parsed


@dataclass(frozen=True)
class Cell:
    index: int
    values: dict[str, Any]  # path -> value as given
    scenario: Scenario


def cells(scenario: Scenario, grid: dict[str, list[Any]]) -> list[Cell]:
    """Every combination, in grid order (the first path varies slowest), each validated."""
    paths = list(grid)
    out = []
    for i, combo in enumerate(itertools.product(*(grid[p] for p in paths))):
        values = dict(zip(paths, combo, strict=True))
        try:
            edited = scenario.with_values(values) if values else scenario
        except ScenarioError as exc:
            raise GridError(f"--set {'; '.join(f'{p}={v}' for p, v in values.items())}: "
                            + "; ".join(str(p) for p in exc.problems)) from None
        out.append(Cell(i, values, edited))
    return out


def unit_seed(scenario_seed: int, n_cells: int, cell: int, replications: int, replication: int) -> np.random.SeedSequence:
    child = np.random.SeedSequence(scenario_seed).spawn(n_cells)[cell].spawn(replications)[replication]
    return np.random.SeedSequence(child.entropy, spawn_key=child.spawn_key)

"""A scenario's `population: FILE`: clients and resolvers read from a population file.

A population file (scenarios/populations/*.yaml, docs/populations.md) holds a
`clients:` list and a `resolvers:` list (what a scenario puts under
`dns.resolvers`), and may hold `population:` (the total of clients when its
cohorts give shares) and `description:`. A scenario that names one takes both
blocks from it; a block the scenario writes itself replaces the file's block
whole (docs/scenario.md, "Populations"). Shares in a block sum to 1, so a
block is the unit that can be replaced: mixing cohorts of two blocks would
leave neither's shares meaning anything.

Errors in a value taken from the file name the file and its own field path
(`resolvers[1].share`, not `dns.resolvers[1].share`): `Source` says which
scenario paths came from which file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KEYS = ("description", "population", "clients", "resolvers")
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Source:
    """Scenario paths under `prefix` were read from `file` at `file_prefix`."""

    prefix: str
    file: str
    root: yaml.Node | None
    file_prefix: str

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith((self.prefix + ".", self.prefix + "["))

    def translate(self, path: str) -> str:
        return self.file_prefix + path[len(self.prefix):]


def resolve_path(value: str, base: Path) -> Path:
    """The population file a scenario names, relative to the scenario's folder.

    Raises ValueError with the reason when the path is absolute, leaves the
    scenario's folder or is not a YAML file: a scenario and its population
    travel together (copy the folder and both still load).
    """
    given = Path(value)
    if given.is_absolute():
        raise ValueError(f"{value!r} is absolute; give a path relative to the scenario's folder "
                         "(populations/consumer-web.yaml)")
    if given.suffix not in SUFFIXES:
        raise ValueError(f"{value!r} is not a YAML file name (expected .yaml or .yml), "
                         "or give a whole number: the total of clients")
    folder = base.resolve()
    path = (folder / given).resolve()
    if not path.is_relative_to(folder):
        raise ValueError(f"{value!r} leaves the scenario's folder ({folder}); put the population file in it "
                         "or below it, so the scenario and its population are copied together")
    return path


def check_document(data: Any, file: str, line_of: Any) -> list[tuple[str, str, int | None]]:
    """What is wrong with a population file's top level: (field, message, line) each."""
    if not isinstance(data, Mapping):
        got = "a list" if isinstance(data, list) else type(data).__name__
        return [("", f"expected a mapping with clients: and resolvers:, got {got}", 1)]
    problems = []
    for key in data:
        if key not in KEYS:
            problems.append((str(key), f"unknown key in a population file; expected some of {list(KEYS)}",
                             line_of(str(key))))
    for key in ("clients", "resolvers"):
        if key not in data:
            problems.append((key, "required field is missing (a population file holds clients: and resolvers:)", 1))
        elif not isinstance(data[key], list):
            problems.append((key, "expected a list", line_of(key)))
    total = data.get("population")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int)):
        problems.append(("population", f"expected a whole number (the total of clients), got {total!r}; "
                                       "a population file cannot name another one", line_of("population")))
    return problems


def merge(data: Mapping[str, Any], population: Mapping[str, Any], file: str,
          root: yaml.Node | None) -> tuple[dict[str, Any], list[Source]]:
    """The scenario with the population file's blocks where it gives none, and where each came from."""
    merged = dict(data)
    sources = []
    if "clients" in data:
        merged.pop("population")  # the scenario's own cohorts: the file's total is about the file's
    else:
        merged["clients"] = population["clients"]
        sources.append(Source("clients", file, root, "clients"))
        if population.get("population") is not None:
            merged["population"] = population["population"]
            sources.append(Source("population", file, root, "population"))
        else:
            merged.pop("population")
    dns = data.get("dns")
    if isinstance(dns, Mapping) and "resolvers" not in dns:
        merged["dns"] = {**dns, "resolvers": population["resolvers"]}
        sources.append(Source("dns.resolvers", file, root, "resolvers"))
    return merged, sources

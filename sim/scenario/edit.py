"""Path-based edits of a scenario: `dns.records[1].ttl`, `clients[0].rate`, `faults[0].for`.

A `Scenario` is frozen; an edit builds a new one. The scenario is turned into
a plain document (the YAML a user would write, with every default filled in),
each change is set at its path, and the document is validated again through
`load_data`, so an edit is checked by exactly the rules a file is, and an
invalid value is reported with its field path.

Values are what a scenario file takes: `"30s"`, `"2/s"`, `{exp: "20ms"}`,
plain numbers (seconds, per second), or model objects (`Honor(kind="honor")`).

Imports no engine.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from sim.scenario.loader import Problem, ScenarioError, load_data

if TYPE_CHECKING:
    from sim.scenario.models import Scenario

__all__ = ["apply_changes", "document", "parse_path", "replace", "with_values"]

_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|(\.)")
_SOURCE = "<edit>"


def document(model: Any) -> Any:
    """A scenario (or part of one) as a plain document that `load_data` accepts.

    Unlike `Scenario.to_document()` (for people: "5m", "0.0166667/s"), values
    stay exact (seconds as floats, distributions as their objects), so a
    round trip changes nothing but what was edited.
    """
    if isinstance(model, BaseModel):
        out: dict[str, Any] = {}
        implied = getattr(model, "implied_fields", ())  # derived from other fields: not given back
        for name, info in type(model).model_fields.items():
            if name not in implied:
                out[info.alias or name] = document(getattr(model, name))
        return out
    if isinstance(model, list | tuple):
        return [document(item) for item in model]
    if isinstance(model, Mapping):
        return {key: document(value) for key, value in model.items()}
    if isinstance(model, float) and math.isinf(model):
        return "never"  # the only unbounded durations are lifetimes (max_connection_age)
    return model


def parse_path(path: str) -> list[str | int]:
    """`dns.records[1].ttl` -> `["dns", "records", 1, "ttl"]`.

    Raises ValueError naming the path when it is not of that form.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"a path must be a non-empty string like 'dns.records[1].ttl', got {path!r}")
    parts: list[str | int] = []
    pos, expect_name = 0, True
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"path {path!r}: unexpected {path[pos]!r} at position {pos}; expected names, dots and [index]")
        name, index, dot = match.groups()
        if dot:
            if expect_name:
                raise ValueError(f"path {path!r}: a name is missing at position {pos}")
            expect_name = True
        elif name:
            if not expect_name:
                raise ValueError(f"path {path!r}: a dot is missing before {name!r}")
            parts.append(name)
            expect_name = False
        else:
            if expect_name:
                raise ValueError(f"path {path!r}: an index must follow a name, at position {pos}")
            parts.append(int(index))
        pos = match.end()
    if expect_name:
        raise ValueError(f"path {path!r}: ends with a dot")
    return parts


def _format(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = parse_path(path)
    node: Any = doc
    for depth, part in enumerate(parts):
        here = _format(parts[: depth + 1])
        parent = _format(parts[:depth]) or "the scenario"
        last = depth == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list):
                raise KeyError(f"{here}: {parent} is not a list, it cannot be indexed")
            if part >= len(node):
                raise KeyError(f"{here}: index {part} is out of range; {parent} has {len(node)} item(s)")
        else:
            if not isinstance(node, dict):
                raise KeyError(f"{here}: {parent} is a value, not a mapping with fields")
            if part not in node:
                known = ", ".join(sorted(node)) or "none"
                raise KeyError(f"{here}: unknown field {part!r} in {parent}; its fields are: {known}")
        if last:
            node[part] = document(value)
        else:
            node = node[part]
            if node is None:
                raise KeyError(
                    f"{here} is not set, so {path} cannot be edited alone; set {here} as a whole "
                    f"(for example {{'{here}': {{...}}}})"
                )


def apply_changes(scenario: Scenario, changes: Mapping[str, Any]) -> Scenario:
    """A new, validated scenario with each `path: value` of `changes` applied in order.

    Raises ScenarioError: for an unknown path (naming it and the fields that
    exist there), and for a value the scenario rules reject (naming its path).
    """
    doc = copy.deepcopy(document(scenario))
    problems = []
    for path, value in changes.items():
        try:
            _set(doc, path, value)
        except (KeyError, ValueError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            problems.append(Problem(_SOURCE, str(path), _strip_path(str(message), str(path))))
    if problems:
        raise ScenarioError(problems)
    return load_data(doc, _SOURCE)


def _strip_path(message: str, path: str) -> str:
    # Problem prints "<edit>: PATH: message"; do not say the path twice.
    return message[len(path) + 2 :] if message.startswith(path + ": ") else message


def with_values(scenario: Scenario, changes: Mapping[str, Any]) -> Scenario:
    """`scenario` with values set at dotted paths: `{"dns.records[1].ttl": "30s"}`."""
    if not isinstance(changes, Mapping):
        raise TypeError(f"with_values takes a mapping of path -> value, got {type(changes).__name__}")
    return apply_changes(scenario, changes)


def replace(scenario: Scenario, **changes: Any) -> Scenario:
    """`scenario` with top-level fields replaced: `replace(duration="30m", replications=2)`.

    `for_`-style Python names are accepted for aliased fields.
    """
    return apply_changes(scenario, {_alias(type(scenario), key): value for key, value in changes.items()})


def _alias(model: type[BaseModel], key: str) -> str:
    info = model.model_fields.get(key)
    return (info.alias or key) if info is not None else key

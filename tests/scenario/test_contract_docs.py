"""docs/scenario.md is the complete contract: every field of sim/scenario/models.py is in it (issue 21).

The pydantic models are walked from `Scenario` down; each field must be
named in the section of docs/scenario.md that documents its top-level
field (`### \\`dns\\``, `### \\`clients[]\\``, ...; a top-level value in "Top
level"; a cache policy's fields in "DNS cache policies"), and each `kind`
a discriminated union accepts must be named there too. A field added to the
models without a line in the contract fails here.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator

from pydantic import BaseModel

from sim.scenario import models
from sim.scenario.models import Scenario
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "scenario.md").read_text()
CACHE_POLICIES = typing.get_args(typing.get_args(models.CachePolicy)[0])


def _models_in(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _fields(model: type[BaseModel], path: tuple[str, ...] = ()) -> Iterator[tuple[type[BaseModel], tuple[str, ...]]]:
    for name, field in model.model_fields.items():
        key = field.alias or name
        yield model, (*path, key)
        for inner in _models_in(field.annotation):
            yield from _fields(inner, (*path, key))


def _section(heading: str) -> str:
    """The first heading containing `heading` and its text, up to the next heading of its level or above."""
    match = re.search(rf"(?m)^(#+) [^\n]*{re.escape(heading)}[^\n]*\n", DOC)
    assert match, f"docs/scenario.md has no heading with {heading!r}"
    level = len(match.group(1))
    end = re.search(rf"(?m)^#{{1,{level}}} ", DOC[match.end():])
    return DOC[match.start(): match.end() + end.start()] if end else DOC[match.start():]


def _where(model: type[BaseModel], path: tuple[str, ...]) -> tuple[str, str]:
    if model in CACHE_POLICIES:
        return "DNS cache policies", _section("DNS cache policies")
    if len(path) == 1:
        # A top-level value in the table, or a field with a section of its own.
        if re.search(rf"(?m)^#+ `{re.escape(path[0])}", DOC):
            return f"`{path[0]}", _section(f"`{path[0]}")
        return "Top level", _section("Top level")
    return f"`{path[0]}", _section(f"`{path[0]}")


def _named(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def test_every_model_field_is_documented_in_its_section() -> None:
    missing = []
    for model, path in _fields(Scenario):
        section_name, text = _where(model, path)
        if not _named(text, path[-1]):
            missing.append(f"{'.'.join(path)} ({model.__name__}) not in section {section_name}")
        annotation = model.model_fields[[n for n, f in model.model_fields.items() if (f.alias or n) == path[-1]][0]].annotation
        if path[-1] == "kind" and typing.get_origin(annotation) is typing.Literal:
            missing += [f"{'.'.join(path)}: {value}" for value in typing.get_args(annotation) if not _named(text, value)]
    assert missing == [], "\n".join(missing)


def test_the_walk_reaches_the_deep_fields() -> None:
    # Guards the test above against walking nothing: a field five levels down.
    paths = {".".join(path) for _, path in _fields(Scenario)}
    assert {"failover.vrrp.advert_int", "dns.resolvers.policy.max_stale", "backends.health_check.rise"} <= paths

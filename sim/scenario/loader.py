"""Load scenario YAML into a `Scenario`, with errors a person can act on.

Every error names the file, the field path (`clients[1].stub_cache.kind`),
the line where the YAML parser can tell it, what was given and what was
expected, on one line each.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.scenario import population, safeyaml
from sim.scenario.limits import LIST_REASON
from sim.scenario.models import Scenario
from sim.scenario.safeyaml import MAX_DOCUMENT_BYTES

# Keys of discriminated unions: pydantic puts the chosen tag in the error
# location (`stub_cache.floor.min_ttl`), which is not a path the user wrote.
_UNION_TAGS = {
    "honor", "none", "floor", "cap", "fixed", "forever", "extend", "serve_stale",
    "balancer_down", "instance_down", "traffic", "dns_down",
    "HealthCheckDetection", "OperatorDetection",
}  # fmt: skip
_PATH_PREFIX = re.compile(r"^([A-Za-z_][\w]*(?:\[\d+\])?(?:\.[A-Za-z_][\w]*(?:\[\d+\])?)*): (.*)$", re.S)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ScenarioError(Exception):
    """A scenario that cannot be loaded; `problems` lists each reason.

    `unreadable` is true when the file itself could not be read (missing, a
    directory, not UTF-8): the CLI's exit 2, against 1 for an invalid scenario.
    """

    def __init__(self, problems: list[Problem], *, unreadable: bool = False):
        self.problems = problems
        self.unreadable = unreadable
        super().__init__("\n".join(str(p) for p in problems))


def load_file(path: str | Path) -> Scenario:
    """Read and validate a scenario file (a `population:` file it names is relative to its folder)."""
    file = str(path)
    return load_text(_read_text(Path(path), file), file, base=Path(path).parent)


def _read_text(path: Path, file: str) -> str:
    """A file's text, or a ScenarioError (unreadable) naming it and why."""
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            # Refused before reading: a huge file must not be read into memory.
            raise ScenarioError([Problem(file, "", _too_big(size))])
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(file, "", "no such file")], unreadable=True) from None
    except IsADirectoryError:
        raise ScenarioError([Problem(file, "", "is a directory, expected a scenario YAML file")], unreadable=True) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            [Problem(file, "", f"cannot read: not UTF-8 text (byte {exc.start}: {exc.reason})")], unreadable=True
        ) from None
    except OSError as exc:
        raise ScenarioError([Problem(file, "", f"cannot read: {exc.strerror or exc}")], unreadable=True) from None


def _too_big(size: int) -> str:
    return f"the file is {size / 1024:,.0f} KiB; a scenario file may be at most {MAX_DOCUMENT_BYTES // 1024} KiB"


def load_text(text: str, file: str = "<string>", base: Path | None = None) -> Scenario:
    """Validate scenario YAML; `base` is the folder a `population:` file is relative to (default: the current one)."""
    data, root = _parse_yaml(text, file)
    return load_data(data, file, root, base=base)


def load_data(data: Any, file: str = "<data>", root: yaml.Node | None = None, base: Path | None = None) -> Scenario:
    """Validate already-parsed data (a dict) into a Scenario.

    A `population:` that names a file reads its clients and resolvers from it,
    relative to `base` (default: the current folder); see sim/scenario/population.py.
    """
    if not isinstance(data, Mapping):
        got = "a list" if isinstance(data, list) else f"{type(data).__name__} {_short(data)}"
        raise ScenarioError(
            [Problem(file, "", f"expected a mapping at the top level (version: 1, name: ...), got {got}", 1)]
        )
    sources: list[population.Source] = []
    named = data.get("population")
    if isinstance(named, str) and not named.strip().isdigit():
        data, sources = _with_population(data, named, file, root, base or Path.cwd())
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_problems(exc, file, data, root, sources)) from None
    except RecursionError:
        # Data handed in from Python (not YAML, whose reader refuses cycles) may hold itself.
        raise ScenarioError([Problem(file, "", "the data holds itself (a cycle) or nests too deeply")]) from None


def _with_population(
    data: Mapping[str, Any], named: str, file: str, root: yaml.Node | None, base: Path
) -> tuple[dict[str, Any], list[population.Source]]:
    """The scenario with its population file's blocks merged in, and which paths came from that file."""
    try:
        path = population.resolve_path(named, base)
    except ValueError as exc:
        raise ScenarioError([Problem(file, "population", str(exc), _line_of(root, "population"))]) from None
    pop_file = str(path)
    if not path.is_file():
        why = "no such file" if not path.exists() else "not a file"
        raise ScenarioError(
            [Problem(file, "population", f"{named!r}: {why} ({pop_file}); the path is relative to the scenario's folder",
                     _line_of(root, "population"))],
            unreadable=True,
        )
    pop, pop_root = _parse_yaml(_read_text(path, pop_file), pop_file)
    wrong = population.check_document(pop, pop_file, lambda key: _line_of(pop_root, key))
    if wrong:
        raise ScenarioError([Problem(pop_file, where, message, line) for where, message, line in wrong])
    return population.merge(data, pop, pop_file, pop_root)


def _parse_yaml(text: str, file: str) -> tuple[Any, yaml.Node | None]:
    if not text.strip():
        raise ScenarioError(
            [Problem(file, "", "the file is empty; expected a scenario mapping (version: 1, name: ...)")]
        )
    try:
        data, root = safeyaml.read(text)
    except safeyaml.YamlProblem as exc:
        raise ScenarioError([Problem(file, path, message, line) for path, message, line in exc.places]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ScenarioError([Problem(file, "", f"YAML syntax error: {what}", line)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(file, "", f"YAML error: {exc}")]) from None
    if data is None:
        raise ScenarioError(
            [Problem(file, "", "the file is empty or holds only comments; expected a scenario mapping (version: 1, name: ...)")]
        )
    return data, root


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# Beyond this many problems a file is more wrong than a list helps with; the
# rest are counted, not listed (and not located, which walks the YAML each).
MAX_PROBLEMS = 20
# A message quotes at most this much of a value: one line, whatever was given.
MAX_MESSAGE = 300
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 4
_REPR.maxlevel = 2


def _short(value: Any) -> str:
    """A value quoted in bounded time and length (reprlib stops at a few items and levels)."""
    return _REPR.repr(value)


def _problems(
    exc: ValidationError, file: str, data: Any, root: yaml.Node | None, sources: Sequence[population.Source] = ()
) -> list[Problem]:
    problems = []
    errors = exc.errors(include_url=False, include_input=True)
    if len(errors) > MAX_PROBLEMS:
        problems.append(Problem(file, "", f"{len(errors)} problems; the first {MAX_PROBLEMS} follow"))
    for error in errors[:MAX_PROBLEMS]:
        loc = [part for part in error["loc"] if part not in _UNION_TAGS]
        path = _format_loc(loc)
        message = _message(error)
        if error["type"] == "union_tag_invalid":
            path = _join(path, "kind")
        nested = _PATH_PREFIX.match(message)
        if nested and error["type"] == "value_error":
            path = f"{path}.{nested.group(1)}" if path else nested.group(1)
            message = nested.group(2)
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "..."
        source = next((s for s in sources if s.owns(path)), None)
        if source is not None:  # a value read from the population file: name that file and its own path
            path = source.translate(path)
            problems.append(Problem(source.file, path, " ".join(message.split()), _line_of(source.root, path)))
        else:
            problems.append(Problem(file, path, " ".join(message.split()), _line_of(root, path)))
    return problems


def _format_loc(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = _join(out, "for" if part == "for_" else str(part))
    return out


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    given = error.get("input")
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "extra_forbidden":
        return "unknown key (a typo?); remove it or check the spelling against docs/scenario.md"
    if kind == "missing":
        return "required field is missing"
    ctx = error.get("ctx", {})
    if kind == "union_tag_invalid":
        return f"got {ctx.get('tag')!r}, expected one of {ctx.get('expected_tags')}"
    if kind == "literal_error":
        return f"got {_short(given)}, expected one of {ctx.get('expected')}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"must be {bounds[kind]} {limit}, got {_short(given)}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"expected a whole number, got {_short(given)}"
    if kind in ("float_parsing", "float_type"):
        return f"expected a number, got {_short(given)}"
    if kind in ("string_type",):
        return f"expected a string, got {_describe(given)}"
    if kind == "string_pattern_mismatch":
        return f"got {_short(given)}, expected text matching {ctx.get('pattern')}"
    if kind == "union_tag_not_found":
        return f"expected a mapping with a `kind` key, got {_short(given)}"
    if kind == "model_type" or kind == "dict_type":
        return f"expected a mapping, got {_describe(given)}"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} items ({LIST_REASON}), got {ctx.get('actual_length')}"
    if kind == "list_type":
        return f"expected a list, got {_describe(given)}"
    if kind in ("value_error", "assertion_error"):
        return msg
    return f"{msg}; got {_short(given)}" if "input" in error and not isinstance(given, dict | list) else msg


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {_short(value)}"


def _line_of(root: yaml.Node | None, path: str) -> int | None:
    """The line of the deepest node along `path` that exists in the YAML."""
    node = root
    line = root.start_mark.line + 1 if root is not None else None
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if isinstance(node, yaml.MappingNode) and key:
            match = next((kv for kv in node.value if str(kv[0].value) == key), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and index:
            i = int(index)
            if i >= len(node.value):
                break
            node = node.value[i]
            line = node.start_mark.line + 1
        else:
            break
    return line

"""Scenario YAML read in bounded time and memory.

The text is composed once (with a nesting limit enforced while composing),
the node graph is walked once with aliases taken by identity (so an alias
bomb costs what its text costs, and a recursive alias is found, not
followed), and the Python data is constructed from that same graph.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

# Scenario files are small: the shipped ones are under 6 KiB. PyYAML's loader is
# pure Python (its C loader recurses without a depth limit, so a deeply nested
# file could overflow the C stack): measured on this 2-core machine, 1.1 MB of
# records took 5 s to compose and 7.5 s to load, so 256 KiB keeps the worst
# case near 1.5 s.
MAX_DOCUMENT_BYTES = 256 * 1024
# The contract nests about 6 levels (clients[0].stub_cache.extra.uniform[1]);
# 64 leaves room and stays far below Python's recursion limit (1000 frames,
# about 3 per YAML level in the composer), where 500 levels used to crash.
MAX_DEPTH = 64
# Values after expanding every alias where it is used: what the validation
# and any error message would walk. 256 KiB of text holds at most about
# 130,000 values without aliases.
MAX_VALUES = 200_000


class YamlProblem(Exception):
    """The YAML cannot be read within the limits: where and why (one or more places)."""

    def __init__(self, path: str, message: str, line: int | None, *more: tuple[str, str, int | None]) -> None:
        self.places = [(path, message, line), *more]
        super().__init__(message)


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting beyond MAX_DEPTH as it goes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlProblem("", f"nested more than {MAX_DEPTH} levels deep (the contract needs about 6)", mark.line + 1)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


def read(text: str) -> tuple[Any, yaml.Node | None]:
    """(data, root node) of one YAML document; YamlProblem or yaml.YAMLError when it cannot be read."""
    size = len(text.encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        raise YamlProblem(
            "", f"the file is {size / 1024:.0f} KiB; a scenario file may be at most {MAX_DOCUMENT_BYTES // 1024} KiB", None
        )
    loader = _DepthLimitedLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_graph(root)
        try:
            data = loader.construct_document(root)
        except (ValueError, OverflowError) as exc:
            # int() of a number over 4,300 digits, an impossible date: a bad
            # value, not a bug; said in one line.
            raise YamlProblem("", f"a value cannot be read: {str(exc).splitlines()[0][:200]}", None) from None
        return data, root
    finally:
        loader.dispose()


@dataclass
class _Seen:
    values: int  # values under this node, aliases expanded
    depth: int  # levels under this node, aliases expanded


def _children(node: yaml.Node, path: str) -> Iterator[tuple[str, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                yield _join(path, "?"), key  # a complex key is data too
            yield _join(path, str(key.value) if isinstance(key, yaml.ScalarNode) else "?"), value
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield f"{path}[{i}]", item


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_graph(root: yaml.Node) -> None:
    """Duplicate keys, recursive aliases, expanded size and depth: each node visited once."""
    seen: dict[int, _Seen] = {}
    on_path: set[int] = set()
    duplicates: list[tuple[str, str, int | None]] = []

    def visit(node: yaml.Node, path: str, depth: int) -> _Seen:
        key = id(node)
        if depth > MAX_DEPTH:
            raise YamlProblem(path, f"aliases nest more than {MAX_DEPTH} levels deep", _line(node))
        if key in on_path:
            raise YamlProblem(path, "a recursive alias (an anchor used inside itself) cannot be a value", _line(node))
        done = seen.get(key)
        if done is None:
            on_path.add(key)
            duplicates.extend(_duplicates(node, path))
            values, below = 1, 0
            for child_path, child in _children(node, path):
                child_seen = visit(child, child_path, depth + 1)
                values += child_seen.values
                below = max(below, child_seen.depth + 1)
                if values > MAX_VALUES:
                    raise YamlProblem(
                        path, f"aliases expand to more than {MAX_VALUES:,} values (an alias bomb?)", _line(node)
                    )
            on_path.discard(key)
            done = seen[key] = _Seen(values, below)
        if depth + done.depth > MAX_DEPTH:
            raise YamlProblem(path, f"aliases nest more than {MAX_DEPTH} levels deep", _line(node))
        return done

    visit(root, "", 0)
    if duplicates:
        raise YamlProblem(*duplicates[0], *duplicates[1:])


def _duplicates(node: yaml.Node, path: str) -> Iterator[tuple[str, str, int | None]]:
    # PyYAML keeps the last of two equal keys without a word; a user who wrote
    # a key twice meant something by each.
    if not isinstance(node, yaml.MappingNode):
        return
    names: set[str] = set()
    for key, _ in node.value:
        name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
        if name in names:
            yield _join(path, name), "this key appears twice in the same mapping; keep one", _line(key)
        names.add(name)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1

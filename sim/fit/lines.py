"""Reading a log file line by line: plain or gzip (detected from its first bytes), never whole.

Every problem with a line is counted by kind in a `LineStats`, never raised:
a log of real traffic always has some junk, and one bad line must not cost
the other million. The last line of a file being written, or cut off by a
copy, has no newline: it is parsed if it can be, and otherwise counted as
`truncated last line`, not as malformed.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

GZIP_MAGIC = b"\x1f\x8b"
T = TypeVar("T")


class Malformed(ValueError):
    """A line a parser cannot read; `kind` is the short reason it is counted under."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class LineStats:
    """What reading one file found: lines, records, and the rest counted by kind.

    `first_line` keeps the number of the first line of each kind (never its
    text: a line holds a client's address)."""

    path: str
    format: str = ""
    lines: int = 0
    records: int = 0
    skipped: int = 0  # well-formed lines that are not for us (another name, a non-query line)
    malformed: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, lineno: int) -> None:
        self.malformed[kind] += 1
        self.first_line.setdefault(kind, lineno)

    @property
    def bad(self) -> int:
        return sum(self.malformed.values())

    def summary(self) -> str:
        text = f"{self.path} ({self.format}): {self.lines} lines, {self.records} records"
        if self.skipped:
            text += f", {self.skipped} not for the service"
        if self.malformed:
            text += "; malformed: " + ", ".join(
                f"{n} {kind} (first at line {self.first_line[kind]})" for kind, n in self.malformed.most_common())
        return text


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def raw_lines(path: str | Path, stats: LineStats) -> Iterator[tuple[int, str, bool]]:
    """(line number, text without its newline, whether it is an unterminated last line).

    Bytes that are not UTF-8 are replaced rather than refused: a user agent
    may hold anything, and the fields the fit uses are ASCII. Decoding is
    done by the text layer in C, a buffer at a time. A gzip stream that ends
    early (a copy cut short) ends the file, counted as `truncated gzip stream`."""
    opener = gzip.open if is_gzip(path) else open
    lineno = 0
    with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="\n") as f:  # type: ignore[operator]
        try:
            for line in f:
                lineno += 1
                stats.lines += 1
                if line[-1:] == "\n":
                    yield lineno, line.rstrip("\r\n"), False
                else:
                    yield lineno, line.rstrip("\r"), True
        except (EOFError, zlib.error, gzip.BadGzipFile):
            stats.count("truncated gzip stream", lineno + 1)


@dataclass
class Reader(Generic[T]):
    """Parse every line of a file with `parse`, counting what cannot be read."""

    parse: Callable[[str], T | None]  # None: a well-formed line that is not a record (skipped)
    stats: LineStats

    def __iter__(self) -> Iterator[T]:
        parse, stats = self.parse, self.stats
        for lineno, text, unterminated in raw_lines(stats.path, stats):
            if not text.strip():
                continue
            try:
                record = parse(text)
            except Malformed as exc:
                stats.count("truncated last line" if unterminated else exc.kind, lineno)
                continue
            except (ValueError, IndexError, KeyError, OverflowError):
                stats.count("truncated last line" if unterminated else "unreadable field", lineno)
                continue
            if record is None:
                if unterminated:  # a cut line may look like another category's
                    stats.count("truncated last line", lineno)
                    continue
                stats.skipped += 1
                continue
            stats.records += 1
            yield record

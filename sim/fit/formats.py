"""The log formats the fit reads, by name, and how a file's format is recognised.

A format is named with `--format` (`alb`, `elb`, `nginx`, `haproxy`,
`route53`, `bind`) or recognised from the file's first lines: the one that
reads most of them wins, and a file none reads is an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from sim.fit import aws, bind, haproxy, nginx, route53
from sim.fit.lines import LineStats, Malformed, Reader, raw_lines


@dataclass(frozen=True)
class Format:
    name: str
    kind: str  # "access" or "dns"
    parse: Callable[[str], Any]
    title: str


FORMATS = {
    f.name: f
    for f in (
        Format("alb", "access", aws.parse_alb, "AWS Application Load Balancer access log"),
        Format("elb", "access", aws.parse_elb, "AWS Classic Load Balancer access log"),
        Format("nginx", "access", nginx.parse_combined, "nginx combined (optionally + $connection $connection_requests)"),
        Format("haproxy", "access", haproxy.parse_httplog, "HAProxy HTTP log (option httplog)"),
        Format("route53", "dns", route53.parse_query_log, "Route 53 public DNS query log"),
        Format("bind", "dns", bind.parse_querylog, "BIND query log"),
    )
}
SAMPLE_LINES = 50


class LogError(Exception):
    """A log file the fit cannot use at all (missing, empty, no known format): names the file."""


def detect(path: str | Path, kind: str) -> Format:
    """The format of `kind` that reads most of the file's first lines."""
    candidates = [f for f in FORMATS.values() if f.kind == kind]
    sample = [text for _, text, _ in islice(raw_lines(path, LineStats(str(path))), SAMPLE_LINES) if text.strip()]
    if not sample:
        raise LogError(f"{path}: empty: no lines to read")
    scores = {f.name: sum(_reads(f, text) for text in sample) for f in candidates}
    best = max(candidates, key=lambda f: scores[f.name])
    if scores[best.name] == 0:
        names = ", ".join(f.name for f in candidates)
        raise LogError(f"{path}: not a known {kind} log format ({names}): none reads its first {len(sample)} lines; "
                       "name it with --format")
    return best


def _reads(fmt: Format, text: str) -> bool:
    try:
        return fmt.parse(text) is not None
    except (Malformed, ValueError, IndexError, KeyError):
        return False


def read(path: str | Path, kind: str, name: str | None = None) -> tuple[Iterator[Any], LineStats]:
    """The records of one file (streamed) and the stats being filled as they are read."""
    p = Path(path)
    if not p.is_file():
        raise LogError(f"{path}: cannot read: {'no such file' if not p.exists() else 'not a file'}")
    if name is not None:
        if name not in FORMATS or FORMATS[name].kind != kind:
            names = ", ".join(f.name for f in FORMATS.values() if f.kind == kind)
            raise LogError(f"{path}: --format {name} is not a {kind} log format; expected one of {names}")
        fmt = FORMATS[name]
    else:
        fmt = detect(p, kind)
    stats = LineStats(str(path), fmt.name)
    return iter(Reader(fmt.parse, stats)), stats

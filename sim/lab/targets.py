"""Where every lab request went: attempts attributed to the balancer that saw them.

The lab's clients name each request in its path (`request_path`: client id,
the client's request number, attempt), and record every try: which request,
which attempt, the address it was sent to and when (scenario seconds). The
balancers' access logs (sim.core, `log.access`) say which of them received
which request. After the run, each try is attributed to the balancer whose
log has it; a try no balancer logged (the connect was refused or timed out, or
the line was lost with a killed process) is attributed by the address it was
sent to: a balancer's own address is that balancer's, the moving address is
its holder's at the time (`Holders`).

From the attributed tries come the model's target counts (sim.model.requests):
per second and cohort the first attempts sent to the previous and to the
current target, the failed tries of requests that succeeded (`rescued`), and
per client `switched_at` and `last_previous_at`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.replication import OK

# A try's record, as the client process writes it: columns of the tries array.
# `opened`: when the connection the try went on was opened (= t for a new one).
TRY_COLUMNS = ("client", "seq", "attempt", "try", "address", "t", "opened")
# A request's record: columns of the requests array (outcome as sim.replication numbers it).
REQUEST_COLUMNS = ("client", "issued", "finished", "outcome", "seq", "attempts")
Key = tuple[int, int, int]  # (client, seq, attempt)


def request_path(client: int, seq: int, attempt: int) -> bytes:
    """The path a lab client sends: the request's identity, read back from the access logs."""
    return b"/?c=%d&n=%d&a=%d" % (client, seq, attempt)


def parse_path(path: str | None) -> Key | None:
    """(client, seq, attempt) from a lab request's path; None for any other (a health probe)."""
    if not path or not path.startswith("/?c="):
        return None
    try:
        fields = dict(part.split("=", 1) for part in path[2:].split("&"))
        return int(fields["c"]), int(fields["n"]), int(fields["a"])
    except (KeyError, ValueError):
        return None


# The quoted request ending a line in HAProxy's HTTP log format (docs/core.md, "The
# access log in HAProxy's HTTP log format"): method, target, version.
_HTTPLOG_REQUEST = re.compile(r'"(?:[A-Z]+) (\S+) HTTP/[\d.]+"$')


def _logged_path(line: str) -> str | None:
    """The request path of one access-log line, JSON lines or HAProxy's httplog."""
    if line.startswith("{"):
        return json.loads(line).get("path")
    match = _HTTPLOG_REQUEST.search(line.rstrip("\n"))
    return match[1] if match else None


def read_access_log(lines: Iterable[str], balancer: str, into: dict[Key, str] | None = None) -> dict[Key, str]:
    """Which balancer saw which attempt: every line of `balancer`'s access log (JSON lines,
    or HAProxy's HTTP log format as the lab writes it) whose path is a lab request's. A
    torn last line (a killed process) is skipped."""
    out: dict[Key, str] = {} if into is None else into
    for line in lines:
        try:
            key = parse_path(_logged_path(line))
        except (ValueError, AttributeError):
            continue
        if key is not None:
            out[key] = balancer
    return out


@dataclass(frozen=True)
class Holders:
    """Who an address led to: `fixed` addresses always to one balancer; the moving
    address to `before` until `moved_at` (scenario seconds; None: never moved), then to
    `after`. Addresses are the indices the clients record."""

    fixed: dict[int, str]
    moving: int | None = None
    before: str | None = None
    after: str | None = None
    moved_at: float | None = None

    def at(self, address: int, t: float) -> str | None:
        if address in self.fixed:
            return self.fixed[address]
        if address == self.moving:
            return self.after if self.moved_at is not None and t >= self.moved_at else self.before
        return None


def sort_tries(tries: np.ndarray) -> np.ndarray:
    """The tries (TRY_COLUMNS) by client, request, attempt and try: the client process
    writes them as they happen, its clients interleaved."""
    tries = np.asarray(tries, dtype=float).reshape(-1, len(TRY_COLUMNS))
    return tries[np.lexsort((tries[:, 3], tries[:, 2], tries[:, 1], tries[:, 0]))]


def attribute(tries: np.ndarray, logged: dict[Key, str], holders: Holders) -> list[str | None]:
    """The balancer each try (sorted: `sort_tries`) reached. Only the last try of an
    attempt (the connect that worked, address_mode next) sends a request; its log line
    decides. Every other try, and one no log has, goes by its address: to whoever held it
    when the try's connection was opened (a connection kept alive across an address move
    stays with the old holder, which resets it: sim.core.server.Server.address_left)."""
    out: list[str | None] = []
    n = len(tries)
    for i in range(n):
        c, s, a, _j, address, _t, opened = tries[i]
        key = (int(c), int(s), int(a))
        last = i + 1 == n or (int(tries[i + 1, 0]), int(tries[i + 1, 1]), int(tries[i + 1, 2])) != key
        seen = logged.get(key) if last else None
        out.append(seen if seen is not None else holders.at(int(address), float(opened)))
    return out


@dataclass
class Targets:
    """The target counts of one replication, in the model's shapes."""

    table: pd.DataFrame  # t, cohort, to_previous, to_current, rescued
    switched_at: np.ndarray  # per client (NaN: none)
    last_previous_at: np.ndarray


def count(tries: np.ndarray, reached: list[str | None], requests: np.ndarray, cohort_of: list[int],
          cohorts: list[str], seconds: int, standby: str, changed_at: float | None) -> Targets:
    """Count as the model counts (sim.model.requests._attempt and _sent_elsewhere): before
    the change every try goes to a current target (what the service pointed to: the
    active, or with one address per balancer both); from `changed_at` the standby is the
    current target and every other the previous one. A
    first attempt's first try is counted in the second it was sent; `switched_at` is a
    client's first try to the current target after the change, `last_previous_at` its
    last try to a previous one; `rescued` counts, at the second of issue, the failed
    tries (and attempts that reached no address) of requests that succeeded."""
    clients = len(cohort_of)
    to_previous = np.zeros((len(cohorts), seconds), dtype=np.int64)
    to_current = np.zeros((len(cohorts), seconds), dtype=np.int64)
    switched = np.full(clients, math.nan)
    last_previous = np.full(clients, math.nan)
    change = math.inf if changed_at is None else changed_at
    firsts = first_tries(tries)
    for i, ((c, _seq, attempt, _j, _address, t, _opened), balancer) in enumerate(zip(tries, reached, strict=True)):
        c, t = int(c), float(t)
        current = balancer == standby if t >= change else True
        counted = int(attempt) == 0 and bool(firsts[i])
        if current:
            if counted:
                to_current[cohort_of[c], _second(t, seconds)] += 1
            if t >= change and not switched[c] <= t:
                switched[c] = t
        else:
            if counted:
                to_previous[cohort_of[c], _second(t, seconds)] += 1
            last_previous[c] = t if math.isnan(last_previous[c]) else max(last_previous[c], t)
    rescued = _rescued(tries, requests, cohort_of, len(cohorts), seconds)
    table = pd.DataFrame({
        "t": np.tile(np.arange(seconds, dtype=np.int64), len(cohorts)),
        "cohort": np.repeat(np.array(cohorts, dtype=object), seconds),
        "to_previous": to_previous.reshape(-1),
        "to_current": to_current.reshape(-1),
        "rescued": rescued.reshape(-1),
    })
    return Targets(table, switched, last_previous)


def first_tries(tries: np.ndarray) -> np.ndarray:
    """A mask of the tries (sorted: `sort_tries`) that are their attempt's first."""
    if not len(tries):
        return np.zeros(0, dtype=bool)
    keys = tries[:, :3]
    new = np.ones(len(tries), dtype=bool)
    new[1:] = (keys[1:] != keys[:-1]).any(axis=1)
    return new


def _second(t: float, seconds: int) -> int:
    return min(max(int(t), 0), seconds - 1)


def _rescued(tries: np.ndarray, requests: np.ndarray, cohort_of: list[int], cohorts: int,
             seconds: int) -> np.ndarray:
    out = np.zeros((cohorts, seconds), dtype=np.int64)
    per_request: dict[tuple[int, int], int] = {}
    attempts_with_tries: dict[tuple[int, int], set[int]] = {}
    for c, s, a, _j, _address, _t, _opened in tries:
        key = (int(c), int(s))
        per_request[key] = per_request.get(key, 0) + 1
        attempts_with_tries.setdefault(key, set()).add(int(a))
    for c, issued, _finished, outcome, s, attempts in requests:
        if int(outcome) != OK:
            continue
        key = (int(c), int(s))
        tried = per_request.get(key, 0)
        failures = tried + int(attempts) - len(attempts_with_tries.get(key, ())) - 1
        if failures > 0:
            out[cohort_of[int(c)], _second(float(issued), seconds)] += failures
    return out

"""A simple generator of access and DNS query logs from a known population (not a test module).

Clients send Poisson requests; a request reuses the client's connection if
it comes within the cohort's keep-alive of the previous one. Resolvers ask
when their cached answer has expired and a client looks the name up:
after a query at t the next is at t + lifetime + Exp(1 / lookup rate).
"""

from __future__ import annotations

import gzip
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AGENTS = {
    "browser": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "jvm": "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    "cli": "curl/8.5.0",
    "runtime": "python-requests/2.31.0",
}
T0 = 1796169600.0  # 2026-12-02T00:00:00Z


@dataclass(frozen=True)
class CohortTruth:
    family: str
    count: int
    rate: float  # per second
    keepalive: float


@dataclass(frozen=True)
class ResolverTruth:
    policy: str
    count: int
    lifetime: float  # honor: the TTL; floor/cap: the bound; extend: mean extra


def _stamp(t: float) -> str:
    whole = math.floor(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((t - whole) * 1e6):06d}Z"


def access_log(path: Path, cohorts: list[CohortTruth], span: float, rng: np.random.Generator) -> int:
    rows: list[tuple[float, str]] = []
    client = 0
    for c in cohorts:
        for _ in range(c.count):
            client += 1
            address = f"10.{client >> 16 & 255}.{client >> 8 & 255}.{client & 255}" if client % 2 else f"2001:db8::{client:x}"
            n = rng.poisson(c.rate * span)
            times = np.sort(rng.uniform(0, span, n))
            conn, last = 0, -math.inf
            for t in times:
                if t - last > c.keepalive:
                    conn += 1
                last = t
                rows.append((T0 + t, (
                    f'{{type}} {{time}} app/lb/1 {address}:{40000 + conn % 20000} 10.0.0.1:80 0.000 0.001 0.000 200 200 '
                    f'10 20 "GET https://www.example.com:443/ HTTP/1.1" "{AGENTS[c.family]}" - - arn:tg "Root=1" '
                    f'"www.example.com" "-" 1 {{time}} "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_{client:x}_{conn}')))
    rows.sort()
    with gzip.open(path, "wt") as f:
        for t, row in rows:
            f.write(row.replace("{type}", "https").replace("{time}", _stamp(t)) + "\n")
    return len(rows)


def query_log(path: Path, resolvers: list[ResolverTruth], ttl: float, span: float, lookup_rate: float,
              rng: np.random.Generator) -> dict[str, int]:
    """Route 53 lines; returns the queries each policy sent for the service name."""
    rows: list[tuple[float, str]] = []
    sent: dict[str, int] = {}
    r = 0
    for g in resolvers:
        for _ in range(g.count):
            r += 1
            address = f"192.0.{r >> 8}.{r & 255}"
            t = rng.uniform(0, ttl)
            while t < span:
                rows.append((T0 + t, f"www.example.com A NOERROR UDP FRA6 {address} -"))
                sent[g.policy] = sent.get(g.policy, 0) + 1
                if rng.random() < 0.1:
                    rows.append((T0 + t + 0.01, f"mail.example.com MX NOERROR UDP FRA6 {address} -"))
                life = {"honor": ttl, "floor": max(ttl, g.lifetime), "cap": min(ttl, g.lifetime),
                        "extend": ttl + rng.exponential(g.lifetime)}[g.policy]
                t += life + rng.exponential(1 / lookup_rate)
    rows.sort()
    with open(path, "w") as f:
        for t, row in rows:
            f.write(f"1.0 {_stamp(t)[:-4]}Z Z123412341234 {row}\n")
    return sent

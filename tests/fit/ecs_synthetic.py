"""Access and Route 53 query logs of a known population linked by EDNS client subnet (not a test module).

Each resolver serves client networks (a /24 each); each client sends
Poisson requests, one connection per request, with no stub cache, so every
request is a lookup at its network's resolver. The resolver is simulated as
a cache: a lookup that finds the answer expired makes it ask the
authoritative server, the query carrying the triggering client's /24, and
keep the answer for its policy's lifetime (`forever`: for ever). So the query
log is what a real resolver of that policy would send for these clients.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.fit.synthetic import AGENTS, T0, _stamp


@dataclass
class Group:
    policy: str
    lifetime: float  # s: how long it keeps an answer, its policy applied to the TTL (inf: forever)
    resolvers: int
    clients_mean: float  # clients per resolver: 1 + Poisson(clients_mean - 1)
    family: str = "runtime"
    active: float | None = None  # clients send only in the log's first `active` seconds (a quiet resolver)
    ecs: bool = True  # its queries carry the client subnet
    clients: list[int] = field(default_factory=list)  # drawn: clients behind each resolver


def _alb(t: float, address: str, conn: str, agent: str) -> str:
    stamp = _stamp(t)
    return (f'http {stamp} app/lb/1 {address}:40000 10.0.0.1:80 0.000 0.001 0.000 200 200 10 20 '
            f'"GET https://www.example.com:443/ HTTP/1.1" "{agent}" - - arn:tg "Root=1" "www.example.com" "-" 1 {stamp} '
            f'"forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_{conn}')


def write_logs(d: Path, groups: list[Group], span: float, rate: float, rng: np.random.Generator) -> tuple[Path, Path]:
    """access.log.gz and queries.log in `d`; fills each group's `clients`."""
    requests: list[tuple[float, str]] = []
    queries: list[tuple[float, str]] = []
    r, serial = 0, 0
    for g in groups:
        g.clients = []
        for _ in range(g.resolvers):
            r += 1
            n = 1 + int(rng.poisson(g.clients_mean - 1))
            g.clients.append(n)
            resolver, subnet = f"192.0.{r >> 8}.{r & 255}", f"10.{r >> 8}.{r & 255}.0/24" if g.ecs else "-"
            lookups = []
            for c in range(1, n + 1):
                active = span if g.active is None else g.active
                for t in np.sort(rng.uniform(0, active, rng.poisson(rate * active))):
                    serial += 1
                    requests.append((T0 + t, _alb(T0 + t, f"10.{r >> 8}.{r & 255}.{c}", f"{serial:x}", AGENTS[g.family])))
                    lookups.append(t)
            expires = -np.inf
            for t in sorted(lookups):
                if t >= expires:
                    queries.append((T0 + t, f"www.example.com A NOERROR UDP FRA6 {resolver} {subnet}"))
                    expires = t + g.lifetime
    access, dns = d / "access.log.gz", d / "queries.log"
    with gzip.open(access, "wt") as f:
        f.writelines(line + "\n" for _, line in sorted(requests))
    with open(dns, "w") as f:
        f.writelines(f"1.0 {_stamp(t)[:-4]}Z Z123412341234 {line}\n" for t, line in sorted(queries))
    return access, dns

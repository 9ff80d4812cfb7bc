"""The fit: stream every log once through the tallies, then estimate.

`fit(access_logs, dns_logs, ...)` returns a `Fit`; `sim.fit.scenario`
writes it as a scenario and `sim.fit.report` as a report. Addresses go no
further than the tallies, which keep only salted hashes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sim.fit import agents
from sim.fit.ages import Age, AgeTally, fit_ages
from sim.fit.cohorts import ClientTally, Cohort, fit_cohorts
from sim.fit.connections import ConnectionTally, Reuse, fit_reuse
from sim.fit.formats import LogError, read
from sim.fit.lines import LineStats
from sim.fit.networks import NetworkTally
from sim.fit.resolvers import QueryTally, ResolverFit, fit_resolvers, guess_ttl
from sim.fit.shape import Shape, ShapeTally, fit_shape


@dataclass
class Fit:
    cohorts: list[Cohort]
    reuse: dict[str, Reuse]
    shape: Shape
    span: float  # seconds of access log
    requests: int
    resolvers: ResolverFit | None
    ttl_given: bool
    files: list[LineStats] = field(default_factory=list)
    ages: dict[str, Age] = field(default_factory=dict)  # per family: max_connection_age, where connections show it


class _Scaled:
    """Times stretched by K about the first one seen: a lab run's logs (`failover-sim run
    --engine lab --time-scale K --keep`) are K times faster than the scenario they ran."""

    def __init__(self, k: float) -> None:
        self.k, self.origin = k, math.nan

    def __call__(self, t: float) -> float:
        if self.origin != self.origin:  # nan: the first time seen
            self.origin = t
        return self.origin + (t - self.origin) * self.k


def _read_access(paths: Sequence[str | Path], fmt: str | None, files: list[LineStats], time_scale: float = 1.0,
                 networks: NetworkTally | None = None) -> tuple[ClientTally, ConnectionTally, ShapeTally, AgeTally]:
    """`networks`: filled too when given (the DNS logs carry client subnets)."""
    clients, conns, shape, ages = ClientTally(), ConnectionTally(), ShapeTally(), AgeTally()
    family = agents.family
    scaled = _Scaled(time_scale)
    for path in paths:
        records, stats = read(path, "access", fmt)
        files.append(stats)
        for r in records:
            if time_scale != 1.0:
                r = r._replace(t=scaled(r.t))
            fam = family(r.agent)
            clients.add(r.t, r.client, fam)
            shape.add(r.t)
            new = False
            if r.conn is not None:
                new = conns.add(r.t, r.conn, fam)
                ages.add(r.t, r.client, r.conn, fam, new)
            if networks is not None:
                networks.add(r.t, r.client, fam, new)
    return clients, conns, shape, ages


def _read_dns(paths: Sequence[str | Path], fmt: str | None, files: list[LineStats],
              time_scale: float = 1.0) -> QueryTally:
    tally = QueryTally()
    scaled = _Scaled(time_scale)
    for path in paths:
        records, stats = read(path, "dns", fmt)
        files.append(stats)
        for q in records:
            tally.add(q._replace(t=scaled(q.t)) if time_scale != 1.0 else q)
    return tally


def fit(access_logs: Sequence[str | Path], dns_logs: Sequence[str | Path] = (), *, service: str | None = None,
        ttl: float | None = None, access_format: str | None = None, dns_format: str | None = None,
        time_scale: float = 1.0) -> Fit:
    """Fit clients to the access logs and resolvers to the DNS logs. Raises `LogError` naming a
    file it cannot use at all; lines it cannot read are counted in `Fit.files`. `time_scale`:
    the logs' K (a lab run's), so what is fitted is in scenario time; `ttl` is in scenario
    time too."""
    if not time_scale > 0:
        raise LogError(f"time scale must be above 0, got {time_scale}")
    if not access_logs:
        raise LogError("no access log given")
    files: list[LineStats] = []
    # DNS logs first: the client subnets they carry say which networks to count in the access logs
    queries = _read_dns(dns_logs, dns_format, files, time_scale) if dns_logs else None
    networks = NetworkTally(queries.prefixes) if queries is not None and queries.prefixes else None
    access_files: list[LineStats] = []
    clients, conns, shape_tally, ages = _read_access(access_logs, access_format, access_files, time_scale, networks)
    files[:0] = access_files
    if clients.requests == 0:
        raise LogError(f"{', '.join(map(str, access_logs))}: no request could be read")
    resolvers = None
    if queries is not None:
        name = service.rstrip(".").lower() if service else queries.busiest_name()
        if name is None or name not in queries.times:
            raise LogError(f"{', '.join(map(str, dns_logs))}: no query for {name or 'any name'} could be read")
        used_ttl = ttl if ttl is not None else guess_ttl(queries, name)
        if math.isnan(used_ttl):
            raise LogError(f"{', '.join(map(str, dns_logs))}: too few queries for {name} to guess its TTL; give --ttl")
        seen = sum(len(c) for c in clients.counts.values())
        resolvers = fit_resolvers(queries, name, used_ttl, networks, seen)
    reuse = fit_reuse(conns, {fam: len(c) for fam, c in clients.counts.items()})
    return Fit(fit_cohorts(clients), reuse, fit_shape(shape_tally, clients.t_min, clients.t_max),
               clients.span, clients.requests, resolvers, ttl is not None, files, fit_ages(ages, reuse))

"""Client cohorts: clients grouped by user-agent family, then by request rate.

A client is an address and a family (two families behind one address, a
NAT or a shared proxy, are two clients; one user behind several addresses
is several). Its rate is its requests over the log's span. Within a family,
clients split into cohorts where their sorted rates jump by a factor of
`RATE_GAP` or more, each side holding at least `MIN_COHORT` clients and 2%
of the family ([choice]: rates of one Poisson cohort spread by about
sqrt(count), far less than a factor of 4 once clients send a few requests).

A client that sent nothing during the log is not in it: each cohort's size
is corrected for the clients a Poisson source of its rate leaves unseen
(the zero-truncated Poisson estimate of the mean count).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from sim.fit.estimate import Estimate, Z, quantile_interval

RATE_GAP = 4.0  # [choice] docs/references.md, "Fitting logs"
MIN_COHORT = 5  # [choice] docs/references.md, "Fitting logs"
MAX_PER_FAMILY = 4
MAX_UNSEEN_FACTOR = 20.0  # a cohort seen almost only once per client: size held below 20x seen


class ClientTally:
    """Requests per client, per family, streamed: a salted hash of the address is all that is kept."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[int, int]] = defaultdict(dict)
        self.t_min, self.t_max, self.requests = math.inf, -math.inf, 0

    def add(self, t: float, client: str, fam: str) -> None:
        d = self.counts[fam]
        key = hash(client)  # str hashes are salted per process: the address is not recoverable
        d[key] = d.get(key, 0) + 1
        self.requests += 1
        if t < self.t_min:
            self.t_min = t
        if t > self.t_max:
            self.t_max = t

    @property
    def span(self) -> float:
        return max(self.t_max - self.t_min, 0.0)


@dataclass(frozen=True)
class Cohort:
    name: str
    family: str
    seen: int  # clients in the log
    size: Estimate  # clients, unseen ones included
    rate: Estimate  # requests per second per client
    rates: np.ndarray  # each seen client's requests / span, for the report's figures
    counts: np.ndarray


def truncated_poisson_mean(m: float) -> float:
    """mu with mu / (1 - exp(-mu)) = m: the Poisson mean behind a mean count m of clients seen at least once."""
    if m <= 1.0 + 1e-9:
        return 1e-9
    lo, hi = 1e-9, m
    for _ in range(100):
        mid = (lo + hi) / 2
        if mid / -math.expm1(-mid) < m:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def split_by_rate(counts: np.ndarray) -> list[np.ndarray]:
    """Counts sorted and cut where the next client's count is RATE_GAP times or more."""
    x = np.sort(counts)
    min_size = max(MIN_COHORT, math.ceil(0.02 * x.size))
    jumps = np.nonzero(np.diff(np.log(x)) >= math.log(RATE_GAP))[0] + 1
    cuts, start = [], 0
    for cut in jumps:
        if cut - start >= min_size and x.size - cut >= min_size and len(cuts) < MAX_PER_FAMILY - 1:
            cuts.append(int(cut))
            start = int(cut)
    return np.split(x, cuts)


def estimate(counts: np.ndarray, span: float, name: str, fam: str) -> Cohort:
    n = counts.size
    mu = truncated_poisson_mean(float(counts.mean()))
    seen_share = -math.expm1(-mu)
    size = min(n / seen_share, MAX_UNSEEN_FACTOR * n)
    size_half = Z * math.sqrt(n * (1 - seen_share)) / seen_share
    # the spread between clients (over-dispersion included), never below Poisson's own
    se = math.sqrt(max(float(counts.var(ddof=1)) if n > 1 else mu, mu) / n)
    rate = Estimate(mu / span, max(0.0, (mu - Z * se) / span), (mu + Z * se) / span)
    return Cohort(name, fam, n, Estimate(size, float(n), size + size_half), rate, counts / span, counts)


def fit_cohorts(tally: ClientTally) -> list[Cohort]:
    span = tally.span
    if span <= 0:
        return []
    out = []
    for fam in sorted(tally.counts, key=lambda f: -len(tally.counts[f])):
        groups = split_by_rate(np.fromiter(tally.counts[fam].values(), dtype=float))
        for i, counts in enumerate(groups):
            name = fam if len(groups) == 1 else f"{fam}-{i + 1}"
            out.append(estimate(counts, span, name, fam))
    return out


def rate_quantiles(c: Cohort) -> dict[str, Estimate]:
    return {f"p{int(q * 100)}": quantile_interval(c.rates, q) for q in (0.1, 0.5, 0.9)}

"""Connection reuse: requests per connection and the idle gaps a connection survives.

Only where the log names connections: the ALB's `conn_trace_id`, nginx's
`$connection`, or a client's address and port (ALB without the trace id,
Classic ELB, HAProxy), which names one TCP connection while it is open; a
port reused much later makes one long false gap, which the 99th percentile
below does not see.

The keep-alive a family's clients use is estimated as the 99th percentile
of the idle gaps between requests on one connection: a connection survives
gaps up to its keep-alive, so gaps pile up below it. It is the smaller of
the client's keep-alive and the balancer's idle timeout (the balancer closes
idle connections too); the fit cannot tell the two apart. A family that
sends about one request per connection (under `ONE_PER_CONNECTION`) gets
keep-alive 0.

A family whose clients each kept one connection for the whole log (no more
connections than clients) shows no connection ending: every gap was
survived, and one that sends faster than its keep-alive piles its gaps far
below it. Its keep-alive is then at least the longest idle gap seen, with no
upper bound (`Reuse.censored`); the 99th percentile there would make a
model's connections close, and its clients re-resolve, where the real
ones never did.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from sim.fit.estimate import Estimate, Z, quantile_interval

RESERVOIR = 50_000  # idle gaps kept per family (a uniform sample of all of them)
ONE_PER_CONNECTION = 1.1  # [choice] docs/references.md, "Fitting logs": requests per connection below which connections are not reused


class ConnectionTally:
    def __init__(self, seed: int = 0) -> None:
        self.last: dict[str, dict[int, float]] = defaultdict(dict)
        self.count: dict[str, dict[int, int]] = defaultdict(dict)
        self.gaps: dict[str, list[float]] = defaultdict(list)
        self.n_gaps: dict[str, int] = defaultdict(int)
        self._random = random.Random(seed)

    def add(self, t: float, conn: str, fam: str) -> bool:
        """Tally one request; True when it opened a connection not seen before."""
        key = hash(conn)
        last, count = self.last[fam], self.count[fam]
        prev = last.get(key)
        if prev is not None and t >= prev:
            self._keep(fam, t - prev)
        last[key] = t if prev is None else max(t, prev)
        count[key] = count.get(key, 0) + 1
        return prev is None

    def _keep(self, fam: str, gap: float) -> None:
        # Algorithm R: every gap has the same chance to be in the sample
        self.n_gaps[fam] += 1
        sample = self.gaps[fam]
        if len(sample) < RESERVOIR:
            sample.append(gap)
        else:
            j = self._random.randrange(self.n_gaps[fam])
            if j < RESERVOIR:
                sample[j] = gap


@dataclass(frozen=True)
class Reuse:
    family: str
    connections: int
    per_connection: Estimate  # requests per connection
    idle: dict[str, Estimate]  # p50, p90, p99 of idle gaps (s)
    keepalive: Estimate  # s; 0 when connections are not reused
    gaps: np.ndarray  # the sample, for the report's figure
    censored: bool = False  # no connection ended: keepalive is the longest idle gap, a lower bound


def fit_reuse(tally: ConnectionTally, clients: dict[str, int] | None = None) -> dict[str, Reuse]:
    """Per family; `clients`: how many clients each family has (the cohorts' tally), which
    says whether any connection ended within the log."""
    out = {}
    for fam, counts in tally.count.items():
        c = np.fromiter(counts.values(), dtype=float)
        mean = float(c.mean())
        half = Z * float(c.std(ddof=1)) / math.sqrt(c.size) if c.size > 1 else math.inf
        per = Estimate(mean, max(1.0, mean - half), mean + half)
        gaps = np.asarray(tally.gaps[fam], dtype=float)
        idle = {f"p{int(q * 100)}": quantile_interval(gaps, q) for q in (0.5, 0.9, 0.99)}
        if mean < ONE_PER_CONNECTION or gaps.size == 0:
            keep = Estimate(0.0, 0.0, idle["p99"].high if gaps.size else 0.0)
        elif clients is not None and c.size <= clients.get(fam, 0):
            longest = float(gaps.max())
            out[fam] = Reuse(fam, c.size, per, idle, Estimate(longest, longest, math.inf), gaps, censored=True)
            continue
        else:
            keep = idle["p99"]
        out[fam] = Reuse(fam, c.size, per, idle, keep, gaps)
    return out

"""Connection lifetimes (`max_connection_age`), where the log names connections.

A client whose connection is still alive (idle for less than its keep-alive)
yet opens a new one had the old one closed under it: by its pool's maximum
connection age, or by the server (a balancer's own limit, such as the ALB's
client keep-alive duration: docs/references.md, "Fitting logs"; a request
count limit). Each such handover brackets the age: the old connection
carried requests for `span` (its first to its last request), so the age is
above that, and the new one opened `to_next` after the old one's first
request, so the age is at most that. The midpoint of the bracket is off the
age by half the difference of two waits for a request, one each side of the
moment the age ran out: as often above as below, so the median midpoint over
a family's handovers estimates its age, with the order-statistic interval.

A handover counts as one of age when its idle gap (the old connection's last
request to the new one's first) is under the lower end of the family's
keep-alive interval (sim.fit.connections): a connection survives any gap
below its keep-alive, so idleness did not close it. The estimate assumes one
connection at a time per client: a client that goes back to its previous
connection after opening a new one (a browser's parallel connections) makes
the handover meaningless, and a family where more than `RETURNS` of the
handovers are followed by such a return is not fitted.

Connections replaced while alive for other reasons (a balancer failing or
restarting and every client reconnecting, a client process restarting)
were replaced at any age: their midpoints spread from 0 to the longest
span, where one age's sit within a few request gaps of it. A family whose
midpoints' quartiles lie further apart than `SPREAD` x their median is not
fitted (one age with up to about 25% jitter passes).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from sim.fit.connections import Reuse
from sim.fit.estimate import Estimate, quantile_interval

MIN_AGED = 5  # [choice] docs/references.md, "Fitting logs": handovers before an age is fitted
RETURNS = 0.05  # [choice] docs/references.md, "Fitting logs": returns to a previous connection past which clients hold several
SPREAD = 0.25  # [choice] docs/references.md, "Fitting logs": quartiles of the ages further apart than this x median: no one age
RESERVOIR = 50_000


class AgeTally:
    def __init__(self, seed: int = 0) -> None:
        # (family, client) -> (connection, its first request, its last request, the previous connection)
        self.current: dict[tuple[str, int], tuple[int, float, float, int | None]] = {}
        self.handovers: dict[str, list[tuple[float, float, float]]] = defaultdict(list)  # (span, idle gap, to_next)
        self.n: dict[str, int] = defaultdict(int)
        self.returns: dict[str, int] = defaultdict(int)
        self._random = random.Random(seed)

    def add(self, t: float, client: str, conn: str, fam: str, new: bool) -> None:
        """One request on connection `conn`; `new`: the first request seen on it."""
        who, c = (fam, hash(client)), hash(conn)
        cur = self.current.get(who)
        if cur is None:
            self.current[who] = (c, t, t, None)
        elif c == cur[0]:
            self.current[who] = (c, cur[1], max(cur[2], t), cur[3])
        elif new:
            self._keep(fam, (cur[2] - cur[1], t - cur[2], t - cur[1]))
            self.current[who] = (c, t, t, cur[0])
        elif c == cur[3]:
            self.returns[fam] += 1

    def _keep(self, fam: str, handover: tuple[float, float, float]) -> None:
        self.n[fam] += 1  # Algorithm R, as sim.fit.connections keeps its gaps
        sample = self.handovers[fam]
        if len(sample) < RESERVOIR:
            sample.append(handover)
        elif (j := self._random.randrange(self.n[fam])) < RESERVOIR:
            sample[j] = handover


@dataclass(frozen=True)
class Age:
    family: str
    value: Estimate | None  # None: not fitted (`why`)
    aged: int  # handovers while the old connection was alive
    handovers: int
    why: str = ""


def fit_ages(tally: AgeTally, reuse: dict[str, Reuse]) -> dict[str, Age]:
    out = {}
    for fam, sample in tally.handovers.items():
        r = reuse.get(fam)
        n = tally.n[fam]
        if r is None or r.keepalive.value == 0.0:
            continue  # connections not reused: no age to see
        if tally.returns[fam] > RETURNS * n:
            out[fam] = Age(fam, None, 0, n, f"{tally.returns[fam]} returns to a previous connection: several at once")
            continue
        h = np.asarray(sample, dtype=float).reshape(-1, 3)
        aged = h[h[:, 1] < r.keepalive.low]
        if len(aged) < MIN_AGED:
            out[fam] = Age(fam, None, len(aged), n, "no connection replaced while alive" if len(aged) == 0 else
                           f"{len(aged)} connections replaced while alive, under {MIN_AGED}")
            continue
        midpoints = (aged[:, 0] + aged[:, 2]) / 2
        q1, median, q3 = np.quantile(midpoints, [0.25, 0.5, 0.75])
        if q3 - q1 > SPREAD * median:
            out[fam] = Age(fam, None, len(aged), n, f"the {len(aged)} connections replaced while alive were "
                           f"{q1:.3g} s to {q3:.3g} s old (quartiles): resets or restarts, not one age")
            continue
        out[fam] = Age(fam, quantile_interval(midpoints, 0.5), len(aged), n)
    return out

"""Resolvers that keep an answer past the end of the log (`forever`), told from quiet ones.

A resolver that asked for the service name once (or too few times to be
classified) either kept the answer for the rest of the log or had no client
looking the name up once its answer expired. The query log alone cannot tell
the two apart. Client subnets can: the networks that only this resolver asked
for (sim.fit.linking) are its clients', and the access log shows when those
clients must have looked the name up again (a new connection from a family
with no stub cache: sim.fit.networks). Any such lookup after the answer
expired would have made the resolver ask again; so if its clients made
`LAST` lookups or more after its last query plus (1 + TOLERANCE) x TTL and it
never asked, it kept the answer at least until the `LAST`-th latest of them
(not the latest: one stray lookup sent elsewhere, a second resolver in
resolv.conf, does not make the call). That bound, at least `FOREVER_TTLS`
TTLs, is a `forever` resolver; below it, or with no such lookups (clients
that went quiet, or whose lookups the log cannot show), it stays
unclassified.
"""

from __future__ import annotations

import math

from sim.fit.networks import LAST, NetworkTally

FOREVER_TTLS = 10.0  # [choice] docs/references.md, "Fitting logs": kept past 10 TTLs while asked: resolve-once


def kept_at_least(last_query: float, exclusive: tuple[int, ...], networks: NetworkTally, ttl: float,
                  tolerance: float) -> float:
    """How long the resolver kept its last answer at least (s), or nan when its clients do not show it."""
    expired = last_query + (1 + tolerance) * ttl
    later = sorted(t for net in exclusive if (n := networks.networks.get(net)) is not None
                   for t in n.lookups if t > expired)
    if len(later) < LAST:
        return math.nan
    return later[-LAST] - last_query


def is_forever(bound: float, ttl: float) -> bool:
    return bound >= FOREVER_TTLS * ttl

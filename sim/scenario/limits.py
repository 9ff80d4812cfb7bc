"""Upper bounds on a scenario's counts, rates and durations: what this machine can simulate.

Without them `backends.instances: 2**63` validated and then `run` grew to
5.8 GB before a MemoryError, and a resolver count of 10^100 or
`warmup: 1e300d` crashed `run` with a traceback. Each bound says why in the
error message; the figures below were measured on this 2-core, 23 GB
machine (docs/scenario.md, "Limits", lists them for users).
"""

from __future__ import annotations

from typing import Any

from pydantic import AfterValidator

DAY = 86400.0

# The fast engine keeps arrays per simulated second: elb-blowup (1,034 clients)
# peaked at 0.19 GB for 20 minutes, 0.35 GB for 2 days and 1.0 GB for 8 days,
# about 110 MB a simulated day. 30 days is about 3.5 GB before any client.
MAX_HORIZON = 30 * DAY
HORIZON_REASON = "the fast engine keeps about 110 MB per simulated day; 30 days is about 3.5 GB on this machine"

# Any single duration: beyond the longest run a TTL or delay acts as `forever`,
# and at 1e9 s float64 still resolves 1e-7 s (1e300d overflowed the engines).
MAX_DURATION = 1e9
DURATION_REASON = "longer than any run, 30 days at most, it acts as forever"

# Clients in all: day-at-scale (1,000,000 clients, a day) peaks at 0.54 GB in
# the fast engine, about 250 bytes a client beyond its per-second arrays,
# so 10 million clients is about 2.5 GB more.
MAX_CLIENTS = 10_000_000
CLIENTS_REASON = "the fast engine needs about 250 bytes a client; 10 million is about 2.5 GB"

# Resolvers in all: the model keeps one object with its own numpy generator
# per resolver (measured: 970 bytes a generator), about 2 KB each; 100,000
# is 0.2 GB. The largest measured population had 8,524 (docs/references.md).
MAX_RESOLVERS = 100_000
RESOLVERS_REASON = "the model keeps about 2 KB per resolver; measured populations are under 10,000"

# Per-client request rate: the model is one event per request; a client
# beyond 1,000/s is a load generator, better written as more clients.
MAX_CLIENT_RATE = 1000.0
RATE_REASON = "one client above 1000/s is a load generator; write more clients"

# Backend fleet: the fast engine solves each second's queue over
# instances x workers + queue_limit states (sim.fast.queueing), 8 bytes each.
MAX_INSTANCES = 1000
MAX_WORKERS = 10_000
MAX_QUEUE = 100_000
FLEET_REASON = "the fast engine's queue has instances x workers + queue_limit states, 8 bytes each"

# [choice] Small counts the engines loop over per event (balancer nodes,
# retries and attempts, health-check thresholds, DNS checkers): far above
# any real setting, low enough that a loop over them is instant.
MAX_SMALL = 1000
SMALL_REASON = "far above any real setting; each is looped over per event"

# Replications: clients.parquet has a row per client, strategy and
# replication; 10,000 replications of elb-blowup is about 20 million rows.
MAX_REPLICATIONS = 10_000
REPLICATIONS_REASON = "the results hold a row per client and replication; 10,000 of 1,000 clients is 20 million rows"

# Lists in a scenario: each item is validated and checked against the
# others; these keep validation under a second.
MAX_COHORTS = 1000
MAX_RESOLVER_GROUPS = 1000
MAX_RECORDS = 2000
MAX_LIST_ITEMS = 1000
LIST_REASON = "each item is checked against the others; a scenario describes one service"


def at_most(limit: float, reason: str) -> Any:
    """A validator refusing values above `limit`, the reason in the message."""

    def check(value: Any) -> Any:
        if value is not None and value > limit:
            shown = f"{int(limit):,}" if float(limit).is_integer() else f"{limit:g}"
            raise ValueError(f"must be at most {shown} ({reason}), got {_show(value)}")
        return value

    return AfterValidator(check)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    digits = len(str(value))
    return str(value) if digits <= 15 else f"a {digits}-digit number"

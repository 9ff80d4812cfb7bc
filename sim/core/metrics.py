"""Counters and a latency histogram, rendered as Prometheus text.

Kept to plain attributes and a bisect per request: the data path pays a few
hundred nanoseconds for it, not a lock or a label lookup.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.core.pool import BackendPool

__all__ = ["LATENCY_BUCKETS", "Metrics", "Tally", "family", "label_value"]

# seconds; Prometheus client defaults extended down to 100 us, since a loopback
# proxy answers well under a millisecond
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# the single-value families, in the order rendered: (name, type, attribute, help)
_SCALARS: tuple[tuple[str, str, str, str], ...] = (
    ("failover_active_connections", "gauge", "active_connections", "Open client connections."),
    ("failover_connections_total", "counter", "connections_total", "Client connections accepted."),
    ("failover_rejected_connections_total", "counter", "rejected_connections", "Client connections refused over max_connections."),
    ("failover_retries_total", "counter", "retries", "Attempts repeated on another backend."),
    ("failover_ejections_total", "counter", "ejections", "Passive ejections of a backend."),
    ("failover_upstream_connects_total", "counter", "upstream_connects", "New connections opened to backends."),
    ("failover_connect_failures_total", "counter", "connect_failures", "Failed connections to backends."),
)  # fmt: skip


class Tally(dict[str, int]):
    """Counts by name, 0 for a name not counted yet (as ``collections.Counter``
    reads). A dict's own ``+=`` on a key: a Counter's took twice as long,
    and the data path counts every request."""

    __slots__ = ()

    def __missing__(self, key: str) -> int:
        return 0


class Metrics:
    __slots__ = (
        "outcomes",
        "buckets",
        "latency_sum",
        "latency_count",
        "active_connections",
        "connections_total",
        "retries",
        "ejections",
        "upstream_connects",
        "connect_failures",
        "rejected_connections",
    )

    def __init__(self) -> None:
        # outcome: ok (< 500 from a backend), backend_5xx, 400, 408, 431, 502,
        # 503, 504, client_closed, tcp_ok, tcp_failed
        self.outcomes = Tally()
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.active_connections = 0
        self.connections_total = 0
        self.retries = 0
        self.ejections = 0
        self.upstream_connects = 0
        self.connect_failures = 0
        self.rejected_connections = 0

    def observe(self, outcome: str, seconds: float) -> None:
        self.outcomes[outcome] += 1
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
        self.latency_count += 1

    def render(
        self,
        pool: BackendPool | None = None,
        extra: dict[str, float] | None = None,
        families: list[str] | None = None,
    ) -> str:
        lines = self._requests()
        for name, kind, attr, text in _SCALARS:
            lines += [
                f"# HELP {name} {text}",
                f"# TYPE {name} {kind}",
                f"{name} {getattr(self, attr)}",
            ]
        if pool is not None:
            lines += _backends(pool)
        for name, value in (extra or {}).items():
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        lines += families or []
        return "\n".join(lines) + "\n"

    def _requests(self) -> list[str]:
        """The outcome counter and the latency histogram."""
        lines = [
            "# HELP failover_requests_total Requests (or TCP sessions) by outcome.",
            "# TYPE failover_requests_total counter",
        ]
        for outcome, n in sorted(self.outcomes.items()):
            lines.append(f'failover_requests_total{{outcome="{outcome}"}} {n}')
        lines += [
            "# HELP failover_request_duration_seconds From request head (or accept) to the end of the response.",
            "# TYPE failover_request_duration_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip(LATENCY_BUCKETS, self.buckets, strict=False):
            cumulative += n
            lines.append(f'failover_request_duration_seconds_bucket{{le="{bound:g}"}} {cumulative}')
        cumulative += self.buckets[-1]
        lines.append(f'failover_request_duration_seconds_bucket{{le="+Inf"}} {cumulative}')
        lines.append(f"failover_request_duration_seconds_sum {self.latency_sum:.6f}")
        lines.append(f"failover_request_duration_seconds_count {self.latency_count}")
        return lines


def label_value(text: str) -> str:
    """A label value as the Prometheus text format escapes it (backslash, quote, newline)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def family(
    name: str, kind: str, text: str, samples: list[tuple[dict[str, str], float]]
) -> list[str]:
    """One metric family: HELP, TYPE and a sample per label set."""
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        inner = ",".join(f'{k}="{label_value(v)}"' for k, v in labels.items())
        number = _number(value)
        lines.append(f"{name}{{{inner}}} {number}" if inner else f"{name} {number}")
    return lines


def _number(value: float) -> str:
    # a counter stays an integer in the text ("1234567", not "1.23457e+06")
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _backends(pool: BackendPool) -> list[str]:
    """Per backend: may it take requests, its state, its requests in flight."""
    up = [
        "# HELP failover_backend_up 1 if the backend may take new requests.",
        "# TYPE failover_backend_up gauge",
    ]
    states = [
        "# HELP failover_backend_state The backend's state.",
        "# TYPE failover_backend_state gauge",
    ]
    outstanding = [
        "# HELP failover_backend_outstanding Requests in flight to the backend.",
        "# TYPE failover_backend_outstanding gauge",
    ]
    for b in pool.backends:
        # names added through the admin API are validated; escaping is the second fence
        name = label_value(b.name)
        up.append(f'failover_backend_up{{backend="{name}"}} {int(b.healthy and not b.draining)}')
        states.append(f'failover_backend_state{{backend="{name}",state="{b.state}"}} 1')
        outstanding.append(f'failover_backend_outstanding{{backend="{name}"}} {b.outstanding}')
    return up + states + outstanding

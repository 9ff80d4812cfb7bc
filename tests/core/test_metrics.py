"""The Prometheus text of the balancer's counters, exactly as scrapers read it."""

from __future__ import annotations

from sim.core.metrics import Metrics
from sim.core.pool import BackendPool
from tests.core.fakes import FakeClock
from tests.core.helpers import make_config

EXPECTED = [
    "# HELP failover_requests_total Requests (or TCP sessions) by outcome.",
    "# TYPE failover_requests_total counter",
    'failover_requests_total{outcome="503"} 1',
    'failover_requests_total{outcome="backend_5xx"} 1',
    'failover_requests_total{outcome="ok"} 2',
    "# HELP failover_request_duration_seconds From request head (or accept) to the end of the response.",
    "# TYPE failover_request_duration_seconds histogram",
    'failover_request_duration_seconds_bucket{le="0.0001"} 1',
    'failover_request_duration_seconds_bucket{le="0.00025"} 1',
    'failover_request_duration_seconds_bucket{le="0.0005"} 2',
    'failover_request_duration_seconds_bucket{le="0.001"} 2',
    'failover_request_duration_seconds_bucket{le="0.0025"} 2',
    'failover_request_duration_seconds_bucket{le="0.005"} 2',
    'failover_request_duration_seconds_bucket{le="0.01"} 2',
    'failover_request_duration_seconds_bucket{le="0.025"} 3',
    'failover_request_duration_seconds_bucket{le="0.05"} 3',
    'failover_request_duration_seconds_bucket{le="0.1"} 3',
    'failover_request_duration_seconds_bucket{le="0.25"} 3',
    'failover_request_duration_seconds_bucket{le="0.5"} 3',
    'failover_request_duration_seconds_bucket{le="1"} 3',
    'failover_request_duration_seconds_bucket{le="2.5"} 3',
    'failover_request_duration_seconds_bucket{le="5"} 3',
    'failover_request_duration_seconds_bucket{le="10"} 3',
    'failover_request_duration_seconds_bucket{le="+Inf"} 4',
    "failover_request_duration_seconds_sum 12.020300",
    "failover_request_duration_seconds_count 4",
    "# HELP failover_active_connections Open client connections.",
    "# TYPE failover_active_connections gauge",
    "failover_active_connections 2",
    "# HELP failover_connections_total Client connections accepted.",
    "# TYPE failover_connections_total counter",
    "failover_connections_total 9",
    "# HELP failover_rejected_connections_total Client connections refused over max_connections.",
    "# TYPE failover_rejected_connections_total counter",
    "failover_rejected_connections_total 1",
    "# HELP failover_retries_total Attempts repeated on another backend.",
    "# TYPE failover_retries_total counter",
    "failover_retries_total 3",
    "# HELP failover_ejections_total Passive ejections of a backend.",
    "# TYPE failover_ejections_total counter",
    "failover_ejections_total 1",
    "# HELP failover_upstream_connects_total New connections opened to backends.",
    "# TYPE failover_upstream_connects_total counter",
    "failover_upstream_connects_total 5",
    "# HELP failover_connect_failures_total Failed connections to backends.",
    "# TYPE failover_connect_failures_total counter",
    "failover_connect_failures_total 4",
    "# HELP failover_backend_up 1 if the backend may take new requests.",
    "# TYPE failover_backend_up gauge",
    'failover_backend_up{backend="b0"} 1',
    'failover_backend_up{backend="b1"} 0',
    'failover_backend_up{backend="b2"} 0',
    "# HELP failover_backend_state The backend's state.",
    "# TYPE failover_backend_state gauge",
    'failover_backend_state{backend="b0",state="up"} 1',
    'failover_backend_state{backend="b1",state="draining"} 1',
    'failover_backend_state{backend="b2",state="ejected"} 1',
    "# HELP failover_backend_outstanding Requests in flight to the backend.",
    "# TYPE failover_backend_outstanding gauge",
    'failover_backend_outstanding{backend="b0"} 0',
    'failover_backend_outstanding{backend="b1"} 0',
    'failover_backend_outstanding{backend="b2"} 2',
    "# TYPE failover_listening gauge",
    "failover_listening 1.0",
]


def test_render_counters_histogram_backends_and_extra_gauges() -> None:
    m = Metrics()
    for outcome, seconds in [("ok", 0.0003), ("ok", 0.02), ("503", 0.0), ("backend_5xx", 12.0)]:
        m.observe(outcome, seconds)
    m.active_connections, m.connections_total, m.rejected_connections = 2, 9, 1
    m.retries, m.ejections, m.upstream_connects, m.connect_failures = 3, 1, 5, 4
    pool = BackendPool(make_config([9001, 9002, 9003]), FakeClock(), m)
    pool.drain("b1")
    pool.backends[2].ejected = True
    pool.backends[2].outstanding = 2
    pool.changed()
    assert m.render(pool, {"failover_listening": 1.0}) == "\n".join(EXPECTED) + "\n"


def test_render_without_pool_has_no_backend_families() -> None:
    text = Metrics().render()
    assert text.endswith("failover_connect_failures_total 0\n")
    assert "failover_backend" not in text
    assert text.count("# TYPE ") == 9

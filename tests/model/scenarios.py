"""Small scenarios for the model's validation tests, built as dicts."""

from __future__ import annotations

import copy
from typing import Any

from sim.scenario import Scenario, load_data

BASE: dict[str, Any] = {
    "version": 1,
    "name": "validation",
    "seed": 1,
    "duration": "5m",
    "replications": 1,
    "dns": {
        "zone": "example.com",
        "service_name": "www",
        "service_ttl": "60s",
        "balancer_ttl": "60s",
        "propagation": "8s",
        "resolvers": [{"name": "own", "count": 1000, "share": 1.0, "policy": {"kind": "honor"}}],
    },
    "clients": [
        {"name": "c", "count": 1000, "rate": "1/s", "stub_cache": {"kind": "none"}, "retry": {"attempts": 1, "timeout": "10s"}}
    ],
    "balancers": [
        {"name": "blue", "role": "active", "nodes": 1, "capacity": "1000000/s"},
        {"name": "green", "role": "standby", "nodes": 1, "capacity": "1000000/s"},
    ],
    "backends": {"instances": 4, "workers": 1000, "service_time": "1ms", "queue_limit": 100000},
    "faults": [{"at": "10s", "kind": "balancer_down", "target": "blue", "mode": "refuse"}],
    "failover": {"detection": {"delay": "20s"}, "change_delay": "2s", "remap_delay": "5s"},
}


def scenario(**changes: Any) -> Scenario:
    """BASE with dotted-path changes: scenario(**{"dns.service_ttl": "300s"})."""
    doc = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return load_data(doc, "validation")


def trace_scenario() -> Scenario:
    """Two cohorts over an honouring and a stretching resolver group: what the lab replays."""
    doc = copy.deepcopy(BASE)
    doc.update({"name": "trace", "duration": "60s"})
    doc["clients"] = [
        {"name": "a", "count": 7, "rate": "2/s", "stub_cache": {"kind": "fixed", "ttl": "30s"}, "keepalive": "60s"},
        {"name": "b", "count": 3, "rate": "1/s", "stub_cache": {"kind": "none"}},
    ]
    doc["dns"]["resolvers"] = [
        {"name": "isp", "count": 3, "share": 0.7, "policy": {"kind": "honor"}},
        {"name": "stretch", "count": 2, "share": 0.3, "policy": {"kind": "extend", "extra": {"exp": "5m"}}},
    ]
    return load_data(doc, "trace")


# The closed-form drain cases (tests/model/test_drain.py, tests/fast/test_targets.py):
# one client per honouring resolver, propagation 0, a planned change at CHANGE_AT.
CHANGE_AT = 200.0


def drain_scenario(ttl: float, rate: float, clients: int, stub: dict, strategy: str = "cname_repoint",
                   **more: Any) -> Scenario:
    return scenario(
        **{
            "duration": "10m",
            "strategies": [strategy],
            "dns.service_ttl": f"{ttl}s",
            "dns.balancer_ttl": f"{ttl}s",
            "dns.propagation": "0s",
            "dns.resolvers.0.count": clients,
            "clients.0.count": clients,
            "clients.0.rate": f"{rate}/s",
            "clients.0.stub_cache": stub,
            "faults": [{"kind": "dns_change" if strategy != "eip_remap" else "address_move", "at": f"{CHANGE_AT}s"}],
            **more,
        }
    )

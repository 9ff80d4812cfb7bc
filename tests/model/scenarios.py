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

"""The resolver-farm follower's cost at scale (issue 18): one fast replication of 100,000
clients at 1 request/h for a day on 1,000 resolvers, the active balancer down at 12 h,
cname_repoint; with farms of four caches (50% sticky) or plain resolvers (caches 1).
Prints CPU and wall seconds, peak resident memory and the run's metrics as one JSON line.

    PYTHONPATH=. python benchmarks/farm_follower.py 4   # the farm
    PYTHONPATH=. python benchmarks/farm_follower.py 1   # plain resolvers
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np

from sim.fast import simulate
from tests.model.scenarios import scenario


def main(caches: int, clients: int = 100_000) -> dict[str, float]:
    sticky = {"dns.resolvers.0.sticky": 0.5} if caches > 1 else {}
    sc = scenario(**{"clients.0.count": clients, "clients.0.rate": "1/h", "duration": "1d",
                     "dns.resolvers.0.count": clients // 100, "dns.resolvers.0.caches": caches, **sticky,
                     "faults": [{"at": "12h", "kind": "balancer_down", "target": "blue"}],
                     "strategies": ["cname_repoint"]})
    wall, cpu = time.perf_counter(), time.process_time()
    out = simulate(sc, "cname_repoint", np.random.SeedSequence(7))
    return {"caches": caches, "cpu_s": round(time.process_time() - cpu, 2), "wall_s": round(time.perf_counter() - wall, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            **{k: out.metrics[k] for k in ("requests", "failed", "clients_affected", "dns_queries")}}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))

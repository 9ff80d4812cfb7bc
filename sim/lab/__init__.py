"""The lab: a scenario on real processes on this machine (loopback; as root, a
moving address between network namespaces, sim.lab.netns).

Backends (asyncio HTTP servers), balancers (`sim.core` processes; for
`eip_remap` two of them sharing a static address moved by the takeover
mechanism), an authoritative DNS server of ours, real caching resolvers
(unbound; our caching forwarder for `extend`, which unbound cannot do),
client processes with stub caches and pooled connections, a fault injector
(kill, stop) and the failover controller. Time is divided by K and results
come back in scenario seconds, in the same tables as the other engines.
docs/lab.md explains what runs and what the lab cannot reproduce.
"""

from sim.lab.world import replicate, unsupported

__all__ = ["replicate", "unsupported"]

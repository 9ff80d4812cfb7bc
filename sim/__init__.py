"""failover-sim: how long users are down when a load balancer fails."""

__version__ = "0.1.0"

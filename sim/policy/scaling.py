"""Backend autoscaling by target tracking: how many instances to launch or retire;
and a balancer's node scaling (`scale_delay`): when it adds a node.

The rules the model applies at each decision, kept here so that every engine
takes the same decision from the same measurements.
"""

from __future__ import annotations

import math

__all__ = ["SCALING_CHECK", "scaling_decision", "wants_node"]

# How often a balancer looks at its load per node to decide on node scaling (s).
SCALING_CHECK = 10.0


def wants_node(offered: float, nodes: int, capacity: float) -> bool:
    """Whether a balancer adds a node: the requests offered to its nodes over the last
    SCALING_CHECK seconds, per second and node, above a node's `capacity`."""
    return offered / SCALING_CHECK / max(1, nodes) > capacity


def scaling_decision(
    live: int, pending: int, utilization: float, low: int, high: int, target: float
) -> int:
    """Instances to launch (> 0), or -1 to retire one, or 0.

    `live`: instances not retired (dead ones included: the fleet still owns them);
    `pending`: launches not yet running; `utilization`: busy workers over the
    workers of running instances, averaged over the period. The fleet is sized
    so that utilization meets `target`, within [low, high]. Scale-in retires one
    instance a decision and only when nothing is launching: target tracking
    removes capacity conservatively, so a brief dip does not throw away a fleet.
    """
    desired = math.ceil(live * utilization / target)
    desired = min(high, max(low, desired))
    if desired > live + pending:
        return desired - live - pending
    if desired < live and pending == 0:
        return -1
    return 0

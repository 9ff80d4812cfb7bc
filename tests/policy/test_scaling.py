"""sim.policy.scaling: the target-tracking rule both engines take their decisions from."""

from __future__ import annotations

from sim.policy.scaling import SCALING_CHECK, scaling_decision, wants_node


def test_scale_out_to_meet_the_target() -> None:
    # 6 instances (two of them dead) saturated: 6 x 1.0 / 0.6 = 10, so 4 more.
    assert scaling_decision(6, 0, 1.0, 6, 24, 0.6) == 4
    # pending launches count towards the fleet
    assert scaling_decision(10, 4, 0.99, 6, 24, 0.6) == 3
    assert scaling_decision(10, 7, 0.99, 6, 24, 0.6) == 0
    assert scaling_decision(17, 0, 1.0, 6, 24, 0.6) == 7  # capped at max


def test_scale_in_one_at_a_time_and_never_while_launching() -> None:
    assert scaling_decision(24, 0, 0.1, 6, 24, 0.6) == -1
    assert scaling_decision(24, 2, 0.1, 6, 24, 0.6) == 0
    assert scaling_decision(6, 0, 0.1, 6, 24, 0.6) == 0  # at min


def test_a_balancer_adds_a_node_only_above_a_nodes_capacity() -> None:
    # 2 nodes of 100/s: 2,000 requests in the 10 s window is exactly their capacity
    at_capacity = 2 * 100 * SCALING_CHECK
    assert not wants_node(at_capacity, 2, 100.0)
    assert wants_node(at_capacity + 1, 2, 100.0)
    # a balancer with no node yet counts as one (no division by zero)
    assert wants_node(100 * SCALING_CHECK + 1, 0, 100.0) and not wants_node(0, 0, 100.0)

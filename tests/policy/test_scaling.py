"""sim.policy.scaling: the target-tracking rule both engines take their decisions from."""

from __future__ import annotations

from sim.policy.scaling import scaling_decision


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

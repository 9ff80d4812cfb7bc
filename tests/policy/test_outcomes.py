from __future__ import annotations

import pytest

from sim.policy.outcomes import OUTCOMES, is_success, waits_for_timeout


def test_contract_outcomes_are_known() -> None:
    # docs/scenario.md: outcomes of an attempt, plus the fault modes
    for name in (
        "ok",
        "refused",
        "timeout",
        "error_5xx",
        "dns_error",
        "shed",
        "refuse",
        "blackhole",
    ):
        assert name in OUTCOMES


def test_only_ok_succeeds_and_only_silence_waits() -> None:
    assert [k for k in OUTCOMES if is_success(k)] == ["ok"]
    assert sorted(k for k in OUTCOMES if waits_for_timeout(k)) == ["blackhole", "timeout"]


def test_unknown_outcome_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: .*blackhole"):
        is_success("exploded")

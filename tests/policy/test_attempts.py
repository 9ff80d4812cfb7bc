from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policy.attempts import ConnectionReuse, RetryRule, attempt_cost, choose_address

times = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@pytest.mark.parametrize(
    ("outcome", "cost"),
    [
        ("ok", 0.0),
        ("refused", 0.0),
        ("refuse", 0.0),
        ("timeout", 7.0),
        ("blackhole", 7.0),
        ("error_5xx", 0.0),
    ],
)
def test_attempt_cost(outcome: str, cost: float) -> None:
    assert attempt_cost(outcome, 7.0) == cost


def test_retry_rule_validates_and_worst_case() -> None:
    r = RetryRule(attempts=3, timeout=2.0)
    assert r.worst_case("blackhole") == 6.0
    assert r.worst_case("refused") == 0.0
    with pytest.raises(ValueError):
        RetryRule(attempts=0, timeout=1.0)
    with pytest.raises(ValueError):
        RetryRule(attempts=1, timeout=-1.0)


@given(opened=times, idle=times, age=times)
def test_keepalive_zero_never_reuses(opened: float, idle: float, age: float) -> None:
    assert not ConnectionReuse(keepalive=0.0).can_reuse(opened, opened + age, opened + age + idle)


@given(
    keepalive=st.floats(min_value=0.001, max_value=1e4),
    max_age=st.one_of(st.just(math.inf), st.floats(min_value=0, max_value=1e4)),
    opened=times,
    used_after=st.floats(min_value=0, max_value=1e4),
    idle=st.floats(min_value=0, max_value=1e4),
)
def test_reuse_iff_within_idle_and_age(
    keepalive: float, max_age: float, opened: float, used_after: float, idle: float
) -> None:
    rule = ConnectionReuse(keepalive=keepalive, max_age=max_age)
    last = opened + used_after
    now = last + idle
    expected = (now - last) < keepalive and (now - opened) < max_age
    assert rule.can_reuse(opened, last, now) == expected
    if max_age == math.inf:
        assert rule.can_reuse(opened, last, now) == ((now - last) < keepalive)
    # closes_at is when it stops being reusable (up to float rounding of now - last)
    close = rule.closes_at(opened, last)
    assert close >= last
    assert not rule.can_reuse(opened, last, close + 1e-9 * max(1.0, close))
    if close > last:
        assert rule.can_reuse(opened, last, last)


def test_reuse_boundaries() -> None:
    rule = ConnectionReuse(keepalive=60.0, max_age=300.0)
    assert rule.can_reuse(0.0, 100.0, 159.9)
    assert not rule.can_reuse(0.0, 100.0, 160.0)  # idle exactly keepalive: closed
    assert not rule.can_reuse(0.0, 280.0, 300.0)  # too old although fresh
    with pytest.raises(ValueError):
        ConnectionReuse(keepalive=-1.0)


@given(n=st.integers(1, 10), attempt=st.integers(0, 100))
def test_choose_address(n: int, attempt: int) -> None:
    addrs = [f"10.0.0.{i}" for i in range(n)]
    assert choose_address(addrs, attempt, "first") == addrs[0]
    assert choose_address(addrs, attempt, "next") == addrs[attempt % n]


def test_next_mode_visits_every_address_in_n_attempts() -> None:
    addrs = ["a", "b", "c"]
    assert [choose_address(addrs, i, "next") for i in range(3)] == addrs


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="first, next"):
        choose_address(["a"], 0, "happy")

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policy.failover import (
    PLANS,
    Action,
    CnameRepoint,
    EipRemap,
    FailoverSpec,
    detection_bounds,
    make_plan,
    operator_detected_at,
)
from sim.policy.health import detection_time, first_probe_at
from sim.policy.sampling import Constant, Exponential


def test_cname_repoint_actions_exact() -> None:
    spec = FailoverSpec(
        interval=10.0, threshold=3, change_delay=Constant(2.0), propagation=Constant(30.0)
    )
    acts = CnameRepoint(spec).actions_after_detection(100.0, np.random.default_rng(0))
    assert [(a.at, a.kind) for a in acts] == [(102.0, "record_changed"), (132.0, "propagated")]


def test_eip_remap_actions_exact() -> None:
    spec = FailoverSpec(delay=120.0, change_delay=Constant(2.0), remap_delay=Constant(5.5))
    acts = EipRemap(spec).actions_after_detection(100.0, np.random.default_rng(0))
    assert [(a.at, a.kind) for a in acts] == [(102.0, "remap_called"), (107.5, "address_moved")]


@given(detected=st.floats(0, 1e5), seed=st.integers(0, 2**32), name=st.sampled_from(PLANS))
def test_actions_are_ordered_and_add_up(detected: float, seed: int, name: str) -> None:
    spec = FailoverSpec(
        interval=10.0,
        threshold=3,
        change_delay=Exponential(3.0),
        propagation=Exponential(30.0),
        remap_delay=Exponential(5.0),
    )
    first, second = make_plan(name, spec).actions_after_detection(
        detected, np.random.default_rng(seed)
    )
    assert detected <= first.at <= second.at
    assert first.at == pytest.approx(detected + first.detail["change"])
    step = second.detail.get("propagation", second.detail.get("remap"))
    assert second.at == pytest.approx(first.at + step)


def test_same_seed_same_plan() -> None:
    spec = FailoverSpec(delay=60.0, change_delay=Exponential(3.0), propagation=Exponential(30.0))
    a = make_plan("cname_repoint", spec).actions_after_detection(5.0, np.random.default_rng(9))
    b = make_plan("cname_repoint", spec).actions_after_detection(5.0, np.random.default_rng(9))
    assert a == b
    assert isinstance(a[0], Action)


def test_make_plan_unknown_lists_known() -> None:
    spec = FailoverSpec(delay=1.0)
    assert make_plan("eip_remap", spec).name == "eip_remap"
    assert make_plan("cname_repoint", spec).name == "cname_repoint"
    with pytest.raises(ValueError, match="cname_repoint, eip_remap"):
        make_plan("anycast", spec)


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="either"):
        FailoverSpec()
    with pytest.raises(ValueError, match="either"):
        FailoverSpec(interval=10.0, threshold=3, delay=60.0)
    with pytest.raises(ValueError, match="both"):
        FailoverSpec(interval=10.0)
    with pytest.raises(ValueError):
        FailoverSpec(interval=10.0, threshold=0)
    with pytest.raises(ValueError):
        FailoverSpec(delay=-1.0)


def test_operator_detection() -> None:
    spec = FailoverSpec(delay=120.0)
    assert spec.detection == "operator"
    assert operator_detected_at(600.0, spec) == 720.0
    assert detection_bounds(spec) == (120.0, 120.0, 120.0)
    with pytest.raises(ValueError):
        operator_detected_at(600.0, FailoverSpec(interval=10.0, threshold=3))
    with pytest.raises(ValueError):
        spec.health_check()


def test_detection_bounds_closed_form() -> None:
    spec = FailoverSpec(interval=10.0, threshold=3, timeout=4.0)
    assert spec.detection == "health_check"
    assert detection_bounds(spec, "refuse") == (20.0, 25.0, 30.0)
    assert detection_bounds(spec, "blackhole") == (32.0, 37.0, 42.0)
    hc = spec.health_check()
    assert (hc.interval, hc.fall, hc.rise, hc.timeout) == (10.0, 3, 3, 4.0)
    # no timeout given: a check is bounded by its interval (HAProxy)
    assert FailoverSpec(interval=2.0, threshold=3).health_check().timeout == 2.0


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_bounds_agree_with_the_running_machine(mode: str) -> None:
    spec = FailoverSpec(interval=30.0, threshold=3, timeout=4.0)
    hc = spec.health_check()
    lo, mean, hi = detection_bounds(spec, mode)
    rng = np.random.default_rng(21)
    d = np.array(
        [detection_time(500.0, first_probe_at(u, hc), hc, mode) - 500.0 for u in rng.random(20_000)]
    )
    assert lo - 1e-9 <= d.min() and d.max() <= hi + 1e-9
    assert abs(d.mean() - mean) < 4 * d.std(ddof=1) / np.sqrt(len(d))

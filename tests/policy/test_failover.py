from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policy.failover import (
    PLANS,
    Action,
    AliasApex,
    Anycast,
    AnycastSpec,
    CnameRepoint,
    DnsFailover,
    EipRemap,
    FailoverSpec,
    MultiA,
    ProviderChecks,
    Vrrp,
    VrrpSpec,
    detection_bounds,
    make_plan,
    operator_detected_at,
    plan_class,
    plan_detection_bounds,
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
        anycast=AnycastSpec(shift_delay=Exponential(1.0)),
        vrrp=VrrpSpec(garp_delay=Exponential(0.1)),
    )
    plan = make_plan(name, spec)
    first, second = plan.actions_after_detection(detected, np.random.default_rng(seed))
    assert detected <= first.at <= second.at
    assert first.at == pytest.approx(detected + first.detail["change"])
    assert second.at == pytest.approx(first.at + second.detail[plan.second_key])
    assert (first.kind, second.kind) == plan.kinds


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
    with pytest.raises(ValueError, match="cname_repoint, eip_remap, alias_apex"):
        make_plan("gslb", spec)


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


# --- the five strategies of issue 9 ----------------------------------------------

SPEC = FailoverSpec(delay=20.0, change_delay=Constant(2.0), propagation=Constant(30.0), remap_delay=Constant(5.5))


def kinds_and_times(plan) -> list[tuple[float, str]]:  # type: ignore[no-untyped-def]
    return [(a.at, a.kind) for a in plan.actions_after_detection(100.0, np.random.default_rng(0))]


def test_alias_apex_and_multi_a_repoint_like_a_cname() -> None:
    for cls in (AliasApex, MultiA):
        assert kinds_and_times(cls(SPEC)) == [(102.0, "record_changed"), (132.0, "propagated")]
        assert cls.detection == "scenario"


def test_dns_failover_has_no_api_call_only_propagation() -> None:
    assert kinds_and_times(DnsFailover(SPEC)) == [(100.0, "status_changed"), (130.0, "propagated")]
    assert DnsFailover.detection == "provider_checks"


def test_anycast_shifts_after_its_own_checks_without_dns() -> None:
    spec = replace(SPEC, anycast=AnycastSpec(shift_delay=Constant(1.5)))
    assert kinds_and_times(Anycast(spec)) == [(100.0, "status_changed"), (101.5, "traffic_shifted")]
    assert Anycast.detection == "accelerator_checks"


def test_vrrp_moves_the_address_after_gratuitous_arp() -> None:
    spec = replace(SPEC, vrrp=VrrpSpec(garp_delay=Constant(0.25)))
    assert kinds_and_times(Vrrp(spec)) == [(100.0, "became_master"), (100.25, "address_moved")]
    assert Vrrp.detection == "master_down"


def test_every_plan_says_what_its_failover_time_is_made_of() -> None:
    assert set(PLANS) == {"cname_repoint", "eip_remap", "alias_apex", "dns_failover", "anycast", "vrrp", "multi_a"}
    for name in PLANS:
        assert plan_class(name).parts.startswith(("D", "next"))


@pytest.mark.parametrize(("advert", "priority", "skew", "mdi"), [(1.0, 128, 0.5, 3.5), (1.0, 100, 156 / 256, 3 + 156 / 256), (2.0, 254, 4 / 256, 6 + 4 / 256)])
def test_vrrp_master_down_interval_rfc5798(advert: float, priority: int, skew: float, mdi: float) -> None:
    v = VrrpSpec(advert_int=advert, priority=priority)
    assert v.skew == pytest.approx(skew)
    assert v.master_down_interval == pytest.approx(mdi)
    spec = replace(SPEC, vrrp=v)
    assert plan_detection_bounds("vrrp", spec) == pytest.approx((mdi - advert, mdi - advert / 2, mdi))


def test_vrrp_spec_validation() -> None:
    with pytest.raises(ValueError):
        VrrpSpec(priority=255)  # 255 is the address owner, never a backup
    with pytest.raises(ValueError):
        VrrpSpec(advert_int=0.0)


@pytest.mark.parametrize(("checkers", "share", "needed"), [(8, 0.18, 7), (16, 0.18, 14), (3, 0.18, 3), (10, 0.5, 5)])
def test_provider_verdict_needs_more_than_the_share_healthy(checkers: int, share: float, needed: int) -> None:
    checks = ProviderChecks(checkers=checkers, healthy_share=share)
    assert checks.down_needed == needed
    assert checks.healthy(checkers - needed + 1) and not checks.healthy(checkers - needed)


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_provider_bounds_agree_with_running_machines(mode: str) -> None:
    # N checkers on independent phases; the verdict turns at the k-th detection.
    checks = ProviderChecks(interval=30.0, threshold=3, timeout=4.0, checkers=8, healthy_share=0.18)
    hc = checks.health_check()
    spec = replace(SPEC, provider=checks)
    lo, mean, hi = plan_detection_bounds("dns_failover", spec, mode)
    rng = np.random.default_rng(5)
    d = []
    for _ in range(4000):
        times = sorted(detection_time(500.0, first_probe_at(u, hc), hc, mode) - 500.0 for u in rng.random(8))
        d.append(times[checks.down_needed - 1])
    arr = np.array(d)
    assert lo - 1e-9 <= arr.min() and arr.max() <= hi + 1e-9
    assert abs(arr.mean() - mean) < 4 * arr.std(ddof=1) / np.sqrt(arr.size)


def test_anycast_bounds_are_one_checker() -> None:
    spec = replace(SPEC, anycast=AnycastSpec(interval=10.0, threshold=3, timeout=4.0))
    assert plan_detection_bounds("anycast", spec, "refuse") == (20.0, 25.0, 30.0)
    assert plan_detection_bounds("anycast", spec, "blackhole") == (32.0, 37.0, 42.0)
    # strategies detected by the scenario keep its detection
    assert plan_detection_bounds("alias_apex", spec) == (20.0, 20.0, 20.0)


def test_provider_and_anycast_spec_validation() -> None:
    with pytest.raises(ValueError):
        ProviderChecks(checkers=0)
    with pytest.raises(ValueError):
        ProviderChecks(healthy_share=1.0)
    with pytest.raises(ValueError):
        AnycastSpec(threshold=0)

"""The five strategies of issue 9 in the model, against their closed forms.

Mean recovery = detection + change + the parts of the decomposition that
apply (docs/design.md): propagation, the resolver's residual TTL (T/2 when the cache
holds an entry), and the wait for the client's next request (1/r, r = 1/s
here). As in test_validation.py each check allows 4 standard errors measured in
the same run, and where a rival formula is plausible the test shows it lies
outside that bound. Detection that runs on random phases (provider checks,
anycast checks, VRRP adverts) is one draw per replication, shared by every
client, so those checks average per-replication means over many replications
and take the standard error from them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.model.engine import simulate
from sim.policy.failover import ProviderChecks
from sim.results.schema import affected_clients
from sim.scenario import strategy_refusals
from tests.model.scenarios import scenario
from tests.model.test_validation import Z, cache_recovery, recoveries, within


def replication_means(sc, strategy: str, reps: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    means = []
    for k in range(reps):
        rec = affected_clients(simulate(sc, strategy, np.random.SeedSequence([sc.seed, k])).clients).recovery_s
        assert not rec.isna().any()
        means.append(float(rec.mean()))
    return np.array(means)


def mean_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


SMALL = {"clients.0.count": 200, "dns.resolvers.0.count": 200}


def test_alias_at_the_apex_beside_mx_recovers_with_the_balancer_ttl() -> None:
    x, balancer_ttl = 20 + 2 + 8, 30.0  # operator detection + change + propagation
    sc = scenario(
        **{
            "dns.service_name": "@",
            "dns.records": [{"name": "@", "type": "MX", "value": "10 mail.example.com."}],
            "dns.service_ttl": "300s",  # not what the alias's answers carry
            "dns.balancer_ttl": f"{balancer_ttl}s",
            "duration": "2m",
            "strategies": ["alias_apex", "cname_repoint"],
        }
    )
    refusals = strategy_refusals(sc)
    assert refusals["alias_apex"] == [] and refusals["cname_repoint"]
    rec = recoveries(sc, "alias_apex")
    expected = cache_recovery(x, balancer_ttl, balancer_ttl / 2, 1.0)
    ok, mean, se = within(rec, expected)
    assert ok, (mean, se, expected)
    assert abs(mean - cache_recovery(x, 300.0, 150.0, 1.0)) > Z * se  # the balancer's TTL, not the record's


def test_dns_failover_is_provider_detection_then_propagation_and_the_ttl() -> None:
    interval, threshold, ttl, prop = 30.0, 3, 60.0, 8.0
    checks = ProviderChecks(interval=interval, threshold=threshold, checkers=8, healthy_share=0.18)
    sc = scenario(
        **SMALL,
        **{
            "failover.provider_checks": {"interval": f"{interval}s", "threshold": threshold, "checkers": 8, "healthy_share": 0.18},
            "duration": "4m",
        },
    )
    means = replication_means(sc, "dns_failover", 30)
    # The verdict turns when 7 of 8 checkers see it down (more than 18% must
    # see it healthy): the 7th of 8 uniform phases, mean 7/9 of an interval.
    detection = (threshold - 1) * interval + checks.down_needed * interval / (checks.checkers + 1)
    expected = cache_recovery(detection + prop, ttl, ttl / 2, 1.0)  # no change step: no operator, no API call
    mean, se = mean_se(means)
    assert abs(mean - expected) <= Z * se, (mean, se, expected)
    one_checker = cache_recovery((threshold - 0.5) * interval + prop, ttl, ttl / 2, 1.0)
    assert abs(mean - one_checker) > Z * se, "cannot tell 8 checkers from one"


def test_anycast_is_its_own_checks_plus_the_shift_whatever_the_ttl() -> None:
    interval, threshold, shift = 10.0, 3, 3.0
    sc = scenario(
        **SMALL,
        **{
            "dns.service_ttl": "1h",
            "failover.detection": {"delay": "60s"},  # the scenario's own detection plays no part
            "failover.anycast": {"interval": f"{interval}s", "threshold": threshold, "shift_delay": f"{shift}s"},
            "duration": "2m",
        },
    )
    means = replication_means(sc, "anycast", 30)
    expected = (threshold - 0.5) * interval + shift + 1.0
    mean, se = mean_se(means)
    assert abs(mean - expected) <= Z * se, (mean, se, expected)


def test_vrrp_is_master_down_interval_after_the_last_advert() -> None:
    advert, priority = 1.0, 100
    mdi = 3 * advert + (256 - priority) / 256 * advert  # RFC 5798: 3.609 s
    sc = scenario(
        **SMALL,
        **{"failover.vrrp": {"advert_int": f"{advert}s", "priority": priority}, "duration": "1m", "dns.service_ttl": "1h"},
    )
    means = replication_means(sc, "vrrp", 40)
    # The backup's timer started at the last advertisement heard, a uniform
    # part of advert_int before the fault: MDI - advert/2, then ARP (0 s), then 1/r.
    expected = mdi - advert / 2 + 1.0
    mean, se = mean_se(means)
    assert abs(mean - expected) <= Z * se, (mean, se, expected)
    assert abs(mean - (mdi + 1.0)) > Z * se, "cannot tell the timer from the last advert from one started at the fault"


def test_multi_a_first_address_clients_wait_for_dns_like_a_cname() -> None:
    x, ttl = 20 + 2 + 8, 60.0
    sc = scenario(**{"failover.multi_a": {"order": "fixed"}, "duration": f"{10 + x + ttl + 40}s"})
    rec = recoveries(sc, "multi_a")
    expected = cache_recovery(x, ttl, ttl / 2, 1.0)
    ok, mean, se = within(rec, expected)
    assert ok, (mean, se, expected)


@pytest.mark.parametrize(
    ("mode", "fallback"), [("refuse", None), ("blackhole", "250ms"), ("blackhole", None)]
)
def test_multi_a_next_address_clients_never_fail(mode: str, fallback: str | None) -> None:
    # Happy Eyeballs (250 ms) or python-requests (after the connect timeout)
    # reach the standby's address in the same attempt.
    client = {"name": "c", "count": 300, "rate": "1/s", "address_mode": "next", "retry": {"attempts": 1, "timeout": "2s"}}
    if fallback is not None:
        client["fallback_delay"] = fallback
    sc = scenario(
        **{
            "clients": [client],
            "faults": [{"at": "10s", "kind": "balancer_down", "target": "blue", "mode": mode}],
            "failover.multi_a": {"order": "fixed"},
            "duration": "90s",
        }
    )
    out = simulate(sc, "multi_a", np.random.SeedSequence(1))
    assert out.metrics["failed"] == 0 and out.metrics["clients_affected"] == 0
    if mode == "blackhole":
        # The fallback shows as latency instead: most requests of the run go to
        # the dead address first and wait the fallback delay (2 s by default,
        # the attempt timeout) before the standby answers.
        wait_ms = 250.0 if fallback else 2000.0
        assert out.metrics["latency_ms_p50"] >= wait_ms
    first = simulate(sc.with_values({"clients[0].address_mode": "first"}), "multi_a", np.random.SeedSequence(1))
    assert first.metrics["failed"] > 0


def test_multi_a_rotating_answers_alternate_first_address_clients() -> None:
    # With no stub cache each request resolves and the answer starts one address
    # further on: after the fault a client alternates dead and live. From the
    # fault, recovery is two waits (first request dead) or three (first live,
    # second dead), each 1/r: mean 2.5 / r, far below the DNS change at X.
    sc = scenario(**{"duration": "60s"})
    rec = recoveries(sc, "multi_a")
    ok, mean, se = within(rec, 2.5)
    assert ok, (mean, se)

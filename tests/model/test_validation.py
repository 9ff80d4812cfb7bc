"""The model against closed forms (docs/references.md) and invariants.

Tolerances: each check compares a sample mean with its prediction and allows
4 standard errors of that mean (for a normal estimate, a false failure has odds
of about 6 in 100,000); the standard error is measured from the same run, not
chosen. Where a check must also tell two hypotheses apart, the test asserts
that the rival prediction lies outside the same bound, so it cannot pass by
being loose.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.model.engine import Replication, simulate
from sim.results.schema import affected_clients
from tests.model.scenarios import scenario

Z = 4.0


def recoveries(sc, strategy: str, seeds: int = 1) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = []
    for k in range(seeds):
        result = simulate(sc, strategy, np.random.SeedSequence([sc.seed, k]))
        rec = affected_clients(result.clients).recovery_s
        assert not rec.isna().any()
        out.append(rec.to_numpy())
    return np.concatenate(out)


def within(sample: np.ndarray, expected: float) -> tuple[bool, float, float]:
    mean = float(sample.mean())
    se = float(sample.std(ddof=1) / math.sqrt(sample.size))
    return abs(mean - expected) <= Z * se, mean, se


def cache_recovery(x: float, mean_life: float, mean_residual: float, rate: float) -> float:
    """Expected recovery after fault + x for a client alone on an honouring
    resolver: the entry is present with probability E[L]/(E[L] + 1/r) (a
    renewal cycle is a lifetime plus the wait for the next query), then its
    residual, then the wait for the client's next request (1/r)."""
    present = mean_life / (mean_life + 1.0 / rate)
    return x + present * mean_residual + 1.0 / rate


@pytest.mark.parametrize("ttl", [60.0, 300.0])
def test_cname_recovery_is_x_plus_half_ttl(ttl: float) -> None:
    x = 20 + 2 + 8  # operator detection + change + propagation
    # the run lasts past the last possible recovery: fault + X + T + waits
    sc = scenario(**{"dns.service_ttl": f"{ttl}s", "duration": f"{10 + x + ttl + 40}s"})
    rec = recoveries(sc, "cname_repoint")
    ok, mean, se = within(rec, cache_recovery(x, ttl, ttl / 2, 1.0))
    assert ok, (mean, se, cache_recovery(x, ttl, ttl / 2, 1.0))
    # max = X + T, plus the wait for a next request (exponential, mean 1 s)
    assert x + 0.95 * ttl <= rec.max() <= x + ttl + 15.0


def test_cname_recovery_with_floor_above_ttl_is_x_plus_half_floor() -> None:
    x, ttl, floor = 30.0, 30.0, 240.0
    sc = scenario(
        **{"dns.service_ttl": f"{ttl}s", "dns.resolvers": [{"name": "f", "count": 1000, "share": 1.0, "policy": {"kind": "floor", "min_ttl": f"{floor}s"}}], "duration": f"{10 + x + floor + 40}s"}
    )
    rec = recoveries(sc, "cname_repoint")
    ok, mean, se = within(rec, cache_recovery(x, floor, floor / 2, 1.0))
    assert ok, (mean, se)
    assert abs(mean - cache_recovery(x, ttl, ttl / 2, 1.0)) > Z * se  # the floor, not the TTL, decides


@pytest.mark.parametrize("ttl", ["60s", "1h"])
def test_eip_recovery_is_detection_change_remap_whatever_the_ttl(ttl: str) -> None:
    sc = scenario(**{"dns.service_ttl": ttl})
    rec = recoveries(sc, "eip_remap")
    expected = 20 + 2 + 5 + 1.0  # D + C + remap + the wait for the next request
    ok, mean, se = within(rec, expected)
    assert ok, (mean, se, expected)
    assert rec.max() <= 27 + 15.0


def test_extending_resolvers_follow_the_length_biased_residual() -> None:
    # T = m makes the three candidate answers furthest apart: 1.25 m
    # (length-biased), 1.5 m (T/2 + mean extra), m ((T + m)/2).
    ttl, extra = 60.0, 60.0
    sc = scenario(
        **{
            "dns.service_ttl": f"{ttl}s",
            "dns.resolvers": [{"name": "s", "count": 2000, "share": 1.0, "policy": {"kind": "extend", "extra": {"exp": f"{extra}s"}}}],
            "clients.0.count": 2000,
            # a lifetime beyond T + 8 m has odds e^-8 per cache
            "duration": f"{10 + 30 + ttl + 8 * extra}s",
        }
    )
    rec = recoveries(sc, "cname_repoint")
    life = ttl + extra
    # L = T + E, E ~ exp(m): E[L^2] / (2 E[L]) (the inspection paradox)
    biased = (ttl**2 + 2 * ttl * extra + 2 * extra**2) / (2 * life)
    ok, mean, se = within(rec, cache_recovery(30, life, biased, 1.0))
    assert ok, (mean, se, cache_recovery(30, life, biased, 1.0))
    naive = cache_recovery(30, life, ttl / 2 + extra, 1.0)
    assert abs(mean - naive) > Z * se, "cannot tell the length-biased residual from T/2 + mean extra"


def latency_run(policy: str, instances: int, workers: int, rate: float, service: float, reps: int = 4):  # type: ignore[no-untyped-def]
    sc = scenario(
        **{
            "faults": [],
            "clients.0.count": 100,
            "clients.0.rate": f"{rate / 100}/s",
            "clients.0.retry": {"attempts": 1, "timeout": "1h"},
            "backends": {"instances": instances, "workers": workers, "service_time": {"exp": f"{service}s"}, "queue_limit": 100000, "policy": policy},
            "duration": "8m",
        }
    )
    lat = []
    for k in range(reps):
        rep = Replication(sc, "eip_remap", np.random.SeedSequence([9, k]))
        rep.run()
        lat.append(np.array(rep.latencies))
    return lat


def batch_means(samples: list[np.ndarray], stat) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    # Latencies of one run are correlated (a busy period delays many requests),
    # so the standard error comes from independent replications, each cut into
    # batches long enough to be nearly independent.
    values = [stat(b) for s in samples for b in np.array_split(s, 10)]
    return float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(len(values)))


def test_random_split_is_mm1() -> None:
    rho, s = 0.5, 0.01
    lat = latency_run("random", 4, 1, 4 * rho / s, s)
    t = s / (1 - rho)
    mean, se = batch_means(lat, np.mean)
    assert abs(mean - t) <= Z * se, (mean, se, t)
    # M/M/1 sojourn is exponential: p50 = T ln 2, p99 = T ln 100
    p50, se50 = batch_means(lat, lambda b: np.percentile(b, 50))
    assert abs(p50 - t * math.log(2)) <= Z * se50
    p99, se99 = batch_means(lat, lambda b: np.percentile(b, 99))
    assert abs(p99 - t * math.log(100)) <= Z * se99, (p99, se99, t * math.log(100))


def test_round_robin_is_en_m1() -> None:
    n, rho, s = 2, 0.5, 0.01
    lat = latency_run("round_robin", n, 1, n * rho / s, s)
    mean, se = batch_means(lat, np.mean)
    assert abs(mean - 1.618 * s) <= Z * se, (mean, se)  # docs/references.md: n = 2, rho = 0.5
    assert abs(mean - 2.0 * s) > Z * se  # and not M/M/1


def erlang_c(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def test_one_instance_with_c_workers_is_erlang_c() -> None:
    c, a, s = 4, 3.0, 0.01
    lat = latency_run("round_robin", 1, c, a / s, s)
    expected = s * (1 + erlang_c(c, a) / (c - a))
    mean, se = batch_means(lat, np.mean)
    assert abs(mean - expected) <= Z * se, (mean, se, expected)


def test_dead_instance_failures_until_health_checks_notice() -> None:
    n, rate, interval, fall = 4, 200.0, 2.0, 3
    sc = scenario(
        **{
            "faults": [{"at": "20s", "kind": "instance_down", "count": 1, "for": "1h", "mode": "refuse"}],
            "clients.0.count": 100,
            "clients.0.rate": f"{rate / 100}/s",
            "backends": {"instances": n, "workers": 100, "service_time": "1ms", "policy": "random", "retries": 0,
                         "health_check": {"interval": f"{interval}s", "fall": fall, "rise": 2, "timeout": "1s"}},
            "duration": "40s",
        }
    )
    failed = np.array([simulate(sc, "eip_remap", np.random.SeedSequence([5, k])).metrics["failed"] for k in range(30)])
    expected = rate / n * (fall - 0.5) * interval  # lambda/n x (F - 1/2) x I
    ok, mean, se = within(failed.astype(float), expected)
    assert ok, (mean, se, expected)


def test_littles_law_and_conservation() -> None:
    sc = scenario(**{"faults": [], "backends": {"instances": 2, "workers": 2, "service_time": {"exp": "10ms"}, "policy": "p2c"}, "clients.0.rate": "0.15/s"})
    rep = Replication(sc, "cname_repoint", np.random.SeedSequence(3))
    out = rep.run()
    # Little: N = lambda T, N sampled once a second (independent samples:
    # requests last milliseconds).
    n = np.array(rep.in_system, dtype=float)
    lam = out.metrics["requests"] / sc.duration
    t = float(np.mean(rep.latencies))
    assert abs(n.mean() - lam * t) <= Z * n.std(ddof=1) / math.sqrt(n.size) + 1e-9
    # Conservation: every request issued ends exactly once (the engine raises on
    # a second end); the few unfinished at the end are still in flight.
    in_flight = sum(i.outstanding for i in rep.instances)
    assert rep.issued == rep.finished + in_flight
    assert int(out.timeline.requests.sum()) == rep.finished
    assert out.timeline[["ok", "refused", "timeout", "error_5xx", "dns_error", "shed"]].sum(axis=1).equals(out.timeline.requests)


def test_conservation_through_faults_and_retries() -> None:
    sc = scenario(
        **{
            "faults": [
                {"at": "1m", "kind": "balancer_down", "target": "blue", "mode": "blackhole"},
                {"at": "2m", "kind": "instance_down", "count": 2, "for": "1m", "mode": "blackhole"},
                {"at": "3m", "kind": "dns_down", "for": "1m"},
                {"at": "4m", "kind": "traffic", "factor": 2, "for": "1m"},
            ],
            "clients.0.retry": {"attempts": 3, "timeout": "2s"},
            "clients.0.count": 200,
            "clients.0.keepalive": "30s",
            "backends.retries": 1,
            "backends.workers": 2,
            "backends.queue_limit": 5,
        }
    )
    for strategy in ("cname_repoint", "eip_remap"):
        rep = Replication(sc, strategy, np.random.SeedSequence(4))
        out = rep.run()
        pending = rep.issued - rep.finished
        assert 0 <= pending <= 200 * 3 * 2  # at most every client's in-flight attempts
        assert int(out.timeline.requests.sum()) == rep.finished
        assert out.metrics["failed"] > 0


def test_same_seed_same_results_other_seed_different() -> None:
    sc = scenario(**{"clients.0.count": 100, "dns.resolvers.0.count": 20})
    a = simulate(sc, "cname_repoint", np.random.SeedSequence(11))
    b = simulate(sc, "cname_repoint", np.random.SeedSequence(11))
    c = simulate(sc, "cname_repoint", np.random.SeedSequence(12))
    assert a.metrics == b.metrics and a.clients.equals(b.clients) and a.timeline.equals(b.timeline)
    assert a.metrics != c.metrics


def test_common_random_numbers_same_request_times_under_both_strategies() -> None:
    sc = scenario(**{"clients.0.count": 100, "dns.resolvers.0.count": 20})
    a = simulate(sc, "cname_repoint", np.random.SeedSequence(21))
    b = simulate(sc, "eip_remap", np.random.SeedSequence(21))
    # Arrivals do not depend on the strategy: the same requests per second.
    assert a.timeline.requests.iloc[:-30].equals(b.timeline.requests.iloc[:-30])

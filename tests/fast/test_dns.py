"""sim.fast.dns with unbound's serve-expired (client timeout 0): the fast engine against the
model, and what the fast engine refuses of the resolver mechanisms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.fast import simulate as fast
from sim.fast import unsupported
from sim.model import simulate as des
from sim.results.schema import affected_clients
from tests.fast.test_agreement import assert_agree
from tests.model.scenarios import scenario

SERVED = {"client_timeout": "0s", "reply_ttl": "30s", "ttl": "1d"}


def _case(per_resolver: int, rate: str, served: dict | None = SERVED):  # type: ignore[no-untyped-def]
    group = {"name": "own", "count": 300 // per_resolver, "share": 1.0}
    if served is not None:
        group["serve_expired"] = served
    return scenario(**{
        "duration": "3m",
        "strategies": ["cname_repoint"],
        "clients.0.count": 300,
        "clients.0.rate": rate,
        "dns.resolvers": [group],
    })


@pytest.mark.slow
@pytest.mark.parametrize(
    ("per_resolver", "rate"),
    [
        # one client per resolver (no stub cache): that client is always the first query
        # after expiry, and its next request, 1/rate later on average, gets the new answer
        (1, "0.2/s"),
        # three clients: the earliest of them gets the old answer once more
        (3, "1/s"),
    ],
)
def test_fast_agrees_with_the_model_on_serve_expired(per_resolver: int, rate: str) -> None:
    assert_agree(_case(per_resolver, rate), "cname_repoint")


def _prefetching(per_resolver: int, rate: str, prefetch: bool = True):  # type: ignore[no-untyped-def]
    sc = _case(per_resolver, rate, None)
    return sc.with_values({"dns.resolvers[0].prefetch": prefetch})


@pytest.mark.slow
@pytest.mark.parametrize(("per_resolver", "rate"), [(1, "0.2/s"), (3, "1/s")])
def test_fast_agrees_with_the_model_on_prefetch(per_resolver: int, rate: str) -> None:
    assert_agree(_prefetching(per_resolver, rate), "cname_repoint")


@pytest.mark.slow
def test_prefetch_traffic_matches_the_renewal_cycle_in_both_engines() -> None:
    # Each resolver fetches once per cycle A + X, X ~ Exp(q) (sim.policy.resolver.steady_age),
    # from a stationary start: over T seconds, T / (A + 1/q) fetches on average; without
    # prefetch T / (L + 1/q). L = 60 s, A = 54 s, q = 0.2/s: 10% more queries.
    life, a, q, resolvers, seconds = 60.0, 54.0, 0.2, 300, 180.0
    for prefetch, cycle in ((True, a + 1 / q), (False, life + 1 / q)):
        expected = resolvers * seconds / cycle
        sc = _prefetching(1, "0.2/s", prefetch)
        for engine in (des, fast):
            counts = np.array([engine(sc, "cname_repoint", np.random.SeedSequence([5, k]), k).metrics["dns_queries"]
                               for k in range(4)], dtype=float)
            # a renewal count's variance is below its mean here (cycles longer than exponential)
            se = math.sqrt(expected / len(counts))
            assert abs(counts.mean() - expected) <= 4 * se, (engine.__module__, prefetch, counts, expected)


def _recovery(engine, sc, reps: int = 4) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = []
    for k in range(reps):
        rec = affected_clients(engine(sc, "cname_repoint", np.random.SeedSequence([11, k]), k).clients)["recovery_s"]
        out.append(float(np.nanmean(rec.to_numpy())))
    return np.array(out)


@pytest.mark.slow
def test_serve_expired_delays_recovery_in_both_engines() -> None:
    # The agreement above means something only if the mechanism acts: with one client per
    # resolver at 0.1/s, the first request after the old answer ran out gets it once more,
    # so recovery waits one more request gap (10 s on average): several standard errors.
    for engine in (des, fast):
        plain, served = _recovery(engine, _case(1, "0.1/s", None), 6), _recovery(engine, _case(1, "0.1/s"), 6)
        se = np.sqrt(plain.var(ddof=1) / len(plain) + served.var(ddof=1) / len(served))
        assert served.mean() - plain.mean() > 4 * se, (engine.__module__, plain, served)


def test_resolver_mechanisms_the_fast_engine_refuses_are_named() -> None:
    group = {"name": "own", "count": 10, "share": 1.0, "prefetch": True, "serve_expired": SERVED}
    sc = scenario(**{"strategies": ["cname_repoint"], "dns.resolvers": [group],
                     "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}})
    problems = unsupported(sc)
    assert any(p.startswith("dns.resolvers[0].prefetch, with clients[0].stub_cache fixed") for p in problems)
    assert any(p.startswith("dns.resolvers[0].prefetch together with serve_expired") for p in problems)
    assert any("serve_expired.client_timeout: 0s, with clients[0].stub_cache fixed" in p for p in problems)
    # the same on a farm: every client and cache followed request by request (tests/fast/test_farms.py)
    assert not unsupported(sc.with_values({"dns.resolvers[0].caches": 4, "dns.resolvers[0].sticky": 0.5}))
    # a client timeout above 0 acts only when the authoritative does not answer: nothing to refuse
    sc = scenario(**{"strategies": ["cname_repoint"],
                     "dns.resolvers": [{"name": "own", "count": 10, "share": 1.0, "serve_expired": {}}],
                     "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}})
    assert not [p for p in unsupported(sc) if "resolvers" in p]

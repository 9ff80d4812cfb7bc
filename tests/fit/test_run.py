"""sim.fit.run: the whole fit recovers a population it was not told (synthetic logs of known truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.fit.formats import LogError
from sim.fit.run import fit
from tests.fit.synthetic import CohortTruth, ResolverTruth, access_log, query_log

pytestmark = pytest.mark.slow  # about 10 s of CPU: two hours of a 470-client population

SPAN, TTL = 2 * 3600.0, 60.0
COHORTS = [
    CohortTruth("browser", 200, 2 / 60, 15.0),
    CohortTruth("browser", 100, 0.2 / 60, 15.0),
    CohortTruth("jvm", 20, 0.2, 30.0),
    CohortTruth("cli", 150, 1 / 3600, 0.0),  # about one in seven sends nothing in two hours
]
RESOLVERS = [
    ResolverTruth("honor", 60, TTL),
    ResolverTruth("floor", 15, 300.0),
    ResolverTruth("cap", 10, 30.0),
    ResolverTruth("extend", 15, 600.0),
]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    d = tmp_path_factory.mktemp("logs")
    rng = np.random.default_rng(19)
    access_log(d / "access.log.gz", COHORTS, SPAN, rng)
    sent = query_log(d / "queries.log", RESOLVERS, TTL, SPAN, lookup_rate=0.5, rng=rng)
    return fit([d / "access.log.gz"], [d / "queries.log"], service="www.example.com", ttl=TTL), sent


def test_cohort_sizes_and_rates_fall_within_their_intervals(fitted: tuple) -> None:
    result, _ = fitted
    by_family: dict[str, list] = {}
    for c in result.cohorts:
        by_family.setdefault(c.family, []).append(c)
    assert sorted(by_family) == ["browser", "cli", "jvm"]
    assert [c.seen for c in by_family["browser"]] == [100, 200]  # split by rate, slower first
    for truth, c in [(COHORTS[1], by_family["browser"][0]), (COHORTS[0], by_family["browser"][1]),
                     (COHORTS[2], by_family["jvm"][0]), (COHORTS[3], by_family["cli"][0])]:
        assert c.size.low <= truth.count <= c.size.high, (c.name, c.size)
        assert c.rate.low <= truth.rate <= c.rate.high, (c.name, c.rate, truth.rate)
    cli = by_family["cli"][0]
    assert cli.seen < 150 and cli.size.value > cli.seen  # the unseen clients are counted back in


def test_connection_reuse(fitted: tuple) -> None:
    result, _ = fitted
    browser, jvm, cli = result.reuse["browser"], result.reuse["jvm"], result.reuse["cli"]
    assert cli.keepalive.value == 0.0 and cli.per_connection.value == pytest.approx(1.0)
    # a connection survives idle gaps up to its keep-alive: with requests ~30 s apart on
    # average the gaps fill [0, 15 s] almost evenly, and the 99th percentile is near 15 s
    assert 0.95 * 15.0 <= browser.keepalive.value <= 15.0
    # requests 5 s apart on average almost never leave 30 s idle: the estimate is a lower bound
    assert jvm.keepalive.value <= 30.0 and jvm.per_connection.value > 100
    # these clients have no maximum connection age (only idleness ends a connection): none is fitted
    assert all(a.value is None for a in result.ages.values()), result.ages


def test_resolver_policy_shares_within_5_points(fitted: tuple) -> None:
    result, sent = fitted
    fit_ = result.resolvers
    total_resolvers = sum(g.count for g in RESOLVERS)
    total_queries = sum(sent.values())
    assert all(r.policy is not None for r in fit_.resolvers) and len(fit_.resolvers) == total_resolvers
    for g in RESOLVERS:
        assert abs(fit_.count_share[g.policy].value - g.count / total_resolvers) <= 0.05, g.policy
        assert abs(fit_.query_share[g.policy].value - sent[g.policy] / total_queries) <= 0.05, g.policy
    assert fit_.value["floor"].value == pytest.approx(300.0, rel=0.05)
    assert fit_.value["cap"].value == pytest.approx(30.0, rel=0.05)


def test_shape_and_span(fitted: tuple) -> None:
    result, _ = fitted
    assert result.span == pytest.approx(SPAN, rel=0.01)
    seen = [f for f in result.shape.factors if f is not None]
    assert len(seen) == 2  # two hours of log: a flat rate, each hour's factor covers 1
    assert all(f.low <= 1.0 <= f.high for f in seen)


def test_no_log_no_fit(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="no access log"):
        fit([], [])


@pytest.mark.parametrize("fmt", ["nginx", "haproxy"])
def test_connections_from_nginx_connection_serials_and_haproxy_ports(tmp_path: Path, fmt: str) -> None:
    # two curl clients: each sends 10 requests, 5 on each of two connections
    lines = []
    for i in range(20):
        client, conn, second = f"198.51.100.{i % 2}", i % 2 * 2 + (i // 10), i
        if fmt == "nginx":
            lines.append(f'{client} - - [02/Dec/2026:14:00:{second:02d} +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0" '
                         f"{conn} {i // 2 % 5 + 1}")
        else:
            lines.append(f"{client}:{40000 + conn} [02/Dec/2026:14:00:{second:02d}.000] fe be/s1 0/0/0/1/1 200 5 - - ---- "
                         '1/1/0/0/0 0/0 {curl/8.5.0} "GET / HTTP/1.1"')
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")
    result = fit([path])
    assert [(c.name, c.seen) for c in result.cohorts] == [("cli", 2)]
    assert result.reuse["cli"].connections == 4 and result.reuse["cli"].per_connection.value == 5.0
    assert result.files[0].format == fmt


def test_a_lab_runs_logs_fit_in_scenario_time(tmp_path: Path) -> None:
    """Logs K times faster than the scenario (a lab run at time scale K) fit with
    `time_scale=K` as the scenario's own would: rates K times lower, the same cohorts."""
    k = 4.0
    rng = np.random.default_rng(5)
    truth = [CohortTruth("jvm", 20, 0.2 * k, 30.0 / k)]  # what the lab's logs show at K
    access_log(tmp_path / "access.log", truth, 1800.0, rng)
    plain = fit([tmp_path / "access.log"])
    scaled = fit([tmp_path / "access.log"], time_scale=k)
    (a,), (b,) = plain.cohorts, scaled.cohorts
    assert a.seen == b.seen == 20
    assert b.rate.low <= 0.2 <= b.rate.high, b.rate
    assert b.rate.value == pytest.approx(a.rate.value / k, rel=0.02)
    assert scaled.span == pytest.approx(plain.span * k, rel=1e-6)
    with pytest.raises(LogError, match="time scale"):
        fit([tmp_path / "access.log"], time_scale=0)

"""sim.fit.cohorts: splitting by rate, the zero-truncated Poisson correction, and the tally."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.fit.cohorts import (
    ClientTally,
    estimate,
    fit_cohorts,
    split_by_rate,
    truncated_poisson_mean,
)


@pytest.mark.parametrize("mu", [0.3, 1.0, 2.5, 40.0])
def test_truncated_poisson_mean_inverts_its_closed_form(mu: float) -> None:
    assert truncated_poisson_mean(mu / -math.expm1(-mu)) == pytest.approx(mu, rel=1e-6)


def test_split_at_a_factor_of_four_only_between_big_enough_groups() -> None:
    rng = np.random.default_rng(3)
    fast, slow = rng.poisson(200, 50), rng.poisson(20, 30)
    parts = split_by_rate(np.concatenate([fast, slow]).astype(float))
    assert [p.size for p in parts] == [30, 50]
    lone = np.concatenate([rng.poisson(200, 50), [1.0, 2.0]])
    assert [p.size for p in split_by_rate(lone.astype(float))] == [52]  # two stragglers are not a cohort


def test_unseen_clients_are_counted_back_with_an_interval_that_covers_the_truth() -> None:
    rng = np.random.default_rng(4)
    mu, n_true, trials, hits = 1.0, 400, 200, 0
    for _ in range(trials):
        counts = rng.poisson(mu, n_true)
        c = estimate(counts[counts > 0].astype(float), 100.0, "x", "cli")
        hits += c.size.low <= n_true <= c.size.high
    se = math.sqrt(0.95 * 0.05 / trials)
    assert hits / trials >= 0.95 - 3 * se - 0.02


def test_tally_keeps_families_apart_and_no_address() -> None:
    tally = ClientTally()
    for i in range(10):
        tally.add(float(i), "192.0.2.1", "browser")
        tally.add(float(i), "192.0.2.1", "cli")
    assert tally.span == 9.0 and tally.requests == 20
    cohorts = fit_cohorts(tally)
    assert sorted(c.family for c in cohorts) == ["browser", "cli"]
    assert all(c.seen == 1 and c.rate.value == pytest.approx(10 / 9.0, rel=1e-3) for c in cohorts)
    assert "192.0.2.1" not in repr(tally.counts)

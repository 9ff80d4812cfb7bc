"""bench core's 95% interval on added latency, on constructed histograms with a known answer.

Latencies are drawn from 100 us + an exponential of mean M = 300 us, rounded
to whole microseconds (below 2,048 us an HdrHistogram of 3 digits keeps every
microsecond: its percentiles are the sample's). For n such latencies the
q-quantile x_q = 100 + M ln(1 / (1 - q)) has the asymptotic standard error
sqrt(q (1 - q) / n) / f(x_q) with f(x_q) = (1 - q) / M, so a difference of two
independent samples' quantiles has sqrt(2) times that, and a 95% interval is
about 2 x 1.96 of it wide.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.bench import added
from sim.bench.core import render_table, resummarize, summarize

ROOT = Path(__file__).resolve().parents[2]
M = 300.0
KEPT_RUN = ROOT / "benchmarks" / "core-20261202-quiet.json"  # a real run's steps, histograms kept


def latencies(n: int, seed: int, shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.rint(100 + shift + rng.exponential(M, n)).astype(np.int64)


def encoded(lat: np.ndarray) -> str:
    from hdrh.histogram import HdrHistogram

    hist = HdrHistogram(1, 60_000_000, 3)  # as sim.bench.openloop records
    values, counts = np.unique(lat, return_counts=True)
    for v, c in zip(values.tolist(), counts.tolist(), strict=True):
        hist.record_value(v, c)
    return hist.encode().decode()


def step(lat: np.ndarray) -> dict[str, Any]:
    h = encoded(lat)
    values, counts = added.buckets(h)
    # rate: a 2 s step that answered every scheduled request (resummarize re-applies "not sustained")
    return {"generator": "openloop.c", "completed": len(lat), "rate": len(lat) / 2.0, "saturated": False, "hdr": h,
            "p50_us": added.percentile(values, counts, 50), "p99_us": added.percentile(values, counts, 99)}  # fmt: skip


def ci(target: np.ndarray, direct: np.ndarray, name: str = "t") -> dict[str, list[float] | None]:
    cis, _, how = added.added_intervals(
        added.Resampler(), [(name, step(target), "d", step(direct))]
    )
    assert how == "bootstrap"
    return cis


def asymptotic_width(q: float, n: int) -> float:
    se = math.sqrt(q * (1 - q) / n) * M / (1 - q)
    return 2 * 1.96 * math.sqrt(2) * se


def test_the_percentile_rule_reads_what_the_generator_stored() -> None:
    """Every step of a kept run: the bootstrap's percentile of the decoded buckets is the stored one."""
    steps = [s for run in json.loads(KEPT_RUN.read_text())["runs"] for s in run["latency"]]
    assert len(steps) == 9
    for s in steps:
        values, counts = added.buckets(s["hdr"])
        assert counts.sum() == s["completed"]
        assert (added.percentile(values, counts, 50), added.percentile(values, counts, 99)) == (
            s["p50_us"],
            s["p99_us"],
        )


def test_identical_large_histograms_give_a_narrow_interval_around_zero() -> None:
    n = 50_000
    lat = latencies(n, 1)
    cis = ci(lat, lat)
    for q, key in ((0.5, "p50"), (0.99, "p99")):
        lo, hi = cis[key]  # type: ignore[misc]
        assert lo <= 0 <= hi
        # as wide as the closed form says, within the bootstrap's own error
        assert 0.6 * asymptotic_width(q, n) < hi - lo < 1.5 * asymptotic_width(q, n), (key, lo, hi)


def test_a_histogram_shifted_by_a_constant_gives_that_constant() -> None:
    lat = latencies(20_000, 2)
    for target, direct in (
        (lat + 250, lat),
        (latencies(20_000, 3, shift=250), latencies(20_000, 4)),
    ):
        cis = ci(target, direct)
        for key in ("p50", "p99"):
            lo, hi = cis[key]  # type: ignore[misc]
            assert lo <= 250 <= hi, (key, lo, hi)


def test_small_samples_give_wider_intervals_than_large_ones() -> None:
    widths = {}
    for n in (500, 50_000):
        cis = ci(latencies(n, 5, shift=80), latencies(n, 6))
        widths[n] = {k: v[1] - v[0] for k, v in cis.items()}  # type: ignore[index]
    for key in ("p50", "p99"):
        # a hundred times the requests: about a tenth of the width
        assert 5 < widths[500][key] / widths[50_000][key] < 20, widths


def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    """120 pairs of independent samples of 1,000 latencies, true difference of quantiles 80 us
    (the buckets straight from the samples: below 2,048 us they are the histogram's)."""
    rng = np.random.default_rng(7)
    hits = {50: 0, 99: 0}
    for k in range(120):
        draws = [
            added.resample(*np.unique(lat, return_counts=True), (50, 99), 200, rng)
            for lat in (latencies(1000, 100 + 2 * k, shift=80), latencies(1000, 101 + 2 * k))
        ]
        for j, q in enumerate(hits):
            lo, hi = added.interval((draws[0] - draws[1])[None, j, :])
            hits[q] += lo <= 80 <= hi
    # 95% of 120 is 114, with a binomial standard deviation of 2.4
    assert all(106 <= h <= 120 for h in hits.values()), hits


def results_of(reps: list[dict[str, np.ndarray]], hdr: bool = True) -> dict[str, Any]:
    runs = []
    for r, rep in enumerate(reps):
        for target, lat in rep.items():
            s = step(lat)
            if not hdr:
                del s["hdr"]
            runs.append({"rep": r, "mode": "http", "target": target, "rps": 1000.0, "rps_per_cpu_s": 1000.0,
                         "latency": [{**s, "load": 0.5}]})  # fmt: skip
    return {"command": "c", "started": "s", "backend": "b", "pinning": {}, "body_bytes": 1024,
            "wrk_connections": 50, "loads": [0.5], "runs": runs, "skipped": {}}  # fmt: skip


THREE = [
    {"direct": latencies(5000, 10 + r), "simcore": latencies(5000, 20 + r, shift=s), "haproxy": latencies(5000, 30 + r, shift=40)}
    for r, s in enumerate((60, 90, 400))
]  # fmt: skip


@pytest.fixture(scope="module")
def three() -> dict[str, Any]:
    results = results_of(THREE)
    results["summary"] = summarize(results)
    return results


def test_repetitions_give_the_median_its_interval_and_their_own_spread(
    three: dict[str, Any],
) -> None:
    results = three
    a = results["summary"]["http"]["simcore"]["added"]["50%"]
    own = [x["p50_us"] for x in a["reps"]]
    assert a["interval"] == "bootstrap" and a["p50_us"] == sorted(own)[1]
    assert a["p50_ci95_us"][0] <= a["p50_us"] <= a["p50_ci95_us"][1]
    for x in a["reps"]:  # each repetition's own interval holds its own difference
        assert x["p50_ci95_us"][0] <= x["p50_us"] <= x["p50_ci95_us"][1]
    # the third repetition (shift 400) lies far outside the median's interval: the table shows its range
    assert max(own) > a["p50_ci95_us"][1] + 100
    assert a["reps_outside_ci95"]["p50"] is True
    row = next(line for line in render_table(results).splitlines() if line.startswith("| simcore"))
    lo, hi = a["p50_ci95_us"]
    assert (
        f"{a['p50_us']:,} [{lo:,.0f}, {hi:,.0f}]" in row
        and f"(reps {min(own):,}..{max(own):,} / " in row
    )
    assert "| direct |" in render_table(results) and "0 / 0 |" in render_table(results)


def test_the_interval_is_seeded_and_does_not_depend_on_the_other_targets(
    three: dict[str, Any],
) -> None:
    both = three["summary"]["http"]["simcore"]["added"]["50%"]
    alone = summarize(
        results_of([{k: v for k, v in rep.items() if k != "haproxy"} for rep in THREE])
    )
    assert alone["http"]["simcore"]["added"]["50%"] == both


def test_an_old_folder_without_histograms_still_summarizes_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(results_of(THREE[:2], hdr=False)))
    assert resummarize(tmp_path, 2.0) == 0
    a = json.loads((tmp_path / "results.json").read_text())["summary"]["http"]["simcore"]["added"][
        "50%"
    ]
    assert a["p50_ci95_us"] is None and a["interval"].startswith("unavailable: no histogram")
    assert a["reps_outside_ci95"] == {}
    assert a["p50_us"] == np.median([x["p50_us"] for x in a["reps"]])
    table = (tmp_path / "results.md").read_text()
    assert (
        "(no interval)" in table and "- interval unavailable: no histogram in the results" in table
    )


def test_summarize_only_recomputes_the_interval_of_a_kept_run(tmp_path: Path) -> None:
    shutil.copy(KEPT_RUN, tmp_path / "results.json")
    assert resummarize(tmp_path, 2.0) == 0
    summary = json.loads((tmp_path / "results.json").read_text())["summary"]["http"]
    for target in ("simcore", "haproxy"):
        a = summary[target]["added"]["50%"]
        assert a["interval"] == "bootstrap" and len(a["reps"]) == 3
        for key in ("p50", "p99"):
            lo, hi = a[f"{key}_ci95_us"]
            assert lo <= a[f"{key}_us"] <= hi

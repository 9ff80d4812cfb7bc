"""`failover-sim compare`: two results folders side by side, the --max-diff gate, and how
well a difference is known (its resolution, and the replications a bound would need)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.analysis.compare import comparison, replications_needed
from sim.analysis.stats import t_quantile_975
from sim.api import open_results
from sim.cli import main
from tests.model.scenarios import BASE


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same small scenario run twice with different seeds (4 replications each)."""
    tmp = tmp_path_factory.mktemp("compare")
    doc = copy.deepcopy(BASE)
    doc.update({"name": "compare", "replications": 4, "duration": "90s"})
    doc["clients"][0]["count"] = 200
    doc["dns"]["resolvers"][0]["count"] = 50
    doc["dns"]["service_ttl"] = doc["dns"]["balancer_ttl"] = "30s"
    path = tmp / "compare.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = []
    for seed in (1, 2):
        folder = tmp / f"seed{seed}"
        assert main(["run", str(path), "--out", str(folder), "--seed", str(seed), "--quiet"]) == 0
        out.append(folder)
    return out[0], out[1]


def test_a_run_against_itself_differs_by_nothing(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = runs
    table = comparison(open_results(a), open_results(a))
    assert set(table["strategy"]) == {"cname_repoint", "eip_remap"}
    assert (table["difference"].abs() == 0).all()
    assert (table.loc[table["metric"] == "availability", "within_ci"] == "yes").all()
    assert main(["compare", str(a), str(a), "--max-diff", "availability=0"]) == 0


def test_difference_and_resolution_from_the_replications(runs: tuple[Path, Path]) -> None:
    a, b = (open_results(p) for p in runs)
    table = comparison(a, b).set_index(["strategy", "metric"])
    for strategy in ("cname_repoint", "eip_remap"):
        row = table.loc[(strategy, "failed")]
        # by hand from each run's replications: the mean of B minus the mean of A, and the
        # half-widths of both means' log-scale intervals (m/f to m*f, f = exp(t s / (sqrt(n) m)),
        # so half = m sinh(t s / (sqrt(n) m))) in quadrature
        means, halves = [], []
        for run in (a, b):
            values = run.replications.loc[run.replications["strategy"] == strategy, "failed"].to_numpy(float)
            means.append(values.mean())
            log_half = t_quantile_975(len(values) - 1) * values.std(ddof=1) / (math.sqrt(len(values)) * values.mean())
            halves.append(values.mean() * math.sinh(log_half))
        assert row["difference"] == pytest.approx(means[1] - means[0])
        assert row["resolution"] == pytest.approx(math.hypot(*halves), rel=1e-6)
        assert row["n_a"] == row["n_b"] == 4


def test_replications_needed_closed_form() -> None:
    # per-replication sd 2.4 points in both runs, 3 replications each: the half-widths are
    # t(2) 2.4 / sqrt(3); resolving 0.5 points needs 1.96^2 (2.4^2 + 2.4^2) / 0.5^2 = 177.01,
    # so 178 of each
    half = t_quantile_975(2) * 2.4 / math.sqrt(3)
    assert replications_needed(half, 3, half, 3, 0.5) == 178
    # the answer does not depend on how many replications the spread was read from
    half30 = t_quantile_975(29) * 2.4 / math.sqrt(30)
    assert replications_needed(half, 3, half30, 30, 0.5) == 178
    assert math.isnan(replications_needed(math.nan, 1, half, 3, 0.5))
    # and at that many replications the difference's half-width is indeed about the bound
    n = 177
    assert 1.96 * math.sqrt(2 * 2.4**2 / n) == pytest.approx(0.5, abs=0.002)


def test_max_diff_gate_and_the_resolution_it_reports(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a, b = runs
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "resolution" in out and "±" in out
    written = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert {"difference", "resolution", "within_ci"} <= set(written.columns)
    assert (tmp_path / "cmp" / "compare_success_rate.png").stat().st_size > 0
    # a bound far inside the noise: broken, and the message says the runs cannot check it
    assert main(["compare", str(a), str(b), "--max-diff", "failed=0.000001"]) == 1
    out = capsys.readouterr().out
    assert "beyond --max-diff" in out and "know the difference only to" in out and "of each would resolve" in out


def test_unreadable_folder_and_bad_bound_exit_2(runs: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = runs
    assert main(["compare", str(a), str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["compare", str(a), str(a), "--max-diff", "availability=lots"]) == 2
    assert main(["compare", str(a), str(a), "--max-diff", "speed=0.1"]) == 2
    assert "unknown metric" in capsys.readouterr().err


def test_replications_needed_delivers_the_promised_interval() -> None:
    # runs of a known spread (sd 2 and 3), read through 4 and 10 replications' intervals:
    # with the advised number of replications of each, |B - A| stays within the bound
    # about 95% of the time when the two agree in truth
    rng = np.random.default_rng(11)
    sd_a, sd_b, bound = 2.0, 3.0, 1.0
    half_a = t_quantile_975(3) * sd_a / math.sqrt(4)
    half_b = t_quantile_975(9) * sd_b / math.sqrt(10)
    n = int(replications_needed(half_a, 4, half_b, 10, bound))
    inside = np.mean([abs(rng.normal(50, sd_b, n).mean() - rng.normal(50, sd_a, n).mean()) <= bound
                      for _ in range(4000)])
    assert 0.94 <= inside <= 0.96, (n, inside)
    # one replication fewer of each misses the promise on average
    assert 1.96 * math.sqrt((sd_a**2 + sd_b**2) / (n - 1)) > bound * 0.999


class _Run:
    """Just what the paired comparison reads from a results folder."""

    def __init__(self, seed: int, values: list[float], recoveries: list[list[float]]) -> None:
        self.manifest = {"seed": seed, "scenario_sha256": "abc", "draws": 2}
        n = len(values)
        self.replications = pd.DataFrame({"strategy": ["s"] * n, "replication": range(n),
                                          "requests": [1000] * n, "failed": [round(1000 * (1 - v)) for v in values]})
        self.clients = pd.DataFrame([{"strategy": "s", "replication": k, "recovery_s": r, "failed": 1}
                                     for k, rs in enumerate(recoveries) for r in rs])


def test_paired_difference_by_hand() -> None:
    from sim.analysis.compare import pairable, paired_difference

    a = _Run(7, [0.90, 0.80, 0.70, 0.95], [[10, 20], [30], [40, math.nan], [50]])
    b = _Run(7, [0.91, 0.82, 0.70, 0.97, 0.10], [[12, 22], [33], [40], [50], [99]])
    assert pairable(a, b) is None
    # availability: B_k - A_k over the 4 replications both have (B's fifth has no partner)
    d = np.array([0.01, 0.02, 0.0, 0.02])
    mean, half, n, sd = paired_difference(a, b, "s", "availability")
    assert n == 4 and math.isclose(mean, d.mean(), abs_tol=1e-12)
    assert math.isclose(sd, d.std(ddof=1), rel_tol=1e-9)
    assert math.isclose(half, t_quantile_975(3) * d.std(ddof=1) / 2, rel_tol=1e-9)
    # recovery: each replication's mean over its recovered clients
    mean, _, n, _ = paired_difference(a, b, "s", "recovery_s.mean")
    assert n == 4 and math.isclose(mean, np.mean([2.0, 3.0, 0.0, 0.0]))
    b.manifest["seed"] = 8
    assert "seeds" in pairable(a, b)
    b.manifest.update(seed=7, draws=1)
    assert "draw" in pairable(a, b)
    b.manifest.update(draws=2, scenario_sha256="other")
    assert "scenarios" in pairable(a, b)


def test_same_seed_pairs_replication_by_replication(tmp_path: Path, runs: tuple[Path, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The model run twice on one seed, 4 and 6 replications: replications 0-3 drew the
    same inputs, so paired they differ by exactly nothing, while the plain means differ."""
    a = runs[0]
    longer = tmp_path / "six"
    manifest = open_results(a).manifest
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(manifest["scenario"]))
    assert main(["run", str(scenario), "--out", str(longer), "--seed", "1", "--replications", "6", "--quiet"]) == 0
    table = comparison(open_results(a), open_results(longer)).set_index(["strategy", "metric"])
    row = table.loc[("cname_repoint", "failed")]
    assert row["pairs"] == 4 and row["paired"] == 0 and row["paired_resolution"] == 0
    assert row["difference"] != 0
    capsys.readouterr()
    assert main(["compare", str(a), str(longer), "--max-diff", "failed=0"]) == 0
    assert "paired:" in capsys.readouterr().out
    assert main(["compare", str(a), str(runs[1])]) == 0
    assert "not paired: different seeds" in capsys.readouterr().out
    # the model run on a results folder takes that run's seed: it pairs by default
    again = tmp_path / "again"
    assert main(["run", str(runs[1]), "--out", str(again), "--replications", "2", "--quiet"]) == 0
    row = comparison(open_results(runs[1]), open_results(again)).set_index(["strategy", "metric"]).loc[("eip_remap", "failed")]
    assert open_results(again).manifest["seed"] == 2 and row["pairs"] == 2 and row["paired"] == 0


def test_relative_bound_against_a_zero_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A relative --max-diff where A's value is 0 (no failures without a fault): infinitely
    far when B's is not, within when both are 0; no division error."""
    doc = copy.deepcopy(BASE)
    doc.update({"name": "zero", "replications": 2, "duration": "60s"})
    folders = []
    for name, faults in (("calm", []), ("fault", doc["faults"])):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(dict(doc, faults=faults)))
        folders.append(tmp_path / name)
        assert main(["run", str(path), "--out", str(folders[-1]), "--quiet"]) == 0
    calm, fault = (str(f) for f in folders)
    assert main(["compare", calm, calm, "--max-diff", "failed=0.1"]) == 0
    capsys.readouterr()
    assert main(["compare", calm, fault, "--max-diff", "failed=0.1", "--different-scenarios"]) == 1
    assert "failed: inf > 0.1" in capsys.readouterr().out


def test_different_scenarios_are_said_up_front_and_refused_unless_asked(
        tmp_path: Path, runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Two seeds of one scenario compare; a changed TTL is another scenario: refused (2)
    before any table, naming the field, unless --different-scenarios."""
    a = runs[0]
    doc = open_results(a).manifest["scenario"]
    other = tmp_path / "ttl.yaml"
    other.write_text(yaml.safe_dump(dict(doc, dns=dict(doc["dns"], service_ttl="300s"), replications=2)))
    b = tmp_path / "ttl"
    assert main(["run", str(other), "--out", str(b), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "different scenarios" in err and "dns.service_ttl (30s and 5m)" in err and "replications" not in err
    assert "--different-scenarios" in err
    assert main(["compare", str(a), str(b), "--different-scenarios"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A and B are different scenarios") and "dns.service_ttl" in out.splitlines()[0]
    assert "availability" in out  # the table follows
    capsys.readouterr()
    assert main(["compare", str(a), str(runs[1])]) == 0  # another seed is not another scenario
    assert "different scenarios" not in capsys.readouterr().out

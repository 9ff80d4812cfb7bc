"""`failover-sim check` and baselines: pass, fail, undecided, JUnit, regressions."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from sim.analysis.baseline import baseline_document, compare, regression
from sim.analysis.expect import decide
from sim.analysis.intervals import Interval, metric_interval
from sim.cli import main
from sim.results.baselines import read_baseline, write_baseline
from sim.runner import run
from tests.model.scenarios import BASE, scenario


def write(tmp_path: Path, name: str, expect: list[dict], **changes: object) -> Path:
    doc = {k: v for k, v in BASE.items()}
    doc = yaml.safe_load(yaml.safe_dump(doc))
    doc.update({"name": name, "replications": 3, "duration": "90s", "expect": expect})
    doc["clients"][0]["count"] = 200
    doc["dns"]["resolvers"][0]["count"] = 50
    for key, value in changes.items():
        doc[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_decide_on_the_interval() -> None:
    assert decide(">=", 0.9, Interval(0.95, 0.93, 0.97)) == "pass"
    assert decide(">=", 0.9, Interval(0.85, 0.83, 0.87)) == "fail"
    assert decide(">=", 0.9, Interval(0.91, 0.88, 0.94)) == "undecided"
    assert decide("<=", 60, Interval(50, 40, 70)) == "undecided"
    assert decide("==", 0, Interval(0, 0, 0)) == "pass"
    assert decide("<=", 60, Interval(50, math.nan, math.nan)) == "pass"  # one replication: the value decides


def test_pass_fail_and_undecided_end_to_end_with_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # eip recovery here is 20 + 2 + 5 s + the wait for the next request (1 s)
    path = write(
        tmp_path,
        "gate",
        [
            {"strategy": "eip_remap", "metric": "recovery_s.mean", "op": "<=", "value": 60},   # pass
            {"strategy": "eip_remap", "metric": "recovery_s.mean", "op": "<=", "value": 10},   # fail
            {"strategy": "eip_remap", "metric": "recovery_s.mean", "op": "<=", "value": "__mid__"},  # undecided
        ],
    )
    # put the third bound inside the measured interval, so noise decides it
    results = run(scenario(**{"name": "gate", "replications": 3, "duration": "90s", "clients.0.count": 200, "dns.resolvers.0.count": 50}), strategies=["eip_remap"])
    mid = metric_interval(results, "eip_remap", "recovery_s.mean")
    assert mid.low < mid.value < mid.high
    path.write_text(path.read_text().replace("__mid__", str(mid.value)))
    junit = tmp_path / "check.xml"
    assert main(["check", str(path), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "PASS" in out and "FAIL" in out and "UNDECIDED" in out
    assert "2 of 3 expectations not met (1 undecided)" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "gate" and suite.get("tests") == "3" and suite.get("failures") == "2"
    cases = suite.findall("testcase")
    kinds = [c.find("failure").get("type") if c.find("failure") is not None else "pass" for c in cases]
    assert kinds == ["pass", "fail", "undecided"]
    assert "raise --replications" in cases[2].find("failure").get("message")


def test_all_passing_exits_0_and_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good", [{"strategy": "eip_remap", "metric": "availability", "op": ">=", "value": 0.5}])
    assert main(["check", str(good)]) == 0
    unknown = write(tmp_path, "unknown", [{"strategy": "eip_remap", "metric": "happiness", "op": ">=", "value": 1}])
    assert main(["check", str(unknown)]) == 2
    assert "unknown metric 'happiness'" in capsys.readouterr().err
    none = write(tmp_path, "none", [])
    assert main(["check", str(none)]) == 2


def test_recovery_percentile_counts_never_recovered_as_unbounded() -> None:
    # resolve-once clients never recover under CNAME repointing: p99 is unbounded
    sc = scenario(**{"replications": 2, "duration": "90s", "clients.0.count": 50, "clients.0.stub_cache": {"kind": "forever"}, "dns.resolvers.0.count": 10})
    results = run(sc, strategies=["cname_repoint"])
    iv = metric_interval(results, "cname_repoint", "recovery_s.p99")
    assert math.isinf(iv.value) and math.isinf(iv.high)
    assert decide("<=", 600, iv) == "fail"


def test_baseline_regression_detected_and_non_regression_not_flagged(tmp_path: Path) -> None:
    common = {"replications": 3, "duration": "6m", "clients.0.count": 200, "dns.resolvers.0.count": 200}
    short = run(scenario(**common, **{"dns.service_ttl": "30s"}), strategies=["cname_repoint"])
    write_baseline(tmp_path, baseline_document(short))
    stored = read_baseline(tmp_path, "validation")
    # the same design on other seeds: nothing flagged
    again = run(scenario(**common, **{"dns.service_ttl": "30s"}), strategies=["cname_repoint"], seed=99)
    assert not [r for r in compare(again, stored) if r["regression"]]
    # a longer TTL: recovery is worse, and flagged
    longer = run(scenario(**common, **{"dns.service_ttl": "240s"}), strategies=["cname_repoint"])
    flagged = {r["metric"] for r in compare(longer, stored) if r["regression"]}
    assert "recovery_s.mean" in flagged and "availability" in flagged
    assert "dns_queries" not in flagged  # neutral: shown, never flagged


def test_regression_direction() -> None:
    old = {"value": 0.99, "low": 0.98, "high": 0.995}
    assert regression("availability", old, {"value": 0.9, "low": 0.89, "high": 0.91})
    assert not regression("availability", old, {"value": 0.999, "low": 0.998, "high": 1.0})
    assert regression("failed", {"value": 10, "low": 8, "high": 12}, {"value": 20, "low": 18, "high": 22})
    assert not regression("requests", {"value": 10, "low": 8, "high": 12}, {"value": 20, "low": 18, "high": 22})


def test_vs_baseline_expectation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "validation", [{"strategy": "eip_remap", "metric": "recovery_s.mean", "op": "<=", "vs_baseline": {"tolerance": 0.5}}])
    baselines = tmp_path / "baselines"
    assert main(["baseline", "record", str(path), "--into", str(baselines)]) == 0
    assert (baselines / "validation.json").is_file()
    assert main(["check", str(path), "--baselines", str(baselines)]) == 0
    capsys.readouterr()
    assert main(["baseline", "compare", str(path), "--from", str(baselines)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("validation: the baseline recorded 20")
    assert lines[1].split() == ["strategy", "metric", "baseline", "this", "run", "verdict"]
    rows = lines[2:-1]
    assert len(rows) >= 20 and not any("REGRESSION" in line for line in rows)
    assert lines[-1] == f"verdict: no regression in {len(rows)} metrics (none has this run's interval wholly on the bad side of the baseline's)"
    # the baseline made much better than anything this run can reach: a regression, named
    stored = json.loads((baselines / "validation.json").read_text())
    stored["strategies"]["eip_remap"]["recovery_s.mean"] = {"value": 0.001, "low": 0.0005, "high": 0.002}
    (baselines / "validation.json").write_text(json.dumps(stored))
    assert main(["baseline", "compare", str(path), "--from", str(baselines)]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"verdict: REGRESSION in 1 of {len(rows)} metrics (eip_remap recovery_s.mean)"), last
    assert main(["check", str(path), "--baselines", str(tmp_path / "none")]) == 2
    assert "no baseline" in capsys.readouterr().err


def test_drain_metrics_are_checked_by_their_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A planned change with a 60 s TTL and no stub cache: a minute and a half after it
    nobody is sent to the old balancer any more (the TTL has run out everywhere), while
    ten seconds after it most are; the names come from report.stale_at."""
    expect = [
        # none measured: Wilson's upper bound on an all-zero share is still above 0, so the bounds are small, not 0
        {"strategy": "cname_repoint", "metric": "stale_requests@90s", "op": "<=", "value": 0.01},
        {"strategy": "cname_repoint", "metric": "stale_clients@90s", "op": "<=", "value": 0.05},
        {"strategy": "cname_repoint", "metric": "stale_requests@10s", "op": ">=", "value": 0.5},
        {"strategy": "cname_repoint", "metric": "drain_s.max", "op": "<=", "value": 120},
    ]
    path = write(tmp_path, "drain-gate", expect, strategies=["cname_repoint"], duration="4m",
                 faults=[{"kind": "dns_change", "at": "30s"}], report={"stale_at": ["10s", "90s"]})
    doc = yaml.safe_load(path.read_text())
    doc["dns"]["propagation"] = "0s"
    path.write_text(yaml.safe_dump(doc))
    assert main(["check", str(path)]) == 0, capsys.readouterr()
    doc["expect"] = [{"strategy": "cname_repoint", "metric": "stale_requests@2m", "op": "<=", "value": 0.0}]
    path.write_text(yaml.safe_dump(doc))
    assert main(["check", str(path)]) == 2
    assert "unknown metric 'stale_requests@2m'" in capsys.readouterr().err

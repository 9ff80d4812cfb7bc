"""A scenario's `expect:` block decided on a run's tables (`failover-sim check`).

Each expectation is decided on the metric's 95% confidence interval across
replications, not on its mean alone: pass when the whole interval meets the
bound, fail when the whole interval misses it, undecided when the interval
straddles it (noise decides; more replications settle it). An undecided
expectation does not pass: the bound is not shown to hold.
"""

from __future__ import annotations

import math
import operator
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sim.analysis.intervals import Interval, RunTables, metric_interval, number
from sim.scenario.models import Expectation

__all__ = ["ExpectationError", "Verdict", "baseline_bound", "decide", "format_verdicts", "junit_xml", "verdicts"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq,
}  # fmt: skip


class ExpectationError(Exception):
    """An expectation that cannot be decided (its baseline lacks the metric)."""


@dataclass(frozen=True)
class Verdict:
    scenario: str
    expectation: Expectation
    bound: float
    measured: Interval
    status: str  # pass | fail | undecided

    @property
    def name(self) -> str:
        e = self.expectation
        return f"{e.strategy} {e.metric} {e.op} {number(self.bound)}"

    @property
    def message(self) -> str:
        e = self.expectation
        text = f"{e.strategy} {e.metric}: expected {e.op} {number(self.bound)}, measured {self.measured}"
        if self.status == "undecided":
            text += "; the interval straddles the bound: raise --replications to settle it"
        return text


def decide(op: str, bound: float, measured: Interval) -> str:
    test = _OPS[op]
    if not measured.known:
        return "pass" if test(measured.value, bound) else "fail"
    low_ok, high_ok = test(measured.low, bound), test(measured.high, bound)
    if op == "==":
        if measured.low == measured.high == bound:
            return "pass"
        return "undecided" if measured.low <= bound <= measured.high else "fail"
    if low_ok and high_ok:
        return "pass"
    if not low_ok and not high_ok:
        return "fail"
    return "undecided"


def baseline_bound(expectation: Expectation, stored: dict[str, Any]) -> float:
    """The bound an expectation `vs_baseline` compares with: the stored value,
    moved by the tolerance in the direction the operator allows."""
    try:
        base = float(stored["strategies"][expectation.strategy][expectation.metric]["value"])
    except KeyError:
        raise ExpectationError(
            f"the baseline has no {expectation.metric} for {expectation.strategy}; record it again"
        ) from None
    tol = expectation.vs_baseline.tolerance if expectation.vs_baseline else 0.0
    slack = tol * abs(base)
    return base - slack if expectation.op in (">=", ">") else base + slack


def verdicts(
    name: str, expect: Sequence[Expectation], tables: RunTables, stored: dict[str, Any] | None = None
) -> list[Verdict]:
    """One verdict per expectation of scenario `name` on a run's tables; `stored` is the
    scenario's baseline (`sim.results.baselines.read_baseline`), needed by `vs_baseline`."""
    out = []
    for e in expect:
        if e.vs_baseline and stored is None:
            raise ExpectationError(f"expectation {e.strategy} {e.metric} is vs_baseline, and no baseline was given")
        bound = baseline_bound(e, stored) if e.vs_baseline else float(e.value)  # type: ignore[arg-type]
        measured = metric_interval(tables, e.strategy, e.metric)
        if math.isnan(measured.value):
            # not a measured failure: the run had nothing to measure it on
            raise ExpectationError(
                f"{e.strategy} {e.metric}: this run does not measure it (a drain needs a DNS change or address "
                "move on an engine that tracks targets, the model; a planning metric needs incidents:, and a "
                "cost needs cost:)"
            )
        out.append(Verdict(name, e, bound, measured, decide(e.op, bound, measured)))
    return out


def junit_xml(verdicts: Sequence[Verdict]) -> bytes:
    """JUnit XML: one testsuite per scenario, one testcase per expectation."""
    root = ET.Element("testsuites", name="failover-sim check")
    for scenario in dict.fromkeys(v.scenario for v in verdicts):
        mine = [v for v in verdicts if v.scenario == scenario]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=scenario,
            tests=str(len(mine)),
            failures=str(sum(v.status != "pass" for v in mine)),
        )
        for v in mine:
            case = ET.SubElement(suite, "testcase", classname=scenario, name=v.name)
            if v.status != "pass":
                failure = ET.SubElement(case, "failure", type=v.status, message=v.message)
                failure.text = v.message
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def format_verdicts(verdicts: Sequence[Verdict]) -> str:
    rows = [("scenario", "strategy", "metric", "expected", "measured [95% CI]", "result")]
    for v in verdicts:
        e = v.expectation
        rows.append((v.scenario, e.strategy, e.metric, f"{e.op} {number(v.bound)}", str(v.measured), v.status.upper()))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)

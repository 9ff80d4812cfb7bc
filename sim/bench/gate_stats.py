"""The regression gate's false-alarm rate and power, from logged gate runs (docs/ci.md).

Input: the JSON lines `python -m sim.bench.regression --log FILE` appends, some
runs on unchanged code and some with `--inject-slowdown`. Per figure, on the
gate's statistic s (the mean over a run's pairs of the log ratio):

- baseline: the median of s over the unchanged runs;
- sigma: the standard deviation of s between unchanged runs, and its one-sided
  95% upper bound (chi-square, n - 1 degrees of freedom);
- threshold T (a log drop): false alarms under 1% need T >= z(0.99) sigma_up,
  catching the slowdown 95% of the time needs T <= shift - z(0.95) sigma_up,
  where shift = log(1 + slowdown) (30% more CPU work: 0.262). T is the middle
  of that interval, so that a drift of the machine between calibration and CI
  eats both margins alike; when the interval is empty, T = z(0.99) sigma_up
  (false alarms first) and the figure is marked as lacking power;
- counted: false alarms among the unchanged runs and catches among the
  injected ones at T, and the normal-theory rates beside them (power from
  the injected runs' mean shift and spread);
- sigma with the first k pairs of each run, k = 1..pairs, to choose the count.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sim.bench.regression import statistic

NORMAL = statistics.NormalDist()
Z_FALSE_ALARM = NORMAL.inv_cdf(0.99)  # false alarms under 1%
Z_POWER = NORMAL.inv_cdf(0.95)  # the slowdown caught 95% of the time


def chi2_quantile(p: float, dof: int) -> float:
    """Wilson-Hilferty's approximation (within 1% from 10 degrees of freedom up)."""
    z = NORMAL.inv_cdf(p)
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


def sigma_upper(sigma: float, n: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound of a standard deviation estimated from n values."""
    return sigma * math.sqrt((n - 1) / chi2_quantile(1 - confidence, n - 1))


def threshold(sigma_up: float, shift: float) -> tuple[float, bool]:
    """(T, whether both aims hold): the middle of [z99 sigma_up, shift - z95 sigma_up]."""
    low, high = Z_FALSE_ALARM * sigma_up, shift - Z_POWER * sigma_up
    if low <= high:
        return (low + high) / 2, True
    return low, False


def figure(unchanged: list[list[float]], injected: list[list[float]], slowdown: float) -> dict[str, Any]:
    """The calibration of one figure from its runs' per-pair ratios."""
    s0 = [statistic(r) for r in unchanged]
    s1 = [statistic(r) for r in injected]
    n = len(s0)
    base = statistics.median(s0)
    sigma = statistics.stdev(s0)
    sig_up = sigma_upper(sigma, n)
    shift = math.log(1 + slowdown)
    t, feasible = threshold(sig_up, shift)
    pairs = min(len(r) for r in unchanged)
    by_pairs = {k: statistics.stdev(statistic(r[:k]) for r in unchanged) for k in range(1, pairs + 1)}
    # the mean's spread against the median's, to check the choice of statistic
    by_statistic = {"mean": sigma, "median": statistics.stdev(statistics.median(math.log(x) for x in r) for r in unchanged)}
    # pair-to-pair spread inside a run, against the run-to-run spread of a run's mean
    within = statistics.mean(statistics.stdev(math.log(x) for x in r) for r in unchanged if len(r) > 1)
    out: dict[str, Any] = {
        "runs_unchanged": n, "runs_injected": len(s1), "pairs": pairs,
        "baseline": math.exp(base), "sigma": sigma, "sigma_upper95": sig_up,
        "log_threshold": t, "allowed_drop": 1 - math.exp(-t), "both_aims_hold": feasible,
        "false_alarms": sum(s < base - t for s in s0),
        "false_alarm_rate_normal": NORMAL.cdf(-t / sigma) if sigma > 0 else 0.0,
        "unchanged_range": [math.exp(min(s0) - base), math.exp(max(s0) - base)],
        "sigma_by_pairs": by_pairs, "sigma_by_statistic": by_statistic, "pair_sigma_within_run": within,
    }
    if s1:
        inj = statistics.fmean(s1) - base
        # their own spread from 5 runs on (it was the wider here); below that the unchanged runs'
        inj_sigma = statistics.stdev(s1) if len(s1) >= 5 else sigma
        out.update({
            "injected_change": math.exp(inj) - 1, "expected_change": 1 / (1 + slowdown) - 1,
            "caught": sum(s < base - t for s in s1),
            "power_normal": NORMAL.cdf((-t - inj) / inj_sigma) if inj_sigma > 0 else float(inj < -t),
            "injected_range": [math.exp(min(s1) - base), math.exp(max(s1) - base)],
        })
    return out


def analyse(records: list[dict[str, Any]]) -> dict[str, Any]:
    unchanged = [r for r in records if not r["inject_slowdown"]]
    injected = [r for r in records if r["inject_slowdown"]]
    slowdowns = {r["inject_slowdown"] for r in injected}
    if len(slowdowns) > 1:
        raise ValueError(f"runs with different slowdowns: {sorted(slowdowns)}")
    slowdown = slowdowns.pop() if slowdowns else 0.3
    if len(unchanged) < 3:
        raise ValueError(f"{len(unchanged)} runs of unchanged code: too few for a spread")
    names = list(unchanged[0]["pairs"])
    walls = [r["wall_s"] for r in records]
    loads = [x for r in records for x in r["loadavg_1m"]]
    return {
        "slowdown": slowdown,
        "figures": {k: figure([r["pairs"][k] for r in unchanged], [r["pairs"][k] for r in injected], slowdown)
                    for k in names},
        "wall_s": {"median": statistics.median(walls), "max": max(walls)},
        "loadavg_1m": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
        "from": records[0]["time"], "to": records[-1]["time"], "environment": records[0]["environment"],
        "runs": [{"time": r["time"], "inject_slowdown": r["inject_slowdown"], "wall_s": r["wall_s"],
                  "statistic": {k: math.exp(statistic(v)) for k, v in r["pairs"].items()}} for r in records],
    }


def render(result: dict[str, Any]) -> str:
    lines = [f"{'figure':<30} {'base':>7} {'sigma':>6} {'s_up':>6} {'drop':>6} {'FA':>6} {'FA(N)':>7} "
             f"{'inj':>7} {'caught':>7} {'pow(N)':>7}"]
    for name, f in result["figures"].items():
        lines.append(
            f"{name:<30} {f['baseline']:7.3f} {f['sigma']:6.3f} {f['sigma_upper95']:6.3f} "
            f"{f['allowed_drop']:6.1%} {f['false_alarms']:>3}/{f['runs_unchanged']:<2} {f['false_alarm_rate_normal']:7.1e} "
            + (f"{f['injected_change']:+7.1%} {f['caught']:>4}/{f['runs_injected']:<2} {f['power_normal']:7.3f}"
               if "caught" in f else "")
            + ("" if f["both_aims_hold"] else "  (sigma too large for both aims)")
        )
        lines.append("    sigma by pairs: " + ", ".join(f"{k}: {v:.3f}" for k, v in f["sigma_by_pairs"].items())
                     + f"; a pair within a run: {f['pair_sigma_within_run']:.3f}; median instead of mean: "
                     f"{f['sigma_by_statistic']['median']:.3f}")
    w, la = result["wall_s"], result["loadavg_1m"]
    lines.append(f"gate wall time: median {w['median']:.0f} s, max {w['max']:.0f} s; "
                 f"load average (1 min) {la['min']:.1f}-{la['max']:.1f}, median {la['median']:.1f}")
    return "\n".join(lines)


def render_markdown(result: dict[str, Any]) -> str:
    """The table docs/ci.md shows."""
    lines = ["| figure | baseline | sigma (95% upper) | fails below | false alarms: counted, normal | "
             "slowdown injected: change | caught: counted, normal |", "|---" * 7 + "|"]
    for name, f in result["figures"].items():
        lines.append(
            f"| `{name}` | {f['baseline']:.3g} | {f['sigma']:.3f} ({f['sigma_upper95']:.3f}) | "
            f"-{f['allowed_drop']:.1%}{'' if f['both_aims_hold'] else ' (*)'} | "
            f"{f['false_alarms']}/{f['runs_unchanged']}, {f['false_alarm_rate_normal']:.1g} | "
            f"{f.get('injected_change', float('nan')):+.1%} | "
            f"{f.get('caught', 0)}/{f.get('runs_injected', 0)}, {f.get('power_normal', float('nan')):.0%} |")
    return "\n".join(lines)


def write_baseline(path: Path, result: dict[str, Any], source: str) -> None:
    from sim.results.writer import write_json_atomic

    old = json.loads(path.read_text()) if path.is_file() else {}
    figs = result["figures"]
    write_json_atomic(path, {
        **{k: v for k, v in old.items() if k not in ("wall_s", "command")},
        "ratios": {k: f["baseline"] for k, f in figs.items()},
        "log_thresholds": {k: f["log_threshold"] for k, f in figs.items()},
        "date": time.strftime("%Y-%m-%d"), "environment": result["environment"],
        "calibration": source,
        "note": "ratios: the median of the gate's statistic over "
        f"{next(iter(figs.values()))['runs_unchanged']} runs of unchanged code ({result['from']} to {result['to']}); "
        "log_thresholds: the gate fails below log(ratio) minus this, from their spread and "
        f"{next(iter(figs.values())).get('runs_injected', 0)} runs with a {result['slowdown']:.0%} slowdown injected "
        f"(sim.bench.gate_stats, docs/ci.md). Unchanged runs' readings, as change from the baseline: "
        + "; ".join(f"{k} {f['unchanged_range'][0] - 1:+.1%} to {f['unchanged_range'][1] - 1:+.1%}" for k, f in figs.items()),
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.bench.gate_stats",
        description="False-alarm rate and power of the regression gate, and its thresholds, from logged runs.",
        epilog="example:\n  python -m sim.bench.gate_stats /tmp/gate-stats/runs.jsonl --out benchmarks/gate-DATE.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("logs", nargs="+", type=Path, help="JSON lines from `sim.bench.regression --log`")
    parser.add_argument("--markdown", action="store_true", help="also print the table docs/ci.md shows")
    parser.add_argument("--out", type=Path, help="write the analysis (and every run's statistics) here")
    parser.add_argument("--write-baseline", type=Path, metavar="BASELINE",
                        help="store the ratios and thresholds in this baseline file")
    args = parser.parse_args(argv)
    records = [json.loads(line) for p in args.logs for line in p.read_text().splitlines() if line.strip()]
    try:
        result = analyse(records)
    except (ValueError, KeyError) as exc:
        print(f"gate_stats: {exc}", file=sys.stderr)
        return 2
    print(render(result))
    if args.markdown:
        print(render_markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.write_baseline:
        write_baseline(args.write_baseline, result, str(args.out or args.logs[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

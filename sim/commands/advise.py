"""`failover-sim advise`: the cheapest design that meets an objective (`sim.analysis.advise`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sim
from sim.commands._common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, positive_int, print_problems

NAME = "advise"
HELP = "search strategies and settings for the cheapest design that meets an SLO, confirmed on the model"
DESCRIPTION = (
    "Run every strategy (or --strategy ones) over every combination of the --over ranges on the fast engine, "
    "rank the designs that meet the objective (--slo, default the scenario's slo:) within --budget by monthly "
    "cost (infrastructure, DNS queries, expected outage; docs/scenario.md, Planning metrics), then confirm the "
    "cheapest few on the model with check's rule (PASS, FAIL, UNDECIDED on the 95% interval). Prints the "
    "ranked table, the winner or, when none meets the objective, the closest, and every design dropped and why. "
    "Writes ranked.csv, pareto.png (cost against the objective, with intervals) and winner.yaml under --out. "
    "Exit 0 with a confirmed winner, 1 without one, 2 on input it cannot use."
)
EPILOG = (
    "examples:\n  failover-sim advise scenarios/elb-blowup.yaml --slo 'availability>=99.999%' "
    "--over dns.service_ttl=5s..600s --out results/advice\n"
    "  failover-sim advise scenarios/elb-blowup.yaml --budget 20 --over dns.service_ttl=5s..600s --steps 8 "
    "--over failover.detection.interval=10s,30s,60s --out results/advice\n"
    "  failover-sim advise ... --executor dask --scheduler tcp://scheduler:8786 --out results/advice"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("scenario", help="the scenario file whose strategies and ranges are searched")
    p.add_argument("--slo", help="METRIC>=VALUE or METRIC<=VALUE, e.g. availability>=99.95%% (the monthly "
                   "availability; needs incidents:) or latency_ms.p99<=200 (default: the scenario's slo:)")
    p.add_argument("--budget", help="at most this many USD a month in total (e.g. 20 or $20/month)")
    p.add_argument("--over", action="append", default=[], metavar="PATH=LOW..HIGH|V1,V2",
                   help="a scenario path and its range (log-spaced, --steps values) or values (repeatable)")
    p.add_argument("--steps", type=positive_int, default=4, help="values per LOW..HIGH range (default 4)")
    p.add_argument("--strategy", action="append", metavar="NAME", help="search only this strategy (repeatable; "
                   "default: all seven)")
    p.add_argument("--replications", type=positive_int, default=3, help="per design in the search (default 3)")
    p.add_argument("--confirm", type=positive_int, default=3, help="confirm this many of the cheapest on the model")
    p.add_argument("--confirm-replications", type=positive_int, help="model replications per confirmation "
                   "(default: the scenario's)")
    p.add_argument("--executor", default="local", choices=["local", "dask"],
                   help="where the search runs: local processes, or a Dask cluster (as sweep)")
    p.add_argument("--scheduler", help="dask: the scheduler's address (default: start a LocalCluster)")
    p.add_argument("--workers", type=int, help="processes (local) or LocalCluster workers (default: CPU count)")
    p.add_argument("--out", required=True, help="folder for the search (resumable), ranked.csv, pareto.png, winner.yaml")
    p.add_argument("--quiet", action="store_true", help="no progress")


def main(args: argparse.Namespace) -> int:
    from sim.analysis.advise import (
        AdviceError,
        advise,
        expand_over,
        parse_budget,
        summary_lines,
        table_text,
        write_advice,
    )
    from sim.batch import GridError, StoreError

    path = Path(args.scenario)
    if not path.is_file():
        print(f"{path}: cannot read: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        scenario = sim.load(path)
        target = _target(scenario, args.slo)
        budget = parse_budget(args.budget) if args.budget else None
        over = dict(expand_over(option, args.steps) for option in args.over)
        advice = advise(scenario, target, over, budget=budget, strategies=args.strategy,
                        replications=args.replications, confirm_top=args.confirm,
                        confirm_replications=args.confirm_replications, executor=args.executor,
                        workers=args.workers, scheduler=args.scheduler, out=args.out,
                        progress=_progress(args.quiet), say=_say(args.quiet))
    except sim.ScenarioError as exc:
        print_problems(f"{path}: cannot advise: the scenario is invalid", exc.problems)
        return EXIT_USAGE
    except (AdviceError, GridError, StoreError, sim.RunError, ValueError) as exc:
        print(f"{path}: cannot advise: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not advice.ranked.empty:
        print(table_text(advice))
        print()
    print("\n".join(summary_lines(advice)))
    for what, written in write_advice(advice, args.out, scenario=scenario.name).items():
        print(f"{what}: {written}")
    return EXIT_OK if advice.winner is not None else EXIT_INVALID


def _target(scenario: sim.Scenario, text: str | None):  # type: ignore[no-untyped-def]
    from sim.analysis.advise import AdviceError, Target, parse_target

    if text:
        return parse_target(text)
    if scenario.slo is None:
        raise AdviceError("no objective: give --slo (e.g. availability>=99.95%) or slo: in the scenario")
    return Target("monthly.availability", ">=", scenario.slo.availability)


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    """The search's progress (sim.progress): a bar on a terminal, plain lines elsewhere.
    Its total comes with the sweep's first call."""
    from sim.progress import Progress

    return Progress(0, "advise: the search", "units", quiet=quiet)


def _say(quiet: bool):  # type: ignore[no-untyped-def]
    def say(text: str) -> None:
        if not quiet:
            print(f"\n{text}" if sys.stderr.isatty() else text, file=sys.stderr, flush=True)

    return say

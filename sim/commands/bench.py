"""`failover-sim bench model|fast|sweep|core|fit`: the benchmarks (sim.bench, docs/benchmarks.md).

Everything after the target goes to that benchmark's own parser, its --help included.
"""

from __future__ import annotations

import argparse

NAME = "bench"
HELP = "benchmarks: engine speed (model, fast), the balancer against HAProxy and nginx (core), the log fit (fit)"
DESCRIPTION = "Benchmarks; results are saved with the command that produced them."
EPILOG = "examples:\n  failover-sim bench model\n  failover-sim bench fast\n  failover-sim bench core\n  failover-sim bench fit"
TARGETS = ("model", "fast", "sweep", "core", "fit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=list(TARGETS), help="the benchmark; `failover-sim bench TARGET --help` for its options")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options")


def forwarded(rest: list[str]) -> argparse.Namespace | None:
    """With a known target first, the rest is that benchmark's; else None (parse as usual)."""
    if rest[:1] and rest[0] in TARGETS:
        return argparse.Namespace(target=rest[0], args=rest[1:])
    return None


def main(args: argparse.Namespace) -> int:
    if args.target == "core":
        from sim.bench.core import main as bench_main
    elif args.target == "fast":
        from sim.bench.fast import main as bench_main
    elif args.target == "fit":
        from sim.bench.fit import main as bench_main
    elif args.target == "sweep":
        from sim.bench.sweep import main as bench_main
    else:
        from sim.bench.model import main as bench_main
    return bench_main(list(args.args))

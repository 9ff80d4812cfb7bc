"""`failover-sim`: the command line, built on the same functions as the Python API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

import sim
from sim.scenario import Scenario, ScenarioError, load_file, strategy_refusals, zone_violations
from sim.scenario.units import format_duration

DEFAULT_SCENARIO = Path("scenarios/elb-blowup.yaml")

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="failover-sim",
        description="How long are users down when a load balancer fails? "
        "Simulate CNAME repointing against static-address remapping.",
        epilog="example:\n  failover-sim run scenarios/elb-blowup.yaml\n  failover-sim validate --show scenarios/*.yaml",
    )
    parser.add_argument("--version", action="version", version=f"failover-sim {sim.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    v = sub.add_parser(
        "validate",
        help="check scenario files (schema and zone rules) or zone files",
        description="Check scenario files against the v1 contract and the zone rules "
        "(RFC 1034 3.6.2, RFC 2181 10.1). Exit 0 valid, 1 invalid, 2 usage error or unreadable file.",
        epilog="examples:\n  failover-sim validate scenarios/elb-blowup.yaml\n"
        "  failover-sim validate --show scenarios/elb-blowup.yaml\n"
        "  failover-sim validate --zone db.example.com",
    )
    v.add_argument("files", nargs="*", metavar="FILE", help="scenario YAML files")
    v.add_argument("--show", action="store_true", help="print each scenario with every default filled in")
    v.add_argument("--zone", action="append", default=[], metavar="ZONEFILE", help="a standard zone file to check")
    v.add_argument("--origin", help="the zone's origin, when the zone file has no $ORIGIN line")
    v.set_defaults(func=cmd_validate)

    # Each command lives with the API it calls.
    from sim import baseline, check, compare, report, runner, strategies_cli

    runner.add_parser(sub)
    check.add_parser(sub)
    baseline.add_parser(sub)
    report.add_parser(sub)
    compare.add_parser(sub)
    from sim.batch import cli as sweep_cli

    sweep_cli.add_parser(sub)
    strategies_cli.add_parser(sub)

    s = sub.add_parser(
        "serve",
        help="run the sim.core load balancer from a config file",
        add_help=False,
        description="Run the real asyncio load balancer (see docs/core.md).",
    )
    s.add_argument("args", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_serve)

    b = sub.add_parser(
        "bench",
        help="benchmarks: engine speed (model, fast) or the balancer against HAProxy and nginx (core)",
        description="Benchmarks; results are saved with the command that produced them.",
        epilog="examples:\n  failover-sim bench model\n  failover-sim bench fast\n  failover-sim bench core",
    )
    b.add_argument("target", choices=["model", "fast", "sweep", "core"])
    b.add_argument("args", nargs=argparse.REMAINDER)
    b.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # serve and bench hand everything after their name to their own parsers,
    # their --help included.
    if argv[:1] == ["serve"]:
        return _guarded(lambda: cmd_serve(argparse.Namespace(args=argv[1:])))
    if argv[:1] == ["bench"] and argv[1:2] and argv[1] in ("model", "core", "fast", "sweep"):
        return _guarded(lambda: cmd_bench(argparse.Namespace(target=argv[1], args=argv[2:])))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return _guarded(lambda: args.func(args))


def _guarded(command) -> int:  # type: ignore[no-untyped-def]
    try:
        return int(command())
    except KeyboardInterrupt:
        print("interrupted; no results were written under the final name", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


# --- validate ------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    if not args.files and not args.zone:
        print("failover-sim validate: give scenario files or --zone ZONEFILE", file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_OK
    for file in args.files:
        status = max(status, _validate_scenario(file, show=args.show))
    for zonefile in args.zone:
        status = max(status, _validate_zone(zonefile, args.origin))
    return status


def _validate_scenario(file: str, *, show: bool) -> int:
    path = Path(file)
    if not path.is_file():
        print(f"{file}: cannot read: {'no such file' if not path.exists() else 'not a file'}", file=sys.stderr)
        return EXIT_USAGE
    try:
        scenario = load_file(path)
    except ScenarioError as exc:
        print(f"{file}: invalid", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    violations = zone_violations(scenario)
    if violations:
        print(f"{file}: invalid: the zone breaks the CNAME rules", file=sys.stderr)
        for violation in violations:
            print(f"  {file}: {violation}", file=sys.stderr)
        return EXIT_INVALID
    refusals = {k: v for k, v in strategy_refusals(scenario).items() if v}
    runnable = [s for s in scenario.strategies if s not in refusals]
    if not runnable:
        print(f"{file}: invalid: every strategy is refused by the zone rules", file=sys.stderr)
        _print_refusals(file, refusals)
        return EXIT_INVALID
    print(f"{file}: valid")
    print(describe(scenario, refusals=refusals))
    if show:
        print(yaml.safe_dump(scenario.to_document(), sort_keys=False, width=100))
    return EXIT_OK


def _print_refusals(file: str, refusals: dict) -> None:
    for strategy, violations in refusals.items():
        for violation in violations:
            print(f"  {file}: strategy {strategy} refused: {violation}", file=sys.stderr)


def describe(scenario: Scenario, *, refusals: dict | None = None) -> str:
    """A few lines saying what a scenario will simulate."""
    refusals = refusals or {}
    sizes = scenario.cohort_sizes()
    lines = [
        f"  {scenario.name}: {scenario.description}".rstrip(),
        f"  runs {format_duration(scenario.duration)} after {format_duration(scenario.warmup)} warmup, "
        f"{scenario.replications} replications, seed {scenario.seed}",
        f"  service {scenario.dns.service_name} in {scenario.dns.zone}, TTL {format_duration(scenario.dns.service_ttl)}; "
        f"balancer TTL {format_duration(scenario.dns.balancer_ttl)}",
        "  clients: "
        + ", ".join(f"{c.name} x{sizes[c.name]} at {c.rate * 60:g}/min ({c.stub_cache.kind} stub cache)" for c in scenario.clients),
        "  resolvers: "
        + ", ".join(f"{g.name} x{g.count} ({g.share:.2%}, {g.policy.kind})" for g in scenario.dns.resolvers),
        "  faults: "
        + (", ".join(f"{f.kind} at {format_duration(f.at)}" for f in scenario.faults) or "none"),
    ]
    for strategy in scenario.strategies:
        if refusals.get(strategy):
            lines.append(f"  strategy {strategy}: refused: {refusals[strategy][0]}")
        else:
            lines.append(f"  strategy {strategy}: runs")
    return "\n".join(lines)


def _validate_zone(zonefile: str, origin: str | None) -> int:
    from sim.scenario.zones import check, read_zone_file

    if not Path(zonefile).is_file():
        print(f"{zonefile}: cannot read: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        zone, records = read_zone_file(zonefile, origin)
    except Exception as exc:  # dnspython raises many kinds; each is a bad zone file
        print(f"{zonefile}: invalid: cannot parse the zone file: {exc}", file=sys.stderr)
        return EXIT_INVALID
    violations = check(records)
    if violations:
        print(f"{zonefile}: invalid: {len(violations)} zone rule violation(s) in {zone}", file=sys.stderr)
        for violation in violations:
            print(f"  {violation}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{zonefile}: valid: {len(records)} records in {zone}, no CNAME conflicts")
    return EXIT_OK


# --- delegated commands ---------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from sim.core.cli import main as serve_main

    return serve_main(list(args.args))


def cmd_bench(args: argparse.Namespace) -> int:
    if args.target == "core":
        from sim.bench.core import main as bench_main
    elif args.target == "fast":
        from sim.bench.fast import main as bench_main
    elif args.target == "sweep":
        from sim.bench.sweep import main as bench_main
    else:
        from sim.bench.model import main as bench_main
    return bench_main(list(args.args))

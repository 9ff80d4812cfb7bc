"""`failover-sim validate`: scenario files against the contract and the zone rules, or zone files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import sim
from sim.commands._common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, print_problems

if TYPE_CHECKING:
    from sim.scenario.models import ResolverGroup

NAME = "validate"
HELP = "check scenario files (schema and zone rules) or zone files"
DESCRIPTION = (
    "Check scenario files against the v1 contract and the zone rules "
    "(RFC 1034 3.6.2, RFC 2181 10.1). Exit 0 valid, 1 invalid, 2 usage error or unreadable file."
)
EPILOG = (
    "examples:\n  failover-sim validate scenarios/elb-blowup.yaml\n"
    "  failover-sim validate --show scenarios/elb-blowup.yaml\n"
    "  failover-sim validate --zone db.example.com"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE", help="scenario YAML files")
    parser.add_argument("--show", action="store_true", help="print each scenario with every default filled in")
    parser.add_argument("--zone", action="append", default=[], metavar="ZONEFILE", help="a standard zone file to check")
    parser.add_argument("--origin", help="the zone's origin, when the zone file has no $ORIGIN line")


def main(args: argparse.Namespace) -> int:
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
    import yaml

    from sim.scenario import strategy_refusals, zone_violations

    path = Path(file)
    if not path.is_file():
        print(f"{file}: cannot read: {'no such file' if not path.exists() else 'not a file'}", file=sys.stderr)
        return EXIT_USAGE
    try:
        scenario = sim.load(path)
    except sim.ScenarioError as exc:
        if exc.unreadable:
            print_problems(f"{file}: unreadable", exc.problems)
            return EXIT_USAGE
        print_problems(f"{file}: invalid", exc.problems)
        return EXIT_INVALID
    violations = zone_violations(scenario)
    if violations:
        print_problems(f"{file}: invalid: the zone breaks the CNAME rules", [f"{file}: {v}" for v in violations])
        return EXIT_INVALID
    refusals = {k: v for k, v in strategy_refusals(scenario).items() if v}
    runnable = [s for s in scenario.strategies if s not in refusals]
    if not runnable:
        print_problems(
            f"{file}: invalid: every strategy is refused by the zone rules",
            [f"{file}: strategy {strategy} refused: {v}" for strategy, vs in refusals.items() for v in vs],
        )
        return EXIT_INVALID
    print(f"{file}: valid")
    print(describe(scenario, refusals=refusals))
    if show:
        print(yaml.safe_dump(scenario.to_document(), sort_keys=False, width=100))
    return EXIT_OK


def describe(scenario: sim.Scenario, *, refusals: dict | None = None) -> str:
    """A few lines saying what a scenario will simulate."""
    from sim.scenario.units import format_duration

    refusals = refusals or {}
    sizes = scenario.cohort_sizes()
    lines = [
        f"  {scenario.name}: {scenario.description}".rstrip(),
        f"  runs {format_duration(scenario.duration)} after {format_duration(scenario.warmup)} warmup, "
        f"{scenario.replications} replications, seed {scenario.seed}",
        f"  service {scenario.dns.service_name} in {scenario.dns.zone}, TTL {format_duration(scenario.dns.service_ttl)}; "
        f"balancer TTL {format_duration(scenario.dns.balancer_ttl)}",
        "  clients: "
        + ", ".join(f"{c.name} x{sizes[c.name]} at {c.rate * 60:g}/min{' in sessions' if c.sessions else ''} "
                    f"({c.stub_cache.kind} stub cache{', restarts' if c.restart else ''})" for c in scenario.clients),
        "  resolvers: "
        + ", ".join(f"{g.name} x{g.count} ({g.share:.2%}, {g.policy.kind}{_resolver_extras(g)})" for g in scenario.dns.resolvers),
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
    from sim.scenario.zones import ZoneFileError, check, read_zone_file

    if not Path(zonefile).is_file():
        print(f"{zonefile}: cannot read: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        zone, records = read_zone_file(zonefile, origin)
    except ZoneFileError as exc:
        print(f"{zonefile}: {'unreadable' if exc.unreadable else 'invalid'}: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.unreadable else EXIT_INVALID
    except Exception as exc:  # dnspython raises many kinds; each is a bad zone file
        print(f"{zonefile}: invalid: cannot parse the zone file: {exc}", file=sys.stderr)
        return EXIT_INVALID
    violations = check(records)
    if violations:
        print_problems(f"{zonefile}: invalid: {len(violations)} zone rule violation(s) in {zone}", violations)
        return EXIT_INVALID
    print(f"{zonefile}: valid: {len(records)} records in {zone}, no CNAME conflicts")
    return EXIT_OK


def _resolver_extras(group: ResolverGroup) -> str:
    """A group's farm, prefetch and serve-expired, when set, for the one-line summary."""
    from sim.scenario.units import format_duration

    out = []
    if group.caches > 1:
        out.append(f"{group.caches} caches, sticky {group.sticky:g}")
    if group.prefetch:
        out.append("prefetch")
    if group.serve_expired is not None:
        out.append(f"serve-expired after {format_duration(group.serve_expired.client_timeout)}")
    return "".join(f", {x}" for x in out)

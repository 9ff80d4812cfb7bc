"""`failover-sim audit ZONEFILE`: a real zone's CNAME rule violations, and which strategies each
balancer name allows (the zone rules of sim.scenario.zones)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.commands._common import EXIT_INVALID, EXIT_OK, EXIT_USAGE

NAME = "audit"
HELP = "check a zone file and say which strategies each balancer name allows"
DESCRIPTION = (
    "Read a standard zone file, report the CNAME rule violations (RFC 1034 3.6.2, "
    "RFC 2181 10.1), and for each name that points at a balancer say which strategies are possible "
    "there and which the zone rules exclude. Exit 0 clean, 1 violations, 2 unreadable file."
)
EPILOG = "examples:\n  failover-sim audit db.example.com\n  failover-sim audit db.example.com --service www"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("zonefile", metavar="ZONEFILE", help="a zone file in RFC 1035 master format (BIND)")
    parser.add_argument("--service", metavar="NAME", help="report only this name (relative, absolute, or @)")
    parser.add_argument("--origin", help="the zone's origin, when the file has no $ORIGIN line")


def main(args: argparse.Namespace) -> int:
    from sim.scenario.zones import (
        ZoneFileError,
        balancer_pointers,
        by_name,
        check,
        read_zone_file,
        relative_name,
        strategies_at,
    )

    path = Path(args.zonefile)
    if not path.is_file():
        print(f"{path}: cannot read: {'no such file' if not path.exists() else 'not a file'}", file=sys.stderr)
        return EXIT_USAGE
    try:
        zone, records = read_zone_file(path, args.origin)
    except ZoneFileError as exc:
        print(f"{path}: cannot read the zone file: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # dnspython raises many kinds; each means an unreadable zone file
        print(f"{path}: cannot read the zone file: {exc}", file=sys.stderr)
        return EXIT_USAGE
    violations = check(records)
    print(f"{path}: zone {zone}, {len(records)} records")
    if violations:
        print(f"violations ({len(violations)}):")
        for v in violations:
            print(f"  {v}")
    else:
        print("violations: none")
    pointers = balancer_pointers(records)
    if args.service is not None:
        name = relative_name(args.service, zone)
        pointers = {name: pointers.get(name, "no balancer record here yet")}
    if not pointers:
        print("no name points at a balancer (a CNAME to a balancer's DNS name, or A records)")
    groups = by_name(records)
    for name, how in pointers.items():
        print(f"{name}: {how}")
        options = strategies_at(groups.get(name, []), name)
        print("  possible: " + (", ".join(s for s, v in options.items() if not v) or "none"))
        for strategy, refused in options.items():
            if refused:
                print(f"  excluded: {strategy}: {refused[0].rule}")
    return EXIT_INVALID if violations else EXIT_OK

"""`failover-sim fit`: a scenario fitted to access logs and DNS query logs (docs/fit.md)."""

from __future__ import annotations

import argparse
import sys

import sim
from sim.commands._common import EXIT_OK, EXIT_USAGE

NAME = "fit"
HELP = "fit a scenario's clients and resolvers to access logs and DNS query logs"
DESCRIPTION = (
    "Read balancer access logs (AWS ALB or Classic ELB, nginx combined, HAProxy httplog; plain or gzip) "
    "and DNS query logs (Route 53, BIND), and write a scenario whose client cohorts and resolver groups "
    "are the ones the logs show, each value with its 95 percent interval as a comment, plus fit-report.md/.html "
    "beside it. Malformed lines are counted and reported, never fatal. Exit 0 written, 2 a log or "
    "option it cannot use."
)
EPILOG = (
    "examples:\n"
    "  failover-sim fit --access-log alb-*.log.gz --dns-log queries.log --service www.example.com --ttl 60s --out fitted.yaml\n"
    "  failover-sim fit --access-log access.log --format nginx --out fitted.yaml"
)
ACCESS, DNS = ("alb", "elb", "nginx", "haproxy"), ("route53", "bind")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--access-log", nargs="+", action="extend", required=True, metavar="FILE",
                        help="balancer access logs (plain or gzip)")
    parser.add_argument("--dns-log", nargs="+", action="extend", default=[], metavar="FILE",
                        help="the authoritative server's query logs; without them the resolvers are not fitted")
    parser.add_argument("--service", help="the name clients look up (default: the name queried most in the DNS logs)")
    parser.add_argument("--ttl", help="the service record's TTL, e.g. 60s (default: guessed from the DNS logs)")
    parser.add_argument("--format", action="append", default=[], choices=[*ACCESS, *DNS],
                        help="name a log format instead of recognising it (once for access, once for DNS logs)")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="K",
                        help="the logs come from a lab run at K scenario seconds per real second "
                             "(run --engine lab --time-scale K --keep): fit in scenario time (default: 1)")
    parser.add_argument("--start-hour", type=int, choices=range(24), metavar="H",
                        help="the hour of the day (the logs' clock, 0-23) the run starts at: the traffic faults "
                             "reproduce the day's shape from there (default: the busiest hour)")
    parser.add_argument("--duration", metavar="DURATION",
                        help="the run's length, e.g. 24h: the traffic faults cover it hour by hour (default: 20m)")
    parser.add_argument("--name", default="fitted", help="the scenario's name (default: fitted)")
    parser.add_argument("--out", required=True, metavar="SCENARIO.yaml", help="where to write the scenario")


def main(args: argparse.Namespace) -> int:
    from sim.fit.formats import LogError

    access_format = next((f for f in args.format if f in ACCESS), None)
    dns_format = next((f for f in args.format if f in DNS), None)
    try:
        fitted = sim.fit_logs(args.access_log, args.dns_log, service=args.service, ttl=args.ttl,
                              access_format=access_format, dns_format=dns_format, name=args.name, out=args.out,
                              time_scale=args.time_scale, start_hour=args.start_hour,
                              duration=args.duration)
    except LogError as exc:
        print(f"failover-sim fit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # unreadable (permissions), or the output folder cannot be written
        print(f"failover-sim fit: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, sim.ScenarioError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        print(f"failover-sim fit: cannot fit: {'; '.join(map(str, problems))}", file=sys.stderr)
        return EXIT_USAGE
    for stats in fitted.fit.files:
        print(stats.summary(), file=sys.stderr)
    print(f"{args.out}: written ({', '.join(str(p) for p in fitted.written[1:])} beside it)")
    from sim.commands.validate import describe

    print(describe(fitted.scenario))
    return EXIT_OK

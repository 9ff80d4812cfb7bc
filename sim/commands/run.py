"""`failover-sim run`: a scenario (or the scenario a results folder ran), every strategy, its results folder."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import sim
from sim.commands._common import (
    EXIT_OK,
    EXIT_USAGE,
    non_negative_int,
    positive_int,
    print_problems,
    run_with_progress,
)
from sim.defaults import default_scenario

NAME = "run"
HELP = "run a scenario and write its results folder"
DESCRIPTION = (
    "Run every strategy of a scenario for every replication (common random numbers), "
    "write the results folder (summary.json, clients.parquet, timeline.parquet, manifest.json, "
    "figures) and print the side-by-side table. Exit 2 on input it cannot run."
)
EPILOG = (
    "examples:\n  failover-sim run\n  failover-sim run scenarios/elb-blowup.yaml --replications 20 --out /tmp/r\n"
    "  failover-sim run scenarios/apex-with-mail.yaml --strategy eip_remap"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("scenario", nargs="?", default=None, help="scenario YAML (default: scenarios/elb-blowup.yaml)")
    p.add_argument("--out", help="results folder (default: results/<scenario>/<UTC timestamp>/, "
                   "with results/<scenario>/latest pointing at it)")
    p.add_argument("--replications", type=positive_int, help="override the scenario's replications")
    p.add_argument("--seed", type=non_negative_int, help="override the scenario's seed")
    p.add_argument("--strategy", action="append", metavar="NAME", help="run only this strategy (repeatable)")
    p.add_argument("--engine", default="des", choices=sim.available_engines(),
                   help="des: the SimPy model (default); fast: the numpy engine (docs/fast.md); "
                   "lab: real processes on loopback (docs/lab.md)")
    p.add_argument("--time-scale", type=float, default=10.0, metavar="K",
                   help="lab: scenario seconds per real second (default 10)")
    p.add_argument("--clients-scale", type=float, default=1.0, help="lab: run this share of the clients")
    p.add_argument("--max-resolvers", type=positive_int, default=16, help="lab: at most this many resolvers")
    p.add_argument("--keep", action="store_true", help="lab: keep the work folder (configs, logs)")
    p.add_argument("--takeover", default="auto", choices=("auto", "namespace", "loopback"),
                   help="lab: how eip_remap and vrrp move their address: namespace (root: network "
                   "namespaces, ARP), loopback (any user), auto (namespace as root; default)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def main(args: argparse.Namespace) -> int:
    path = Path(args.scenario) if args.scenario else default_scenario()
    if path.is_dir() and (path / "manifest.json").is_file():
        path = path / "manifest.json"
    if not path.is_file():
        print(f"{path}: cannot read: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        scenario = _manifest_scenario(path) if path.name == "manifest.json" else sim.load(path)
    except sim.ScenarioError as exc:
        print_problems(f"{path}: cannot run: the scenario is invalid", exc.problems)
        return EXIT_USAGE
    out = Path(args.out) if args.out else _default_out(scenario)
    if out.exists() and any(out.iterdir()):
        print(f"{out}: cannot write: the folder exists and is not empty", file=sys.stderr)
        return EXIT_USAGE
    try:
        lab = None
        if args.engine == "lab":
            lab = sim.LabOptions(args.time_scale, args.clients_scale, args.max_resolvers, args.keep, args.quiet,
                                 takeover=args.takeover)
        seed = args.seed
        if seed is None and path.name == "manifest.json":
            # the seed that run used, so replication k here draws what it drew (compare pairs them)
            seed = _manifest(path).get("seed")
        results = run_with_progress(scenario, args.engine, args.replications, args.strategy, seed, lab,
                                    quiet=args.quiet)
    except sim.RunError as exc:
        print(f"{path}: cannot run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for strategy, reason in results.refused.items():
        print(f"strategy {strategy} refused: {reason}")
    written = results.write(out)
    if not args.out:
        _link_latest(written)
    print(results.table())
    print(f"\nresults: {written}")
    for name in sorted((written / "figures").glob("*.png")):
        print(f"figure:  {name}")
    return EXIT_OK


def _manifest_scenario(path: Path) -> sim.Scenario:
    """The scenario a results folder ran (its manifest), e.g. a lab run's effective scenario."""
    from sim.scenario import load_data
    from sim.scenario.loader import Problem

    try:
        manifest = _manifest(path)
    except ValueError as exc:
        raise sim.ScenarioError([Problem(str(path), "", str(exc))]) from None
    if not isinstance(manifest.get("scenario"), dict):
        raise sim.ScenarioError([Problem(str(path), "scenario", "no scenario mapping in this manifest")])
    return load_data(manifest["scenario"], str(path))


def _manifest(path: Path) -> dict[str, Any]:
    """manifest.json, its shape checked (sim.results.shape); ValueError naming the field when wrong."""
    from sim.results.reader import read_json
    from sim.results.shape import check_manifest

    manifest = read_json(path)
    check_manifest(path, manifest)
    return manifest


def _link_latest(folder: Path) -> None:
    """Point results/<scenario>/latest at `folder`, so a command can name the newest run
    without knowing its time (`failover-sim report results/elb-blowup/latest`)."""
    import os

    link = folder.parent / "latest"
    partial = folder.parent / f".latest-{os.getpid()}"
    try:
        partial.unlink(missing_ok=True)
        partial.symlink_to(folder.name)  # relative: the results tree may move
        os.replace(partial, link)  # atomic: a reader sees the old run or the new one
    except OSError as exc:
        print(f"{link}: not updated ({exc.strerror or exc})", file=sys.stderr)


def _default_out(scenario: sim.Scenario) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("results") / scenario.name / stamp

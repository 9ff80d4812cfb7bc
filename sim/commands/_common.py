"""What several commands share: exit statuses, problem lists, argument types."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import Any

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def print_problems(headline: str, problems: Iterable[object]) -> None:
    """`headline`, then each problem indented, on stderr (a ScenarioError's `.problems`)."""
    print(headline, file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text}")
    return value


def run_with_progress(scenario: Any, engine: str = "des", replications: int | None = None,
                      strategies: Sequence[str] | None = None, seed: int | None = None, lab: Any = None,
                      *, quiet: bool = False, label: str | None = None) -> Any:
    """`sim.run`, with its progress on stderr (sim.progress: a bar on a terminal or in a
    notebook, plain lines elsewhere; nothing when `quiet`): one step per replication
    of one strategy."""
    import sim
    from sim.progress import Progress
    from sim.runner import runnable_strategies

    names, _ = runnable_strategies(scenario, strategies)
    reps = replications or (1 if engine == "lab" else scenario.replications)
    what = label or f"{scenario.name} ({engine})"
    with Progress(reps * len(names), what, "replications", quiet=quiet) as bar:
        return sim.run(scenario, engine, replications, strategies, seed,
                       lambda done, total, note: bar.update_to(done, note), lab)

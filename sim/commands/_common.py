"""What several commands share: exit statuses, problem lists, argument types."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

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

"""Every `--help` page renders, and reads as plain text: no '%%' left by a string
that argparse never formatted, no reStructuredText markup, no option without
its help line. The pages are found from the command list (sim.cli.COMMANDS and
the bench targets), so a new command is checked without a change here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import COMMANDS, main
from sim.commands import bench
from tests.conftest import ROOT

PAGES = [[], *([c.NAME] for c in COMMANDS), *(["bench", t] for t in bench.TARGETS)]
STRAY = re.compile(r"%%|%\(|``|:(?:option|ref|func|class|mod|meth|attr|doc|envvar):`")
# An argument line of argparse's listing: two spaces, then its invocation (words
# joined by single spaces); its help follows after two or more spaces, or on
# the next line, indented further.
ARGUMENT = re.compile(r"^  (\S+(?: \S+)*?)(?:  +(\S.*))?$")


def render(page: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*page, "--help"])
    assert done.value.code in (0, None), page
    out = capsys.readouterr().out
    assert out.startswith("usage:"), (page, out[:200])
    return out


def without_help(text: str) -> list[str]:
    """The arguments listed with no help text."""
    lines = text.splitlines()
    missing, listing = [], False
    for i, line in enumerate(lines):
        if line and not line.startswith(" "):  # a heading: argparse's listings, or the epilog's own
            listing = line == "options:" or line.endswith("arguments:")
            continue
        if not listing:
            continue
        match = ARGUMENT.match(line)
        if match is None or match.group(2):
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if not re.match(r"^ {5,}\S", following):
            missing.append(match.group(1))
    return missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: " ".join(p) or "failover-sim")
def test_help_page_is_plain_text_and_every_argument_has_help(page: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = render(page, capsys)
    assert not STRAY.findall(text), (page, [line for line in text.splitlines() if STRAY.search(line)])
    assert without_help(text) == [], page


def test_the_checks_catch_what_they_look_for() -> None:
    page = ("usage: x\n\npositional arguments:\n  scenario\n\noptions:\n  -h, --help  show this\n  --quiet\n"
            "  --set PATH=V1,V2,...\n                        one value\n  --long-name-here LONG_NAME_HERE\n\n"
            "a 95%% interval, ``markup`` and :option:`--x`\n")
    assert without_help(page) == ["scenario", "--quiet", "--long-name-here LONG_NAME_HERE"]
    assert STRAY.findall(page) == ["%%", "``", "``", ":option:`"]


def test_serve_example_writes_a_config_serve_accepts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    example = render(["serve"], capsys).split("example", 1)[1]
    write = next(line.strip() for line in example.splitlines() if "> lb.yaml" in line)
    subprocess.run(["sh", "-c", write], cwd=tmp_path, check=True, timeout=30)
    assert "failover-sim serve lb.yaml --check" in example
    checked = subprocess.run([sys.executable, "-m", "sim", "serve", "lb.yaml", "--check"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert checked.returncode == 0 and "2 backends" in checked.stdout, checked.stderr

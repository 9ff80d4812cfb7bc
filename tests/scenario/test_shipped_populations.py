"""The shipped population files: every number has its source beside it, and every shipped scenario validates.

A number is any digit in a YAML value (not in a key, a name or a comment); its
line must carry a comment with one of the marks docs/references.md defines.
The check reads the YAML's own tokens, so a digit inside a quoted string or a
flow mapping is found wherever it sits.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sim.scenario import load_file
from tests.conftest import ROOT

POPULATIONS = sorted((ROOT / "scenarios" / "populations").glob("*.yaml"))
MARK = re.compile(r"#.*\[(S|A|C|I|choice)\]")
# Values whose digits are not numbers taken from anywhere: free text.
TEXT_KEYS = {"description", "name"}


def numbers_without_source(text: str) -> list[tuple[int, str]]:
    """(line, value) of every scalar value holding a digit whose line has no source mark."""
    lines = text.splitlines()
    missing = []
    key: str | None = None
    expecting_value = False
    for token in yaml.scan(text):
        if isinstance(token, yaml.KeyToken):
            expecting_value = False
        elif isinstance(token, yaml.ValueToken):
            expecting_value = True
        elif isinstance(token, yaml.ScalarToken):
            if not expecting_value:
                key = token.value
                continue
            expecting_value = False
            if key in TEXT_KEYS or not re.search(r"\d", token.value):
                continue
            line = token.start_mark.line
            if not MARK.search(lines[line]):
                missing.append((line + 1, token.value))
        elif isinstance(token, yaml.FlowEntryToken | yaml.BlockEntryToken):
            expecting_value = False
    return missing


def test_the_three_archetypes_are_shipped() -> None:
    assert [p.stem for p in POPULATIONS] == ["consumer-web", "devices", "service-api"]


@pytest.mark.parametrize("path", POPULATIONS, ids=lambda p: p.stem)
def test_every_number_in_an_archetype_has_its_source_beside_it(path: Path) -> None:
    assert numbers_without_source(path.read_text()) == []


def test_the_check_finds_a_number_without_a_source() -> None:
    text = ("clients:\n  - name: web2\n    share: 0.5   # [S] a source\n    rate: 1/min\n"
            "    retry: {attempts: 2, timeout: 10s}   # as elb-blowup\n")
    assert numbers_without_source(text) == [(4, "1/min"), (5, "2"), (5, "10s")]


@pytest.mark.parametrize("path", POPULATIONS, ids=lambda p: p.stem)
def test_shares_are_of_users_or_requests_and_sum_to_one(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert sum(g["share"] for g in doc["resolvers"]) == pytest.approx(1.0, abs=1e-9)
    shares = [c.get("share") for c in doc["clients"]]
    assert all(s is None for s in shares) or sum(shares) == pytest.approx(1.0, abs=1e-9)
    # Stretching resolvers: the resolver share (8.74%) applied to the ISP users only.
    by_name = {g["name"]: g["share"] for g in doc["resolvers"]}
    assert by_name["stretch"] == pytest.approx((1 - by_name["public"]) * 0.0874)


@pytest.mark.parametrize("path", POPULATIONS, ids=lambda p: p.stem)
def test_each_archetype_loads_into_a_scenario(path: Path, tmp_path: Path) -> None:
    scenario = (ROOT / "scenarios" / "elb-blowup-consumer.yaml").read_text()
    (tmp_path / "populations").mkdir()
    (tmp_path / "populations" / path.name).write_text(path.read_text())
    (tmp_path / "s.yaml").write_text(scenario.replace("populations/consumer-web.yaml", f"populations/{path.name}"))
    loaded = load_file(tmp_path / "s.yaml")
    assert [c.name for c in loaded.clients] == [c["name"] for c in yaml.safe_load(path.read_text())["clients"]]


def test_every_shipped_scenario_validates() -> None:
    scenarios = sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    done = subprocess.run([sys.executable, "-m", "sim", "validate", *scenarios], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": valid") == len(scenarios)


@pytest.mark.parametrize("path", POPULATIONS, ids=lambda p: p.stem)
def test_every_section_a_comment_names_exists(path: Path) -> None:
    headings = {line.lstrip("#").strip() for doc in ("populations.md", "references.md")
                for line in (ROOT / "docs" / doc).read_text().splitlines() if line.startswith("#")}
    named = set(re.findall(r'\("([A-Z][^"]*)"\)', path.read_text()))
    named |= set(re.findall(r'docs/references\.md, "([^"]+)"', path.read_text()))
    assert named, path
    # A citation names a heading or its first words (docs/references.md's rule).
    assert [n for n in named if not any(h.startswith(n) for h in headings)] == []

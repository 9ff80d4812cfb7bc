"""`population: FILE`: clients and resolvers read from a population file, overridden block by block."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from sim.cli import main
from sim.scenario import ScenarioError, load_file, load_text
from tests.conftest import ROOT

SCENARIO = """\
version: 1
name: tiny
population: populations/mix.yaml
dns:
  zone: example.com
balancers:
  - {name: blue, role: active}
  - {name: green, role: standby}
"""

POPULATION = """\
description: two cohorts behind two resolver groups
population: 100
clients:
  - {name: web, share: 0.75, rate: 1/min, resolver_group: isp}
  - {name: app, share: 0.25, rate: 1/s}
resolvers:
  - {name: isp, count: 10, share: 0.6}
  - {name: public, count: 2, share: 0.4, policy: {kind: floor, min_ttl: 5s}}
"""


def _write(folder: Path, scenario: str = SCENARIO, population: str = POPULATION) -> Path:
    (folder / "populations").mkdir(exist_ok=True)
    (folder / "populations" / "mix.yaml").write_text(population)
    path = folder / "s.yaml"
    path.write_text(scenario)
    return path


def test_the_file_gives_clients_resolvers_and_the_total(tmp_path: Path) -> None:
    s = load_file(_write(tmp_path))
    assert [c.name for c in s.clients] == ["web", "app"]
    assert s.population == 100 and s.cohort_sizes() == {"web": 75, "app": 25}
    assert [(g.name, g.share) for g in s.dns.resolvers] == [("isp", 0.6), ("public", 0.4)]
    assert s.dns.resolvers[1].policy.kind == "floor"


def test_it_means_the_same_as_the_blocks_written_inline(tmp_path: Path) -> None:
    inline = SCENARIO.replace("population: populations/mix.yaml\n", "population: 100\n") + textwrap.dedent("""\
        clients:
          - {name: web, share: 0.75, rate: 1/min, resolver_group: isp}
          - {name: app, share: 0.25, rate: 1/s}
        """)
    inline = inline.replace("  zone: example.com\n", "  zone: example.com\n  resolvers:\n"
                            "    - {name: isp, count: 10, share: 0.6}\n"
                            "    - {name: public, count: 2, share: 0.4, policy: {kind: floor, min_ttl: 5s}}\n")
    assert load_file(_write(tmp_path)) == load_text(inline)


def test_the_path_is_relative_to_the_scenario_not_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path)
    monkeypatch.chdir(ROOT)  # no populations/mix.yaml here
    assert load_file(path).population == 100
    # Text with no file is relative to the working folder.
    monkeypatch.chdir(tmp_path)
    assert load_text(SCENARIO).population == 100


def test_scenario_clients_replace_the_files_clients_whole(tmp_path: Path) -> None:
    own = SCENARIO + "clients:\n  - {name: solo, count: 7, rate: 2/s}\n"
    s = load_file(_write(tmp_path, own))
    assert [c.name for c in s.clients] == ["solo"] and s.cohort_sizes() == {"solo": 7}
    assert s.population is None  # the file's total was about the file's cohorts
    assert [g.name for g in s.dns.resolvers] == ["isp", "public"]  # resolvers still from the file


def test_scenario_resolvers_replace_the_files_resolvers_whole(tmp_path: Path) -> None:
    own = SCENARIO.replace("  zone: example.com\n", "  zone: example.com\n  resolvers:\n"
                           "    - {name: isp, count: 3, share: 1}\n")
    s = load_file(_write(tmp_path, own))
    assert [(g.name, g.count) for g in s.dns.resolvers] == [("isp", 3)]
    assert [c.name for c in s.clients] == ["web", "app"]


def test_a_scenario_cohort_may_name_a_resolver_group_of_the_file(tmp_path: Path) -> None:
    own = SCENARIO + "clients:\n  - {name: solo, count: 7, rate: 2/s, resolver_group: public}\n"
    assert load_file(_write(tmp_path, own)).clients[0].resolver_group == "public"


@pytest.mark.parametrize(
    ("old", "new", "path", "line", "words"),
    [
        ("rate: 1/s}", "rate: 1/week}", "clients[1].rate", 5, "expected a rate"),
        ("share: 0.4,", "share: 0.5,", "resolvers", 6, "resolver shares must sum to 1"),
        ("min_ttl: 5s", "min_ttl: soon", "resolvers[1].policy.min_ttl", 8, "soon"),
        ("share: 0.25,", "share: 0.5,", "clients", 3, "cohort shares must sum to 1"),
        ("population: 100", "population: many", "population", 2, "expected a whole number"),
        ("population: 100", "population: other.yaml", "population", 2, "cannot name another one"),
        ("description:", "desc:", "desc", 1, "unknown key in a population file"),
        (POPULATION[POPULATION.index("resolvers:"):], "resolvers: 3\n", "resolvers", 6, "expected a list"),
    ],
)
def test_errors_in_the_file_name_the_file_its_field_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, path: str, line: int, words: str
) -> None:
    assert old in POPULATION
    scenario = _write(tmp_path, population=POPULATION.replace(old, new, 1))
    with pytest.raises(ScenarioError) as info:
        load_file(scenario)
    pop_file = str((tmp_path / "populations" / "mix.yaml").resolve())
    problem = next(p for p in info.value.problems if p.path == path)
    assert problem.file == pop_file and problem.line == line and words in problem.message, info.value.problems
    assert main(["validate", str(scenario)]) == 1
    err = capsys.readouterr().err
    assert f"{pop_file}:{line}: {path}:" in err and "Traceback" not in err


def test_a_missing_population_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_file(_write(tmp_path, population=re.sub(r"(?s)resolvers:.*", "", POPULATION)))
    assert [(p.path, "required field is missing" in p.message) for p in info.value.problems] == [("resolvers", True)]


def test_errors_in_a_scenario_override_name_the_scenario(tmp_path: Path) -> None:
    own = SCENARIO + "clients:\n  - {name: solo, count: 7, rate: 2/s, resolver_group: nobody}\n"
    scenario = _write(tmp_path, own)
    with pytest.raises(ScenarioError) as info:
        load_file(scenario)
    (problem,) = info.value.problems
    assert problem.file == str(scenario) and problem.path == "clients[0].resolver_group"
    assert "'isp'" in problem.message  # the groups it could name: the file's


@pytest.mark.parametrize(
    ("value", "words", "unreadable"),
    [
        ("populations/none.yaml", "no such file", True),
        ("populations", "not a YAML file name", False),
        ("populations/", "not a YAML file name", False),
        ("/etc/passwd.yaml", "is absolute", False),
        ("../outside.yaml", "leaves the scenario's folder", False),
        ("populations/../../outside.yaml", "leaves the scenario's folder", False),
    ],
)
def test_a_bad_population_path_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, words: str, unreadable: bool
) -> None:
    inside = tmp_path / "inside"
    inside.mkdir()
    (tmp_path / "outside.yaml").write_text(POPULATION)  # exists: refused for where it is, not for being missing
    scenario = _write(inside, SCENARIO.replace("populations/mix.yaml", value))
    with pytest.raises(ScenarioError) as info:
        load_file(scenario)
    (problem,) = info.value.problems
    assert problem.file == str(scenario) and problem.path == "population" and problem.line == 3
    assert words in problem.message and info.value.unreadable == unreadable
    assert main(["validate", str(scenario)]) == (2 if unreadable else 1)
    assert "Traceback" not in capsys.readouterr().err


def test_a_population_folder_given_a_yaml_name_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "populations" / "dir.yaml").mkdir(parents=True)
    with pytest.raises(ScenarioError) as info:
        load_file(_write(tmp_path, SCENARIO.replace("mix.yaml", "dir.yaml")))
    assert "not a file" in info.value.problems[0].message and info.value.unreadable


def test_a_whole_number_is_still_the_total_of_clients() -> None:
    text = SCENARIO.replace("populations/mix.yaml", "'40'") + "clients:\n  - {name: web, share: 1, rate: 1/s}\n"
    assert load_text(text).cohort_sizes() == {"web": 40}


def test_a_run_stores_the_merged_scenario_so_a_results_folder_needs_no_population_file(tmp_path: Path) -> None:
    s = load_file(_write(tmp_path))
    doc = s.to_document()
    assert doc["population"] == 100 and [c["name"] for c in doc["clients"]] == ["web", "app"]
    # The shipped scenario that names one loads from a copy of the scenarios folder elsewhere.
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "scenarios", copy)
    assert load_file(copy / "elb-blowup-consumer.yaml") == load_file(ROOT / "scenarios" / "elb-blowup-consumer.yaml")

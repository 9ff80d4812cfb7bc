"""The public API (sim.load, Scenario.replace / with_values, sim.run, sim.sweep,
sim.open_results) and the examples of docs/api.md, executed."""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import sim
from sim.scenario import ScenarioError, load_data, load_file
from sim.scenario.edit import document, parse_path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "scenarios" / "elb-blowup.yaml"


@pytest.fixture(scope="module")
def scenario() -> sim.Scenario:
    return sim.load(DEFAULT)


@pytest.fixture(scope="module")
def small_results(scenario: sim.Scenario):  # type: ignore[no-untyped-def]
    return sim.run(scenario.replace(duration="7m"), replications=2)


# --- exports -------------------------------------------------------------------------


def test_sim_exports_the_api_and_keeps_its_version() -> None:
    for name in ("load", "run", "sweep", "open_results", "has_sweep", "available_engines", "Scenario", "ScenarioError"):
        assert name in sim.__all__ and getattr(sim, name) is not None, name
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", sim.__version__)
    with pytest.raises(AttributeError):
        sim.no_such_thing  # noqa: B018


def test_import_sim_alone_loads_no_engine() -> None:
    import subprocess
    import sys

    code = "import sys, sim; print(sorted(m for m in ('sim.model', 'sim.runner', 'simpy', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_names_for_notebooks_are_exported_lazily() -> None:
    import subprocess
    import sys

    for name in ("cohort_table", "LabOptions", "RunError", "write_report"):
        assert name in sim.__all__ and getattr(sim, name) is not None, name
    from sim.analysis.table import cohort_table
    from sim.runner import RunError

    assert sim.cohort_table is cohort_table and sim.RunError is RunError
    # cohort_table needs pandas, not the lab; `import sim` alone imports neither
    code = ("import sys, sim; before = [m for m in ('sim.lab', 'sim.analysis') if m in sys.modules]; "
            "sim.cohort_table; print(before, [m for m in ('sim.lab', 'sim.runner') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"


# --- load ----------------------------------------------------------------------------


def test_load_takes_a_path_a_string_a_dict_or_a_scenario(scenario: sim.Scenario) -> None:
    assert sim.load(str(DEFAULT)) == scenario
    assert sim.load(scenario) is scenario
    assert sim.load(document(scenario)) == scenario
    with pytest.raises(TypeError, match="path, a dict or a Scenario"):
        sim.load(42)  # type: ignore[arg-type]


def test_load_errors_name_the_file_and_the_path(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        sim.load(tmp_path / "missing.yaml")
    doc = document(load_file(DEFAULT))
    doc["clients"][1]["rate"] = "often"
    with pytest.raises(ScenarioError) as info:
        sim.load(doc)
    assert info.value.problems[0].path == "clients[1].rate"


# --- edits ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_edit_document_round_trips_exactly(path: Path) -> None:
    original = load_file(path)
    assert load_data(document(original)) == original
    assert original.with_values({}) == original


def test_with_values_sets_nested_paths_and_revalidates(scenario: sim.Scenario) -> None:
    edited = scenario.with_values({"dns.records[1].ttl": "30s", "clients[0].rate": "2/s", "faults[0].for": "2m"})
    assert edited.dns.records[1].ttl == 30.0
    assert edited.clients[0].rate == 2.0
    assert edited.faults[0].for_ == 120.0
    # the rest is untouched, exactly (no rounding through "0.0166667/s")
    assert scenario.clients[0].rate == 1 / 60 and edited.clients[1] == scenario.clients[1]
    assert edited.dns.records[0] == scenario.dns.records[0]
    assert isinstance(edited, sim.Scenario) and edited is not scenario


def test_with_values_replaces_whole_parts_and_takes_models(scenario: sim.Scenario) -> None:
    edited = scenario.with_values({"clients[0].stub_cache": {"kind": "honor"}})
    assert edited.clients[0].stub_cache.kind == "honor"
    again = scenario.with_values({"clients[1].stub_cache": edited.clients[0].stub_cache})
    assert again.clients[1].stub_cache.kind == "honor"
    never = scenario.with_values({"clients[1].max_connection_age": "never"})
    assert math.isinf(never.clients[1].max_connection_age)


def test_replace_top_level_fields(scenario: sim.Scenario) -> None:
    shorter = scenario.replace(duration="30m", replications=2, seed=3)
    assert (shorter.duration, shorter.replications, shorter.seed) == (1800.0, 2, 3)
    assert shorter.dns == scenario.dns
    with pytest.raises(ScenarioError) as info:
        scenario.replace(durationn="30m")
    assert "durationn" in str(info.value) and "duration" in str(info.value)


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"dns.recordz[1].ttl": "30s"}, "dns.recordz[1].ttl", ["unknown field 'recordz'", "records"]),
        ({"dns.records[9].ttl": "30s"}, "dns.records[9].ttl", ["out of range", "2 item"]),
        ({"dns.zone[0]": "x"}, "dns.zone[0]", ["not a list"]),
        ({"seed.value": 1}, "seed.value", ["not a mapping"]),
        ({"backends.failures.mtbf": "1h"}, "backends.failures.mtbf", ["backends.failures is not set"]),
        ({"dns..ttl": 1}, "dns..ttl", ["name is missing"]),
        ({"clients[x].rate": 1}, "clients[x].rate", ["unexpected"]),
    ],
)
def test_an_unknown_or_malformed_path_is_an_error_naming_it(
    scenario: sim.Scenario, changes: dict[str, object], path: str, words: list[str]
) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario.with_values(changes)
    problem = info.value.problems[0]
    assert problem.path == path
    for word in words:
        assert word in problem.message, problem.message


def test_an_invalid_value_is_reported_at_its_path(scenario: sim.Scenario) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario.with_values({"clients[2].rate": "fast"})
    assert info.value.problems[0].path == "clients[2].rate"
    with pytest.raises(ScenarioError) as info:
        scenario.with_values({"faults[0].at": "2h"})  # after the end of the run: a cross-field rule
    assert info.value.problems[0].path == "faults[0].at"


def test_with_values_takes_a_mapping_only(scenario: sim.Scenario) -> None:
    with pytest.raises(TypeError):
        scenario.with_values([("duration", "5m")])  # type: ignore[arg-type]


def test_parse_path() -> None:
    assert parse_path("dns.records[1].ttl") == ["dns", "records", 1, "ttl"]
    assert parse_path("faults[0].for") == ["faults", 0, "for"]
    for bad in ("", ".a", "a.", "a[1", "[0]", "a b"):
        with pytest.raises(ValueError):
            parse_path(bad)


# --- run and read back ---------------------------------------------------------------


def test_run_returns_results_with_frames_and_figures(small_results) -> None:  # type: ignore[no-untyped-def]
    r = small_results
    assert set(r.summary["strategies"]) == {"cname_repoint", "eip_remap"}
    for frame in (r.summary_frame, r.clients, r.timeline, r.replications):
        assert isinstance(frame, pd.DataFrame) and len(frame)
    assert {"strategy", "cohort", "recovery_s"} <= set(r.clients.columns)
    for fig in (r.plot_success_rate(), r.plot_recovery_cdf(), r.plot_recovery_cdf(by="cohort")):
        assert fig.axes and fig.axes[0].get_xlabel()
        plt.close(fig)


def test_run_accepts_a_path_and_passes_its_options(scenario: sim.Scenario) -> None:
    r = sim.run(DEFAULT, replications=1, strategies=["eip_remap"], seed=5)
    assert list(r.summary["strategies"]) == ["eip_remap"] and r.seed == 5
    from sim.runner import RunError

    with pytest.raises(RunError, match="engine"):
        sim.run(scenario, engine="warp")
    assert "des" in sim.available_engines()


def test_open_results_reads_what_run_wrote(small_results, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = small_results.write(tmp_path / "r")
    stored = sim.open_results(folder)
    assert stored.path == folder and stored.name == "elb-blowup" and stored.engine == "des"
    assert stored.summary["strategies"].keys() == small_results.summary["strategies"].keys()
    pd.testing.assert_frame_equal(stored.summary_frame, small_results.summary_frame)
    assert len(stored.clients) == len(small_results.clients)
    assert len(stored.timeline) == len(small_results.timeline)
    assert stored.fault_times == [300.0]
    assert stored.scenario is not None and stored.scenario.name == "elb-blowup"
    assert stored.table() == small_results.table()
    assert set(stored.figures()) == set(small_results.figures())
    for fig in (stored.plot_success_rate(), stored.plot_recovery_cdf(by="cohort")):
        plt.close(fig)
    with pytest.raises(FileNotFoundError):
        sim.open_results(tmp_path / "nothing")


def test_sweep_returns_the_tidy_table(scenario: sim.Scenario) -> None:
    assert sim.has_sweep()
    out = sim.sweep(scenario, {"dns.service_ttl": ["30s", "60s"]}, replications=2, engine="fast", workers=1)
    assert isinstance(out, pd.DataFrame)
    assert len(out) == 2 * 2 * len(scenario.strategies)
    assert {"dns.service_ttl", "strategy", "replication", "availability", "recovery_mean"} <= set(out.columns)


# --- docs/api.md ---------------------------------------------------------------------


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_docs_api_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _python_blocks((ROOT / "docs" / "api.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "docs_api"}
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"docs/api.md block {i + 1}", "exec"), namespace)  # noqa: S102
    finally:
        plt.close("all")


def test_every_api_function_has_a_docstring_and_annotations() -> None:
    import inspect

    from sim import api

    for name in ("load", "run", "sweep", "open_results", "has_sweep", "available_engines"):
        fn = getattr(api, name)
        assert inspect.getdoc(fn), name
        assert "return" in fn.__annotations__, name
    for method in (sim.Scenario.replace, sim.Scenario.with_values):
        assert inspect.getdoc(method)

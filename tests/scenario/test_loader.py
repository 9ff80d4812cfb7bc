"""Loading scenario files: defaults, and errors that name the file, line and field."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from sim.cli import main
from sim.scenario import ScenarioError, load_file, load_text

MINIMAL = """\
version: 1
name: tiny
dns:
  zone: example.com
clients:
  - {name: web, count: 10, rate: 1/s}
balancers:
  - {name: blue, role: active}
  - {name: green, role: standby}
"""


def test_minimal_scenario_gets_documented_defaults() -> None:
    s = load_text(MINIMAL)
    assert s.dns.balancer_ttl == 60.0  # ELB's 60 s
    assert s.backends.health_check.interval == 2.0 and s.backends.health_check.fall == 3  # HAProxy
    assert s.failover.remap_delay.mean == pytest.approx(5.5)  # Elastic IP 5-6 s
    assert s.clients[0].stub_cache.kind == "none"  # glibc
    assert s.strategies == ["cname_repoint", "eip_remap"]
    assert s.dns.resolvers[0].share == 1.0


def test_shipped_scenarios_load() -> None:
    for path in Path("scenarios").glob("*.yaml"):
        assert load_file(path).name == path.stem


def test_show_prints_every_default_and_reloads_to_the_same_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "tiny.yaml"
    f.write_text(MINIMAL)
    assert main(["validate", "--show", str(f)]) == 0
    out = capsys.readouterr().out
    shown = out[out.index("version:"):]
    doc = yaml.safe_load(shown)
    assert doc["backends"]["health_check"] == {"interval": "2s", "rise": 2, "fall": 3, "timeout": "2s"}
    assert doc["failover"]["remap_delay"] == {"uniform": ["5s", "6s"]}
    # What --show prints is itself a valid scenario that means the same thing.
    assert load_text(shown) == load_text(MINIMAL)


def _patch(extra: str = "", replace: tuple[str, str] | None = None) -> str:
    text = MINIMAL
    if replace:
        assert replace[0] in text, replace[0]
        text = text.replace(*replace)
    return text + textwrap.dedent(extra)


# (scenario text, field path named in the message, words of the message)
MALFORMED = [
    (_patch(replace=("version: 1", "version: 2")), "version", "expected one of"),
    (_patch(replace=("name: tiny", "name: Tiny Scenario")), "name", "matching"),
    (_patch(replace=("rate: 1/s", "rate: 1/week")), "clients[0].rate", "rate"),
    (_patch(replace=("rate: 1/s", "rate: 0/s")), "clients[0].rate", "must be > 0"),
    (_patch(replace=("count: 10", "count: -3")), "clients[0].count", "must be > 0"),
    (_patch(replace=("rate: 1/s}", "rate: 1/s, stub_cache: {kind: flor}}")), "clients[0].stub_cache.kind", "'flor'"),
    (_patch(replace=("rate: 1/s}", "rate: 1/s, stub_cache: {kind: floor}}")), "clients[0].stub_cache.min_ttl", "missing"),
    (_patch(replace=("rate: 1/s}", "rate: 1/s, keepalive: 5 minutes}")), "clients[0].keepalive", "duration"),
    (_patch(replace=("rate: 1/s}", "rate: 1/s, colour: blue}")), "clients[0].colour", "unknown key"),
    (_patch("dns2: {}\n"), "dns2", "unknown key"),
    (_patch(replace=("  zone: example.com", "  zone: example.com\n  service_ttl: -60s")), "dns.service_ttl", "must be > 0"),
    (_patch(replace=("  zone: example.com", "  zone: example.com\n  resolvers:\n    - {name: a, count: 1, share: 0.5}\n    - {name: b, count: 1, share: 0.4}")), "dns.resolvers", "sum to 1"),
    (_patch(replace=("  zone: example.com", "  zone: example.com\n  resolvers:\n    - {name: a, count: 0, share: 1}")), "dns.resolvers[0].count", "must be > 0"),
    (_patch(replace=("  zone: example.com", "  zone: example.com\n  resolvers:\n    - {name: a, count: 1, share: 1, sticky: 0.5}")), "dns.resolvers[0].sticky", "needs caches > 1"),
    (_patch(replace=("  zone: example.com", "  zone: example.com\n  resolvers:\n    - {name: a, count: 1, share: 1, caches: 0}")), "dns.resolvers[0].caches", "must be >= 1"),
    (_patch(replace=("  zone: example.com", "  zone: example.com\n  resolvers:\n    - {name: a, count: 1, share: 1, policy: {kind: serve_stale}, serve_expired: {}}")), "dns.resolvers[0].serve_expired", "not both"),
    (_patch(replace=("  zone: example.com", "  zone: example.com\n  resolvers:\n    - {name: a, count: 1, share: 1, serve_expired: {reply_ttl: 0s}}")), "dns.resolvers[0].serve_expired.reply_ttl", "must be > 0"),
    (_patch(replace=("  zone: example.com", "  zone: example.com\n  resolvers:\n    - {name: a, count: 1, share: 1, prefetch: maybe}")), "dns.resolvers[0].prefetch", "bool"),
    (_patch(replace=("  - {name: blue, role: active}", "  - {name: blue, role: primary}")), "balancers[0].role", "'primary'"),
    (_patch("faults:\n  - {at: 5m, kind: balancer_down, target: red}\n"), "faults[0].target", "'red' is not a balancer"),
    (_patch("faults:\n  - {at: 5m, kind: meteor}\n"), "faults[0].kind", "'meteor'"),
    (_patch("faults:\n  - {at: 5m, kind: instance_down, count: 1}\n"), "faults[0].for", "missing"),
    (_patch("failover:\n  remap_delay: {uniform: [6s, 5s]}\n"), "failover.remap_delay.uniform", "HIGH must be >= LOW"),
    (_patch("backends:\n  policy: fastest\n"), "backends.policy", "'fastest'"),
    (_patch("backends:\n  workers: 2.5\n"), "backends.workers", "whole number"),
    (_patch("strategies: [cname_repoint, anycast_magic]\n"), "strategies[1]", "expected one of"),
    (_patch("clients:\n  - {name: web, count: 10, rate: 1/s}\n"), "clients", "appears twice in the same mapping"),
    (_patch(replace=("clients:\n  - {name: web, count: 10, rate: 1/s}", "clients: {name: web, count: 10, rate: 1/s}")), "clients", "expected a list"),
    (_patch(replace=("dns:\n  zone: example.com", "dns:\n  - zone: example.com")), "dns", "expected a mapping"),
    (_patch(replace=("{name: web, count: 10, rate: 1/s}", "{name: web, count: 10, share: 0.5, rate: 1/s}")), "clients[0]", "exactly one of count or share"),
]


@pytest.mark.parametrize(("text", "path", "words"), MALFORMED, ids=[m[1] + ":" + m[2] for m in MALFORMED])
def test_malformed_scenario_is_invalid_with_the_field_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, path: str, words: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert "invalid" in err
    assert f"{f}:" in err
    assert f" {path}:" in err, err
    assert words in err, err
    assert "Traceback" not in err


def test_error_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(_patch(replace=("rate: 1/s", "rate: 1/week")))
    with pytest.raises(ScenarioError) as info:
        load_file(f)
    (problem,) = info.value.problems
    assert problem.line == 6 and problem.path == "clients[0].rate"
    assert str(problem).startswith(f"{f}:6: clients[0].rate: ")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "the file is empty"),
        ("   \n# only a comment\n", "the file is empty"),
        ("version: 1\nname: [unclosed\n", "YAML syntax error"),
        ("- version: 1\n- name: x\n", "got a list"),
        ("just a string\n", "expected a mapping at the top level"),
        ("~\n", "the file is empty"),
        (MINIMAL + "name: again\n", "name: this key appears twice"),
    ],
)
def test_file_level_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, words: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert words in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 2  # "FILE: invalid" and the reason
    assert "Traceback" not in err


def test_unreadable_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["validate", str(tmp_path)]) == 2


def test_entry_point_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(_patch(replace=("rate: 1/s", "rate: soon")))
    run = subprocess.run([sys.executable, "-m", "sim", "validate", str(bad)], capture_output=True, text=True)
    assert run.returncode == 1 and "clients[0].rate" in run.stderr and "Traceback" not in run.stderr
    ok = subprocess.run([sys.executable, "-m", "sim", "validate", "scenarios/elb-blowup.yaml"], capture_output=True, text=True)
    assert ok.returncode == 0 and "valid" in ok.stdout
    usage = subprocess.run([sys.executable, "-m", "sim", "validate", "--bogus"], capture_output=True, text=True)
    assert usage.returncode == 2
    version = subprocess.run([sys.executable, "-m", "sim", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "failover-sim" in version.stdout


@pytest.mark.parametrize("command", ["validate", "run", "bench"])
def test_every_command_has_help_with_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "example" in capsys.readouterr().out

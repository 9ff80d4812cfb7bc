"""Every shell command of the README runs (issue 21): the README cannot rot.

The commands are read from the README's ```sh blocks and run with bash in a
scratch folder that holds what a fresh clone holds (scenarios/, examples/),
with `.venv/bin/failover-sim` meaning this interpreter's `python -m sim`
and `/tmp/` a private folder. Where a command as written takes minutes,
QUICK says the variant that runs instead (fewer replications, a shorter
lab run, the smoke flag of a benchmark) and why; a command that is neither
run nor listed fails the test, so a new README line must be handled here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

README = ROOT / "README.md"
CLI = ".venv/bin/failover-sim"

# Quick variants: (text in the README command, what replaces it). Each keeps the
# command's meaning and cuts its length; the replications of the scenarios
# themselves are set to 1 in the scratch copies (see `clone`).
QUICK: dict[str, tuple[str, str]] = {
    # 20 replications of elb-blowup take minutes on the model; 1 shows the command works.
    "--replications 20": ("--replications 20", "--replications 1"),
    # The lab runs the scenario's time / 5 in real processes (5 is elb-blowup's most:
    # Knot's 5 s TTL floor); with the shorter copy (SHORTER) and half the clients.
    "--engine lab": ("--clients-scale 0.1", "--clients-scale 0.05"),
    # The benchmarks run for minutes each; one repetition (bench core: its smoke flag).
    "bench model": ("bench model", "bench model --repeats 1"),
    "bench fast": ("bench fast", "bench fast --repeats 1"),
    "bench sweep": ("bench sweep", "bench sweep --repeats 1"),
    "bench core": ("bench core", "bench core --quick"),
}

# Scenario copies cut shorter: elb-blowup's fault is at 5 min; a minute after it
# shows eip_remap's recovery and cname_repoint's first clients, in under a third
# of the time (the lab command above runs 72 s instead of 4 min).
SHORTER = {"elb-blowup.yaml": ("duration: 20m", "duration: 6m")}

# Not run here, with the reason: each is run elsewhere as written.
NOT_RUN = {
    f"{CLI} bench core": "the same measurement (sim.bench.core against HAProxy and nginx) is CI's regression step, "
                  "which runs before the tests (scripts/test.sh: python -m sim.bench.regression)",
    f"{CLI} bench sweep": "a timing of the sweeps (about 100 s) that tests/batch/test_sweep.py runs for real, "
                   "local and on a Dask LocalCluster; left out of CI for its 15 minutes (docs/ci.md)",
    "scripts/demo.sh": "sets up .venv from the network; CI's first step, and its two commands are README lines below",
    "scripts/test.sh": "runs this test suite itself (.ci/run runs it in CI)",
}

# Exit status other than 0 that a command is documented to give.
EXPECTED_STATUS = {
    "validate --zone examples/db.example.com": {1},  # the example zone has three conflicts, on purpose
    "audit examples/db.example.com": {1},  # the same conflicts: audit exits 1 on violations
    "check scenarios/elb-blowup.yaml": {0, 1},  # a gate: 1 when an expectation fails on 1 replication
    "baseline compare": {0, 1},  # 1 when the run is worse than the stored baseline
}

# Commands that need the real components scripts/test.sh installs.
NEEDS = {"--engine lab": "unbound", "bench core": "haproxy"}


def readme_commands() -> list[str]:
    """The README's shell commands, one per line, comments and blank lines dropped."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def _variant(command: str, tmp: Path) -> str:
    for key, (old, new) in QUICK.items():
        if key in command:
            assert old in command, f"QUICK[{key!r}] no longer matches the README: {command}"
            command = command.replace(old, new)
    # /tmp/ first: the interpreter itself may live under /tmp (a clone there, as CI's may be)
    return command.replace("/tmp/", f"{tmp}/").replace(CLI, f"{sys.executable} -m sim")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a fresh clone holds that the commands read: scenarios with one replication each (some shorter)."""
    folder = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / "examples", folder / "examples")
    (folder / "scenarios").mkdir()
    for scenario in (ROOT / "scenarios").glob("*.yaml"):
        text = re.sub(r"(?m)^replications: \d+", "replications: 1", scenario.read_text())
        if scenario.name in SHORTER:
            old, new = SHORTER[scenario.name]
            assert old in text, f"SHORTER[{scenario.name!r}] no longer matches"
            text = text.replace(old, new)
        (folder / "scenarios" / scenario.name).write_text(text)
    # Population files (`population: populations/...`) sit beside the scenarios that name them.
    shutil.copytree(ROOT / "scenarios" / "populations", folder / "scenarios" / "populations")
    # serve binds the ports of examples/lb.yaml; the copy takes free ones so a
    # test run never collides with a balancer already on 8080.
    lb = yaml.safe_load((folder / "examples" / "lb.yaml").read_text())
    lb["listen"], lb["admin"]["listen"] = "127.0.0.1:0", "127.0.0.1:0"
    (folder / "examples" / "lb.yaml").write_text(yaml.safe_dump(lb))
    return folder


def test_the_readme_has_the_commands_this_test_expects() -> None:
    commands = readme_commands()
    assert len(commands) >= 20, commands
    assert not [c for c in commands if "<" in c and ">" in c.split("<", 1)[1]], "a placeholder such as <timestamp>"
    for command in commands:
        assert command.startswith((CLI, *NOT_RUN)), f"neither a failover-sim command nor listed in NOT_RUN: {command}"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's /tmp/, private to this run (the commands hand folders to each other)."""
    return tmp_path_factory.mktemp("tmp")


RUN = [c for c in readme_commands() if c not in NOT_RUN and not c.startswith(f"{CLI} bench core")]


# One test per command, in README order: later commands read what earlier ones wrote.
@pytest.mark.slow
@pytest.mark.timeout(900)  # bench sweep took 410 s on this 2-core machine under load
@pytest.mark.parametrize("command", RUN, ids=[re.sub(r"[^\w./*-]+", "_", c.removeprefix(CLI + " ")) for c in RUN])
def test_readme_command_runs(clone: Path, scratch: Path, command: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    needed = [tool for key, tool in NEEDS.items() if key in command]
    if any(shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists() for t in needed):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {needed} missing for: {command}")
        pytest.skip(f"{needed} not installed (scripts/test.sh installs them)")
    if " serve " in command:
        _serve_briefly(_variant(command, scratch), clone, env)
        return
    done = subprocess.run(
        ["bash", "-c", _variant(command, scratch)],
        cwd=clone, env=env, capture_output=True, text=True, timeout=850, check=False,
    )
    allowed = next((s for key, s in EXPECTED_STATUS.items() if key in command), {0})
    assert done.returncode in allowed, f"{command}\nexit {done.returncode}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, f"{command}\n{done.stderr[-3000:]}"


def _serve_briefly(command: str, cwd: Path, env: dict[str, str]) -> None:
    """`serve` runs until stopped: start it, wait for its ready line, stop it as Ctrl-C would."""
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the ready line, or "" when serve exits
        assert '"event": "ready"' in line, f"{command}: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

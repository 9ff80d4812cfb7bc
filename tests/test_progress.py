"""Progress on stderr: a bar on a terminal, plain lines at a steady interval elsewhere, nothing with --quiet.

The commands run as a user runs them, in a subprocess whose stderr is a pipe
(as under CI or `| tee`); FAILOVER_SIM_PROGRESS_INTERVAL=0 asks for a line per
step so what is printed does not depend on how fast this machine is.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from sim.progress import INTERVAL_ENV, PhaseClock, Progress

ROOT = Path(__file__).resolve().parent.parent


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_plain_lines_one_per_step_at_interval_zero() -> None:
    out = io.StringIO()
    with Progress(3, "work", "units", stream=out, every_s=0) as bar:
        for k in range(3):
            bar.advance(f"unit {k}")
    lines = out.getvalue().splitlines()
    assert lines[0] == "work: 3 units to do"
    assert [line.split(",")[0] for line in lines[1:]] == ["work: 1/3 units (33%)", "work: 2/3 units (67%)",
                                                         "work: 3/3 units (100%)"]
    assert lines[-1].endswith("; unit 2") and "\r" not in out.getvalue()


def test_off_a_terminal_no_line_until_the_interval_passes_then_the_end() -> None:
    out = io.StringIO()
    with Progress(100, "work", stream=out, every_s=3600) as bar:
        for _ in range(100):
            bar.advance()
    assert [line.split(":")[1].split(",")[0].strip() for line in out.getvalue().splitlines()] == [
        "100 steps to do", "100/100 steps (100%)"]


def test_stopped_early_says_where() -> None:
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt), Progress(10, "work", stream=out, every_s=3600) as bar:
        bar.advance()
        raise KeyboardInterrupt
    assert out.getvalue().splitlines()[-1].startswith("work: stopped at 1/10 steps")


def test_quiet_prints_nothing_and_a_terminal_gets_the_bar() -> None:
    out = io.StringIO()
    with Progress(5, "work", stream=out, quiet=True) as bar:
        bar.update_to(5)
    assert out.getvalue() == ""
    terminal = _Terminal()
    with Progress(5, "work", stream=terminal) as bar:
        bar.update_to(5, "done")
    assert "5/5" in terminal.getvalue() and "100%" in terminal.getvalue()


def test_the_phase_clock_says_each_phase_once_within_its_interval() -> None:
    out = io.StringIO()
    clock = PhaseClock("lab x", stream=out, every_s=3600)
    for phase, t in (("warm-up", 0.0), ("warm-up", 30.0), ("fault 0 balancer_down", 300.0)):
        clock.show(phase, t, 1200.0)
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["lab x: warm-up", "lab x: fault 0 balancer_down"]
    assert "scenario 5:00 of 20:00" in lines[1]


def test_the_lab_names_its_phases_on_the_scenario_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.lab import world

    times = [-2.0, 10.0, 100.0, 301.0, 700.0]

    class ClockRanOut(Exception):
        pass

    def now() -> float:
        if not times:
            raise ClockRanOut  # the loop would go on: enough seen
        return times.pop(0)

    fault = SimpleNamespace(at=300.0, kind="balancer_down")
    fake = SimpleNamespace(sc=SimpleNamespace(faults=[fault], warmup=60.0, end=1200.0), now=now)

    async def sleep(_: float) -> None:
        pass

    monkeypatch.setattr(world.asyncio, "sleep", sleep)
    out = io.StringIO()
    with pytest.raises(ClockRanOut):
        asyncio.run(world._World._phases(fake, PhaseClock("lab s", stream=out, every_s=3600)))  # type: ignore[arg-type]
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == [
        "lab s: starting clients", "lab s: warm-up", "lab s: before the fault", "lab s: fault 0 balancer_down"]


def _command(*args: str, tmp_path: Path, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, INTERVAL_ENV: "0", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "sim", *args, *(["--quiet"] if quiet else [])], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240, check=False)


@pytest.mark.slow
def test_run_under_a_pipe_prints_plain_progress_lines_to_stderr_only(tmp_path: Path) -> None:
    done = _command("run", "scenarios/apex-with-mail.yaml", "--engine", "fast", "--replications", "2",
                    "--out", str(tmp_path / "a"), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].endswith("replications to do") and "(100%)" in lines[-1]
    assert len(lines) >= 3 and "\r" not in done.stderr
    assert "replications to do" not in done.stdout and "availability" in done.stdout
    quiet = _command("run", "scenarios/apex-with-mail.yaml", "--engine", "fast", "--replications", "2",
                     "--out", str(tmp_path / "b"), tmp_path=tmp_path, quiet=True)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.slow
def test_sweep_and_check_under_a_pipe_print_plain_progress_lines(tmp_path: Path) -> None:
    sweep = _command("sweep", "scenarios/apex-with-mail.yaml", "--set", "dns.service_ttl=30s,60s", "--replications",
                     "1", "--engine", "fast", "--workers", "1", "--out", str(tmp_path / "s"), tmp_path=tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    assert sweep.stderr.splitlines()[0].startswith("sweep apex-with-mail: ") and "units to do" in sweep.stderr
    assert "(100%)" in sweep.stderr.splitlines()[-1] and "\r" not in sweep.stderr
    check = _command("check", "scenarios/elb-blowup.yaml", "--engine", "fast", "--replications", "2",
                     tmp_path=tmp_path)
    assert check.returncode in (0, 1), check.stderr
    assert check.stderr.splitlines()[0].startswith("check elb-blowup (fast): ") and "\r" not in check.stderr
    # the verdicts on stdout, the progress on stderr
    assert "expectations" in check.stdout.splitlines()[-1] and "expectations" not in check.stderr


def test_as_the_run_callback_it_takes_the_total_from_the_run() -> None:
    import sim

    out = io.StringIO()
    with Progress(0, "model", "replications", stream=out, every_s=0) as bar:
        results = sim.run(ROOT / "scenarios" / "apex-with-mail.yaml", "fast", replications=2, progress=bar)
    steps = len(results.replications)  # each runnable strategy's replications (the apex refuses the CNAME)
    assert out.getvalue().splitlines()[-1].startswith(f"model: {steps}/{steps} replications (100%)")

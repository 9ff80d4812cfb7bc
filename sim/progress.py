"""Progress of long work (runs, sweeps, checks, baselines, benchmarks, the lab), on stderr.

One library draws it: tqdm. It is one small package with no dependencies of its
own, `tqdm.auto` picks a notebook widget in Jupyter and a text bar on a
terminal by itself, and it is maintained and everywhere; rich would bring a
whole rendering toolkit (markup, consoles, live layouts) for one bar.

Where the output goes decides the form:

- a terminal (stderr is a tty) or a notebook: a tqdm bar (count, rate, time
  left), redrawn in place;
- anything else (CI logs, `| tee`, a file): a plain line when the work starts,
  then one at a steady interval (every 10 s; the environment variable
  FAILOVER_SIM_PROGRESS_INTERVAL sets another, 0 for a line per step) and one
  when it ends. No carriage returns: a log shows each line once.

Progress goes to stderr so that results on stdout stay clean to pipe;
`--quiet` on the commands turns it off. This module sits at the bottom of the
package, beside sim/defaults.py: any module may import it.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import Any, TextIO

__all__ = ["INTERVAL_ENV", "PhaseClock", "Progress", "interval", "interactive"]

INTERVAL_ENV = "FAILOVER_SIM_PROGRESS_INTERVAL"
_DEFAULT_INTERVAL_S = 10.0


def interval() -> float:
    """Seconds between plain progress lines: FAILOVER_SIM_PROGRESS_INTERVAL, or 10."""
    raw = os.environ.get(INTERVAL_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return _DEFAULT_INTERVAL_S
    return value if value >= 0 else _DEFAULT_INTERVAL_S


def _in_notebook() -> bool:
    # Only when IPython is already loaded: a command-line run must not import it.
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()  # type: ignore[attr-defined]
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def interactive(stream: TextIO) -> bool:
    """Whether `stream` can take a bar redrawn in place: a terminal, or stderr in a notebook."""
    if stream is sys.stderr and _in_notebook():
        # tqdm draws its widget with ipywidgets; without it (a kernel from the test
        # extra, not the notebooks one) tqdm.auto falls back to a text bar full of
        # carriage returns, so plain lines instead
        import importlib.util

        return importlib.util.find_spec("ipywidgets") is not None
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Progress of `total` steps of some work, named `what` (steps counted in `unit`).

    `update_to(done, note)` says how far it is; `close()` (or leaving a `with`)
    ends it. It is also the callback `sim.run` and `sim.sweep` take, as in a
    notebook: `with Progress(0, "model") as bar: sim.run(scenario, progress=bar)`.
    `quiet` shows nothing at all.
    """

    def __init__(self, total: int, what: str, unit: str = "steps", *, quiet: bool = False,
                 stream: TextIO | None = None, every_s: float | None = None) -> None:
        self.total, self.what, self.unit = max(0, int(total)), what, unit
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.every_s = interval() if every_s is None else every_s
        self.done = 0
        self.note = ""
        self._started = time.monotonic()
        self._last_line = self._started
        self._closed = False
        self._bar: Any = None
        if quiet:
            return
        if interactive(self.stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=what, unit=f" {unit}", file=self.stream, dynamic_ncols=True,
                             leave=True)
        else:
            self._line(f"{what}: {self.total} {unit} to do")

    def update_to(self, done: int, note: str = "") -> None:
        """The work has reached `done` of its steps; `note` says what the last one was."""
        if self.quiet or self._closed:
            return
        done = min(max(0, int(done)), self.total) if self.total else max(0, int(done))
        step, self.done, self.note = done - self.done, done, note
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(step)
            return
        now = time.monotonic()
        if done >= self.total or now - self._last_line >= self.every_s:
            self._plain_status(now)

    def __call__(self, done: int, total: int, note: object = "") -> None:
        """The callback form `sim.run` and `sim.sweep` call (`progress(done, total, what)`): the
        total comes with each call, so `Progress(0, what)` can be handed over before it is known."""
        if total != self.total and not self.quiet and not self._closed:
            self.total = max(0, int(total))
            if self._bar is not None:
                self._bar.total = self.total
        self.update_to(done, note if isinstance(note, str) else "")

    def advance(self, note: str = "") -> None:
        """One more step done."""
        self.update_to(self.done + 1, note)

    def close(self) -> None:
        if self.quiet or self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.done < self.total and (self.done or time.monotonic() - self._started >= self.every_s):
            # ended early (an error, Ctrl-C) after some work: say where it stopped (input refused
            # before anything ran says so itself)
            self._line(f"{self.what}: stopped at {self.done}/{self.total} {self.unit} after "
                       f"{_clock(time.monotonic() - self._started)}")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _plain_status(self, now: float) -> None:
        elapsed = now - self._started
        text = f"{self.what}: {self.done}/{self.total} {self.unit}"
        if self.total:
            text += f" ({100 * self.done / self.total:.0f}%)"
        text += f", {_clock(elapsed)} elapsed"
        if 0 < self.done < self.total:
            text += f", about {_clock(elapsed / self.done * (self.total - self.done))} left"
        self._line(text + (f"; {self.note}" if self.note else ""))

    def _line(self, text: str) -> None:
        self._last_line = time.monotonic()
        print(text, file=self.stream, flush=True)


class PhaseClock:
    """The phases of work that runs on a clock (the lab: starting, warm-up, fault, drain).

    A plain line at each change of phase and at a steady interval within one
    (`interval()`), with the work's own clock against its end and the real time
    taken: `lab eip_remap: fault 0 balancer_down, scenario 6:40 of 20:00, real 0:41`.
    Plain lines on a terminal too: the lab runs its strategies side by side in
    separate processes, and two bars redrawn in place would overwrite each other.
    """

    def __init__(self, label: str, *, quiet: bool = False, stream: TextIO | None = None,
                 every_s: float | None = None) -> None:
        self.label, self.quiet = label, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = interval() if every_s is None else every_s
        self._started = time.monotonic()
        self._last = -float("inf")
        self.current = ""

    def show(self, phase: str, clock_s: float | None = None, end_s: float | None = None) -> None:
        """Where the work is: a line when the phase changed or the interval has passed."""
        now = time.monotonic()
        if self.quiet or (phase == self.current and now - self._last < self.every_s):
            return
        self.current, self._last = phase, now
        text = f"{self.label}: {phase}"
        if clock_s is not None:
            text += f", scenario {_clock(clock_s)}" + (f" of {_clock(end_s)}" if end_s is not None else "")
        text += f", real {_clock(now - self._started)}"
        print(text, file=self.stream, flush=True)

"""Processes the lab starts, and the guarantee that it stops them all.

Every child runs in its own session (process group), so a stop reaches what
it started too, and starts with an empty signal mask, so a plain `kill`
stops it. `Processes` stops everything on exit, on Ctrl-C, on SIGTERM and on
failure (the world uses it as a context manager; atexit covers an
interpreter that dies by an unhandled exception elsewhere); nothing
interrupts that cleanup, not a second signal nor a reader of our output
that has gone. When the parent itself is killed outright (SIGKILL), the
kernel kills its children (sim.lifeline).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sim.lifeline import child_setup


class LabError(Exception):
    """Something the lab needs did not start or is missing (the message says what)."""


class Processes:
    def __init__(self, workdir: Path, remove: bool = False) -> None:
        """`remove`: delete `workdir` once everything is stopped (before a signal is
        handed on: a pool worker's handler ends the process on the spot)."""
        self.workdir = workdir
        self.remove = remove
        self.children: dict[str, subprocess.Popen] = {}
        self.stopped: set[str] = set()
        atexit.register(self.stop_all)

    def __enter__(self) -> Processes:
        self._previous = signal.signal(signal.SIGTERM, _raise_exit)
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        late = None
        try:
            # The folder goes with the processes, signals held: a pool whose first worker
            # ends sends the others a second SIGTERM (ProcessPoolExecutor's broken-pool
            # cleanup), which landed in the rmtree and left a world's folder (seen in CI).
            with _uninterrupted():
                self.stop_all()
                if self.remove:
                    shutil.rmtree(self.workdir, ignore_errors=True)
        except _Terminated as held:  # a SIGTERM that arrived during the cleanup
            late = held
        finally:
            signal.signal(signal.SIGTERM, self._previous)
            atexit.unregister(self.stop_all)
        term = late or (exc if isinstance(exc, _Terminated) else None)
        if term is not None and callable(self._previous):
            # Hand the signal on, now that the children are stopped: a pool worker's
            # handler ends the worker, which the pool would otherwise keep waiting for work.
            self._previous(term.signum, None)
        if late is not None:
            raise late

    def start(self, name: str, argv: list[str], ready: str | None = "json", timeout: float = 15.0) -> subprocess.Popen:
        """Start `argv`; with ready="json", wait for its {"event": "ready"} line on stdout."""
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (the child keeps it open)
        # No signal may land between the fork and the registration: a child started but
        # not yet registered would outlive a Ctrl-C (seen in CI as an orphaned unbound).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            # The child must not keep that mask (unbound, sim.core's SIGTERM handler would
            # never see a signal), and dies with this process (child_setup).
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE if ready == "json" else log, stderr=log, start_new_session=True,
                cwd=self.workdir, preexec_fn=child_setup(),
            )
            self.children[name] = proc
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if ready == "json":
            assert proc.stdout is not None
            # Read in a thread: a bare readline here held the lab for as long as a child that
            # never wrote its line ran (a balancer hung before ready), past `timeout`.
            found = threading.Event()
            reader = threading.Thread(target=_until_ready, args=(proc.stdout, found), daemon=True)
            reader.start()
            reader.join(timeout)
            if found.is_set():
                # Keep reading its output into the log: a full pipe would block it.
                threading.Thread(target=_drain, args=(proc.stdout, self.workdir / f"{name}.log"),
                                 daemon=True).start()
                return proc
            self.stop_all()  # its end of the pipe closes, so the reader ends
            err = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
            raise LabError(f"{name} did not start ({' '.join(argv[:4])} ...): {err.strip() or 'no output'}")
        return proc

    def signal(self, name: str, sig: int) -> None:
        proc = self.children.get(name)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        if sig == signal.SIGSTOP:
            self.stopped.add(name)
        elif sig == signal.SIGCONT:
            self.stopped.discard(name)

    def stop_all(self) -> None:
        with _uninterrupted():
            self._stop_registered()
            # Belt and braces: anything still running in, or from, this world's folder.
            for pid in _pids_of(self.workdir):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)

    def _stop_registered(self) -> None:
        for proc in list(self.children.values()):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)  # a stopped process cannot die of SIGTERM
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        self.children.clear()

    def pids(self) -> list[int]:
        return [p.pid for p in self.children.values()]


def _until_ready(stdout: IO[bytes], found: threading.Event) -> None:
    """Read lines until a {"event": "ready"} one (then set `found`) or the end (or the pipe
    closed under it by stop_all)."""
    with contextlib.suppress(ValueError, OSError):
        for line in iter(stdout.readline, b""):
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(line).get("event") == "ready":
                    found.set()
                    return


def _pids_of(workdir: Path) -> list[int]:
    """Processes whose working directory is `workdir` or whose arguments name it (Linux /proc)."""
    mine, target = os.getpid(), str(workdir)
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == mine:
            continue
        with contextlib.suppress(OSError):
            cwd = os.readlink(entry / "cwd")
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if cwd == target or target in args:
                out.append(int(entry.name))
    return out


def _drain(stream, path: Path) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(Exception), open(path, "ab") as log:
        for line in stream:
            log.write(line)
            log.flush()


class _Terminated(SystemExit):
    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def _raise_exit(signum: int, frame: object) -> None:
    raise _Terminated(signum)


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, then deliver them; ignore SIGPIPE
    in it. A signal arriving mid-cleanup used to end it half-way: Ctrl-C reaches a
    pool's workers and their parent, which then sends each worker a SIGTERM while it is
    already stopping its world; under `| tee`, the reader dies of the same Ctrl-C and a
    write during cleanup raises SIGPIPE. Python runs handlers in the main thread only,
    so elsewhere nothing can interrupt the block and there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGPIPE] = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def address_block() -> str:
    """A /24 in 127.0.0.0/8 nobody on this machine is using: two lab runs do not collide."""
    rng = random.Random(os.getpid() ^ time.time_ns())
    for _ in range(50):
        block = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        try:
            with socket.socket() as s:
                s.bind((f"{block}.1", 0))
        except OSError:
            continue
        return block
    raise LabError("no free loopback address block found")


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])

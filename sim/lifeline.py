"""Child processes that end with the process that started them.

A child in its own session (the lab's servers, so that a stop reaches what
they start) gets no Ctrl-C from the terminal, and nothing tells it when its
parent is killed outright (SIGKILL, the OOM killer): it would run on,
holding its ports. On Linux the kernel can send it a signal when its parent
dies (prctl PR_SET_PDEATHSIG); elsewhere these calls do nothing and the
parent's own cleanup (sim.lab.procs) is all there is.

The kernel ties the child to the *thread* that created it, so processes are
created from the thread that lives as long as they should (the lab's and the
pools' are created from the main thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """Have the kernel send `sig` to this process when its parent dies. When `parent`
    (the pid the parent had) is no longer the parent, it died before this call could
    register: die now instead of running on unwatched."""
    if _libc is None:
        return
    _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)


def child_setup(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child starts with an empty signal mask
    (whatever the parent blocked around the fork, a server must be stoppable by a
    plain `kill`) and dies with its parent."""
    parent = os.getpid()

    def setup() -> None:
        die_with_parent(sig, parent)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())

    return setup


def pool_worker_setup(parent: int) -> None:
    """A process pool's `initializer`: the worker ends on SIGTERM and dies with the
    process whose pool it is. A worker inherits its parent's handlers, and a handler
    that raises (SystemExit) only fails the task at hand: the pool's loop catches it
    and waits for more work that will never come. SIGTERM, not SIGKILL, on the
    parent's death: a worker running a lab world stops it first (sim.lab.procs hands
    the signal on to this handler once its children are stopped)."""
    signal.signal(signal.SIGTERM, _end_worker)
    die_with_parent(signal.SIGTERM, parent)


def pool(workers: int):  # type: ignore[no-untyped-def]
    """A ProcessPoolExecutor whose workers end with this process (pool_worker_setup)."""
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, initializer=pool_worker_setup, initargs=(os.getpid(),))


def end_pool(executor) -> None:  # type: ignore[no-untyped-def]
    """Stop a pool now, its running tasks too (Ctrl-C, SIGTERM, a failure): shutdown
    alone waits for the running ones, minutes for a sweep's."""
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    executor.shutdown(wait=True, cancel_futures=True)


def _end_worker(signum: int, frame: object) -> None:
    os._exit(128 + signum)

"""An injected slowdown, to measure what the regression gate can catch (docs/ci.md).

Only the gate's calibration uses it (`python -m sim.bench.regression
--inject-slowdown 0.3`): the measured code itself then does 1.3 times its CPU
work, so its ratio must read 1 / 1.3 (23% lower). In-process (the model and
the fast engine) the timed region burns, after its work, `extra` times the CPU
that work took on this thread. In sim.core the gate sets ENV for the balancer
process it starts; `failover-sim serve` then burns, on its own event loop,
`extra` times the process CPU spent since the last tick, every 10 ms, and says
so on stderr. Unset (every normal run), nothing here is imported by sim.core.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

ENV = "FAILOVER_SIM_BENCH_SLOWDOWN"
TICK_S = 0.01  # short against a 1 s measurement, long against a tick's own cost (~2 us)
T = TypeVar("T")


def fraction() -> float:
    """The extra CPU fraction ENV asks for; 0 when unset."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return 0.0
    value = float(raw)
    if not 0.0 <= value <= 10.0:
        raise ValueError(f"{ENV}={raw}: expected a fraction of extra CPU work between 0 and 10")
    return value


def burn(cpu_s: float) -> None:
    """Spend `cpu_s` seconds of this thread's CPU (plain interpreter work, as the code measured)."""
    end = time.thread_time() + cpu_s
    spins = 0
    while time.thread_time() < end:
        spins += 1


@contextmanager
def slowed(extra: float) -> Iterator[None]:
    """Around a timed piece of work: afterwards burn `extra` times the CPU it took."""
    start = time.thread_time()
    yield
    if extra > 0:
        burn(extra * (time.thread_time() - start))


def install(loop: asyncio.AbstractEventLoop, extra: float) -> None:
    """Every TICK_S, burn on `loop` `extra` times the process CPU used since the previous tick."""
    mark = time.process_time()

    def tick() -> None:
        nonlocal mark
        burn(extra * (time.process_time() - mark))
        mark = time.process_time()
        loop.call_later(TICK_S, tick)

    loop.call_later(TICK_S, tick)


async def slowed_serve(main: Coroutine[Any, Any, T]) -> T:
    """sim.core's serve coroutine with the slowdown ENV asks for installed on its loop."""
    extra = fraction()
    print(f"failover-sim serve: {ENV}={extra}: burning {extra:.0%} extra CPU "
          "(the regression gate's calibration; never set it otherwise)", file=sys.stderr)
    install(asyncio.get_running_loop(), extra)
    return await main

"""A lab backend instance: an asyncio HTTP/1.1 server with the scenario's service time and workers.

Each request takes a service time drawn from the scenario's distribution
(divided by K) while holding one of `workers` slots; requests beyond the
workers wait in arrival order, beyond `queue_limit` they get a 503.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

import numpy as np

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"


class Instance:
    def __init__(self, service, workers: int, queue_limit: int, scale: float, seed: int) -> None:  # type: ignore[no-untyped-def]
        self.slots = asyncio.Semaphore(workers)
        self.waiting = 0
        self.queue_limit = queue_limit
        rng = np.random.default_rng(seed)
        self.draws = iter(())
        self.make = lambda: iter((np.asarray(service.sample(rng, 4096)) / scale).tolist())

    def service_time(self) -> float:
        try:
            return next(self.draws)  # type: ignore[call-overload]
        except StopIteration:
            self.draws = self.make()
            return next(self.draws)  # type: ignore[call-overload]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if self.waiting >= self.queue_limit:
                    writer.write(BUSY)
                    continue
                self.waiting += 1
                async with self.slots:
                    self.waiting -= 1
                    await asyncio.sleep(self.service_time())
                writer.write(RESPONSE)
                await writer.drain()
                if b"connection: close" in head.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def _serve(args: argparse.Namespace) -> None:
    from sim.scenario import load_file

    scenario = load_file(args.scenario)
    spec = scenario.backends
    host, port = args.listen.rsplit(":", 1)
    instance = Instance(spec.service_time, spec.workers, spec.queue_limit, args.scale, args.seed)
    await asyncio.start_server(instance.handle, host, int(port), backlog=1024)
    print(json.dumps({"event": "ready", "listen": args.listen}), flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.lab.backend")
    p.add_argument("--listen", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A fake clock and fake transports, to drive the protocol classes without sockets."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any


class FakeHandle:
    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: FakeHandle) -> bool:
        return self.when < other.when


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.heap: list[FakeHandle] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> FakeHandle:
        h = FakeHandle(self.now + delay, callback, args)
        heapq.heappush(self.heap, h)
        return h

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.heap and self.heap[0].when <= end:
            h = heapq.heappop(self.heap)
            if h.cancelled:
                continue
            self.now = h.when
            h.callback(*h.args)
        self.now = end

    @property
    def pending(self) -> int:
        return sum(1 for h in self.heap if not h.cancelled)


class FakeTransport:
    def __init__(self, protocol: Any = None, peer: tuple[str, int] = ("10.1.2.3", 5555)) -> None:
        self.protocol = protocol
        self.written = bytearray()
        self.closing = False
        self.aborted = False
        self.reading = True
        self.peer = peer
        self.eof_written = False

    def write(self, data: Any) -> None:
        assert not self.closing, "write after close"
        self.written += data

    def writelines(self, pieces: list[Any]) -> None:
        for piece in pieces:
            self.write(piece)

    def take(self) -> bytes:
        out = bytes(self.written)
        self.written.clear()
        return out

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

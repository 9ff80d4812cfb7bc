"""Client attempt rules: how many tries, what a failed try costs, when a pooled
connection may be reused, and which address each try goes to."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from sim.policy.outcomes import waits_for_timeout

__all__ = [
    "ADDRESS_MODES",
    "CONNECT_TIMEOUT",
    "ConnectionReuse",
    "RetryRule",
    "attempt_cost",
    "choose_address",
]

A = TypeVar("A")

# A balancer's connect timeout towards a blackholed instance, for every engine
# (the model, the fast engine; sim.core's `timeouts.connect` defaults to it).
# HAProxy has no default; 5 s is the value its documentation's examples use [I].
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RetryRule:
    """``attempts`` tries per request (1 = no retry), each bounded by ``timeout`` seconds.

    A client's own timeout is what bounds a blackholed connect in practice: left to
    the kernel it lasts ~127 s on Linux (tcp_syn_retries 6), ~75 s on macOS
    (docs/references.md, "Attempts against a dead address").
    """

    attempts: int = 1
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts!r}")
        if not self.timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {self.timeout!r}")

    def worst_case(self, outcome: str) -> float:
        """Seconds a request spends when every attempt meets ``outcome``."""
        return self.attempts * attempt_cost(outcome, self.timeout)


def attempt_cost(outcome: str, timeout: float) -> float:
    """Seconds one attempt costs the client before it knows the outcome (RTT excluded).

    ``refused``/``refuse``: 0 (the RST comes back at once); ``timeout``/``blackhole``:
    the per-attempt ``timeout``; ``ok``, ``error_5xx``, ``shed``, ``dns_error``: 0.
    """
    return timeout if waits_for_timeout(outcome) else 0.0


@dataclass(frozen=True, slots=True)
class ConnectionReuse:
    """When a pooled connection may carry another request.

    ``keepalive`` is the idle time after which the client closes it (0: a new
    connection per request); ``max_age`` the pool's maximum lifetime, after which
    it is replaced even if busy (HikariCP ``maxLifetime`` 30 min; ``inf``: none).
    Pools that outlive DNS keep sending to an old address until one of the two
    ends the connection (docs/references.md).
    """

    keepalive: float = 0.0
    max_age: float = math.inf

    def __post_init__(self) -> None:
        if not self.keepalive >= 0 or not self.max_age >= 0:
            raise ValueError(
                f"keepalive and max_age must be >= 0 seconds, got {self.keepalive!r}, {self.max_age!r}"
            )

    def can_reuse(self, opened_at: float, last_used_at: float, now: float) -> bool:
        """True if a connection opened at ``opened_at`` and idle since ``last_used_at``
        may be used at ``now``. Idle for exactly ``keepalive`` counts as closed."""
        return now - last_used_at < self.keepalive and now - opened_at < self.max_age

    def closes_at(self, opened_at: float, last_used_at: float) -> float:
        """When the connection stops being reusable if nothing uses it again."""
        if self.keepalive <= 0:
            return last_used_at
        return max(last_used_at, min(last_used_at + self.keepalive, opened_at + self.max_age))


ADDRESS_MODES: tuple[str, ...] = ("first", "next")


def choose_address(addresses: Sequence[A], attempt: int, mode: str) -> A:
    """The address attempt number ``attempt`` (0-based) goes to.

    ``"first"``: always the first address (Node, and many clients); ``"next"``:
    attempt i tries address i mod n (python-requests moves on after a connect
    timeout; Happy Eyeballs, RFC 8305, does so after 250 ms). docs/references.md.
    """
    if mode == "first":
        return addresses[0]
    if mode == "next":
        return addresses[attempt % len(addresses)]
    raise ValueError(f"unknown address mode {mode!r}; known: {', '.join(ADDRESS_MODES)}")

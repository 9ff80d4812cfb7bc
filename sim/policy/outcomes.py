"""What an attempt's outcome means for the one who made it: did it work, did it wait.

The names are those of the results contract (docs/scenario.md: ``ok``, ``refused``,
``timeout``, ``error_5xx``, ``dns_error``, ``shed``) plus the fault modes that
produce them (``refuse``, ``blackhole``), so a fault's mode can be passed where an
outcome is expected.
"""

from __future__ import annotations

__all__ = ["OUTCOMES", "is_success", "waits_for_timeout"]

# name -> (succeeded, costs the full per-attempt timeout). A refused connect fails
# at once (RST); a blackholed one only when the caller gives up: Linux connect()
# retries SYNs for ~127 s, so the caller's own timeout is what bounds it
# (docs/references.md, "Attempts against a dead address").
OUTCOMES: dict[str, tuple[bool, bool]] = {
    "ok": (True, False),
    "refused": (False, False),
    "refuse": (False, False),
    "timeout": (False, True),
    "blackhole": (False, True),
    "error_5xx": (False, False),
    "shed": (False, False),
    "dns_error": (False, False),
}


def _lookup(outcome: str) -> tuple[bool, bool]:
    try:
        return OUTCOMES[outcome]
    except KeyError:
        known = ", ".join(sorted(OUTCOMES))
        raise ValueError(f"unknown outcome {outcome!r}; known: {known}") from None


def is_success(outcome: str) -> bool:
    """True when the attempt worked."""
    return _lookup(outcome)[0]


def waits_for_timeout(outcome: str) -> bool:
    """True when the attempt fails only once the caller's timeout runs out."""
    return _lookup(outcome)[1]

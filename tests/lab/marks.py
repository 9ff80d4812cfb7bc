"""Finding the processes a test started by a marker in their environment, so that lab
runs of other test streams or sessions on the same machine are never taken for ours."""

from __future__ import annotations

from pathlib import Path

MARK = "FAILOVER_SIM_TEST_MARK"


def marked(mark: str) -> list[int]:
    """Live (not zombie) processes carrying the marker."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def described(pids: list[int]) -> list[str]:
    """'pid command line' of each process still there."""
    out = []
    for pid in pids:
        try:
            out.append(f"{pid} " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return out

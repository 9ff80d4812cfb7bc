"""Log timestamps to seconds since the epoch, fast: the date part is parsed once per minute seen.

Formats: ISO 8601 (AWS, Route 53, BIND's `print-time iso8601`), the common
log format's `10/Oct/2000:13:55:36 -0700` (nginx; HAProxy's accept date, with
milliseconds and no zone), BIND's `02-Dec-2026 14:00:00.123`. A stamp
without a zone is taken as UTC: the fit uses only differences and the hour
of the day, which is then the log's own local hour.
"""

from __future__ import annotations

import calendar
import re
from functools import lru_cache

from sim.fit.lines import Malformed

MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})?$")


@lru_cache(maxsize=4096)
def _minute(year: int, month: int, day: int, hour: int, minute: int) -> int:
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60):
        raise Malformed("bad timestamp")
    return calendar.timegm((year, month, day, hour, minute, 0))


def _offset(zone: str | None) -> int:
    if not zone or zone == "Z":
        return 0
    digits = zone[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:]) * 60
    return -seconds if zone[0] == "+" else seconds


_minutes: dict[str, int] = {}


def iso8601(text: str) -> float:
    """`2018-07-02T22:23:00.186641Z` (or with an offset, or none)."""
    # The fast path (AWS's own form, `...:SS[.ffffff]Z`): the minute's epoch from a
    # dict, the seconds by float(); everything else through the regular expression.
    if text[-1:] == "Z" and text[16:17] == ":" and text[13:14] == ":":
        base = _minutes.get(text[:16])
        if base is not None:
            seconds = text[17:-1]
            if seconds[:2].isdigit():
                return base + float(seconds)
    m = _ISO.match(text)
    if not m:
        raise Malformed("bad timestamp")
    y, mo, d, h, mi, s, zone = m.groups()
    base = _minute(int(y), int(mo), int(d), int(h), int(mi))
    if zone == "Z" and len(_minutes) < 100_000:
        _minutes[text[:16]] = base
    return base + float(s) + _offset(zone)


def clf(text: str) -> float:
    """`10/Oct/2000:13:55:36 -0700` or HAProxy's `06/Feb/2009:12:14:14.655`."""
    try:
        date, _, zone = text.partition(" ")
        d, mon, rest = date.split("/", 2)
        y, h, mi, s = rest.split(":")
        base = _minute(int(y), MONTHS[mon], int(d), int(h), int(mi))
    except (ValueError, KeyError) as exc:
        raise Malformed("bad timestamp") from exc
    return base + float(s) + _offset(zone or None)


def bind_time(text: str) -> float:
    """`02-Dec-2026 14:00:00.123`."""
    try:
        date, clock = text.split(" ")
        d, mon, y = date.split("-")
        h, mi, s = clock.split(":")
        return _minute(int(y), MONTHS[mon], int(d), int(h), int(mi)) + float(s)
    except (ValueError, KeyError) as exc:
        raise Malformed("bad timestamp") from exc

"""sim.fit.clock: each timestamp form against the standard library's own parse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sim.fit.clock import bind_time, clf, iso8601
from sim.fit.lines import Malformed


def _epoch(text: str, fmt: str) -> float:
    d = datetime.strptime(text, fmt)
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()


@pytest.mark.parametrize("text", ["2026-12-02T14:00:01.186641Z", "2017-12-13T08:16:02.130Z", "2026-02-28T23:59:59Z"])
def test_iso8601(text: str) -> None:
    assert iso8601(text) == pytest.approx(_epoch(text, "%Y-%m-%dT%H:%M:%S.%f%z" if "." in text else "%Y-%m-%dT%H:%M:%S%z"))


def test_iso8601_with_offset_and_without_zone() -> None:
    assert iso8601("2026-12-02T15:00:01+01:00") == iso8601("2026-12-02T14:00:01Z") == iso8601("2026-12-02T14:00:01")


@pytest.mark.parametrize("text", ["10/Oct/2000:13:55:36 -0700", "02/Dec/2026:00:00:00 +0530"])
def test_common_log_format(text: str) -> None:
    assert clf(text) == _epoch(text, "%d/%b/%Y:%H:%M:%S %z")


def test_haproxy_accept_date_has_milliseconds_and_no_zone() -> None:
    assert clf("06/Feb/2009:12:14:14.655") == pytest.approx(_epoch("06/Feb/2009:12:14:14.655", "%d/%b/%Y:%H:%M:%S.%f"))


def test_bind_print_time() -> None:
    assert bind_time("02-Dec-2026 14:00:00.123") == pytest.approx(_epoch("02-Dec-2026 14:00:00.123", "%d-%b-%Y %H:%M:%S.%f"))


@pytest.mark.parametrize("bad", ["2026-13-02T14:00:01Z", "yesterday", "2026-12-02 14:00"])
def test_bad_stamps_are_malformed(bad: str) -> None:
    with pytest.raises(Malformed):
        iso8601(bad)
    with pytest.raises(Malformed):
        clf(bad)

"""sim.fit.formats: recognising each format from a file, and reading whole files (gzip, junk, cut short)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.fit.formats import LogError, detect, read
from tests.fit.logtext import ALB, BIND, CHROME, ELB, HAPROXY, NGINX, ROUTE53, write

SAMPLES = {"alb": ALB, "elb": ELB, "nginx": NGINX, "haproxy": HAPROXY, "route53": ROUTE53, "bind": BIND}
KIND = {"alb": "access", "elb": "access", "nginx": "access", "haproxy": "access", "route53": "dns", "bind": "dns"}


def _lines(name: str, n: int) -> list[str]:
    return [SAMPLES[name].format(client=f"198.51.100.{i % 250}" if i % 3 else f"2001:db8::{i:x}", agent=CHROME)
            for i in range(n)]


@pytest.mark.parametrize("name", list(SAMPLES))
def test_each_format_is_recognised_and_read_through_gzip_junk_and_a_cut_last_line(tmp_path: Path, name: str) -> None:
    lines = _lines(name, 40)
    lines.insert(5, "this is not a log line")
    lines.insert(9, lines[8][: len(lines[8]) // 3])
    path = write(tmp_path / f"{name}.log.gz", [*lines, lines[0][:25]], gz=True, last_newline=False)
    assert detect(path, KIND[name]).name == name
    records, stats = read(path, KIND[name])
    got = list(records)
    assert len(got) == 40 == stats.records
    assert stats.bad == 3 and stats.malformed["truncated last line"] == 1
    assert stats.lines == 43


def test_unknown_empty_missing_and_misnamed_files_raise_naming_the_file(tmp_path: Path) -> None:
    junk = write(tmp_path / "junk.log", ["hello", "world"])
    with pytest.raises(LogError, match="junk.log: not a known access log format"):
        detect(junk, "access")
    with pytest.raises(LogError, match="empty.log: empty"):
        detect(write(tmp_path / "empty.log", []), "access")
    with pytest.raises(LogError, match="missing.log: cannot read: no such file"):
        read(tmp_path / "missing.log", "dns")
    with pytest.raises(LogError, match="--format bind is not a access log format"):
        read(junk, "access", "bind")

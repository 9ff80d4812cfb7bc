"""sim.fit.lines: streaming plain and gzip files, counting what cannot be read."""

from __future__ import annotations

import gzip
from pathlib import Path

from sim.fit.lines import LineStats, Malformed, Reader, is_gzip, raw_lines
from tests.fit.logtext import write


def _digits(text: str) -> int:
    if not text.isdigit():
        raise Malformed("not a number")
    return int(text)


def test_plain_and_gzip_read_the_same(tmp_path: Path) -> None:
    lines = [str(i) for i in range(1000)]
    plain = write(tmp_path / "a.log", lines)
    packed = write(tmp_path / "a.log.gz", lines, gz=True)
    assert not is_gzip(plain) and is_gzip(packed)
    for path in (plain, packed):
        stats = LineStats(str(path))
        assert list(Reader(_digits, stats)) == list(range(1000))
        assert (stats.lines, stats.records, stats.bad) == (1000, 1000, 0)


def test_malformed_lines_are_counted_by_kind_with_their_first_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.log", ["1", "x", "2", "", "y", "3"])
    stats = LineStats(str(path))
    assert list(Reader(_digits, stats)) == [1, 2, 3]
    assert stats.malformed == {"not a number": 2}
    assert stats.first_line == {"not a number": 2}
    assert "2 not a number (first at line 2)" in stats.summary()


def test_an_unterminated_last_line_is_read_if_whole_and_counted_as_truncated_if_not(tmp_path: Path) -> None:
    whole = write(tmp_path / "whole.log", ["1", "22"], last_newline=False)
    stats = LineStats(str(whole))
    assert list(Reader(_digits, stats)) == [1, 22]
    cut = tmp_path / "cut.log"
    cut.write_bytes(b"1\n2\n3 and so o")
    stats = LineStats(str(cut))
    assert list(Reader(_digits, stats)) == [1, 2]
    assert stats.malformed == {"truncated last line": 1}


def test_a_gzip_stream_cut_short_ends_the_file_counted(tmp_path: Path) -> None:
    data = gzip.compress("".join(f"{i}\n" for i in range(20000)).encode())
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    stats = LineStats(str(path))
    got = list(Reader(_digits, stats))
    assert 0 < len(got) < 20000 and got == list(range(len(got)))
    assert stats.malformed["truncated gzip stream"] == 1


def test_bytes_that_are_not_utf8_do_not_stop_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"1\n\xff\xfe\n2\n")
    stats = LineStats(str(path))
    assert list(Reader(_digits, stats)) == [1, 2]
    assert [n for n, _, _ in raw_lines(path, LineStats(str(path)))] == [1, 2, 3]

"""A/B of a C head parser for sim.core (issue 22, item 9): llhttp through httptools
against the regular expressions it would replace, with sim.core's own checks on top.

    pip install --target /tmp/ht httptools    # not a dependency: the A/B did not keep it
    PYTHONPATH=/tmp/ht .venv/bin/python benchmarks/head-parser-ab.py

What llhttp can take over is the syntax: the request line and the field lines
(``_REQUEST_LINE``, ``_FIELDS``). The framing checks stay ours and need the
fields that decide framing (``_WANTED``), the field count (``max_headers``),
and the method, target and version, which httptools hands over only through
Python callbacks and getters. Prints the best of 7 runs, per head, for the
benchmark's request head and a 14-field browser head.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httptools  # noqa: E402

from sim.core import http as H  # noqa: E402

BENCH = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"  # sim/bench/openloop.c's request
BROWSER = (
    b"GET /static/app.js?v=12 HTTP/1.1\r\nHost: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
    b"Referer: https://www.example.com/\r\nConnection: keep-alive\r\n"
    b"Cookie: session=abcdef0123456789; theme=dark; _ga=GA1.2.123456789.1700000000\r\n"
    b"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n"
    b'Sec-Fetch-Site: same-origin\r\nIf-None-Match: "abc123"\r\nCache-Control: max-age=0\r\n\r\n'
)


class _Url:
    __slots__ = ("url",)

    def on_url(self, url: bytes) -> None:
        self.url = url


def main() -> None:
    sink = _Url()
    # one parser reused (a head without a body leaves it ready for the next);
    # a new one per head costs more still
    llhttp = httptools.HttpRequestParser(sink)

    def ours(whole: bytes, eol: int) -> object:
        m = H._REQUEST_LINE.fullmatch(whole[:eol])
        if m is None or H._FIELDS.fullmatch(whole, eol + 1) is None:
            raise H.ParseError(400, "malformed")
        return m.groups(), whole.count(b"\n", eol + 2), H._WANTED.findall(whole, eol + 1)

    def hybrid(whole: bytes, eol: int) -> object:
        llhttp.feed_data(whole + b"\r\n")  # raises on bad syntax
        line = (llhttp.get_method(), sink.url, llhttp.get_http_version())
        return line, whole.count(b"\n", eol + 2), H._WANTED.findall(whole, eol + 1)

    parser = H.Parser()

    def whole_head(data: bytes) -> None:
        parser.feed(data)
        parser._reset()

    for label, data in (("benchmark head", BENCH), ("browser head", BROWSER)):
        whole = data[: data.find(b"\r\n\r\n") + 2]
        eol = whole.find(b"\r\n")
        for name, f in (
            ("sim.core Parser.feed, the whole head", lambda d=data: whole_head(d)),
            ("  of it, the syntax regexes + fields", lambda w=whole, e=eol: ours(w, e)),
            ("  llhttp in their place + fields", lambda w=whole, e=eol: hybrid(w, e)),
        ):
            best = min(timeit.repeat(f, number=100_000, repeat=7)) / 100_000
            print(f"{label:15s} {name:38s} {best * 1e6:6.2f} us")


if __name__ == "__main__":
    main()

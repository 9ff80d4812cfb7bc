"""A small incremental HTTP/1.1 message parser, sans-IO (no sockets, no clock).

The proxy forwards bodies as they are on the wire: a chunked body keeps its
chunk framing (size lines, CRLFs, trailers) and a Content-Length body is cut
at its length. So the parser only has to find where a message ends and check
its framing, and body bytes go out as slices of what came in, never copied
into a buffer of ours (the "no per-request copies" rule of issue 4).

``feed`` returns a list of events in order: a :class:`Head`, body pieces
(``bytes`` or ``memoryview``) and :data:`END`. After END the parser holds any
further bytes (a pipelined request) until :meth:`Parser.next_message` is
called, so one request is handled at a time, in order.

Strictness is on purpose (RFC 9112 section 6.3 and 11.2, request smuggling):
Content-Length together with Transfer-Encoding, differing Content-Length
values, a Transfer-Encoding other than ``chunked``, whitespace before a colon
and obsolete line folding are all rejected with 400 and never forwarded.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "CHUNKED",
    "CLOSE",
    "END",
    "LENGTH",
    "NONE",
    "Head",
    "ParseError",
    "MAX_CHUNK_SIZE",
    "Parser",
    "error_response",
]

# Body framing of a message.
NONE = 0  # no body
LENGTH = 1  # Content-Length
CHUNKED = 2  # Transfer-Encoding: chunked
CLOSE = 3  # until the connection closes (responses only)


class _End:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = _End()

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")  # visible ASCII, no spaces or controls
# A chunk line (RFC 9112 7.1.1): chunk-size [ chunk-ext ], with
# chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ]).
# Nothing else, a bare CR least of all: a backend that ends the line at a
# bare CR (an llhttp quirk, since fixed) reads what follows as a request.
_T = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[ \t]*"
    + _T
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _T
    + rb"|"
    + _QUOTED
    + rb"))?)*"
)
# A trailer line: a field line, as in the head (a value of visible
# characters, spaces and tabs; no controls, no bare CR).
_TRAILER_LINE = re.compile(_T + rb":[\t\x20-\x7e\x80-\xff]*")
# The largest chunk taken, 2^31 - 1 bytes: what a signed 32-bit integer holds.
# A backend that keeps the size in 32 bits reads a bigger one modulo 2^32
# (0x100000005 as 5) and takes the rest of the chunk for the next request;
# HAProxy 1.x refused chunks of 2^28 bytes and more for the same reason. A
# body of any size still passes, in more chunks.
MAX_CHUNK_SIZE = 2**31 - 1
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) (HTTP/1\.[01])")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-5][0-9][0-9])(?: ([^\r\n]*))?")

# Headers that describe one connection, not the message (RFC 9110 7.6.1); a
# proxy must not forward them. Transfer-Encoding stays: chunked bodies pass through.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade"})
_KNOWN_CONNECTION_TOKENS = frozenset({b"close", b"keep-alive", b"upgrade", b"te"})
# Fields a Connection option must never remove: cutting the framing while the
# body goes on as framed would let the body pass as a second request
# (smuggling); Host is for every recipient too (RFC 9110 7.6.1).
_NEVER_CONNECTION_OPTIONS = frozenset({b"content-length", b"transfer-encoding", b"host"})
_KEEP_ALIVE = frozenset({b"keep-alive"})
_CLOSE = frozenset({b"close"})
# The patterns below run on the whole head from the LF that ends the start
# line, and each starts with that LF: a literal first character lets the
# regex engine jump from line to line instead of trying every position.
# One line of the header block: a token, a colon, a value without controls (tab allowed).
# (Possessive repeats and a positive value class: the same language, a third of the time.)
_FIELDS = re.compile(rb"\n(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]++:[\t\x20-\x7e\x80-\xff]*+\r\n)*+")
# the fields whose values the parser needs
_WANTED = re.compile(
    rb"\n(content-length|transfer-encoding|connection|host|x-forwarded-for"
    rb"|keep-alive|proxy-connection|te|upgrade):[ \t]*+([^\r]*+)\r",
    re.I,
)
# a hop-by-hop line from the LF before it to its CR (a valid value holds
# no CR): cutting that leaves the lines around it whole
_HOP_LINE = re.compile(rb"(?i)\n(?:connection|keep-alive|proxy-connection|te|upgrade):[^\r]*+\r")
_HOP_LINE_XFF = re.compile(
    rb"(?i)\n(?:connection|keep-alive|proxy-connection|te|upgrade|x-forwarded-for):[^\r]*+\r"
)
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})

_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


class ParseError(Exception):
    """A message that cannot be accepted; ``status`` is the answer to give."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class Head:
    """A parsed request or response head.

    ``whole`` is the head as received up to the last field line's CRLF (start
    line, then each field line with its CRLF, names' case preserved; not the
    blank line), so a head is forwarded by copying that one slice and, only
    when the message carries hop-by-hop fields, cutting them out with one
    regular expression: no per-field work on the common path. ``headers``
    splits it into (name, value) pairs on demand.
    """

    __slots__ = (
        "method",
        "target",
        "version",
        "status",
        "reason",
        "start",
        "whole",
        "framing",
        "length",
        "keep_alive",
        "connection_tokens",
        "xff",
        "hop",
        "interim",
    )

    def __init__(
        self,
        start: bytes,
        whole: bytes,
        method: bytes,
        target: bytes,
        version: bytes,
        status: int = 0,
        reason: bytes = b"",
    ) -> None:
        # (every field given at once: the parser makes one per message)
        self.method = method
        self.target = target
        self.version = version
        self.status = status
        self.reason = reason
        self.start = start  # the request or status line, without CRLF
        self.whole = whole
        self.framing: int = NONE
        self.length: int = 0
        self.keep_alive: bool = True
        self.connection_tokens: frozenset[bytes] = frozenset()
        self.xff: bytes = b""
        # how many fields the head holds that a proxy must not forward
        # (hop-by-hop, or X-Forwarded-For, which the proxy rewrites)
        self.hop: int = 0
        # a 1xx response other than 101: the final response still follows
        self.interim = 100 <= status < 200 and status != 101

    @property
    def raw(self) -> bytes:
        """The header block: each field line with its CRLF."""
        return self.whole[len(self.start) + 2 :]

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        out = []
        for line in self.raw.split(b"\r\n"):
            if line:
                name, _, value = line.partition(b":")
                out.append((name, value.strip(b" \t")))
        return out

    def get(self, name: bytes) -> bytes | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    def forward(self, drop_xff: bool) -> bytes:
        """The head (start line and fields, each line with its CRLF) without
        the fields a proxy must not pass on."""
        if not self.hop:
            return self.whole
        tokens = self.connection_tokens
        # the usual Connection values name no other field
        usual = tokens is _KEEP_ALIVE or tokens is _CLOSE
        if usual and self.hop == 1:
            # that one field is the Connection field (most backends' keep-alive
            # response): cut its line, in its usual spelling, without a regex
            whole = self.whole
            i = whole.find(b"\nConnection:")
            if i > 0:
                return whole[:i] + whole[whole.index(b"\r", i) + 1 :]
        whole = (_HOP_LINE_XFF if drop_xff else _HOP_LINE).sub(b"", self.whole)
        if usual or not tokens:
            return whole
        extra = tokens - _KNOWN_CONNECTION_TOKENS - _NEVER_CONNECTION_OPTIONS
        if extra:
            names = b"|".join(re.escape(t) for t in extra if _TOKEN.fullmatch(t))
            if names:
                whole = re.sub(rb"(?i)\n(?:" + names + rb"):[^\r]*+\r", b"", whole)
        return whole


# parser states
_HEAD = 0
_BODY_LENGTH = 1
_CHUNK_SIZE = 2
_CHUNK_DATA = 3
_CHUNK_CRLF = 4
_TRAILER = 5
_BODY_CLOSE = 6
_DONE = 7


class Parser:
    """Incremental parser of HTTP/1.x requests (``response=False``) or responses.

    ``max_head`` bounds the head (request line and headers) in bytes: longer
    is 431 for a request, 502 for a response. For responses, call
    :meth:`expect_response_to` with the request method before feeding, since a
    response to HEAD has no body whatever its headers say.
    """

    __slots__ = (
        "_response",
        "_max_head",
        "_max_headers",
        "_many",
        "_state",
        "held",
        "_remaining",
        "_line",
        "_line_checked",
        "_trailer_bytes",
        "_crlf_seen",
        "_no_body",
        "head",
        "started",
    )

    def __init__(
        self, response: bool = False, max_head: int = 16384, max_headers: int = 100
    ) -> None:
        self._response = response
        self._max_head = max_head
        self._max_headers = max_headers
        self._many = 4 * (max_headers + 1)  # bytes of field lines that may hold too many
        # bytes received but not parsed yet: a partial head, a pipelined request
        self.held = bytearray()
        self._line = bytearray()
        # set per request by expect_response_to and kept across next_message:
        # an interim (1xx) response and the final one answer the same request
        self._no_body = False
        self._reset()

    def _reset(self) -> None:
        self._state = _HEAD
        self._remaining = 0
        self._line.clear()
        self._line_checked = False
        self._trailer_bytes = 0
        self._crlf_seen = 0
        self.head: Head | None = None
        # a byte of this message has arrived (the header timeout starts then)
        self.started = False

    # -- public ---------------------------------------------------------------

    @property
    def done(self) -> bool:
        """The current message is complete (END was emitted)."""
        return self._state == _DONE

    @property
    def buffered(self) -> int:
        """Bytes held but not yet parsed (a pipelined request, a partial head)."""
        return len(self.held)

    @property
    def in_head(self) -> bool:
        return self._state == _HEAD

    def expect_response_to(self, method: bytes) -> None:
        self._no_body = method == b"HEAD"

    def next_message(self) -> list[object]:
        """Start on the next message and parse whatever was held back for it."""
        self._reset()
        if not self.held:
            return []
        data = bytes(self.held)
        self.held.clear()
        return self.feed(data)

    def feed(self, data: Any) -> list[object]:
        """Parse ``data``; returns the events it completes. Raises :class:`ParseError`."""
        out: list[object] = []
        if self._state == _DONE:
            self.held += data
            return out
        if data:
            self.started = True
        if self._state == _HEAD:
            end = data.find(b"\r\n\r\n") if not self.held else -1
            if end > 0 and end + 4 <= self._max_head and data[0] != 13:
                # the common case, a whole head in one read: parse it in place
                # and go on with the rest as a view, not copied into our buffer
                self._emit_head(data[: end + 2], data.find(b"\r\n"), out)
                data = memoryview(data)[end + 4 :] if end + 4 < len(data) else b""
            else:
                data = self._feed_head(data, out)
            if not data or self._state == _DONE:
                if data:
                    self.held += data
                return out
        state = self._state
        if state == _BODY_LENGTH:
            n = len(data)
            rem = self._remaining
            if n <= rem:
                out.append(data)
                rem -= n
                self._remaining = rem
                if rem == 0:
                    self._finish(out)
                return out
            out.append(memoryview(data)[:rem])
            self._remaining = 0
            self._finish(out)
            self.held += memoryview(data)[rem:]
            return out
        if state == _BODY_CLOSE:
            out.append(data)
            return out
        if data.__class__ is memoryview:
            data = bytes(data)  # the part of a chunked body that came with the head
        end = self._scan_chunked(data)
        if end < 0:
            out.append(data)
            return out
        out.append(memoryview(data)[:end] if end < len(data) else data)
        self._finish(out)
        if end < len(data):
            self.held += memoryview(data)[end:]
        return out

    def feed_eof(self) -> list[object]:
        """The peer closed its side; ends a read-until-close body, else raises."""
        if self._state == _BODY_CLOSE:
            out: list[object] = []
            self._finish(out)
            return out
        if self._state == _DONE or (self._state == _HEAD and not self.held and not self.started):
            return []
        raise ParseError(502 if self._response else 400, "connection closed mid-message")

    # -- internals ------------------------------------------------------------

    def _finish(self, out: list[object]) -> None:
        self._state = _DONE
        out.append(END)

    def _feed_head(self, data: bytes, out: list[object]) -> Any:
        """A head in pieces (or after empty lines): gather it in our buffer."""
        buf = self.held
        start = max(0, len(buf) - 3)
        buf += data
        if not self._line_checked:
            # Reject a bad request line as soon as it is complete, without
            # waiting for headers that may never come.
            eol = buf.find(b"\r\n")
            while eol == 0 and not self._response:
                # RFC 9112 2.2: ignore at least one empty line before a request;
                # the head's end is then searched for from the start again
                del buf[:2]
                start = 0
                eol = buf.find(b"\r\n")
            if eol < 0:
                if len(buf) > self._max_head:
                    raise ParseError(431 if not self._response else 502, "request line too long")
                if b"\n" in buf:
                    raise ParseError(
                        400 if not self._response else 502, "bare LF in the start line"
                    )
                return b""
            self._start_line(bytes(buf[:eol]))
            self._line_checked = True
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            if len(buf) > self._max_head:
                raise ParseError(431 if not self._response else 502, "header section too large")
            return b""
        if end + 4 > self._max_head:
            raise ParseError(431 if not self._response else 502, "header section too large")
        whole = bytes(buf[: end + 2])
        rest = bytes(buf[end + 4 :])
        buf.clear()
        self._emit_head(whole, whole.find(b"\r\n"), out)
        return rest

    def _start_line(self, line: bytes) -> None:
        if self._response:
            if _STATUS_LINE.fullmatch(line) is None:
                raise ParseError(502, "malformed status line")
            return
        parts = line.split(b" ")
        if len(parts) != 3:
            raise ParseError(400, "malformed request line")
        method, target, version = parts
        if _TOKEN.fullmatch(method) is None or _TARGET.fullmatch(target) is None:
            raise ParseError(400, "malformed request line")
        if version != b"HTTP/1.1" and version != b"HTTP/1.0":
            if re.fullmatch(rb"HTTP/[0-9]\.[0-9]", version):
                raise ParseError(505, "only HTTP/1.0 and HTTP/1.1 are served")
            raise ParseError(400, "malformed request line")

    def _emit_head(self, whole: bytes, eol: int, out: list[object]) -> None:
        """Parse a head and emit it: ``whole`` is up to the last field line's
        CRLF, ``eol`` where the start line ends."""
        response = self._response
        bad = 502 if response else 400
        first = whole[:eol]
        if response:
            m = _STATUS_LINE.fullmatch(first)
            if m is None:
                raise ParseError(502, "malformed status line")
            minor, status, reason = m.groups()
            version = b"HTTP/1.1" if minor == b"1" else b"HTTP/1.0"
            head = Head(first, whole, b"", b"", version, int(status), reason or b"")
        else:
            m = _REQUEST_LINE.fullmatch(first)
            if m is None:
                self._start_line(first)  # raises, with the precise status
                raise ParseError(400, "malformed request line")
            head = Head(first, whole, *m.groups())
        lengths: list[bytes] = []
        te: bytes | None = None
        conn = xff = b""
        hosts = 0
        hop = 0
        if len(whole) > eol + 2:
            # one C-speed pass validates every field line: a token name right
            # before the colon (no whitespace: smuggling), no obs-fold, no
            # control characters or bare CR/LF in values
            if _FIELDS.fullmatch(whole, eol + 1) is None:
                raise ParseError(bad, "malformed header field")
            # (each field line takes 4 bytes at least, "a:" and CRLF: a shorter
            # block than max_headers + 1 of them needs no count)
            if len(whole) - eol - 2 >= self._many and whole.count(b"\n", eol + 2) > self._max_headers:
                raise ParseError(431 if not response else 502, "too many header fields")
            # (values carry their trailing whitespace: stripped where used)
            for name, value in _WANTED.findall(whole, eol + 1):
                name = name.lower()
                if name == b"content-length":
                    lengths.append(value.rstrip(b" \t"))
                elif name == b"transfer-encoding":
                    value = value.rstrip(b" \t")
                    te = value if te is None else te + b", " + value
                elif name == b"host":
                    hosts += 1
                elif name == b"x-forwarded-for":
                    value = value.rstrip(b" \t")
                    xff = value if not xff else xff + b", " + value
                    hop += 1
                else:
                    hop += 1
                    if name == b"connection":
                        value = value.rstrip(b" \t")
                        conn = value if not conn else conn + b", " + value
        head.xff = xff
        head.hop = hop
        if conn:
            conn = conn.lower()
            if conn == b"keep-alive":
                tokens = _KEEP_ALIVE
            elif conn == b"close":
                tokens = _CLOSE
            else:
                tokens = frozenset(t.strip() for t in conn.split(b",") if t.strip())
            head.connection_tokens = tokens
            if head.version == b"HTTP/1.1":
                head.keep_alive = b"close" not in tokens
            else:
                head.keep_alive = b"keep-alive" in tokens and b"close" not in tokens
        elif head.version != b"HTTP/1.1":
            head.keep_alive = False
        if not response and hosts != 1:
            _refuse_hosts(hosts, head.version)
        if response or lengths or te is not None:
            self._frame(head, lengths, te, out)
            return
        # most requests: no body (framing NONE), done with the head; here, a call less
        self.head = head
        self._state = _DONE
        out += (head, END)

    def _frame(self, head: Head, lengths: list[bytes], te: bytes | None, out: list[object]) -> None:
        """Check a message's body framing (RFC 9112 6.3), then emit its head and
        wait for its body; the rest of :meth:`_emit_head`."""
        response = self._response
        bad = 502 if response else 400
        length = -1
        if lengths:
            only = lengths[0]
            # one plain value, or else all the values listed must be the same
            if len(lengths) != 1 or not (only.isdigit() and len(only) <= 18):
                values = {v.strip() for item in lengths for v in item.split(b",")}
                if len(values) != 1:
                    raise ParseError(bad, "conflicting Content-Length values")
                (only,) = values
                if not (only.isdigit() and len(only) <= 18):
                    raise ParseError(bad, "malformed Content-Length")
            length = int(only)
        if te is not None:
            if lengths:
                # the classic smuggling vector: refuse, never guess (RFC 9112 6.3)
                raise ParseError(bad, "both Content-Length and Transfer-Encoding")
            # (the usual spelling first: no copies for it)
            if te != b"chunked" and te.strip().lower() != b"chunked":
                raise ParseError(501 if not response else 502, "unsupported Transfer-Encoding")
            if head.version != b"HTTP/1.1":
                raise ParseError(bad, "Transfer-Encoding in an HTTP/1.0 message")
        self.head = head
        out.append(head)
        status = head.status
        if response and (self._no_body or 100 <= status < 200 or status in (204, 304)):
            self._state = _DONE  # framing NONE
            out.append(END)
        elif te is not None:
            head.framing = CHUNKED
            self._state = _CHUNK_SIZE
        elif length > 0:
            head.framing = LENGTH
            head.length = length
            self._state = _BODY_LENGTH
            self._remaining = length
        elif length == 0:
            head.framing = LENGTH
            self._state = _DONE
            out.append(END)
        elif response:
            head.framing = CLOSE
            head.keep_alive = False
            self._state = _BODY_CLOSE
        else:
            self._state = _DONE  # framing NONE
            out.append(END)

    def _scan_chunked(self, data: bytes) -> int:
        """Walk chunked framing; the index just past the message end, or -1."""
        i = 0
        n = len(data)
        bad = 502 if self._response else 400
        while i < n:
            state = self._state
            if state == _CHUNK_DATA:
                take = min(self._remaining, n - i)
                i += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _CHUNK_CRLF
                    self._crlf_seen = 0
            elif state == _CHUNK_CRLF:
                expect = b"\r\n"[self._crlf_seen]
                if data[i] != expect:
                    raise ParseError(bad, "missing CRLF after chunk data")
                i += 1
                self._crlf_seen += 1
                if self._crlf_seen == 2:
                    self._state = _CHUNK_SIZE
            else:
                # _CHUNK_SIZE or _TRAILER: line oriented
                eol = data.find(b"\n", i)
                line = self._line
                if eol < 0:
                    line += data[i:]
                    if len(line) > 4096:
                        raise ParseError(bad, "chunk size line or trailer too long")
                    return -1
                line += data[i:eol]
                i = eol + 1
                if not line.endswith(b"\r"):
                    raise ParseError(bad, "bare LF in chunked framing")
                text = bytes(line[:-1])
                line.clear()
                if state == _CHUNK_SIZE:
                    m = _CHUNK_LINE.fullmatch(text)
                    if m is None:
                        raise ParseError(bad, "malformed chunk size line")
                    size = int(m.group(1), 16)
                    if size > MAX_CHUNK_SIZE:
                        raise ParseError(bad, "chunk larger than 2^31 - 1 bytes")
                    if size == 0:
                        self._state = _TRAILER
                        self._trailer_bytes = 0
                    else:
                        self._state = _CHUNK_DATA
                        self._remaining = size
                else:
                    if not text:
                        return i
                    self._trailer_bytes += len(text)
                    if self._trailer_bytes > self._max_head:
                        raise ParseError(bad, "trailer section too large")
                    if _TRAILER_LINE.fullmatch(text) is None:
                        raise ParseError(bad, "malformed trailer field")
        return -1


def _refuse_hosts(hosts: int, version: bytes) -> None:
    """A request with other than one Host field: refused in HTTP/1.1, and with
    more than one in HTTP/1.0 (RFC 9112 3.2)."""
    if version == b"HTTP/1.1":
        raise ParseError(400, "exactly one Host header is required in HTTP/1.1")
    if hosts > 1:
        raise ParseError(400, "more than one Host header")


def error_response(status: int, close: bool = True, detail: str = "") -> bytes:
    """A small plain-text response the balancer itself gives."""
    reason = _REASONS.get(status, "Error")
    body = f"{status} {reason}{': ' + detail if detail else ''}\n".encode()
    conn = b"Connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
        % (status, reason.encode(), len(body), conn)
    ) + body

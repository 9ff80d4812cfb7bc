"""The admin API on its own loopback port (control plane, so asyncio streams).

Reads (``GET /status``, ``/metrics``, ``/backends``) are open unless
``admin.open_reads`` is off; every change needs ``Authorization: Bearer
TOKEN``. The token is the configured one, or generated at start and written
to ``token_file`` (default: a private directory) with O_EXCL and O_NOFOLLOW,
mode 0600, and removed at stop (sim.core.private). At most
``admin.max_connections`` connections are served at once and each must send
its request within ``admin.head_timeout``, so idle connections cannot pile up.

Routes::

    GET    /status                     JSON
    GET    /metrics                    Prometheus text
    GET    /backends                   JSON
    POST   /backends                   {"name": "web3", "address": "127.0.0.1:9003"}
    DELETE /backends/NAME
    POST   /backends/NAME/drain        (and /undrain)
    POST   /takeover                   {"delay": "2s"} optional: reassociate here
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import re
import secrets
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from sim.core.config import parse_address
from sim.core.http import END, Head, ParseError, Parser
from sim.core.private import create_token_file, private_dir, remove_token_file
from sim.scenario.units import parse_duration

if TYPE_CHECKING:
    from sim.core.server import Balancer

__all__ = ["AdminServer", "BACKEND_NAME"]

_MAX_BODY = 65536
# what a configured backend's name may be (config.BackendConfig), with a length cap
BACKEND_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class BadRequest(ValueError):
    """A body of the wrong shape: 400 with this message."""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class AdminServer:
    def __init__(self, balancer: Balancer) -> None:
        self.balancer = balancer
        cfg = balancer.config.admin
        assert cfg is not None
        self.cfg = cfg
        self.token = cfg.token or secrets.token_urlsafe(32)
        self.token_file: str | None = cfg.token_file
        self._token_identity: tuple[int, int] | None = None
        if cfg.token is None:
            self.token_file = cfg.token_file or os.path.join(
                private_dir(), f"{balancer.config.name}.admin-token"
            )
            self._token_identity = create_token_file(self.token_file, self.token)
        self.server: asyncio.Server | None = None
        self.address = ""
        self.open_connections = 0

    async def start(self) -> None:
        listen = self.cfg.listen
        self.server = await asyncio.start_server(
            self._handle, listen.host, listen.port, reuse_address=True
        )
        port = self.server.sockets[0].getsockname()[1]
        self.address = f"{listen.host}:{port}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.token_file is not None and self._token_identity is not None:
            remove_token_file(self.token_file, self._token_identity)
            self._token_identity = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open_connections >= self.cfg.max_connections:
            # over the cap: closed at once, so idle connections cannot pile up (issue 22)
            writer.transport.abort()
            return
        self.open_connections += 1
        try:
            await self._exchange(reader, writer)
        finally:
            self.open_connections -= 1
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.cfg.head_timeout):
                head, body = await self._read(reader)
            status, ctype, payload = await self._route(head, body)
        except ParseError as e:
            status, ctype, payload = e.status, "text/plain", f"{e.reason}\n".encode()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            return
        writer.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n"
            % (status, _phrase(status).encode(), ctype.encode(), len(payload))
            + payload
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def _read(self, reader: asyncio.StreamReader) -> tuple[Head, bytes]:
        parser = Parser(False, 16384, 100)
        head: Head | None = None
        body = bytearray()
        while True:
            data = await reader.read(65536)
            events = parser.feed_eof() if not data else parser.feed(data)
            for ev in events:
                if isinstance(ev, Head):
                    head = ev
                elif ev is END:
                    assert head is not None
                    return head, bytes(body)
                else:
                    body += ev  # type: ignore[operator]
                    if len(body) > _MAX_BODY:
                        raise ParseError(413, "body too large")
            if not data:
                raise ConnectionError("closed")

    def _authorized(self, head: Head) -> bool:
        auth = head.get(b"authorization") or b""
        scheme, _, token = auth.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(
            token.strip(), self.token.encode()
        )

    async def _route(self, head: Head, body: bytes) -> tuple[int, str, bytes]:
        path = head.target.split(b"?", 1)[0].decode("latin-1").rstrip("/") or "/"
        method = head.method.decode("latin-1")
        parts = [p for p in path.split("/") if p]
        b = self.balancer
        if method == "GET":
            if not self.cfg.open_reads and not self._authorized(head):
                return _json(401, {"error": "a bearer token is required"})
            if path == "/metrics":
                return 200, "text/plain; version=0.0.4", b.metrics_text().encode()
            if path == "/status":
                return _json(200, b.status())
            if path == "/backends":
                return _json(200, [x.as_dict() for x in b.pool.backends])
            return _json(404, {"error": f"no route {path}"})
        if not self._authorized(head):
            return _json(401, {"error": "a bearer token is required (Authorization: Bearer TOKEN)"})
        try:
            data: Any = json.loads(body) if body.strip() else {}
        except ValueError:
            return _json(400, {"error": "the body must be JSON"})
        if not isinstance(data, dict):
            return _json(400, {"error": "the body must be a JSON object, such as {}"})
        try:
            return await self._change(method, parts, data)
        except KeyError as e:
            return _json(404, {"error": f"no backend {e.args[0]!r}"})
        except ValueError as e:
            return _json(400, {"error": str(e)})

    async def _change(
        self, method: str, parts: list[str], data: dict[str, Any]
    ) -> tuple[int, str, bytes]:
        b = self.balancer
        pool = b.pool
        if method == "POST" and parts == ["backends"]:
            addr = parse_address(data.get("address"))
            # a name is rendered into /metrics and /status: the configured names' rules hold
            name = data.get("name", f"{addr.host}:{addr.port}")
            if "name" in data and (not isinstance(name, str) or not BACKEND_NAME.fullmatch(name)):
                raise BadRequest(
                    f"name: expected 1-64 of A-Z a-z 0-9 _ . - , got {str(name)[:80]!r}"
                )
            added = pool.add(name, addr.host, addr.port)
            return _json(201, added.as_dict())
        if method == "DELETE" and len(parts) == 2 and parts[0] == "backends":
            return _json(200, pool.remove(parts[1]).as_dict())
        if (
            method == "POST"
            and len(parts) == 3
            and parts[0] == "backends"
            and parts[2] in ("drain", "undrain")
        ):
            return _json(200, pool.drain(parts[1], parts[2] == "drain").as_dict())
        if method == "POST" and parts == ["takeover"]:
            if b.takeover is None:
                return _json(409, {"error": "takeover is not configured"})
            delay = data.get("delay")
            if delay is not None and not isinstance(delay, str):
                raise BadRequest('delay: expected a duration string such as "2s"')
            seconds = parse_duration(delay) if delay is not None else None
            return _json(200, await b.takeover.reassociate(seconds))
        path = "/" + "/".join(parts)
        return _json(404, {"error": f"no route {method} {path}"})


def _json(status: int, obj: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(obj, indent=1).encode() + b"\n"

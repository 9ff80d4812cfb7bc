"""The ``failover-sim serve`` configuration: pydantic models and YAML loading.

Durations and rates use the scenario units (``150ms``, ``2s``, ``5m``). Every
default is stated beside its source (docs/references.md, "Balancers"). Errors come
out as ``FILE:LINE: field.path: message``, one per line and all of them at once:
checks that involve two fields are field validators reading the fields declared
before them, so pydantic runs them beside every other field's check instead of
only once all fields are valid (a model validator's turn).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sim.core.private import PrivateFileError, read_key
from sim.policy.attempts import CONNECT_TIMEOUT
from sim.policy.balancing import BALANCING_POLICIES
from sim.policy.health import HealthCheckSpec
from sim.scenario import safeyaml
from sim.scenario.units import parse_duration

__all__ = ["Address", "Config", "ConfigError", "load_config", "parse_address"]


def _duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"a duration must be >= 0, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(_duration)]


class Address(tuple[str, int]):
    """``host:port``, host an IP literal (no name lookups on the data path)."""

    __slots__ = ()

    @property
    def host(self) -> str:
        return self[0]

    @property
    def port(self) -> int:
        return self[1]

    @property
    def is_loopback(self) -> bool:
        return ipaddress.ip_address(self[0]).is_loopback

    def __str__(self) -> str:
        return f"{self[0]}:{self[1]}"


# RFC 1123 host names (issue 22: backends by name, resolved by sim.core.resolve)
_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def parse_address(value: Any, allow_zero_port: bool = False, allow_name: bool = False) -> Address:
    if isinstance(value, Address):
        return value
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not (allow_name and _HOSTNAME.fullmatch(host)):
            what = "an IP address or a host name" if allow_name else "an IP address"
            raise ValueError(f"expected {what} before the port, got {host!r}") from None
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"expected a port number after the colon, got {port_text!r}") from None
    if not (0 if allow_zero_port else 1) <= port <= 65535:
        raise ValueError(f"port must be in 1..65535, got {port}")
    return Address((host, port))


AddressField = Annotated[Address, BeforeValidator(parse_address)]
# Port 0 lets the kernel choose (tests); the chosen port is reported at start.
ListenField = Annotated[Address, BeforeValidator(lambda v: parse_address(v, allow_zero_port=True))]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class BackendConfig(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    address: Annotated[Address, BeforeValidator(lambda v: parse_address(v, allow_name=True))]


class HealthCheckConfig(_Model):
    enabled: bool = True
    kind: Literal["tcp", "http"] = "tcp"
    path: str = "/"
    # HAProxy: inter 2s, fall 3, rise 2; a check without `timeout check` is
    # bounded by inter, hence 2 s (docs/references.md "Balancers").
    interval: Duration = 2.0
    timeout: Duration = 2.0
    rise: int = Field(2, ge=1)
    fall: int = Field(3, ge=1)

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be > 0")
        return value

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    def spec(self) -> HealthCheckSpec:
        return HealthCheckSpec(self.interval, self.timeout, self.rise, self.fall)


class PassiveConfig(_Model):
    """Outlier detection. Envoy: 5 consecutive errors, 30 s base ejection
    (multiplied by the times a host was ejected), at most 10% ejected but always
    at least one host (docs/references.md "Balancers")."""

    enabled: bool = True
    consecutive_failures: int = Field(5, ge=1)
    base_ejection_time: Duration = 30.0
    max_ejection_percent: float = Field(10.0, ge=0, le=100)


class RetryConfig(_Model):
    # HAProxy: retries 3, connection failures only (docs/references.md).
    count: int = Field(3, ge=0, le=20)


OptionalDuration = Annotated[
    float | None, BeforeValidator(lambda v: None if v is None else _duration(v))
]

# timeouts renamed to HAProxy's names for them
_RENAMED_TIMEOUTS = {"header": "http_request", "client_idle": "http_keep_alive"}


class TimeoutConfig(_Model):
    """A timeout for every phase, named as HAProxy names them (`timeout
    http-request`, ...); defaults from HAProxy's configuration manual
    (docs/references.md "Balancers", HAProxy)."""

    # the whole request head: from the accept for a connection's first
    # request (a silent connection is closed then), from its first byte for
    # a later one; 408. HAProxy's examples: timeout http-request 10s
    http_request: Duration = 10.0
    # a kept-alive client connection waiting for its next request; unset,
    # `http_request` applies (HAProxy's rule for `timeout http-keep-alive`)
    http_keep_alive: OptionalDuration = None
    # the client's inactivity while an exchange waits on it (a body to send,
    # a response to read); what it causes ends its own exchange only.
    # HAProxy's manual (`timeout tunnel` example): timeout client 30s
    client: Duration = 30.0
    connect: Duration = CONNECT_TIMEOUT  # HAProxy's examples: timeout connect 5s
    # the backend's inactivity while it is waited on: 504 (HAProxy's examples 30s)
    server: Duration = 30.0
    # L4: a relayed connection silent both ways; unset, the client and server
    # timeouts apply, as in HAProxy's TCP mode (its example sets tunnel 1h)
    tunnel: OptionalDuration = None
    upstream_idle: Duration = 30.0  # pooled upstream connection unused this long is closed

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in _RENAMED_TIMEOUTS.items():
                if old in data:
                    raise ValueError(f"{old}: renamed {new} (HAProxy's name), see docs/core.md")
        return data

    @property
    def keep_alive(self) -> float:
        """What a kept-alive connection may wait for its next request."""
        return self.http_request if self.http_keep_alive is None else self.http_keep_alive

    @property
    def relay_idle(self) -> float:
        """What an L4 relayed connection may stay silent both ways."""
        return min(self.client, self.server) if self.tunnel is None else self.tunnel


class LimitConfig(_Model):
    # HAProxy tune.bufsize 16384 bounds a head; nginx large_client_header_buffers 4 8k
    max_header_bytes: int = Field(16384, ge=256)
    max_headers: int = Field(100, ge=1)
    max_connections: int = Field(8192, ge=1)
    # bytes a client may send ahead (pipelined requests, a body before the
    # upstream is connected) before its reading is paused
    client_buffer: int = Field(65536, ge=1024)


class PoolConfig(_Model):
    max_idle_per_backend: int = Field(64, ge=0)


class AdminConfig(_Model):
    listen: ListenField = Field(default_factory=lambda: parse_address("127.0.0.1:0", True))
    token: str | None = Field(None, min_length=16)
    token_file: str | None = None
    allow_non_loopback: bool = False
    open_reads: bool = True  # GET /metrics and /status without a token
    # issue 22: idle connections must not hold the control plane (docs/references.md "Balancers")
    max_connections: int = Field(10, ge=1)  # HAProxy: the stats socket's default maxconn, 10
    head_timeout: Duration = 2.0  # a request head from curl on loopback; chosen, not sourced

    @model_validator(mode="after")
    def _loopback(self) -> AdminConfig:
        if not self.listen.is_loopback and not self.allow_non_loopback:
            raise ValueError(
                f"listen: {self.listen} is not a loopback address; set allow_non_loopback: true to expose the admin API"
            )
        return self


class TakeoverConfig(_Model):
    """Static-address takeover, VRRP style: on loopback (a socket group), or an
    address moved between interfaces with `ip addr` and gratuitous ARP (root)."""

    # loopback: any user, 127.0.0.0/8, sim.core.vip; address: sim.core.vaddr
    mode: Literal["loopback", "address"] = "loopback"
    interface: str | None = Field(None, min_length=1, max_length=15, pattern=r"^[A-Za-z0-9_.@-]+$")
    prefix: int = Field(24, ge=1, le=32)  # of the address on the interface
    role: Literal["active", "standby"]
    heartbeat_listen: AddressField
    peer: AddressField
    # VRRP advert_int 1 s; Master_Down_Interval = 3 x interval + skew (RFC 5798)
    interval: Duration = 1.0
    priority: int = Field(100, ge=1, le=254)
    preempt: bool = False
    reassociate_delay: Duration = 0.0  # injected latency of the "cloud API" call
    # false: the standby never takes the address on missed heartbeats, only through
    # the reassociate API (an Elastic IP does not move by itself; VRRP does).
    automatic: bool = True
    # issue 22: every datagram carries HMAC-SHA256 under this key (both nodes share it;
    # read at start, refused if others may read it; docs/core.md "Takeover security")
    key_file: str = Field(min_length=1)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be > 0")
        return value

    @property
    def skew(self) -> float:
        return (256 - self.priority) * self.interval / 256

    @property
    def master_down(self) -> float:
        return 3 * self.interval + self.skew


class ResolverConfig(_Model):
    # issue 22: who resolves backends given by name; null: the system's (resolv.conf)
    nameserver: AddressField | None = None


class LogConfig(_Model):
    # issue 22: one line per request to this file ("-": stdout); off when null
    access: str | None = None
    # json: JSON lines; httplog: HAProxy's HTTP log format (docs/core.md, "Logs")
    access_format: Literal["json", "httplog"] = "json"
    # httplog: the User-Agent header's first N characters in a `{...}` block, as
    # HAProxy's `capture request header User-Agent len N` writes it; 0: none
    # (HAProxy captures nothing unless told; docs/core.md, "The access log in
    # HAProxy's HTTP log format")
    capture_user_agent: int = Field(0, ge=0, le=1024)


class Config(_Model):
    name: str = Field("lb", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    mode: Literal["http", "tcp"] = "http"
    listen: ListenField
    workers: int = Field(1, ge=1, le=64)
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    balancing: str = "round_robin"
    seed: int = 0
    backends: list[BackendConfig] = Field(default_factory=list)
    health_check: HealthCheckConfig = Field(default_factory=HealthCheckConfig)
    passive: PassiveConfig = Field(default_factory=PassiveConfig)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)
    limits: LimitConfig = Field(default_factory=LimitConfig)
    upstream_pool: PoolConfig = Field(default_factory=PoolConfig)
    admin: AdminConfig | None = Field(default_factory=AdminConfig)
    takeover: TakeoverConfig | None = None
    log: LogConfig = Field(default_factory=LogConfig)
    resolver: ResolverConfig = Field(default_factory=ResolverConfig)

    @field_validator("balancing")
    @classmethod
    def _balancing(cls, value: str) -> str:
        if value not in BALANCING_POLICIES:
            raise ValueError(f"got {value!r}, expected one of {list(BALANCING_POLICIES)}")
        return value


class ConfigError(Exception):
    """A configuration that cannot be used; each line is ``FILE[:LINE]: path: message``."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


Loc = tuple[str | int, ...]


def _loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (a typo?); remove it or check the spelling in docs/core.md"
    if kind == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind in ("value_error", "assertion_error"):
        return msg
    given = err.get("input")
    if isinstance(given, dict | list):
        return msg
    return f"{msg}; got {given!r}"


def _validate(data: dict[str, Any]) -> Config | list[tuple[Loc, str]]:
    """The configuration, or every (where, what) pydantic finds, in one pass."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        out: list[tuple[Loc, str]] = []
        for err in exc.errors(include_url=False):
            loc: Loc = tuple(err["loc"])
            msg = _message(err)
            # a model validator's "field: message" names a field below its path
            head, sep, rest = msg.partition(": ")
            if sep and head.replace("_", "").isalnum() and err["type"] == "value_error":
                loc, msg = (*loc, head), rest
            out.append((loc, msg))
        return out


def _line(root: Any, loc: Loc) -> int | None:
    """The line of the deepest YAML node on ``loc``: a mapping entry's key (where a
    reader looks, also for an unknown key), a sequence item's first line."""
    if root is None:
        return None
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(part, str) and isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                break
        elif isinstance(part, int) and isinstance(node, yaml.SequenceNode) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _cross_problems(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Checks that involve several fields, on the raw data, so they are made even when
    other fields are invalid (a pydantic model validator runs only once all are valid)."""
    out: list[tuple[Loc, str]] = []
    backends = data.get("backends")
    if isinstance(backends, list):
        first: dict[Any, int] = {}
        for i, b in enumerate(backends):
            name = b.get("name") if isinstance(b, dict) else None
            if not isinstance(name, str):
                continue
            if name in first:
                out.append((("backends", i, "name"), f"duplicate name {name!r} (backends[{first[name]}] has it)"))
            else:
                first[name] = i
    takeover = data.get("takeover")
    if isinstance(takeover, dict):
        mode = takeover.get("mode", "loopback")
        if mode == "address" and not takeover.get("interface"):
            out.append((("takeover", "interface"), "address mode needs the interface the address goes on"))
        try:
            listen: Address | None = parse_address(data.get("listen"), allow_zero_port=True)
        except ValueError:
            listen = None  # reported as listen's own error
        if listen is not None and not listen.is_loopback and mode != "address":
            out.append((("listen",), "the takeover address must be in 127.0.0.0/8 (loopback), or set takeover.mode: address"))
        if listen is not None and listen.port == 0:
            out.append((("listen",), "takeover needs a fixed port"))
        workers = data.get("workers", 1)
        if isinstance(workers, int) and workers != 1:
            out.append((("workers",), "takeover needs workers: 1 (the address is held by one process)"))
    return out


def _file_problems(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """The files the configuration names, read as serving would read them."""
    takeover = data.get("takeover")
    if isinstance(takeover, dict) and isinstance(takeover.get("key_file"), str) and takeover["key_file"]:
        try:
            read_key(takeover["key_file"])
        except PrivateFileError as e:
            return [(("takeover", "key_file"), str(e))]
    return []


def _report(file: str, root: Any, problems: list[tuple[Loc, str]]) -> list[str]:
    lines = []
    placed = sorted(((_line(root, loc), i) for i, (loc, _) in enumerate(problems)), key=lambda x: (x[0] or 0, x[1]))
    for line, i in placed:
        loc, msg = problems[i]
        where = f"{file}:{line}" if line is not None else file
        path = _loc(loc)
        lines.append(f"{where}: {path}: {msg}" if path else f"{where}: {msg}")
    return lines


def config_from_data(data: Any, file: str = "<config>", root: Any = None, files: bool = False) -> Config:
    """Validate ``data``; ``root`` (its YAML node graph) adds line numbers, ``files``
    checks the files it names too. ConfigError lists every problem at once."""
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{file}: expected a mapping at the top level (listen: ..., backends: ...)"]
        )
    config = _validate(data)
    problems = ([] if isinstance(config, Config) else config) + _cross_problems(data)
    if files:
        problems += _file_problems(data)
    if problems or not isinstance(config, Config):
        raise ConfigError(_report(file, root, problems))
    return config


def load_config(path: str | Path, files: bool = False) -> Config:
    """Read and validate a configuration file (``files``: and the files it names, as
    ``serve`` does before serving or reloading)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}: cannot read: {exc}"]) from None
    try:
        # the project's bounded reader: nesting, alias expansion and size are
        # limited, a key written twice is an error (PyYAML keeps the last silently)
        data, root = safeyaml.read(text)
    except safeyaml.YamlProblem as exc:
        raise ConfigError(
            [
                f"{file}{f':{line}' if line else ''}: {f'{where}: ' if where else ''}{msg}"
                for where, msg, line in exc.places
            ]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError([f"{file}{where}: YAML syntax error: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}: YAML error: {exc}"]) from None
    return config_from_data(data, file, root, files)

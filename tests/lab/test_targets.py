"""The lab's target counting from access-log lines and the clients' tries (no processes)."""

from __future__ import annotations

import json
import math

import numpy as np

from sim.lab.targets import (
    Holders,
    attribute,
    count,
    parse_path,
    read_access_log,
    request_path,
    sort_tries,
)
from sim.replication import OK, REFUSED

ACTIVE, STANDBY, SHARED = 0, 1, 2  # the address indices the clients record


def _line(path: str | None, status: int | None = 200) -> str:
    return json.dumps({"time": "2026-12-02T10:15:01.207+00:00", "conn": 1, "req": 1, "client": "127.0.0.1:5",
                       "method": "GET", "path": path, "status": status, "outcome": "ok", "bytes": 10,
                       "duration": 0.001, "ttfb": 0.001, "backend": "i0", "ua": None})


def test_a_request_path_reads_back_and_other_lines_are_skipped() -> None:
    assert parse_path(request_path(7, 12, 1).decode()) == (7, 12, 1)
    assert parse_path("/") is None and parse_path(None) is None and parse_path("/?c=x&n=1&a=0") is None
    lines = [_line("/?c=1&n=0&a=0"), _line("/"), _line(None, None), '{"time": "2026-12-02T10:1']  # torn by a kill
    assert read_access_log(lines, "green") == {(1, 0, 0): "green"}


def test_lines_in_haproxys_http_log_format_read_back_as_json_lines_do() -> None:
    """The lab's balancers write HAProxy's httplog (docs/core.md); lines as sim.core writes them."""
    head = "Dec  2 14:48:39 vm failover-sim[9077]: 127.0.0.1:42414 [02/Dec/2026:14:48:39.182] blue blue/i0 "
    lines = [
        head + '0/0/1/2/3 200 40 - - ---- 1/1/1/1/0 0/0 "GET /?c=3&n=7&a=1 HTTP/1.1"\n',
        head + '0/0/0/-1/51 -1 0 - - CH-- 1/1/1/1/0 0/0 "GET /?c=4&n=0&a=0 HTTP/1.1"\n',  # the client left: it reached blue
        head + '-1/-1/-1/-1/0 400 133 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"\n',
        head + '0/0/1/2/3 200 40 - - ---- 1/1/1/1/0 0/0 "GET / HTTP/1.1"\n',  # a health probe
        head + '0/0/1/2/3 200 40 - - ---- 1/1/1/1/0 0/0 "GET /?c=5&n=',  # torn by a kill
    ]
    assert read_access_log(lines, "blue") == {(3, 7, 1): "blue", (4, 0, 0): "blue"}


def test_tries_go_to_the_balancer_that_logged_them_else_by_address() -> None:
    logged = read_access_log([_line("/?c=0&n=0&a=0"), _line("/?c=0&n=1&a=1")], "blue")
    read_access_log([_line("/?c=1&n=0&a=0")], "green", logged)
    holders = Holders({ACTIVE: "blue", STANDBY: "green"}, SHARED, "blue", "green", moved_at=20.0)
    tries = sort_tries(np.array([
        # client, seq, attempt, try, address, t, opened (written interleaved, as the client process does)
        (1, 0, 0, 0, SHARED, 12.0, 12.0),   # logged by green although the address was still blue's: the log decides
        (0, 0, 0, 0, SHARED, 10.0, 10.0),   # logged by blue
        (0, 1, 1, 0, SHARED, 22.0, 22.0),   # the retry, logged by blue
        (0, 1, 0, 0, SHARED, 21.0, 21.0),   # refused, unlogged: the address's holder at 21 s, green
        (0, 2, 0, 1, STANDBY, 30.5, 30.5),  # address_mode next: the second address, unlogged, by address
        (0, 2, 0, 0, ACTIVE, 30.0, 30.0),   # its first, refused: by address, blue
        (1, 1, 0, 0, SHARED, 19.0, 19.0),   # unlogged before the move: blue
        (1, 2, 0, 0, SHARED, 25.0, 15.0),   # unlogged on a connection opened before the move: blue's, reset
    ]))
    assert [tuple(int(x) for x in row[:4]) for row in tries][:3] == [(0, 0, 0, 0), (0, 1, 0, 0), (0, 1, 1, 0)]
    reached = attribute(tries, logged, holders)
    assert reached == ["blue", "green", "blue", "blue", "green", "green", "blue", "blue"]


def test_counts_as_the_model_counts() -> None:
    """Two clients of one cohort, the change at 20 s: first attempts by the second they
    were sent, switched_at and last_previous_at per client, rescued tries of the
    requests that succeeded at their second of issue."""
    tries = sort_tries(np.array([
        (0, 0, 0, 0, ACTIVE, 10.2, 10.2),   # before the change: current
        (0, 1, 0, 0, ACTIVE, 21.5, 21.5),   # after: previous, refused
        (0, 1, 1, 0, STANDBY, 21.6, 21.6),  # its retry: current, not a first attempt
        (0, 2, 0, 0, STANDBY, 25.0, 25.0),
        (1, 0, 0, 0, ACTIVE, 22.0, 22.0),   # the other client stays on the old target
        (1, 1, 0, 0, ACTIVE, 40.0, 40.0),
    ]))
    reached = attribute(tries, {}, Holders({ACTIVE: "blue", STANDBY: "green"}))
    requests = np.array([
        # client, issued, finished, outcome, seq, attempts
        (0, 10.2, 10.3, OK, 0, 1),
        (0, 21.5, 21.7, OK, 1, 2),
        (0, 25.0, 25.1, OK, 2, 1),
        (1, 22.0, 22.1, OK, 0, 1),
        (1, 40.0, 40.1, REFUSED, 1, 3),  # two attempts found no address (DNS): not rescued, it failed
        (1, 41.0, 41.1, OK, 2, 2),       # one attempt without an address, then a success: one rescued
    ])
    out = count(tries, reached, requests, [0, 0], ["c"], 60, "green", 20.0)
    table = out.table.set_index("t")
    assert table.loc[10, "to_current"] == 1 and table.loc[21, "to_previous"] == 1
    assert table.loc[21, "to_current"] == 0 and table.loc[25, "to_current"] == 1
    assert table.loc[22, "to_previous"] == 1 and table.loc[40, "to_previous"] == 1
    assert table["to_previous"].sum() == 3 and table["to_current"].sum() == 2
    assert table.loc[21, "rescued"] == 1 and table.loc[41, "rescued"] == 1 and table["rescued"].sum() == 2
    assert out.switched_at[0] == 21.6 and math.isnan(out.switched_at[1])
    assert out.last_previous_at[0] == 21.5 and out.last_previous_at[1] == 40.0
    # no change made: every try to the first target is current, nobody switched
    none = count(tries, reached, requests, [0, 0], ["c"], 60, "green", None)
    assert none.table["to_previous"].sum() == 0 and np.isnan(none.switched_at).all()

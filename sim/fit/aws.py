"""AWS load balancer access logs: Application Load Balancer and Classic Load Balancer.

Both are space-separated with the request and the user agent in double
quotes, as AWS's "Access log entries" pages document them:

- ALB: `type time elb client:port target:port request_processing_time
  target_processing_time response_processing_time elb_status_code
  target_status_code received_bytes sent_bytes "request" "user_agent"
  ssl_cipher ssl_protocol target_group_arn "trace_id" "domain_name"
  "chosen_cert_arn" matched_rule_priority request_creation_time
  "actions_executed" "redirect_url" "error_reason" "target:port_list"
  "target_status_code_list" "classification" "classification_reason"
  conn_trace_id`; AWS adds fields at the end over time, so anything past
  the user agent may be missing or more.
- Classic: `time elb client:port backend:port request_processing_time
  backend_processing_time response_processing_time elb_status_code
  backend_status_code received_bytes sent_bytes "request" "user_agent"
  ssl_cipher ssl_protocol`.

A connection is the ALB's `conn_trace_id` where the log has it, else the
client's address and port (one TCP connection while it is open).
"""

from __future__ import annotations

import re

from sim.fit.clock import iso8601
from sim.fit.lines import Malformed
from sim.fit.records import Request, check_address, host_port

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')
ALB_TYPES = frozenset({"http", "https", "h2", "grpcs", "ws", "wss"})
ALB_CONN_TRACE = 29


def _unquote(token: str) -> str:
    if len(token) < 2 or token[0] != '"' or token[-1] != '"':
        raise Malformed("unquoted field")
    return token[1:-1]


def _request(tokens: list[str], time_at: int, client_at: int, conn_at: int | None) -> Request:
    t = iso8601(tokens[time_at])
    address = tokens[client_at]
    if address == "-":
        raise Malformed("no client address")
    host, _ = host_port(address)
    check_address(host)
    _unquote(tokens[client_at + 9])  # the request
    agent = _unquote(tokens[client_at + 10])
    conn = address
    if conn_at is not None and len(tokens) > conn_at and tokens[conn_at].startswith("TID_"):
        conn = tokens[conn_at]
    return Request(t, host, conn, "" if agent == "-" else agent)


def parse_alb(line: str) -> Request:
    tokens = _TOKEN.findall(line)
    if len(tokens) < 14:
        raise Malformed("too few fields")
    if tokens[0] not in ALB_TYPES:
        raise Malformed("unknown request type")
    return _request(tokens, 1, 3, ALB_CONN_TRACE)


def parse_elb(line: str) -> Request:
    tokens = _TOKEN.findall(line)
    if len(tokens) < 13:
        raise Malformed("too few fields")
    return _request(tokens, 0, 2, None)

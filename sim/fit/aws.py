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

_QUOTED_PAIR = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)" "([^"\\]*(?:\\.[^"\\]*)*)"')
ALB_TYPES = frozenset({"http", "https", "h2", "grpcs", "ws", "wss"})
ALB_HEAD, ELB_HEAD = 12, 11  # space-separated fields before the quoted request


def _request(line: str, head: int, time_at: int, client_at: int, alb: bool) -> Request:
    # Only the fields the fit uses are looked at: the unquoted head, the request and
    # user agent, and (ALB) the last field; splitting once is much faster than tokenising all.
    fields = line.split(" ", head)
    if len(fields) <= head:
        raise Malformed("too few fields")
    if alb and fields[0] not in ALB_TYPES:
        raise Malformed("unknown request type")
    m = _QUOTED_PAIR.match(fields[head])
    if not m:
        raise Malformed("unquoted field")
    t = iso8601(fields[time_at])
    address = fields[client_at]
    if address == "-":
        raise Malformed("no client address")
    host, _ = host_port(address)
    check_address(host)
    agent = m.group(2)
    conn = address
    if alb:
        last = line[line.rfind(" ") + 1:]
        if last.startswith("TID_"):
            conn = last
    return Request(t, host, conn, "" if agent == "-" else agent)


def parse_alb(line: str) -> Request:
    return _request(line, ALB_HEAD, 1, 3, alb=True)


def parse_elb(line: str) -> Request:
    return _request(line, ELB_HEAD, 0, 2, alb=False)

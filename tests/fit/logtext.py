"""Log lines in each documented format, shared by the parser tests (not a test module)."""

from __future__ import annotations

import gzip
from pathlib import Path

ALB = (
    'h2 2026-12-02T14:00:01.500000Z app/my-lb/50dc6c495c0c9188 {client}:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 '
    '34 366 "GET https://www.example.com:443/a%20b HTTP/2.0" "{agent}" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/1" '
    '1 2026-12-02T14:00:01.400000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90'
)
ELB = (
    '2026-12-02T14:00:01.500000Z my-loadbalancer {client}:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 '
    '"GET http://www.example.com:80/ HTTP/1.1" "{agent}" - -'
)
NGINX = '{client} - - [02/Dec/2026:15:00:01 +0100] "GET /a b HTTP/1.1" 200 2326 "https://ref.example/ x" "{agent}"'
HAPROXY = (
    "Dec  2 14:00:01 lb haproxy[14389]: {client}:33317 [02/Dec/2026:14:00:01.500] http-in static/srv1 "
    '10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {{www.example.com|{agent}}} {{}} "GET /index.html HTTP/1.1"'
)
ROUTE53 = "1.0 2026-12-02T14:00:01.500Z Z123412341234 www.example.com A NOERROR UDP FRA6 {client} -"
BIND = (
    "02-Dec-2026 14:00:01.500 queries: info: client @0x7f3a1c0 {client}#53211 (www.example.com): "
    "query: www.example.com IN A +E(0)K (192.0.2.53)"
)
T0 = 1796220001.5  # 2026-12-02T14:00:01.5Z
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def write(path: Path, lines: list[str], *, gz: bool = False, last_newline: bool = True) -> Path:
    data = ("\n".join(lines) + ("\n" if last_newline else "")).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path

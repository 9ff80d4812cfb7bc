"""User-agent families: which kind of client sent a request, from its User-Agent header.

The families are those whose DNS caching the project has sources for
(docs/references.md, "Caches above and below the resolver"): browsers keep
an answer at least 60 s (Chrome), the JVM 30 s, the system resolver that
command-line tools and most other runtimes use keeps none, and a proxy
resolving its upstream once keeps it until restarted. A header that matches
none is `other` (crawlers, monitors, libraries not listed), an absent one
`unknown`; both get the default stub cache (none).
"""

from __future__ import annotations

import re

FAMILIES = ("browser", "jvm", "runtime", "cli", "proxy", "other", "unknown")

# Tested in order: the first that matches names the family. Product tokens as
# the tools send them (`curl/8.5.0`, `Java/17.0.2`, `okhttp/4.12.0`, ...).
_RULES = [
    ("cli", re.compile(r"^(curl|wget|httpie|powershell|xh|aria2|apachebench|ab|wrk|hey|siege|k6)/", re.I)),
    ("jvm", re.compile(r"^(java|apache-httpclient|okhttp|akka-http|jetty|reactor-netty|vert\.x|"
                       r"aws-sdk-java|dalvik)|\bjava/\d", re.I)),
    ("runtime", re.compile(r"^(python-requests|python-urllib|python-httpx|aiohttp|go-http-client|node-fetch|"
                           r"node|axios|undici|got|ruby|faraday|libwww-perl|php|guzzlehttp|dotnet|"
                           r"microsoft|rest-client|boto|botocore|aws-sdk)", re.I)),
    ("proxy", re.compile(r"(squid|varnish|envoy|trafficserver|\bats/|haproxy|nginx|amazon cloudfront|"
                         r"akamai|fastly)", re.I)),
    ("other", re.compile(r"(bot|spider|crawl|monitor|pingdom|uptime|check)", re.I)),
    ("browser", re.compile(r"^Mozilla/\d.*(Chrome|Firefox|Safari|Edg|OPR|Gecko)", re.I)),
]
_CACHE_LIMIT = 200_000
_seen: dict[str, str] = {}


def family(agent: str) -> str:
    """The family of one User-Agent header (cached: real logs repeat a few thousand strings)."""
    found = _seen.get(agent)
    if found is not None:
        return found
    if not agent:
        found = "unknown"
    else:
        found = next((name for name, rule in _RULES if rule.search(agent)), "other")
    if len(_seen) >= _CACHE_LIMIT:
        _seen.clear()
    _seen[agent] = found
    return found

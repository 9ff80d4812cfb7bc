"""sim.fit.agents: user-agent families from real header strings."""

from __future__ import annotations

import pytest

from sim.fit.agents import family


@pytest.mark.parametrize(("agent", "fam"), [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "browser"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "browser"),
    ("Java/17.0.9", "jvm"),
    ("Apache-HttpClient/4.5.14 (Java/17.0.9)", "jvm"),
    ("okhttp/4.12.0", "jvm"),
    ("python-requests/2.31.0", "runtime"),
    ("Go-http-client/1.1", "runtime"),
    ("curl/8.5.0", "cli"),
    ("Wget/1.21.4", "cli"),
    ("Envoy/1.28", "proxy"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "other"),
    ("SomethingElse/1.0", "other"),
    ("", "unknown"),
])
def test_family(agent: str, fam: str) -> None:
    assert family(agent) == fam
    assert family(agent) == fam  # the cached answer is the same

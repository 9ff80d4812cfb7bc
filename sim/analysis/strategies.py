"""What each failover strategy costs and what its failover is made of (`failover-sim strategies`).

Apex and MX columns come from the zone rules themselves (sim.scenario.zones),
the failover-time column from the plans (sim.policy.failover), so the table
cannot drift from what the engines and `validate` do. Prices are parameters
(`--price key=value`), each with its source and the date it was read.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.policy.failover import PLANS, plan_class
from sim.scenario.zones import APEX, ZoneRecord, check, record_for

HOURS_PER_MONTH = 730.0  # 8760 h / 12
READ = "2026"  # docs/references.md, "Prices": read in 2026 from stored copies


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    grade: str  # docs/references.md's mark: [S] stated, [A] secondary source, [I] inferred


# docs/references.md, "Prices (parameters, not constants)".
PRICES: dict[str, Price] = {
    "zone_month": Price(0.50, "Route 53 hosted zone, per month", "[A]"),
    "query_million": Price(0.40, "Route 53 standard queries, per million", "[I]"),
    "alias_query_million": Price(0.0, "Route 53 alias queries to AWS resources, per million", "[A]"),
    "check_month": Price(0.50, "Route 53 health check (AWS endpoint; 0.75 other; more for fast or HTTPS), per month", "[A]"),
    "ipv4_hour": Price(0.005, "public IPv4 address (Elastic IP included), per hour", "[A]"),
    "remap_each": Price(0.10, "Elastic IP remap beyond 100 a month (older pricing)", "[A]"),
    "accelerator_hour": Price(0.025, "Global Accelerator, per hour", "[S]"),
    "accelerator_gb": Price(0.015, "Global Accelerator premium per GB (within North America)", "[S]"),
}


@dataclass(frozen=True)
class Properties:
    fixed: tuple[tuple[str, float], ...]  # (price key, how many), per month or per hour
    per_query: str  # the price key per million queries
    honours_ttl: str
    connections: str
    sources: str
    extra: tuple[str, str] | None = None  # (price key, what it is per): a cost beside queries


# [choice] Strategies detected by the scenario's checks count one standard
# Route 53 health check; dns_failover one on the primary.
PROPERTIES: dict[str, Properties] = {
    "cname_repoint": Properties(
        (("zone_month", 1), ("check_month", 1)), "query_million", "yes (R, S)",
        "stay on the dead balancer until they fail; pools outlive DNS (K)",
        "RFC 1034 3.6.2, RFC 2181 10.1; Route 53 60 s propagation; ELB TTL 60 s",
    ),
    "eip_remap": Properties(
        (("zone_month", 1), ("check_month", 1), ("ipv4_hour", 1)), "query_million", "no",
        "reset once when the address moves",
        "Elastic IP reassociation 5-6 s (NGINX HA guide)", ("remap_each", "per remap beyond 100 a month"),
    ),
    "alias_apex": Properties(
        (("zone_month", 1), ("check_month", 1)), "alias_query_million", "yes, balancer TTL (R, S)",
        "stay on the dead balancer until they fail; pools outlive DNS (K)",
        "Route 53 alias / ANAME / CNAME flattening; alias uses the ELB's 60 s",
    ),
    "dns_failover": Properties(
        (("zone_month", 1), ("check_month", 1)), "query_million", "yes (R, S)",
        "stay on the dead balancer until they fail; pools outlive DNS (K)",
        "Route 53 checks 30 s (or 10 s) x 3, healthy if > 18% of checkers agree",
    ),
    "anycast": Properties(
        (("zone_month", 1), ("accelerator_hour", 1)), "query_million", "no",
        "to the failed site break; others stay (not moved)",
        "Global Accelerator: 2 anycast addresses, checks 10 or 30 s x 3",
        ("accelerator_gb", "per GB"),
    ),
    "vrrp": Properties(
        (("zone_month", 1), ("ipv4_hour", 1)), "query_million", "no",
        "reset once when the address moves",
        "RFC 5798 Master_Down_Interval; keepalived gratuitous ARP; no multicast on AWS",
    ),
    "multi_a": Properties(
        (("zone_month", 1), ("check_month", 1), ("ipv4_hour", 2)), "query_million",
        "first-address clients yes (R, S); next-address clients no",
        "stay on the dead balancer until they fail",
        "RFC 8305 Happy Eyeballs 250 ms; python-requests next after connect timeout",
    ),
}


def zone_fit(strategy: str) -> tuple[str, str]:
    """(at the apex?, beside MX?) by the zone rules."""
    soa = [ZoneRecord(APEX, "SOA"), ZoneRecord(APEX, "NS")]
    apex = check([*soa, record_for(APEX, strategy)])
    beside = check([*soa, ZoneRecord("shop", "MX", "10 mail"), record_for("shop", strategy)])
    return ("no" if apex else "yes"), ("no" if beside else "yes")


def monthly_fixed(strategy: str, prices: dict[str, Price]) -> float:
    total = 0.0
    for key, count in PROPERTIES[strategy].fixed:
        per = HOURS_PER_MONTH if key.endswith("_hour") else 1.0
        total += prices[key].usd * per * count
    return total


def cost(strategy: str, prices: dict[str, Price]) -> str:
    p = PROPERTIES[strategy]
    text = f"{_usd(monthly_fixed(strategy, prices))}/month + {_usd(prices[p.per_query].usd)}/M queries"
    if p.extra:
        key, per = p.extra
        text += f" + {_usd(prices[key].usd)} {per}"
    return text


def _usd(x: float) -> str:
    return f"${x:.2f}" if round(x, 2) == x or x >= 1 else f"${x:g}"


COLUMNS = ("strategy", "apex", "beside MX", f"cost (prices of {READ})", "failover time", "needs TTLs honoured", "open connections")


def rows(prices: dict[str, Price]) -> list[tuple[str, ...]]:
    out = []
    for name in PLANS:
        p = PROPERTIES[name]
        apex, mx = zone_fit(name)
        out.append((name, apex, mx, cost(name, prices), plan_class(name).parts, p.honours_ttl, p.connections))
    return out


def markdown(prices: dict[str, Price]) -> str:
    lines = ["| " + " | ".join((*COLUMNS, "sources")) + " |", "|" + " --- |" * (len(COLUMNS) + 1)]
    for row in rows(prices):
        lines.append("| " + " | ".join((*row, PROPERTIES[row[0]].sources)) + " |")
    return "\n".join(lines)


def plain(prices: dict[str, Price]) -> str:
    """One block per strategy: the cells are too long for one terminal line."""
    lines = []
    for name, apex, mx, price, parts, ttl, conns in rows(prices):
        lines.append(f"{name:<14} apex: {apex:<4} beside MX: {mx:<4} needs TTLs honoured: {ttl}")
        lines.append(f"  failover time:    {parts}")
        lines.append(f"  cost:             {price}")
        lines.append(f"  open connections: {conns}")
        lines.append(f"  sources:          {PROPERTIES[name].sources}")
    lines.append("")
    lines.append(f"prices (parameters; override with --price KEY=VALUE), read {READ}, docs/references.md:")
    for key, price in prices.items():
        lines.append(f"  {key} = {price.usd:g} USD: {price.unit} {price.grade}")
    lines.append("D detection, C change, P propagation, R resolver residual, S stub residual, K pooled")
    lines.append("connections, T attempt penalty (docs/design.md). Details and sources: docs/strategies.md.")
    return "\n".join(lines)


def prices_with(overrides: list[str]) -> dict[str, Price]:
    """PRICES with `KEY=USD` overrides; ValueError naming an unknown key or a value that is no number."""
    prices = dict(PRICES)
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in prices:
            raise ValueError(f"--price {item}: unknown price {key!r}; known: {', '.join(prices)}")
        try:
            usd = float(value)
        except ValueError:
            raise ValueError(f"--price {item}: {value!r} is not a number of dollars") from None
        prices[key] = Price(usd, prices[key].unit, "[given]")
    return prices

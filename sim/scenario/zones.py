"""Zone rules: where a CNAME may stand (RFC 1034 3.6.2, RFC 2181 10.1, RFC 1912 2.4).

A CNAME may not share its name with any other data, and the apex always
holds SOA and NS, so a CNAME can never sit at the apex. Route 53 refuses the
same ("RRSet of type MX ... is not permitted because a conflicting RRSet of
type CNAME ... already exists").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sim.scenario.models import Record, Scenario

APEX = "@"

_FIX_APEX = (
    "publish an alias record instead (Route 53 alias, ANAME, CNAME flattening: strategy "
    "alias_apex) or A records (eip_remap, vrrp, anycast, dns_failover, multi_a)"
)
_FIX_BESIDE = (
    "move the other records to another name, or publish an alias (alias_apex) or A records "
    "(eip_remap, vrrp, anycast, dns_failover, multi_a) instead of the CNAME"
)


@dataclass(frozen=True)
class ZoneRecord:
    """A record reduced to what the rules need: owner name (relative, `@` for apex) and type."""

    name: str
    type: str
    value: str = ""
    origin: str = "dns.records"


@dataclass(frozen=True)
class Violation:
    record: ZoneRecord
    rule: str
    fix: str

    def __str__(self) -> str:
        r = self.record
        return f"{r.name} {r.type} {r.value}".rstrip() + f" ({r.origin}): {self.rule}; fix: {self.fix}"


def relative_name(name: str, zone: str) -> str:
    """`www`, `www.example.com.` and `@` as the zone-relative form (`www`, `@`)."""
    zone = zone.rstrip(".").lower()
    name = name.strip().lower()
    if name in ("@", "", zone + "."):
        return APEX
    if name.endswith("."):
        bare = name[:-1]
        if bare.endswith("." + zone):
            return bare[: -len(zone) - 1]
        return name  # out of zone: kept absolute so it never matches an in-zone name
    return name


def check(records: Iterable[ZoneRecord]) -> list[Violation]:
    """Every CNAME rule a set of records breaks."""
    by_name: dict[str, list[ZoneRecord]] = defaultdict(list)
    for record in records:
        by_name[record.name].append(record)
    violations = []
    for name, group in by_name.items():
        cnames = [r for r in group if r.type == "CNAME"]
        if not cnames:
            continue
        if name == APEX:
            for r in cnames:
                violations.append(
                    Violation(r, "a CNAME cannot sit at the zone apex, which always holds SOA and NS (RFC 1034 3.6.2, RFC 1912 2.4)", _FIX_APEX)
                )
        others = sorted({r.type for r in group if r.type != "CNAME"} - ({"SOA", "NS"} if name == APEX else set()))
        if others:
            for r in cnames:
                violations.append(
                    Violation(
                        r,
                        f"a CNAME cannot coexist with other data at the same name; {name} also has {', '.join(others)} (RFC 1034 3.6.2, RFC 2181 10.1)",
                        _FIX_BESIDE,
                    )
                )
        if len(cnames) > 1:
            violations.append(
                Violation(cnames[1], f"a name may hold only one CNAME; {name} has {len(cnames)} (RFC 2181 10.1)", "keep one CNAME")
            )
    return violations


def scenario_records(scenario: Scenario) -> list[ZoneRecord]:
    zone = scenario.dns.zone
    records = [ZoneRecord(APEX, "SOA", origin="implicit at the apex"), ZoneRecord(APEX, "NS", origin="implicit at the apex")]
    for i, r in enumerate(scenario.dns.records):
        records.append(_from_record(r, zone, f"dns.records[{i}]"))
    return records


def _from_record(record: Record, zone: str, origin: str) -> ZoneRecord:
    return ZoneRecord(relative_name(record.name, zone), record.type, record.value, origin)


# The record each strategy publishes at the service name. Only the CNAME is
# bound by the rules above: an alias is answered as A records (docs/references.md,
# Route 53 alias / ANAME / CNAME flattening), so it may sit at the apex and
# beside MX, as A records may.
STRATEGY_RECORD_TYPE = {
    "cname_repoint": "CNAME",  # to the balancer's DNS name
    "eip_remap": "A",  # the Elastic IP
    "alias_apex": "ALIAS",  # answered as A records with the balancer's TTL
    "dns_failover": "A",  # primary and secondary A (or alias) records
    "anycast": "A",  # the two static anycast addresses
    "vrrp": "A",  # the floating address
    "multi_a": "A",  # one address per balancer
}

_RECORD_VALUE = {"CNAME": "{active}.balancer.", "ALIAS": "alias to {active}.balancer."}


def record_for(name: str, strategy: str) -> ZoneRecord:
    """The record `strategy` would publish at the zone-relative `name`."""
    rtype = STRATEGY_RECORD_TYPE[strategy]
    value = _RECORD_VALUE.get(rtype, "<static address>").format(active="<balancer>")
    return ZoneRecord(name, rtype, value, f"strategy {strategy}")


def strategy_record(scenario: Scenario, strategy: str) -> ZoneRecord:
    name = relative_name(scenario.dns.service_name, scenario.dns.zone)
    rtype = STRATEGY_RECORD_TYPE[strategy]
    value = _RECORD_VALUE.get(rtype, "<static address>").format(active=scenario.active.name)
    return ZoneRecord(name, rtype, value, f"strategy {strategy} at dns.service_name")


def zone_violations(scenario: Scenario) -> list[Violation]:
    """Violations of the zone as written, before any strategy adds its record."""
    return check(scenario_records(scenario))


def strategy_refusals(scenario: Scenario) -> dict[str, list[Violation]]:
    """For each strategy of the scenario, the rules its record would break (empty: allowed)."""
    base = scenario_records(scenario)
    base_violations = {(v.record, v.rule) for v in check(base)}
    out: dict[str, list[Violation]] = {}
    for strategy in scenario.strategies:
        record = strategy_record(scenario, strategy)
        new = [v for v in check([*base, record]) if (v.record, v.rule) not in base_violations]
        out[strategy] = new
    return out


# DNS names of provider balancers a CNAME may point at: ELB/ALB/CLB
# (name-123.region.elb.amazonaws.com), NLB (name-abc.elb.region.amazonaws.com),
# Global Accelerator, Azure (cloudapp, Traffic Manager, Front Door), Heroku.
BALANCER_NAMES = re.compile(
    r"(\.elb\.amazonaws\.com|\.elb\.[a-z0-9-]+\.amazonaws\.com|\.awsglobalaccelerator\.com"
    r"|\.cloudapp\.azure\.com|\.trafficmanager\.net|\.azurefd\.net|\.herokudns\.com)\.?$",
    re.IGNORECASE,
)
# Data that says where a name's traffic goes; a strategy's record replaces it.
_POINTERS = frozenset({"CNAME", "A", "AAAA", "ALIAS"})


def by_name(records: Iterable[ZoneRecord]) -> dict[str, list[ZoneRecord]]:
    """Records grouped by owner name, in one pass: every rule here is about one name."""
    groups: dict[str, list[ZoneRecord]] = defaultdict(list)
    for record in records:
        groups[record.name].append(record)
    return groups


def balancer_pointers(records: Iterable[ZoneRecord]) -> dict[str, str]:
    """Names that point at a balancer, with how: a CNAME to a balancer's DNS name,
    or A/AAAA records. Names that other records use as mail or name servers (MX,
    NS, SRV targets) are left out: they are not web services."""
    records = list(records)
    targets = {r.value.split()[-1].lower() for r in records if r.type in ("MX", "NS", "SRV") and r.value}
    out: dict[str, str] = {}
    for r in records:
        if r.type == "CNAME" and BALANCER_NAMES.search(r.value):
            out[r.name] = f"CNAME to {r.value}"
    # Addresses gathered per name first: looking them up per record was
    # quadratic (audit took over 120 s on 50,000 A records).
    addresses: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.type in ("A", "AAAA"):
            addresses[r.name].append(r.value)
    for r in records:
        if r.type in ("A", "AAAA") and r.name not in out and r.name not in targets:
            out[r.name] = f"{r.type} records ({', '.join(sorted(addresses[r.name]))})"
    return out


def strategies_at(records: Iterable[ZoneRecord], name: str) -> dict[str, list[Violation]]:
    """For every strategy, the rules its record would break at `name` once it
    replaces the name's current pointer (its CNAME or address records); empty:
    possible there. Conflicts the zone already has elsewhere do not count.

    Only the records at `name` matter (every rule is about one name), so a
    caller asking about many names passes each its own group (`by_name`) and
    the work stays linear in the zone."""
    base = [r for r in records if r.name == name and r.type not in _POINTERS]
    known = {(v.record, v.rule) for v in check(base)}
    return {
        strategy: [v for v in check([*base, record_for(name, strategy)]) if (v.record, v.rule) not in known]
        for strategy in STRATEGY_RECORD_TYPE
    }


# dnspython reads about 5,000 records a second on this 2-core machine (10,000
# A records: 2.2 s) and a record costs about 1.3 KB while read (a $GENERATE of
# 1,000,000 took 77 s and 1.3 GB). 4 MiB is about 100,000 records of 40 bytes:
# 20 s at most; real zones of 50,000 records fit.
MAX_ZONE_BYTES = 4 * 1024 * 1024
# Records all $GENERATE lines of a file may create together: 20,000 is about
# 4 s and 26 MB here, more than any block of reverse or host names needs.
MAX_GENERATED = 20_000
_GENERATE = re.compile(r"^\$GENERATE\s+(\d+)-(\d+)(?:/(\d+))?", re.IGNORECASE)


class ZoneFileError(ValueError):
    """A zone file that cannot be read; `unreadable` when it is not text at all (exit 2)."""

    def __init__(self, message: str, *, unreadable: bool = False) -> None:
        super().__init__(message)
        self.unreadable = unreadable


def read_zone_text(path: str | Path) -> str:
    """The text of a zone file, refused before parsing when it is too big, not
    UTF-8, or its $GENERATE ranges would create more than MAX_GENERATED records."""
    size = Path(path).stat().st_size
    if size > MAX_ZONE_BYTES:
        raise ZoneFileError(f"the file is {size / 2**20:.1f} MiB; a zone file may be at most {MAX_ZONE_BYTES // 2**20} MiB")
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ZoneFileError(f"not UTF-8 text (byte {exc.start}: {exc.reason})", unreadable=True) from None
    generated = 0
    for number, line in enumerate(text.splitlines(), 1):
        match = _GENERATE.match(line.strip())
        if match:
            start, stop, step = int(match[1]), int(match[2]), int(match[3] or 1)
            generated += max(0, (stop - start) // max(step, 1) + 1)
            if generated > MAX_GENERATED:
                raise ZoneFileError(
                    f"line {number}: $GENERATE {match[1]}-{match[2]} makes the file's generated records more than "
                    f"{MAX_GENERATED:,} (the limit, about 4 s of reading here)"
                )
    return text


def read_zone_file(path: str | Path, origin: str | None = None) -> tuple[str, list[ZoneRecord]]:
    """Records of a standard zone file, with no merging of conflicting data.

    dnspython's Zone object silently replaces other data when a CNAME is
    added to a node, which would hide exactly the conflicts we look for, so
    the records are read as a flat list of RRsets.
    """
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.tokenizer
    import dns.zonefile

    text = read_zone_text(path)
    start = dns.name.from_text(origin) if origin else None
    if start is None:
        for line in text.splitlines():
            if line.strip().upper().startswith("$ORIGIN"):
                start = dns.name.from_text(line.split()[1])
                break
    if start is None:
        raise ValueError(f"{path}: no $ORIGIN line; give the zone with --origin")
    # read_rrsets() refuses $ORIGIN/$TTL, so drive its reader with directives on.
    manager = dns.zonefile.RRSetsReaderManager(start, True, dns.rdataclass.IN)
    with manager.writer(True) as txn:
        tokenizer = dns.tokenizer.Tokenizer(text, str(path))
        reader = dns.zonefile.Reader(tokenizer, dns.rdataclass.IN, txn, allow_directives=True, default_ttl=3600)
        # The reader stops at the first CNAME conflict; we want every
        # conflict, named with its rule and a fix, so its own check is lifted.
        txn._check_put_rdataset.clear()
        reader.read()
    rrsets = manager.rrsets
    zone = start.to_text(omit_final_dot=True)
    records = []
    for rrset in rrsets:
        name = "@" if rrset.name == dns.name.empty else rrset.name.to_text()
        rtype = dns.rdatatype.to_text(rrset.rdtype)
        for rdata in rrset:
            records.append(ZoneRecord(name.lower(), rtype, rdata.to_text(), str(path)))
    return zone, records

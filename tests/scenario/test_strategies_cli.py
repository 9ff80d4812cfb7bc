"""`failover-sim strategies` and `failover-sim audit`, run through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sim.scenario import STRATEGIES

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


ZONE = """\
$ORIGIN example.com.
$TTL 3600
@     IN SOA ns1.example.com. admin.example.com. 1 7200 3600 1209600 3600
@     IN NS  ns1.example.com.
@     IN MX  10 mail.example.com.
@     IN A   192.0.2.10
www   300 IN CNAME my-elb-1.us-east-1.elb.amazonaws.com.
mail  IN A   192.0.2.25
ns1   IN A   192.0.2.53
"""


def test_strategies_prints_every_strategy_with_its_properties() -> None:
    out = cli("strategies")
    assert out.returncode == 0, out.stderr
    for name in STRATEGIES:
        assert f"\n{name} " in "\n" + out.stdout
    assert "cname_repoint  apex: no   beside MX: no" in out.stdout
    assert "alias_apex     apex: yes  beside MX: yes" in out.stdout
    assert "read 2026" in out.stdout and "ipv4_hour = 0.005" in out.stdout


def test_strategies_prices_are_parameters() -> None:
    out = cli("strategies", "--price", "accelerator_hour=0")
    assert out.returncode == 0
    assert "$0.50/month + $0.40/M queries + $0.015 per GB" in out.stdout  # anycast: zone only
    bad = cli("strategies", "--price", "gold=1")
    assert bad.returncode == 2 and "unknown price 'gold'" in bad.stderr and "Traceback" not in bad.stderr


def test_docs_carry_the_same_table() -> None:
    table = cli("strategies", "--markdown").stdout.strip()
    assert table.startswith("| strategy | apex |")
    assert table in (ROOT / "docs" / "strategies.md").read_text(encoding="utf-8")


def test_audit_clean_zone(tmp_path: Path) -> None:
    f = tmp_path / "db.example.com"
    f.write_text(ZONE)
    out = cli("audit", str(f))
    assert out.returncode == 0, out.stderr
    assert "violations: none" in out.stdout
    apex = out.stdout.split("\n@: ")[1]
    assert "possible: eip_remap, alias_apex, dns_failover, anycast, vrrp, multi_a" in apex
    assert "excluded: cname_repoint: a CNAME cannot sit at the zone apex" in apex
    www = out.stdout.split("\nwww: ")[1].split("\n@: ")[0]
    assert "CNAME to my-elb-1.us-east-1.elb.amazonaws.com." in www and "possible: cname_repoint, eip_remap" in www
    assert "mail:" not in out.stdout and "ns1:" not in out.stdout  # mail and name servers are not balancers


def test_audit_reports_violations_and_exits_1(tmp_path: Path) -> None:
    f = tmp_path / "db.example.com"
    f.write_text(ZONE + "shop  IN CNAME shop-2.eu-west-1.elb.amazonaws.com.\nshop  IN MX 10 mail.example.com.\n")
    out = cli("audit", str(f))
    assert out.returncode == 1
    assert "violations (1):" in out.stdout and "shop also has MX" in out.stdout
    shop = out.stdout.split("\nshop: ")[1]
    assert "possible: eip_remap, alias_apex" in shop and "excluded: cname_repoint" in shop


def test_audit_one_service_name(tmp_path: Path) -> None:
    f = tmp_path / "db.example.com"
    f.write_text(ZONE)
    out = cli("audit", str(f), "--service", "example.com.")
    assert out.returncode == 0
    assert "\n@: A records" in out.stdout and "www:" not in out.stdout
    new = cli("audit", str(f), "--service", "shop")
    assert "shop: no balancer record here yet" in new.stdout and "possible: cname_repoint" in new.stdout


def test_audit_unreadable_files_exit_2_without_traceback(tmp_path: Path) -> None:
    missing = cli("audit", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    broken = tmp_path / "db.broken"
    broken.write_text("$ORIGIN example.com.\nwww IN BOGUSTYPE 1.2.3.4\n")
    out = cli("audit", str(broken))
    assert out.returncode == 2 and "cannot read the zone file" in out.stderr
    no_origin = tmp_path / "db.noorigin"
    no_origin.write_text("\n".join(ZONE.splitlines()[1:]) + "\n")
    out = cli("audit", str(no_origin))
    assert out.returncode == 2 and "--origin" in out.stderr
    assert cli("audit", str(no_origin), "--origin", "example.com.").returncode == 0
    binary = tmp_path / "db.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    out = cli("audit", str(binary))
    assert out.returncode == 2
    for result in (missing, out):
        assert "Traceback" not in result.stderr

"""Zone rules (RFC 1034 3.6.2, RFC 2181 10.1) on scenarios and on real zone files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli import main
from sim.scenario import load_file, load_text, strategy_refusals, zone_violations
from sim.scenario.zones import ZoneRecord, check, read_zone_file, relative_name
from tests.scenario.test_loader import MINIMAL


def test_relative_names() -> None:
    assert relative_name("@", "example.com") == "@"
    assert relative_name("example.com.", "example.com") == "@"
    assert relative_name("www.example.com.", "example.com.") == "www"
    assert relative_name("WWW", "example.com") == "www"
    assert relative_name("www.other.org.", "example.com") == "www.other.org."


@pytest.mark.parametrize(
    ("records", "rules"),
    [
        ([("www", "CNAME"), ("@", "MX"), ("mail", "A")], []),
        ([("@", "CNAME")], ["zone apex"]),
        ([("www", "CNAME"), ("www", "MX")], ["coexist"]),
        ([("@", "CNAME"), ("@", "MX")], ["zone apex", "coexist"]),
        ([("www", "CNAME"), ("www", "CNAME")], ["only one CNAME"]),
        ([("www", "A"), ("www", "MX"), ("www", "TXT")], []),
    ],
)
def test_rules(records: list[tuple[str, str]], rules: list[str]) -> None:
    zone = [ZoneRecord("@", "SOA"), ZoneRecord("@", "NS")] + [ZoneRecord(n, t, "x") for n, t in records]
    found = check(zone)
    assert len(found) == len(rules)
    for violation, rule in zip(found, rules, strict=True):
        assert rule in violation.rule
        assert "RFC" in violation.rule and violation.fix


def test_cname_beside_mx_in_scenario_records_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = MINIMAL.replace(
        "  zone: example.com",
        "  zone: example.com\n  records:\n    - {name: shop, type: CNAME, value: x.example.net.}\n"
        "    - {name: shop, type: MX, value: 10 mail.example.com.}",
    )
    assert [v.rule for v in zone_violations(load_text(text))][0].startswith("a CNAME cannot coexist")
    f = tmp_path / "z.yaml"
    f.write_text(text)
    assert main(["validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert "shop CNAME" in err and "dns.records[0]" in err and "fix:" in err


def test_apex_with_mail_refuses_cname_repoint_and_keeps_eip_remap(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = load_file("scenarios/apex-with-mail.yaml")
    refusals = strategy_refusals(scenario)
    assert refusals["eip_remap"] == []
    rules = " ".join(v.rule for v in refusals["cname_repoint"])
    assert "zone apex" in rules and "MX" in rules
    assert main(["validate", "scenarios/apex-with-mail.yaml"]) == 0
    out = capsys.readouterr().out
    assert "strategy cname_repoint: refused" in out and "strategy eip_remap: runs" in out


def test_service_name_that_also_has_mx_refuses_cname(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "  zone: example.com",
        "  zone: example.com\n  service_name: shop\n  records:\n    - {name: shop.example.com., type: MX, value: 10 mx.example.com.}",
    )
    refusals = strategy_refusals(load_text(text))
    assert refusals["cname_repoint"] and not refusals["eip_remap"]


def test_every_strategy_refused_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "apex.yaml"
    f.write_text(MINIMAL.replace("  zone: example.com", '  zone: example.com\n  service_name: "@"') + "strategies: [cname_repoint]\n")
    assert main(["validate", str(f)]) == 1
    assert "every strategy is refused" in capsys.readouterr().err


GOOD_ZONE = """\
$ORIGIN example.com.
$TTL 3600
@     IN SOA ns1.example.com. admin.example.com. 1 7200 3600 1209600 3600
@     IN NS  ns1.example.com.
@     IN MX  10 mail.example.com.
@     IN A   192.0.2.10
www   300 IN CNAME my-elb-1.us-east-1.elb.amazonaws.com.
mail  IN A   192.0.2.25
"""

BAD_ZONE = GOOD_ZONE + """\
@     IN CNAME my-elb-1.us-east-1.elb.amazonaws.com.
www   IN TXT "v=spf1 -all"
"""


def test_zone_file_good(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "db.example.com"
    f.write_text(GOOD_ZONE)
    zone, records = read_zone_file(f)
    assert zone == "example.com" and ("www", "CNAME") in {(r.name, r.type) for r in records}
    assert check(records) == []
    assert main(["validate", "--zone", str(f)]) == 0
    assert "no CNAME conflicts" in capsys.readouterr().out


def test_zone_file_bad_reports_every_conflict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "db.example.com"
    f.write_text(BAD_ZONE)
    assert main(["validate", "--zone", str(f)]) == 1
    err = capsys.readouterr().err
    assert "3 zone rule violation" in err  # apex CNAME; CNAME beside SOA/NS/MX/A at @; CNAME beside TXT at www
    assert "zone apex" in err and "www also has TXT" in err and "@ also has A, MX" in err


def test_zone_file_without_origin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "db"
    f.write_text("\n".join(GOOD_ZONE.splitlines()[1:]) + "\n")
    assert main(["validate", "--zone", str(f)]) == 1
    assert "--origin" in capsys.readouterr().err
    assert main(["validate", "--zone", str(f), "--origin", "example.com."]) == 0


def test_zone_file_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "db"
    f.write_text("$ORIGIN example.com.\nwww IN BOGUSTYPE 1.2.3.4\n")
    assert main(["validate", "--zone", str(f)]) == 1
    assert "cannot parse the zone file" in capsys.readouterr().err

"""Automatic top-up rules through the command line: set, show, off, reset, remove; a usage
import that tops up; refusals name their field and change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli.test_cli_thresholds_verify_db import partner_and_customer


def test_rules_set_show_off_reset_remove(cli: Any, tmp_path: Path) -> None:
    partner_id, uin = partner_and_customer(cli)  # 100.00 of credit
    assert cli("top-ups", "show", partner_id, "--json").json()["rule"] is None
    default = cli(
        "top-ups",
        "set",
        partner_id,
        "--below",
        "50.00",
        "--amount",
        "100.00",
        "--monthly-cap",
        "300.00",
        "--json",
    ).json()
    assert default["rule"]["amount"] == "100.00"
    shown = cli("top-ups", "show", partner_id, "--customer", uin, "--json").json()
    assert (shown["mode"], shown["rule"]["available_below"]) == ("default", "50.00")
    path = tmp_path / "u.csv"
    path.write_text(
        "event_id,customer_uin,product,list_amount,voucher_amount,occurred_at\n"
        f"e,{uin},cvm,60.00,0,2026-01-01T00:00:00Z\n"
    )
    cli("usage", "import", path)
    assert cli("customers", "show", uin, "--json").json()["total_credit"] == "200.00"
    shown = cli("top-ups", "show", partner_id, "--customer", uin, "--json").json()
    assert (shown["this_month"]["top_ups"], shown["this_month"]["topped_up"]) == (1, "100.00")
    assert "1 top-up(s), 100.00" in cli("top-ups", "show", partner_id, "--customer", uin).stdout

    own = cli(
        "top-ups",
        "set",
        partner_id,
        "--customer",
        uin,
        "--utilization",
        "90",
        "--amount",
        "10.00",
        "--monthly-cap",
        "10.00",
        "--ceiling",
        "500.00",
        "--json",
    ).json()
    assert (own["mode"], own["rule"]["utilization_percent"]) == ("own", 90)
    off = cli("top-ups", "off", partner_id, "--customer", uin, "--json").json()
    assert (off["mode"], off["rule"]) == ("off", None)
    back = cli("top-ups", "reset", partner_id, "--customer", uin, "--json").json()
    assert back["mode"] == "default" and back["rule"]["amount"] == "100.00"
    assert cli("top-ups", "remove", partner_id, "--json").json()["rule"] is None
    assert "no rule" in cli("top-ups", "show", partner_id).stdout


def test_refusals_name_the_field_and_change_nothing(cli: Any) -> None:
    partner_id, uin = partner_and_customer(cli)
    for bad, field in (
        (["--amount", "1.00", "--monthly-cap", "1.00"], "trigger"),
        (
            ["--below", "1", "--utilization", "9", "--amount", "1.00", "--monthly-cap", "1.00"],
            "trigger",
        ),
        (["--below", "1.00", "--amount", "0", "--monthly-cap", "1.00"], "amount"),
        (["--below", "1.00", "--amount", "2.00", "--monthly-cap", "1.00"], "monthly_cap"),
        (["--below", "1.001", "--amount", "2.00", "--monthly-cap", "2.00"], "1.001"),
    ):
        ran = cli("top-ups", "set", partner_id, *bad, expect=3)
        assert ran.stderr.startswith("error: "), ran.stderr
        assert field in ran.stderr or field.replace("_", " ") in ran.stderr, (bad, ran.stderr)
    other = cli("partners", "create", "--name", "Other", "--kind", "reseller", "--json").json()
    ran = cli("top-ups", "off", other["id"], "--customer", uin, expect=3)
    assert f"no customer {uin}" in ran.stderr
    assert cli("top-ups", "show", partner_id, "--json").json()["rule"] is None
    assert cli("top-ups", "show", partner_id, "--customer", uin, "--json").json()["mode"] == (
        "default"
    )

"""Purchase policies, the purchase check and its decisions, through the command line."""

from __future__ import annotations

from typing import Any

from tests.cli.test_cli_thresholds_verify_db import partner_and_customer


def test_policies_checks_and_decisions(cli: Any) -> None:
    partner_id, uin = partner_and_customer(cli)  # 100.00 of credit
    assert cli("purchases", "policy", partner_id, "--json").json() == {
        "partner_id": partner_id,
        "customer_uin": None,
        "policy": "notify_only",
        "tolerance": "0.00",
    }
    assert cli("purchases", "check", uin, "500.00", "--json").json()["answer"] == "allowed"

    default = cli(
        "purchases", "set-policy", partner_id, "block_at_limit", "--tolerance", "5.00", "--json"
    ).json()
    assert (default["policy"], default["tolerance"]) == ("block_at_limit", "5.00")
    at_edge = cli("purchases", "check", uin, "105.00", "--product", "cvm", "--json").json()
    assert (at_edge["answer"], at_edge["available_after"], at_edge["product"]) == (
        "allowed",
        "-5.00",
        "cvm",
    )
    over = cli("purchases", "check", uin, "105.01")
    assert over.stdout.startswith(f"customer {uin}: refused: available credit after")

    own = cli(
        "purchases", "set-policy", partner_id, "block_all", "--customer", uin, "--json"
    ).json()
    assert (own["policy"], own["own"], own["tolerance"]) == ("block_all", True, "5.00")
    assert cli("purchases", "check", uin, "0.01", "--json").json()["reason"] == "on_hold"
    shown = cli("purchases", "policy", partner_id, "--customer", uin).stdout
    assert "block_all (its own)" in shown
    reset = cli("purchases", "reset-policy", partner_id, "--customer", uin, "--json").json()
    assert (reset["policy"], reset["own"]) == ("block_at_limit", False)

    listed = cli("purchases", "list", "--partner", partner_id, "--json").json()
    assert [d["answer"] for d in listed["decisions"]] == [
        "refused",
        "refused",
        "allowed",
        "allowed",
    ]
    assert listed["decisions"][0]["requested_by"].startswith("cli:")
    page = cli("purchases", "list", "--answer", "refused", "--limit", 1, "--json").json()
    assert page["has_more"] is True and page["decisions"][0]["reason"] == "on_hold"
    text = cli("purchases", "list", "--customer", uin).stdout
    assert "105.01" in text and "refused" in text


def test_refusals_change_nothing(cli: Any) -> None:
    partner_id, uin = partner_and_customer(cli)
    for amount in ("0", "-1.00", "1.001", "abc", "1000000000.01"):
        ran = cli("purchases", "check", uin, amount, expect=None)
        assert ran.exit_code in (2, 3), (amount, ran.stdout, ran.stderr)
    assert cli("purchases", "check", 999_999_999_999, "1.00", expect=3).stderr.startswith(
        "error: no customer"
    )
    bad = cli("purchases", "set-policy", partner_id, "block_some", expect=3)
    assert "not a purchase policy" in bad.stderr
    cli("purchases", "set-policy", partner_id, "block_at_limit", "--tolerance", "-1", expect=3)
    other = cli("partners", "create", "--name", "Other", "--kind", "reseller", "--json").json()
    cli("purchases", "set-policy", other["id"], "block_all", "--customer", uin, expect=3)
    assert cli("purchases", "policy", partner_id, "--json").json()["policy"] == "notify_only"
    assert cli("purchases", "list", "--json").json() == {"decisions": [], "has_more": False}

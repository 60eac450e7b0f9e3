"""Partners, pools, customers and credit through the command line, on both engines."""

from __future__ import annotations

from typing import Any

import pytest


def make_reseller(cli: Any, *, pool: str = "1000.00") -> int:
    partner = cli("partners", "create", "--name", "Acme Cloud", "--kind", "reseller", "--json")
    partner_id = int(partner.json()["id"])
    cli("partners", "grant", partner_id, pool, "--json")
    return partner_id


def make_customer(cli: Any, partner_id: int, name: str = "Jia Ito") -> int:
    made = cli("customers", "create", "--partner", partner_id, "--name", name, "--json")
    return int(made.json()["uin"])


def refused(cli: Any, *args: object) -> str:
    """Run a command that must be refused; its one-line reason."""
    ran = cli(*args, expect=3)
    assert ran.stdout == ""
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_partner_create_and_grant_shapes(cli: Any) -> None:
    created = cli("partners", "create", "--name", "Acme", "--kind", "reseller", "--json").json()
    assert set(created) >= {"id", "name", "kind", "total", "allocated", "remaining"}
    assert (created["kind"], created["total"], created["parent_id"]) == ("reseller", "0.00", None)

    granted = cli("partners", "grant", created["id"], "12.50", "--remark", "Q1", "--json").json()
    assert (granted["total"], granted["allocated"], granted["remaining"]) == (
        "12.50",
        "0.00",
        "12.50",
    )
    assert isinstance(granted["record_id"], int)


def test_negative_grant_is_an_amount_not_an_option(cli: Any) -> None:
    partner_id = make_reseller(cli, pool="100.00")
    reduced = cli("partners", "grant", partner_id, "-5.00", "--json").json()
    assert (reduced["total"], reduced["remaining"]) == ("95.00", "95.00")
    # The usual "--" separator works too.
    again = cli("partners", "grant", "--json", "--", partner_id, "-5.00").json()
    assert again["total"] == "90.00"


def test_grant_refusals_change_nothing(cli: Any) -> None:
    partner_id = make_reseller(cli, pool="100.00")
    assert "more than two decimal" in refused(cli, "partners", "grant", partner_id, "1.005")
    assert "not a decimal amount" in refused(cli, "partners", "grant", partner_id, "NaN")
    assert "beyond the limit" in refused(cli, "partners", "grant", partner_id, "1000000000.01")
    assert "cannot be reduced" in refused(cli, "partners", "grant", partner_id, "-100.01")
    assert "zero" in refused(cli, "partners", "grant", partner_id, "0")
    assert "no partner" in refused(cli, "partners", "grant", 999, "1.00")
    shown = cli("partners", "show", partner_id, "--json").json()
    assert (shown["total"], shown["remaining"]) == ("100.00", "100.00")
    records = cli("records", "list", "--partner", partner_id, "--json").json()
    assert len(records["records"]) == 1


def test_sub_reseller_pool_from_distributor(cli: Any) -> None:
    dist = cli("partners", "create", "--name", "North", "--kind", "distributor", "--json").json()
    sub = cli(
        "partners",
        "create",
        "--name",
        "Harbor",
        "--kind",
        "sub-reseller",
        "--parent",
        dist["id"],
        "--json",
    ).json()
    assert sub["parent_id"] == dist["id"]
    cli("partners", "grant", dist["id"], "500.00")
    moved = cli("partners", "allocate-pool", dist["id"], sub["id"], "200.00", "--json").json()
    assert (moved["total"], moved["remaining"], moved["distributor_remaining"]) == (
        "200.00",
        "200.00",
        "300.00",
    )
    back = cli("partners", "allocate-pool", dist["id"], sub["id"], "-50.00", "--json").json()
    assert (back["total"], back["distributor_remaining"]) == ("150.00", "350.00")
    assert "remaining" in refused(cli, "partners", "allocate-pool", dist["id"], sub["id"], "-151")
    assert "remaining" in refused(cli, "partners", "allocate-pool", dist["id"], sub["id"], "351")
    listed = {p["id"]: p for p in cli("partners", "list", "--json").json()["partners"]}
    assert listed[dist["id"]]["allocated"] == "150.00"
    assert listed[sub["id"]]["total"] == "150.00"
    assert cli("partners", "show", dist["id"], "--json").json()["sub_resellers"] == [sub["id"]]
    assert cli("verify", "--json").json() == {"ok": True, "mismatches": []}


def test_customer_create_list_show(cli: Any) -> None:
    partner_id = make_reseller(cli)
    made = cli(
        "customers",
        "create",
        "--partner",
        partner_id,
        "--name",
        "Cedar Labs Ltd",
        "--email",
        "billing@cedar.example",
        "--type",
        "company",
        "--remark",
        "key account",
        "--json",
    ).json()
    assert made["uin"] > partner_id
    assert (made["type"], made["total_credit"], made["available"]) == ("company", "0.00", "0.00")
    other = make_customer(cli, partner_id, "Ben Tan")
    page = cli("customers", "list", "--partner", partner_id, "--limit", 1, "--json").json()
    assert [c["uin"] for c in page["customers"]] == [made["uin"]]
    assert page["has_more"] is True
    rest = cli(
        "customers", "list", "--partner", partner_id, "--after", made["uin"], "--json"
    ).json()
    assert [c["uin"] for c in rest["customers"]] == [other]
    assert rest["has_more"] is False
    shown = cli("customers", "show", other, "--json").json()
    assert (shown["name"], shown["thresholds"], shown["own_thresholds"]) == (
        "Ben Tan",
        [75, 90, 100],
        False,
    )
    assert "email" in refused(
        cli, "customers", "create", "--partner", partner_id, "--name", "X", "--email", "nope"
    )
    assert "no partner" in refused(cli, "customers", "create", "--partner", 5, "--name", "X")
    assert "no customer" in refused(cli, "customers", "show", 5)


def test_allocate_and_withdraw(cli: Any) -> None:
    partner_id = make_reseller(cli, pool="1000.00")
    uin = make_customer(cli, partner_id)
    given = cli(
        "credit",
        "allocate",
        uin,
        "600.00",
        "--operator",
        "ops@acme.example",
        "--remark",
        "first",
        "--json",
    ).json()
    assert (given["total_credit"], given["available"], given["pool_remaining"]) == (
        "600.00",
        "600.00",
        "400.00",
    )
    assert isinstance(given["record_id"], int)
    taken = cli("credit", "allocate", uin, "-100.50", "--operator", "ops", "--json").json()
    assert (taken["total_credit"], taken["available"], taken["pool_remaining"]) == (
        "499.50",
        "499.50",
        "500.50",
    )
    records = cli("records", "list", "--partner", partner_id, "--customer", uin, "--json").json()
    assert [(r["kind"], r["change"], r["operator"], r["source"]) for r in records["records"]] == [
        ("withdrawal", "-100.50", "ops", "cli"),
        ("allocation", "600.00", "ops@acme.example", "cli"),
    ]


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("500.01", "remaining"),  # more than the pool
        ("-300.01", "withdrawable"),  # more than available
        ("-5000000", "withdrawable"),  # more than the whole pool ever allocated
        ("1.005", "two decimal"),
        ("NaN", "decimal amount"),
        ("1e3", "decimal amount"),
        ("0", "zero"),
    ],
)
def test_credit_refusals_change_nothing(cli: Any, amount: str, reason: str) -> None:
    partner_id = make_reseller(cli, pool="800.00")
    uin = make_customer(cli, partner_id)
    cli("credit", "allocate", uin, "300.00", "--operator", "ops")
    assert reason in refused(cli, "credit", "allocate", uin, amount, "--operator", "ops")
    shown = cli("customers", "show", uin, "--json").json()
    assert (shown["total_credit"], shown["available"]) == ("300.00", "300.00")
    assert cli("partners", "show", partner_id, "--json").json()["remaining"] == "500.00"
    assert len(cli("records", "list", "--partner", partner_id, "--json").json()["records"]) == 2
    assert cli("verify", "--json").json()["ok"] is True


def test_unknown_customer_is_refused(cli: Any) -> None:
    make_reseller(cli)
    assert "no customer 424242" in refused(
        cli, "credit", "allocate", 424242, "1.00", "--operator", "ops"
    )


def test_records_page_through(cli: Any) -> None:
    partner_id = make_reseller(cli)
    uin = make_customer(cli, partner_id)
    for _ in range(3):
        cli("credit", "allocate", uin, "1.00", "--operator", "ops")
    first = cli("records", "list", "--partner", partner_id, "--limit", 2, "--json").json()
    assert first["has_more"] is True
    last_id = first["records"][-1]["id"]
    rest = cli(
        "records", "list", "--partner", partner_id, "--limit", 2, "--before", last_id, "--json"
    ).json()
    assert rest["has_more"] is False
    kinds = [r["kind"] for r in first["records"] + rest["records"]]
    assert kinds == ["allocation", "allocation", "allocation", "grant"]
    only_grants = cli("records", "list", "--partner", partner_id, "--kind", "grant", "--json")
    assert [r["kind"] for r in only_grants.json()["records"]] == ["grant"]


def test_text_output_for_people(cli: Any) -> None:
    partner_id = make_reseller(cli)
    uin = make_customer(cli, partner_id)
    ran = cli("credit", "allocate", uin, "10.00", "--operator", "ops")
    assert "allocated 10.00" in ran.stdout
    assert "total credit 10.00" in ran.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("credit", "allocate", "9" * 20, "1.00", "--operator", "x"),
        ("customers", "show", "9" * 20),
        ("partners", "grant", "9" * 20, "1.00"),
        ("records", "list", "--partner", "1", "--customer", "9" * 20),
        ("thresholds", "show", "0"),
    ],
)
def test_ids_beyond_bigint_are_usage_errors(cli: Any, args: tuple[str, ...]) -> None:
    # Before: the number reached the database, which raised (an overflow traceback).
    ran = cli(*args, expect=2)
    assert "9223372036854775807" in ran.stderr or "greater than or equal to 1" in ran.stderr


def test_an_amount_longer_than_any_is_refused_on_its_length(cli: Any) -> None:
    partner = make_reseller(cli)
    assert "longer than 40 characters" in refused(cli, "partners", "grant", partner, "1" * 100_000)


def test_the_cli_bound_is_the_tables_bigint() -> None:
    from creditline.cli.common import MAX_BIGINT as CLI_BOUND
    from creditline.db.tables import MAX_BIGINT

    assert CLI_BOUND == MAX_BIGINT

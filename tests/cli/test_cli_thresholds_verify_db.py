"""Thresholds, the conservation check and the schema, through the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from creditline.db.migrate import head_revision


def partner_and_customer(cli: Any) -> tuple[int, int]:
    partner = cli("partners", "create", "--name", "Acme", "--kind", "reseller", "--json").json()
    cli("partners", "grant", partner["id"], "1000.00")
    uin = cli("customers", "create", "--partner", partner["id"], "--name", "C", "--json").json()[
        "uin"
    ]
    cli("credit", "allocate", uin, "100.00", "--operator", "ops")
    return partner["id"], uin


def test_thresholds_set_show_reset(cli: Any) -> None:
    partner_id, uin = partner_and_customer(cli)
    shown = cli("thresholds", "show", partner_id, "--json").json()
    assert shown["thresholds"] == [75, 90, 100]

    default = cli("thresholds", "set", partner_id, 90, 80, 100, "--json").json()
    assert (default["thresholds"], default["customer_uin"]) == ([80, 90, 100], None)
    assert cli("thresholds", "show", partner_id, "--customer", uin, "--json").json() == {
        "partner_id": partner_id,
        "customer_uin": uin,
        "thresholds": [80, 90, 100],
        "own": False,
    }
    own = cli("thresholds", "set", partner_id, 50, "--customer", uin, "--json").json()
    assert (own["thresholds"], own["own"]) == ([50], True)
    reset = cli("thresholds", "reset", partner_id, "--customer", uin, "--json").json()
    assert (reset["thresholds"], reset["own"]) == ([80, 90, 100], False)
    assert cli("customers", "show", uin, "--json").json()["own_thresholds"] is False


def test_threshold_refusals(cli: Any) -> None:
    partner_id, uin = partner_and_customer(cli)
    for bad in (["0"], ["1001"], [str(n) for n in range(1, 12)]):
        ran = cli("thresholds", "set", partner_id, *bad, expect=3)
        assert ran.stderr.startswith("error: ") and len(ran.stderr.strip().splitlines()) == 1
    other = cli("partners", "create", "--name", "Other", "--kind", "reseller", "--json").json()
    # Another partner's customer looks exactly like a missing one.
    ran = cli("thresholds", "set", other["id"], 50, "--customer", uin, expect=3)
    assert f"no customer {uin}" in ran.stderr
    assert cli("thresholds", "show", partner_id, "--json").json()["thresholds"] == [75, 90, 100]


def test_customer_thresholds_drive_alarms(cli: Any, tmp_path: Path) -> None:
    partner_id, uin = partner_and_customer(cli)
    cli("thresholds", "set", partner_id, 30, 60, "--customer", uin)
    path = tmp_path / "u.csv"
    path.write_text(
        "event_id,customer_uin,product,list_amount,voucher_amount,occurred_at\n"
        f"e,{uin},cvm,65.00,0,2026-01-01T00:00:00Z\n"
    )
    result = cli("usage", "import", path, "--json").json()
    assert [a["threshold"] for a in result["alarms"]] == [60]


def test_verify_names_each_mismatch(cli: Any, engine: Engine) -> None:
    _, uin = partner_and_customer(cli)
    assert cli("verify", "--json").json() == {"ok": True, "mismatches": []}
    assert "ok" in cli("verify").stdout
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE customers SET consumed = consumed + 1 WHERE uin = :uin"),
            {"uin": uin},
        )
    ran = cli("verify", "--json", expect=1)
    found = ran.json()
    assert found["ok"] is False
    assert [(m["subject"], m["id"], m["field"]) for m in found["mismatches"]] == [
        ("customer", uin, "consumed")
    ]
    assert (found["mismatches"][0]["stored"], found["mismatches"][0]["expected"]) == (
        "0.01",
        "0.00",
    )
    # Text for people goes to stderr, one line per mismatch.
    text_run = cli("verify", expect=1)
    assert text_run.stderr.strip() == f"customer {uin}: consumed is 0.01, its records say 0.00"


def test_db_upgrade_reports_head(cli: Any, tmp_path: Path) -> None:
    at_head = cli("db", "upgrade", "--json").json()
    assert at_head["revision"] == at_head["head"] == head_revision()
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    made = cli("db", "upgrade", "--json", url=fresh).json()
    assert (made["revision_before"], made["revision"]) == (None, head_revision())


def test_sqlite_is_upgraded_on_first_use(cli: Any, tmp_path: Path) -> None:
    fresh = f"sqlite:///{tmp_path / 'first.db'}"
    assert cli("partners", "list", "--json", url=fresh).json() == {"partners": []}


def test_postgres_behind_head_is_refused(cli: Any, engine: Engine, database_url: str) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite upgrades itself; PostgreSQL waits for the operator")
    with engine.begin() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("DELETE FROM alembic_version"))
    try:
        ran = cli("partners", "list", expect=3)
        assert ran.stderr.strip().endswith("run creditline db upgrade")
        assert ran.stdout == ""
        as_json = cli("partners", "list", "--json", expect=3)
        assert as_json.json()["error"]["code"] == "schema_out_of_date"
        assert as_json.json()["error"]["message"].endswith("run creditline db upgrade")
        assert as_json.stderr == ""
    finally:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": version}
            )
    assert cli("partners", "list", "--json").json() == {"partners": []}

"""CLI writes are audited like every other door: principal ``cli:<os user>``, no source
address, a fresh request id, the objects changed before and after; a refused command
leaves only its refused row."""

from __future__ import annotations

import getpass
from typing import Any

from sqlalchemy import Engine, select
from tests.cli.conftest import cli  # noqa: F401  (the fixture)

from creditline.db import transaction
from creditline.db.tables import AuditEvent


def _rows(engine: Engine) -> list[AuditEvent]:
    with transaction(engine) as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_cli_writes_are_audited(cli: Any, engine: Engine) -> None:  # noqa: F811
    partner = cli("partners", "create", "--name", "Acme", "--kind", "reseller", "--json").json()
    partner_id = int(partner["id"])
    cli("partners", "grant", partner_id, "100.00", "--json")
    made = cli("customers", "create", "--partner", partner_id, "--name", "Jia", "--json").json()
    uin = int(made["uin"])
    cli("credit", "allocate", uin, "40.00", "--operator", "ops", "--json")
    cli("thresholds", "set", partner_id, "50", "100")
    cli("credit", "allocate", uin, "-500.00", "--operator", "ops", expect=3)
    key = cli("keys", "create", "--partner", partner_id, "--role", "viewer", "--json").json()

    rows = _rows(engine)
    assert all(r.source == "cli" and r.source_ip == "" and r.request_id for r in rows)
    assert {r.principal for r in rows} == {f"cli:{getpass.getuser()}"}
    actions = [(r.action, r.outcome) for r in rows]
    assert actions == [
        ("partners create", "ok"),
        ("partners grant", "ok"),
        ("customers create", "ok"),
        ("credit allocate", "ok"),
        ("thresholds set", "ok"),
        ("credit allocate", "refused"),
        ("keys create", "ok"),
    ]
    created, granted, _customer, allocated, thresholds, refused, made_key = rows
    pool = f"pool {partner_id}"
    assert pool not in (created.before or {}) and created.after[pool]["name"] == "Acme"
    assert (granted.before[pool]["pool_total"], granted.after[pool]["pool_total"]) == (
        "0.00",
        "100.00",
    )
    customer = f"customer {uin}"
    assert allocated.before[customer]["available"] == "0.00"
    assert allocated.after[customer]["available"] == "40.00"
    assert allocated.after[pool]["remaining"] == "60.00"
    assert allocated.after["request"]["amount"] == "40.00"
    assert thresholds.after[pool]["thresholds"] == [50, 100]
    assert refused.before is None and refused.after["error"]["code"]
    (label,) = [k for k in made_key.after if k.startswith("api_key ")]
    assert made_key.after[label]["secret_id"] == key["secret_id"]
    assert key["secret_key"] not in str(made_key.after)

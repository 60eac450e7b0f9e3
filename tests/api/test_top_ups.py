"""Automatic top-up rules through REST: the partner's default and a customer's own, a usage
batch that tops up (and says so), bad rules refused with nothing kept, roles, another
partner's customer, and every change audited."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.api.conftest import World

from creditline.db import read_transaction
from creditline.db.tables import AllocationRecord, AuditEvent, CustomerTopUpRule

RULE = {"available_below": "50.00", "amount": "100.00", "monthly_cap": "300.00"}


def _usage(client: TestClient, world: World, event_id: str, uin: int, amount: str) -> Any:
    record = {
        "event_id": event_id,
        "customer_uin": uin,
        "product": "cvm",
        "list_amount": amount,
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    done = client.post("/v1/usage-batches", json={"records": [record]}, headers=world.h("platform"))
    assert done.status_code == 200, done.text
    return done.json()


def test_the_default_rule_tops_up_on_usage(client: TestClient, world: World) -> None:
    assert client.get("/v1/top-up-rule", headers=world.h("a_viewer")).json() == {"rule": None}
    put = client.put("/v1/top-up-rule", json=RULE, headers=world.h("a_admin"))
    assert put.status_code == 200, put.text
    assert put.json()["rule"] == {
        "available_below": "50.00",
        "utilization_percent": None,
        "amount": "100.00",
        "monthly_cap": "300.00",
        "ceiling": None,
    }
    answer = _usage(client, world, "e1", world.a_customer, "1.00")  # 0.00 credit: -1.00
    (top_up,) = answer["top_ups"]
    assert (top_up["customer_uin"], top_up["refused"]) == (world.a_customer, None)
    record = client.get(f"/v1/customers/{world.a_customer}", headers=world.h("a_viewer")).json()
    assert record["total_credit"] == "100.00"
    shown = client.get(
        f"/v1/customers/{world.a_customer}/top-up-rule", headers=world.h("a_viewer")
    ).json()
    assert shown["mode"] == "default"
    assert shown["this_month"]["topped_up"] == "100.00"
    assert shown["this_month"]["top_ups"] == 1
    records = client.get(
        "/v1/allocation-records",
        params={"customer_uin": world.a_customer},
        headers=world.h("a_viewer"),
    )
    assert records.status_code == 200, records.text
    (made,) = [r for r in records.json()["data"] if r["source"] == "rule"]
    assert made["operator"] == "top-up rule (partner default)"
    assert made["id"] == top_up["record_id"]


def test_a_customers_own_rule_off_and_back_to_default(client: TestClient, world: World) -> None:
    url = f"/v1/customers/{world.a_customer}/top-up-rule"
    client.put("/v1/top-up-rule", json=RULE, headers=world.h("a_admin"))
    own = {"mode": "own", "rule": RULE | {"amount": "20.00", "ceiling": "40.00"}}
    put = client.put(url, json=own, headers=world.h("a_operator"))
    assert put.status_code == 200, put.text
    assert (put.json()["mode"], put.json()["rule"]["ceiling"]) == ("own", "40.00")
    off = client.put(url, json={"mode": "off"}, headers=world.h("a_operator"))
    assert (off.json()["mode"], off.json()["rule"]) == ("off", None)
    assert _usage(client, world, "e2", world.a_customer, "1.00")["top_ups"] == []
    back = client.put(url, json={"mode": "default"}, headers=world.h("a_operator"))
    assert back.json()["rule"]["amount"] == "100.00"
    removed = client.delete("/v1/top-up-rule", headers=world.h("a_admin"))
    assert removed.json() == {"rule": None}
    assert client.get(url, headers=world.h("a_viewer")).json()["rule"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount": "1.00", "monthly_cap": "1.00"}, "trigger"),
        (RULE | {"utilization_percent": 90}, "trigger"),
        (RULE | {"amount": "0.00"}, "amount"),
        (RULE | {"monthly_cap": "99.99"}, "monthly_cap"),
        (RULE | {"ceiling": "10.00"}, "ceiling"),
        (RULE | {"amount": "1.001"}, None),
        (RULE | {"amount": 100}, None),
        (RULE | {"surprise": 1}, None),
        (
            {
                "available_below": "1.00",
                "amount": "1.00",
                "monthly_cap": "1.00",
                "utilization_percent": 0,
            },
            None,
        ),
    ],
)
def test_bad_rules_are_refused_and_nothing_kept(
    client: TestClient, world: World, body: dict[str, Any], param: str | None
) -> None:
    answer = client.put("/v1/top-up-rule", json=body, headers=world.h("a_admin"))
    assert answer.status_code in (400, 422), answer.text
    if param is not None:
        assert answer.json()["error"]["param"] == param
    assert client.get("/v1/top-up-rule", headers=world.h("a_admin")).json() == {"rule": None}


def test_own_mode_needs_its_rule_and_only_it(
    client: TestClient, world: World, engine: Engine
) -> None:
    url = f"/v1/customers/{world.a_customer}/top-up-rule"
    for body in ({"mode": "own"}, {"mode": "off", "rule": RULE}, {"mode": "sometimes"}):
        answer = client.put(url, json=body, headers=world.h("a_operator"))
        assert answer.status_code in (400, 422), answer.text
    with read_transaction(engine) as s:
        assert s.execute(select(CustomerTopUpRule)).first() is None


def test_roles_and_other_partners(client: TestClient, world: World) -> None:
    assert (
        client.put("/v1/top-up-rule", json=RULE, headers=world.h("a_operator")).status_code == 403
    )
    own = {"mode": "off"}
    url = f"/v1/customers/{world.a_customer}/top-up-rule"
    assert client.put(url, json=own, headers=world.h("a_viewer")).status_code == 403
    assert client.put(url, json=own, headers=world.h("b_admin")).status_code == 404
    assert client.get(url, headers=world.h("b_admin")).status_code == 404


def test_rule_changes_are_audited(client: TestClient, world: World, engine: Engine) -> None:
    client.put("/v1/top-up-rule", json=RULE, headers=world.h("a_admin"))
    client.put("/v1/top-up-rule", json=RULE | {"amount": "50.00"}, headers=world.h("a_admin"))
    client.put(
        f"/v1/customers/{world.a_customer}/top-up-rule",
        json={"mode": "off"},
        headers=world.h("a_operator"),
    )
    with read_transaction(engine) as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        assert (
            s.execute(select(AllocationRecord).where(AllocationRecord.source == "rule")).first()
            is None
        )
    changed = [e for e in events if e.action == "PUT /v1/top-up-rule"][-1]
    label = f"top_up_rule_default {world.a}"
    assert changed.before is not None and changed.after is not None
    assert (changed.before[label]["amount"], changed.after[label]["amount"]) == ("100.00", "50.00")
    off = next(e for e in events if e.action == "PUT /v1/customers/{uin}/top-up-rule")
    assert off.after is not None
    assert off.after[f"top_up_rule {world.a_customer}"]["enabled"] is False

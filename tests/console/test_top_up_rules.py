"""Automatic top-up rules in the console: the customer's rule from its detail and Setting
Credit pages (own, off, back to the default), the partner's default from Settings, bad
input shown beside the form with nothing changed, who may change what."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.console.conftest import World, login

from creditline.db import read_transaction
from creditline.db.tables import AuditEvent
from creditline.ledger import top_ups

RULE = {"trigger": "below", "below": "50.00", "amount": "100.00", "monthly_cap": "300.00"}


def test_customer_rule_from_detail_and_setting_credit(
    client: TestClient, world: World, engine: Engine
) -> None:
    csrf = login(client, "operator@acme.example")
    uin = world.a_customers[0]
    for page in (f"/customers/{uin}", f"/customers/{uin}/credit"):
        shown = client.get(page).text
        assert f'href="/customers/{uin}/top-up-rule"' in shown
        assert 'data-testid="top-up-rule"' in shown and "none" in shown

    form = client.get(f"/customers/{uin}/top-up-rule")
    assert form.status_code == 200 and 'name="monthly_cap"' in form.text
    saved = client.post(
        f"/customers/{uin}/top-up-rule",
        data={"csrf_token": csrf, "mode": "own", **RULE, "ceiling": "2000"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    detail = client.get(saved.headers["location"]).text
    assert "when available below 50.00 USD, allocate 100.00 USD" in detail
    assert "never past 2,000.00 USD" in detail and "(own)" in detail
    with read_transaction(engine) as s:
        found = top_ups.customer_rule(s, partner_id=world.a, customer_uin=uin)
    assert (found.mode, found.rule) == (
        "own",
        top_ups.Rule(amount=100_00, monthly_cap=300_00, below=50_00, ceiling=2_000_00),
    )

    bad = client.post(
        f"/customers/{uin}/top-up-rule",
        data={"csrf_token": csrf, "mode": "own", **RULE, "monthly_cap": "10.00"},
    )
    assert bad.status_code == 422 and "Not saved" in bad.text and "monthly_cap" in bad.text
    assert 'value="10.00"' in bad.text  # kept as typed
    missing = client.post(
        f"/customers/{uin}/top-up-rule",
        data={
            "csrf_token": csrf,
            "mode": "own",
            "trigger": "utilization",
            "amount": "1.00",
            "monthly_cap": "1.00",
        },
    )
    assert missing.status_code == 422 and "utilisation must be a whole percent" in missing.text
    with read_transaction(engine) as s:
        unchanged = top_ups.customer_rule(s, partner_id=world.a, customer_uin=uin)
    assert unchanged == found

    off = client.post(
        f"/customers/{uin}/top-up-rule",
        data={"csrf_token": csrf, "mode": "off"},
        follow_redirects=False,
    )
    assert off.status_code == 303
    with read_transaction(engine) as s:
        assert top_ups.customer_rule(s, partner_id=world.a, customer_uin=uin).mode == "off"
        audited = (
            s.execute(select(AuditEvent.outcome).where(AuditEvent.action.like("%top-up-rule%")))
            .scalars()
            .all()
        )
    # The two saved changes, and the two refusals as refused (nothing changed).
    assert sorted(audited) == ["ok", "ok", "refused", "refused"]


def test_partner_default_and_who_may_change(
    client: TestClient, world: World, engine: Engine
) -> None:
    uin = world.a_customers[1]
    csrf = login(client, "viewer@acme.example")
    assert client.get(f"/customers/{uin}/top-up-rule").status_code == 200
    refused = client.post(f"/customers/{uin}/top-up-rule", data={"csrf_token": csrf, "mode": "off"})
    assert refused.status_code == 403
    assert client.get(f"/customers/{world.b_customer}/top-up-rule").status_code == 404
    csrf = login(client, "operator@acme.example")
    refused = client.post("/settings/top-up-rule", data={"csrf_token": csrf, **RULE})
    assert refused.status_code == 403  # the default is an admin's

    csrf = login(client, "admin@acme.example")
    assert 'href="/settings/top-up-rule"' in client.get("/settings").text
    saved = client.post(
        "/settings/top-up-rule",
        data={
            "csrf_token": csrf,
            "mode": "set",
            "trigger": "utilization",
            "utilization_percent": "90",
            "amount": "25",
            "monthly_cap": "75",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    page = client.get("/settings/top-up-rule").text
    assert "Default automatic top-up: when utilisation reaches 90%, allocate 25.00 USD" in page
    assert "(your default)" in client.get(f"/customers/{uin}").text
    removed = client.post(
        "/settings/top-up-rule", data={"csrf_token": csrf, "mode": "remove"}, follow_redirects=False
    )
    assert removed.status_code == 303
    with read_transaction(engine) as s:
        assert top_ups.partner_rule(s, world.a) is None

"""Purchase policies and the decisions of the purchase check in the console: the column on
My Customers, the customer's policy (from its detail and Setting Credit), the partner's
default, and the list of decisions."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.console.conftest import World, login

from creditline.db import read_transaction, transaction
from creditline.ledger import purchases


def test_customer_policy_from_detail_to_list(
    client: TestClient, world: World, engine: Engine
) -> None:
    csrf = login(client, "operator@acme.example")
    uin = world.a_customers[0]
    listed = client.get("/customers")
    assert listed.text.count('data-testid="purchase-policy"') == 3
    assert "Notify only" in listed.text
    detail = client.get(f"/customers/{uin}")
    assert f'href="/customers/{uin}/purchase-policy"' in detail.text
    assert f'href="/customers/{uin}/purchase-policy"' in client.get(f"/customers/{uin}/credit").text

    form = client.get(f"/customers/{uin}/purchase-policy")
    assert form.status_code == 200 and 'name="policy"' in form.text
    saved = client.post(
        f"/customers/{uin}/purchase-policy",
        data={"csrf_token": csrf, "policy": "block_at_limit", "tolerance": "12.50"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    shown = client.get(saved.headers["location"])
    assert "Block at limit (its own), tolerance 12.50 USD" in shown.text  # the notice
    with read_transaction(engine) as s:
        p = purchases.customer_policy(s, world.a, uin)
    assert (p.policy, p.tolerance, p.own, p.own_tolerance) == ("block_at_limit", 1250, True, True)
    row = client.get("/customers", params={"q": str(uin)}).text
    assert "Block at limit" in row and "(own)" in row

    bad = client.post(
        f"/customers/{uin}/purchase-policy",
        data={"csrf_token": csrf, "policy": "block_at_limit", "tolerance": "1.005"},
    )
    assert bad.status_code == 422 and "Not saved" in bad.text and "1.005" in bad.text
    with read_transaction(engine) as s:
        assert purchases.customer_policy(s, world.a, uin).tolerance == 1250  # unchanged

    back = client.post(
        f"/customers/{uin}/purchase-policy",
        data={"csrf_token": csrf, "policy": "default"},
        follow_redirects=False,
    )
    assert back.status_code == 303
    with read_transaction(engine) as s:
        assert purchases.customer_policy(s, world.a, uin).own is False


def test_who_may_change_policies(client: TestClient, world: World) -> None:
    uin = world.a_customers[1]
    csrf = login(client, "viewer@acme.example")
    assert client.get(f"/customers/{uin}/purchase-policy").status_code == 200
    refused = client.post(
        f"/customers/{uin}/purchase-policy", data={"csrf_token": csrf, "policy": "block_all"}
    )
    assert refused.status_code == 403
    other = client.get(f"/customers/{world.b_customer}/purchase-policy")
    assert other.status_code == 404
    csrf = login(client, "operator@acme.example")
    default = client.post(
        "/settings/purchase-policy", data={"csrf_token": csrf, "policy": "block_all"}
    )
    assert default.status_code == 403  # the default is an admin's


def test_partner_default(client: TestClient, world: World, engine: Engine) -> None:
    csrf = login(client, "admin@acme.example")
    assert 'href="/settings/purchase-policy"' in client.get("/settings").text
    saved = client.post(
        "/settings/purchase-policy",
        data={"csrf_token": csrf, "policy": "block_at_limit", "tolerance": "5"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    page = client.get("/settings/purchase-policy")
    assert "Default purchase policy: Block at limit, tolerance 5.00 USD." in page.text
    with read_transaction(engine) as s:
        d = purchases.partner_default(s, world.a)
    assert (d.policy, d.tolerance) == ("block_at_limit", 500)
    assert client.get("/customers").text.count("Block at limit") == 3
    bad = client.post(
        "/settings/purchase-policy", data={"csrf_token": csrf, "policy": "block_some"}
    )
    assert bad.status_code == 422 and "not a purchase policy" in bad.text


def test_decisions_listed(client: TestClient, world: World, engine: Engine) -> None:
    with transaction(engine) as s:
        purchases.set_partner_default(s, partner_id=world.a, policy="block_at_limit")
        for amount in (50_000, 200_000):
            purchases.check(
                s,
                partner_id=None,
                customer_uin=world.a_customers[0],
                amount=amount,
                product="cvm",
                requested_by="order pipeline",
            )
        purchases.check(
            s, partner_id=None, customer_uin=world.b_customer, amount=1, requested_by="x"
        )
    login(client, "viewer@acme.example")
    page = client.get("/purchase-checks")
    assert page.status_code == 200
    assert page.text.count('data-testid="answer"') == 2  # never B's
    assert "refused" in page.text and "allowed" in page.text and "order pipeline" in page.text
    refused = client.get("/purchase-checks", params={"answer": "refused"})
    assert refused.text.count('data-testid="answer"') == 1 and "2,000.00" in refused.text
    one = client.get("/purchase-checks", params={"customer": str(world.a_customers[1])})
    assert "No purchase checks match" in one.text
    bad = client.get("/purchase-checks", params={"customer": "12x"})
    assert bad.status_code == 422 and "not a customer UIN" in bad.text

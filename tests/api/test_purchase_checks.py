"""The purchase check through REST: each policy as the vendor's order pipeline (the
platform key) meets it, the tolerance's edges, who may ask about whom, bad input, and the
decisions kept."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.api.conftest import World

from creditline.db import read_transaction
from creditline.db.tables import AuditEvent, PurchaseCheck


def _check(
    client: TestClient, world: World, uin: int, amount: Any, *, key: str = "platform", **extra: Any
) -> Any:
    return client.post(
        f"/v1/customers/{uin}/purchase-checks",
        json={"amount": amount, **extra},
        headers=world.h(key),
    )


def _decided(client: TestClient, world: World, uin: int, amount: str, **extra: Any) -> Any:
    answer = _check(client, world, uin, amount, **extra)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _allocate(client: TestClient, world: World, amount: str) -> None:
    done = client.post(
        f"/v1/customers/{world.a_customer}/allocate",
        json={"amount": amount},
        headers=world.h("a_operator"),
    )
    assert done.status_code == 200, done.text


def _consume(client: TestClient, world: World, event_id: str, amount: str) -> None:
    record = {
        "event_id": event_id,
        "customer_uin": world.a_customer,
        "product": "cvm",
        "list_amount": amount,
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    done = client.post("/v1/usage-batches", json={"records": [record]}, headers=world.h("platform"))
    assert done.status_code == 200, done.text


def _set_default(client: TestClient, world: World, policy: str, tolerance: str = "0") -> Any:
    done = client.put(
        "/v1/purchase-policy",
        json={"policy": policy, "tolerance": tolerance},
        headers=world.h("a_admin"),
    )
    assert done.status_code == 200, done.text
    return done.json()


def _kept(engine: Engine) -> int:
    with read_transaction(engine) as s:
        return int(s.scalar(select(func.count()).select_from(PurchaseCheck)) or 0)


def test_notify_only_by_default_allows_everything(
    client: TestClient, world: World, engine: Engine
) -> None:
    """The seed's behaviour: no policy chosen, a customer at 0 (or below) is never refused."""
    assert client.get("/v1/purchase-policy", headers=world.h("a_viewer")).json() == {
        "policy": "notify_only",
        "tolerance": "0.00",
    }
    body = _decided(client, world, world.a_customer, "999999.99", product="cvm")
    assert body["answer"] == "allowed" and body["allowed"] is True
    assert body["reason"] == "not_restricted" and body["policy"] == "notify_only"
    assert body["available"] == "0.00" and body["available_after"] == "-999999.99"
    assert body["customer_uin"] == world.a_customer and body["partner_id"] == world.a
    assert body["product"] == "cvm" and body["requested_by"] == "platform"
    assert body["message"].startswith("allowed:")
    assert _kept(engine) == 1


def test_block_at_limit_and_its_tolerance(client: TestClient, world: World) -> None:
    _allocate(client, world, "50.00")
    _set_default(client, world, "block_at_limit")
    at_zero = _decided(client, world, world.a_customer, "50.00")
    assert (at_zero["answer"], at_zero["reason"]) == ("allowed", "within_limit")
    assert at_zero["available_after"] == "0.00"
    over = _decided(client, world, world.a_customer, "50.01")
    assert (over["answer"], over["reason"]) == ("refused", "below_limit")
    assert "-0.01" in over["message"] and "below the limit of 0.00" in over["message"]

    # A tolerance of 10.00: available may end exactly at -10.00, not a cent below.
    _set_default(client, world, "block_at_limit", "10.00")
    exactly = _decided(client, world, world.a_customer, "60.00")
    assert (exactly["answer"], exactly["available_after"]) == ("allowed", "-10.00")
    assert exactly["tolerance"] == "10.00"
    below = _decided(client, world, world.a_customer, "60.01")
    assert (below["answer"], below["available_after"]) == ("refused", "-10.01")


def test_block_at_limit_with_available_already_negative(client: TestClient, world: World) -> None:
    _allocate(client, world, "20.00")
    _consume(client, world, "over-1", "25.00")  # available -5.00
    _set_default(client, world, "block_at_limit")
    refused = _decided(client, world, world.a_customer, "0.01")
    assert (refused["answer"], refused["available"]) == ("refused", "-5.00")
    _set_default(client, world, "block_at_limit", "5.00")
    # Exactly at the tolerance already: nothing more fits.
    assert _decided(client, world, world.a_customer, "0.01")["answer"] == "refused"
    _set_default(client, world, "block_at_limit", "6.00")
    assert _decided(client, world, world.a_customer, "1.00")["answer"] == "allowed"
    assert _decided(client, world, world.a_customer, "1.01")["answer"] == "refused"


def test_block_all_is_a_hold_whatever_the_credit(client: TestClient, world: World) -> None:
    _allocate(client, world, "1000.00")
    held = client.put(
        f"/v1/customers/{world.a_customer}/purchase-policy",
        json={"policy": "block_all"},
        headers=world.h("a_operator"),
    )
    assert held.status_code == 200, held.text
    assert held.json() == {
        "customer_uin": world.a_customer,
        "policy": "block_all",
        "tolerance": "0.00",
        "own": True,
        "own_tolerance": False,
    }
    refused = _decided(client, world, world.a_customer, "0.01")
    assert (refused["answer"], refused["reason"]) == ("refused", "on_hold")
    assert refused["allowed"] is False
    # Back on the default (notify_only): allowed again.
    back = client.put(
        f"/v1/customers/{world.a_customer}/purchase-policy",
        json={"policy": None},
        headers=world.h("a_operator"),
    )
    assert back.status_code == 200 and back.json()["own"] is False
    assert _decided(client, world, world.a_customer, "0.01")["answer"] == "allowed"


def test_customer_policy_overrides_the_default_with_its_own_tolerance(
    client: TestClient, world: World
) -> None:
    _set_default(client, world, "block_all", "3.00")
    own = client.put(
        f"/v1/customers/{world.a_customer}/purchase-policy",
        json={"policy": "block_at_limit", "tolerance": "2.50"},
        headers=world.h("a_operator"),
    ).json()
    assert (own["policy"], own["tolerance"], own["own_tolerance"]) == (
        "block_at_limit",
        "2.50",
        True,
    )
    assert _decided(client, world, world.a_customer, "2.50")["answer"] == "allowed"
    assert _decided(client, world, world.a_customer, "2.51")["answer"] == "refused"
    # Without a tolerance of its own, the partner's applies.
    client.put(
        f"/v1/customers/{world.a_customer}/purchase-policy",
        json={"policy": "block_at_limit"},
        headers=world.h("a_operator"),
    )
    shown = client.get(
        f"/v1/customers/{world.a_customer}/purchase-policy", headers=world.h("a_viewer")
    ).json()
    assert (shown["tolerance"], shown["own"], shown["own_tolerance"]) == ("3.00", True, False)
    assert _decided(client, world, world.a_customer, "3.00")["answer"] == "allowed"
    # A tolerance alone, without a policy, is refused and changes nothing.
    alone = client.put(
        f"/v1/customers/{world.a_customer}/purchase-policy",
        json={"policy": None, "tolerance": "1.00"},
        headers=world.h("a_operator"),
    )
    assert alone.status_code == 400 and alone.json()["error"]["param"] == "tolerance"


def test_who_may_check_whom(client: TestClient, world: World, engine: Engine) -> None:
    # The partner's own operator may check its customer; another partner's key finds none.
    assert _check(client, world, world.a_customer, "1.00", key="a_operator").status_code == 200
    foreign = _check(client, world, world.a_customer, "1.00", key="b_admin")
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
    missing = _check(client, world, 999_999_999_999, "1.00", key="b_admin")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == foreign.json()["error"]["message"].replace(
        str(world.a_customer), "999999999999"
    )
    # The platform reaches every partner's customer, and no customer that does not exist.
    assert _check(client, world, world.b_customer, "1.00").json()["partner_id"] == world.b
    assert _check(client, world, 999_999_999_999, "1.00").status_code == 404
    for key in ("a_viewer", "a_customer"):
        assert _check(client, world, world.a_customer, "1.00", key=key).status_code == 403
    assert _kept(engine) == 2


@pytest.mark.parametrize(
    ("amount", "status"),
    [
        ("0", 400),
        ("0.00", 400),
        ("-1.00", 422),
        ("1.001", 422),
        ("abc", 422),
        ("1e3", 422),
        ("NaN", 422),
        ("10000000000.00", 422),
        ("1000000000.01", 400),
        (12.5, 422),
        (None, 422),
    ],
)
def test_bad_amounts_are_refused_and_nothing_kept(
    client: TestClient, world: World, engine: Engine, amount: Any, status: int
) -> None:
    answer = _check(client, world, world.a_customer, amount)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["param"] == "amount" and error["message"]
    assert _kept(engine) == 0


def test_bad_bodies(client: TestClient, world: World, engine: Engine) -> None:
    long_name = _check(client, world, world.a_customer, "1.00", product="x" * 101)
    assert long_name.status_code == 422 and long_name.json()["error"]["param"] == "product"
    control = _check(client, world, world.a_customer, "1.00", product="cvm\x00")
    assert control.status_code == 400 and control.json()["error"]["param"] == "product"
    unknown = _check(client, world, world.a_customer, "1.00", bogus=1)
    assert unknown.status_code == 422 and unknown.json()["error"]["param"] == "bogus"
    bad_policy = client.put(
        "/v1/purchase-policy", json={"policy": "block_some"}, headers=world.h("a_admin")
    )
    assert bad_policy.status_code == 422
    bad_tolerance = client.put(
        "/v1/purchase-policy",
        json={"policy": "block_at_limit", "tolerance": "-1.00"},
        headers=world.h("a_admin"),
    )
    assert bad_tolerance.status_code == 422
    assert client.get("/v1/purchase-policy", headers=world.h("a_viewer")).json()["policy"] == (
        "notify_only"
    )
    assert _kept(engine) == 0


def test_the_decision_log(client: TestClient, world: World) -> None:
    _allocate(client, world, "10.00")
    _set_default(client, world, "block_at_limit")
    made = [
        _decided(client, world, world.a_customer, amount, product="cvm")
        for amount in ("5.00", "20.00", "10.00")
    ]
    _decided(client, world, world.b_customer, "1.00")
    listed = client.get("/v1/purchase-checks", headers=world.h("a_viewer")).json()
    assert [d["id"] for d in listed["data"]] == [d["id"] for d in reversed(made)]
    assert listed["data"][0] == made[-1]
    assert listed["has_more"] is False and listed["next_before"] is None
    refused = client.get(
        "/v1/purchase-checks", params={"answer": "refused"}, headers=world.h("a_viewer")
    ).json()["data"]
    assert [d["amount"] for d in refused] == ["20.00"]
    first = client.get(
        "/v1/purchase-checks", params={"limit": 2}, headers=world.h("a_viewer")
    ).json()
    assert first["has_more"] is True
    rest = client.get(
        "/v1/purchase-checks",
        params={"limit": 2, "before": first["next_before"]},
        headers=world.h("a_viewer"),
    ).json()
    assert [d["amount"] for d in rest["data"]] == ["5.00"]
    # B sees only its own; the platform sees all, and may ask for one customer.
    theirs = client.get("/v1/purchase-checks", headers=world.h("b_admin")).json()["data"]
    assert [d["customer_uin"] for d in theirs] == [world.b_customer]
    everyone = client.get("/v1/purchase-checks", headers=world.h("platform")).json()["data"]
    assert len(everyone) == 4
    one = client.get(
        "/v1/purchase-checks",
        params={"customer_uin": world.b_customer},
        headers=world.h("platform"),
    ).json()["data"]
    assert len(one) == 1
    assert client.get("/v1/purchase-checks", headers=world.h("a_customer")).status_code == 403


def test_idempotent_check_keeps_one_decision(
    client: TestClient, world: World, engine: Engine
) -> None:
    headers = world.h("platform", **{"Idempotency-Key": "order-77"})
    url = f"/v1/customers/{world.a_customer}/purchase-checks"
    first = client.post(url, json={"amount": "3.00"}, headers=headers)
    again = client.post(url, json={"amount": "3.00"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    other = client.post(url, json={"amount": "4.00"}, headers=headers)
    assert other.status_code == 409
    assert _kept(engine) == 1


def test_policies_and_checks_are_audited(client: TestClient, world: World, engine: Engine) -> None:
    _set_default(client, world, "block_at_limit", "1.00")
    _set_default(client, world, "block_all", "1.00")
    client.put(
        f"/v1/customers/{world.a_customer}/purchase-policy",
        json={"policy": "notify_only"},
        headers=world.h("a_operator"),
    )
    _decided(client, world, world.a_customer, "2.00")
    with read_transaction(engine) as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    by_action = {e.action: e for e in events}
    default = by_action["PUT /v1/purchase-policy"]
    label = f"purchase_policy_default {world.a}"
    assert default.before is not None and default.after is not None
    assert default.before[label]["policy"] == "block_at_limit"
    assert default.after[label]["policy"] == "block_all"
    assert default.after[label]["tolerance"] == "1.00"
    own = by_action["PUT /v1/customers/{uin}/purchase-policy"]
    assert own.after is not None
    assert own.after[f"purchase_policy {world.a_customer}"]["policy"] == "notify_only"
    checked = by_action["POST /v1/customers/{uin}/purchase-checks"]
    assert checked.after is not None and checked.after["answer"]["answer"] == "allowed"


def test_a_revoked_platform_key_is_refused(client: TestClient, world: World) -> None:
    assert _check(client, world, world.a_customer, "1.00").status_code == 200  # key kept
    from creditline.auth import keys
    from creditline.db import transaction

    with transaction(client.app.state.engine) as s:  # type: ignore[attr-defined]
        keys.revoke(s, world.keys["platform"][0])
    assert _check(client, world, world.a_customer, "1.00").status_code == 401


def test_a_kept_key_is_asked_what_the_endpoint_asks(
    client: TestClient, world: World, engine: Engine
) -> None:
    """A key from the key cache (PostgreSQL: the fast path's) meets the endpoint's rules:
    a viewer's or a customer's key is refused, another partner finds no customer, a key
    revoked since it was kept is refused — and none of them keeps a decision."""
    for _ in range(2):  # the first looks the key up and keeps it; the second is kept
        for key in ("a_viewer", "a_customer"):
            assert _check(client, world, world.a_customer, "1.00", key=key).status_code == 403
        assert _check(client, world, world.a_customer, "1.00", key="b_admin").status_code == 404
        assert _check(client, world, 999_999_999_999, "1.00").status_code == 404
    assert _check(client, world, world.a_customer, "1.00", key="a_operator").status_code == 200
    from creditline.auth import keys
    from creditline.db import transaction

    with transaction(engine) as s:
        keys.revoke(s, world.keys["a_operator"][0])
    revoked = _check(client, world, world.a_customer, "1.00", key="a_operator")
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "invalid_api_key"
    assert _kept(engine) == 1
    with read_transaction(engine) as s:
        checked = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "POST /v1/customers/{uin}/purchase-checks",
                AuditEvent.outcome == "ok",
            )
        )
    assert checked == 1  # (the refusals are audited as refused)

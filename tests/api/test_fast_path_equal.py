"""The allocation's fast path (api/fast.py on PostgreSQL, api/fast_sqlite.py on SQLite)
answers and stores exactly what the ordinary path does: the answer, the record, the
outbox event, the stored idempotent answer, the audit row, the customer and the pool. And
the purchase check's (api/fast.py): the answer, the decision and the audit row."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select, update
from tests.api.conftest import World
from tests.shard_scope import judge

from creditline.auth import keys
from creditline.db import transaction
from creditline.db.tables import (
    AllocationRecord,
    AuditEvent,
    Customer,
    IdempotentRequest,
    OutboxEvent,
    Partner,
    PurchaseCheck,
)
from creditline.ledger import credit, purchases
from creditline.ledger.records import Origin

#: What differs between two writes by nature: row ids, times (an event nobody takes is
#: written handed over, at its own time), the request's id and the
#: idempotency key each request was sent with.
_OWN = frozenset({"id", "created_at", "delivered_at", "at", "request_id", "idempotency_key", "key"})


def _same(value: Any, own: frozenset[str] = _OWN) -> Any:
    """``value`` without what differs by nature (``own``, by default :data:`_OWN`), at
    every depth."""
    if isinstance(value, dict):
        return {k: _same(v, own) for k, v in value.items() if k not in own}
    if isinstance(value, list):
        return [_same(v, own) for v in value]
    return value


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in inspect(obj).mapper.column_attrs}


def _stored(engine: Engine, world: World, key: str) -> dict[str, Any]:
    """Everything the allocation sent with ``key`` stored."""
    with transaction(engine) as s:
        record = s.scalars(
            select(AllocationRecord).where(AllocationRecord.idempotency_key == key)
        ).one()
        event = next(
            e
            for e in s.scalars(select(OutboxEvent).where(OutboxEvent.type.like("%allocation%")))
            if e.payload["id"] == record.id
        )
        kept = s.scalars(select(IdempotentRequest).where(IdempotentRequest.key == key)).one()
        audited = [
            a
            for a in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if (a.after or {}).get("answer", {}).get("record", {}).get("id") == record.id
        ]
        assert len(audited) == 1 and kept.response_body is not None
        customer = s.get(Customer, (world.a, world.a_customer))
        pool = s.get(Partner, world.a)
        assert customer is not None and pool is not None
        return {
            "record": _row(record),
            "event": {**_row(event), "payload": _same(event.payload)},
            "kept": {**_row(kept), "response_body": _same(json.loads(kept.response_body))},
            "audit": _same(_row(audited[0])),
            "customer": _row(customer),
            "pool": _row(pool),
        }


def test_the_fast_path_answers_and_stores_what_the_ordinary_path_does(
    client: TestClient, world: World, engine: Engine
) -> None:
    fast = client.app.state.fast_credit  # type: ignore[attr-defined]
    assert fast is not None
    secret_id, secret_key = world.keys["a_operator"]
    path = f"/v1/customers/{world.a_customer}"
    body = {"amount": "12.34", "remark": "same"}

    def post(verb: str, *, cached: bool, **headers: str) -> dict[str, Any]:
        if cached:
            keys.authenticate_kept(engine, secret_id, secret_key)
        else:
            keys.CACHE.forget(engine, secret_id)  # the ordinary path looks the key up
        before = fast.answered
        answer = client.post(f"{path}/{verb}", json=body, headers=world.h("a_operator", **headers))
        assert answer.status_code == 200, answer.text
        assert (fast.answered > before) == cached  # answered by the fast path itself
        result: dict[str, Any] = answer.json()
        return result

    ordinary = post("allocate", cached=False, **{"Idempotency-Key": "ordinary"})
    stored_ordinary = _stored(engine, world, "ordinary")
    post("withdraw", cached=False)  # the customer and the pool as they were
    answered = post("allocate", cached=True, **{"Idempotency-Key": "fast"})
    stored_fast = _stored(engine, world, "fast")
    assert _same(answered) == _same(ordinary)
    for part in ("record", "event", "kept", "audit"):
        assert _same(stored_fast[part]) == _same(stored_ordinary[part]), part
    for part in ("customer", "pool"):
        assert stored_fast[part] == stored_ordinary[part], part


# --- The purchase check (api/fast.py, PostgreSQL only: SQLite's checks take the ordinary
# path). Every policy and reason, through the platform's key (any partner's customer)
# and a partner operator's (its own): the same answer, decision and audit row.

#: The policies the cases set: the partner's default, the customer's own (None: none).
_Policies = tuple[tuple[str, int] | None, tuple[str, int | None] | None]
#: Each case: the policies, the customer's credit and consumption (cents), the prices
#: checked, and the answers and reasons they meet in turn.
CHECKS: list[tuple[str, _Policies, tuple[int, int], list[tuple[str, str, str]]]] = [
    ("no policy set", (None, None), (0, 0), [("999999.99", "allowed", "not_restricted")]),
    ("default block_all", (("block_all", 300), None), (50_00, 0), [("0.01", "refused", "on_hold")]),
    (
        "default block_at_limit",
        (("block_at_limit", 0), None),
        (50_00, 0),
        [("50.00", "allowed", "within_limit"), ("50.01", "refused", "below_limit")],
    ),
    (
        "the default's tolerance",
        (("block_at_limit", 10_00), None),
        (50_00, 0),
        [("60.00", "allowed", "within_limit"), ("60.01", "refused", "below_limit")],
    ),
    (
        "own policy, own tolerance",
        (("block_all", 3_00), ("block_at_limit", 2_50)),
        (50_00, 0),
        [("52.50", "allowed", "within_limit"), ("52.51", "refused", "below_limit")],
    ),
    (
        "own policy, the partner's tolerance",
        (("block_all", 3_00), ("block_at_limit", None)),
        (50_00, 0),
        [("53.00", "allowed", "within_limit"), ("1234567.89", "refused", "below_limit")],
    ),
    (
        "own notify_only over a default block_all",
        (("block_all", 0), ("notify_only", None)),
        (0, 0),
        [("1.00", "allowed", "not_restricted")],
    ),
    (
        "own block_all over a default notify_only",
        (None, ("block_all", 5_00)),
        (50_00, 0),
        [("0.01", "refused", "on_hold")],
    ),
    (
        "negative available",
        (("block_at_limit", 6_00), None),
        (20_00, 25_00),
        [("1.00", "allowed", "within_limit"), ("1.01", "refused", "below_limit")],
    ),
]
#: What differs between two checks by nature, beside :data:`_OWN`: the decision's time.
_CHECK_OWN = _OWN | {"decided_at"}


def _same_check(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _same_check(v) for k, v in value.items() if k not in _CHECK_OWN}
    if isinstance(value, list):
        return [_same_check(v) for v in value]
    return value


def _set_up(engine: Engine, world: World, policies: _Policies, money: tuple[int, int]) -> None:
    """The customer's policies, credit and consumption as the case says."""
    default, own = policies
    with transaction(engine) as s:
        if default is not None:
            purchases.set_partner_default(
                s, partner_id=world.a, policy=default[0], tolerance=default[1]
            )
        if own is not None:
            purchases.set_customer_policy(
                s, partner_id=world.a, uin=world.a_customer, policy=own[0], tolerance=own[1]
            )
        credit.allocate_credit(
            s,
            partner_id=world.a,
            customer_uin=world.a_customer,
            amount=money[0] or 1,
            origin=Origin(operator="setup", source="cli"),
        )
        if not money[0]:
            credit.allocate_credit(
                s,
                partner_id=world.a,
                customer_uin=world.a_customer,
                amount=-1,
                origin=Origin(operator="setup", source="cli"),
            )
        s.execute(
            update(Customer)
            .where(Customer.partner_id == world.a, Customer.uin == world.a_customer)
            .values(consumed=money[1])
        )


def _check_stored(engine: Engine, decision_id: int) -> dict[str, Any]:
    """The decision ``decision_id`` and its audit row."""
    with transaction(engine) as s:
        decision = s.scalars(select(PurchaseCheck).where(PurchaseCheck.id == decision_id)).one()
        audited = [
            a
            for a in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if (a.after or {}).get("answer", {}).get("id") == decision_id
        ]
        assert len(audited) == 1
        return {"decision": _row(decision), "audit": _row(audited[0])}


@pytest.mark.parametrize(
    ("case", "policies", "money", "checks"), CHECKS, ids=[c[0] for c in CHECKS]
)
def test_the_fast_purchase_check_answers_and_stores_what_the_ordinary_path_does(
    client: TestClient,
    world: World,
    engine: Engine,
    case: str,
    policies: _Policies,
    money: tuple[int, int],
    checks: list[tuple[str, str, str]],
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's purchase checks take the ordinary path only")
    fast = client.app.state.fast_credit  # type: ignore[attr-defined]
    _set_up(engine, world, policies, money)
    path = f"/v1/customers/{world.a_customer}/purchase-checks"

    def post(key: str, price: str, *, cached: bool) -> tuple[str, dict[str, Any]]:
        secret_id, secret_key = world.keys[key]
        if cached:
            keys.authenticate_kept(engine, secret_id, secret_key)
        else:
            keys.CACHE.forget(engine, secret_id)  # the ordinary path looks the key up
        before = fast.answered
        answer = client.post(path, json={"amount": price, "product": "cvm"}, headers=world.h(key))
        assert answer.status_code == 200, answer.text
        assert (fast.answered > before) == cached  # answered by the fast path itself
        return answer.text, answer.json()

    for key in ("platform", "a_operator"):
        for price, verdict, reason in checks:
            ordinary_text, ordinary = post(key, price, cached=False)
            fast_text, answered = post(key, price, cached=True)
            assert (answered["answer"], answered["reason"]) == (verdict, reason), case
            assert _same_check(answered) == _same_check(ordinary)
            # The same fields in the same order, the time written the same way.
            assert list(json.loads(fast_text)) == list(json.loads(ordinary_text))
            assert answered["decided_at"].endswith("Z")
            stored_ordinary = _check_stored(engine, ordinary["id"])
            stored_fast = _check_stored(engine, answered["id"])
            for part in ("decision", "audit"):
                assert _same_check(stored_fast[part]) == _same_check(stored_ordinary[part]), part
            assert stored_fast["audit"]["after"]["answer"] == answered


def test_a_partners_fast_check_stays_on_its_shard(client: TestClient, engine: Engine) -> None:
    """The partner's check is one shard's statement; the platform's names the customer by
    its UIN alone (allowed in tests/shard_scope.py, as the ordinary path's look-up is)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's statement")
    fast = client.app.state.fast_credit  # type: ignore[attr-defined]
    assert judge(fast.checks[True].compiled.sql).problems == ()
    assert judge(fast.checks[False].compiled.sql).unpinned


@pytest.mark.parametrize("verb", ["allocate", "purchase-checks"])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json; charset=utf-8"])
def test_a_body_not_sent_as_json_meets_what_the_ordinary_path_answers(
    client: TestClient, world: World, engine: Engine, verb: str, content_type: str | None
) -> None:
    """FastAPI reads a body as JSON only when it is sent as JSON; the fast paths read it
    the same way (a key kept or not, the same status)."""
    key = "a_operator"
    secret_id, secret_key = world.keys[key]
    statuses = []
    for cached in (False, True):
        if cached:
            keys.authenticate_kept(engine, secret_id, secret_key)
        else:
            keys.CACHE.forget(engine, secret_id)
        headers = world.h(key)
        if content_type is not None:
            headers["content-type"] = content_type
        answer = client.post(
            f"/v1/customers/{world.a_customer}/{verb}",
            content=json.dumps({"amount": "1.00"}).encode(),
            headers=headers,
        )
        statuses.append(answer.status_code)
    sent_as_json = content_type is not None and content_type.startswith("application/json")
    assert statuses == ([200, 200] if sent_as_json else [422, 422])


@pytest.mark.parametrize("verb", ["allocate", "purchase-checks"])
def test_a_key_whose_name_the_audit_log_hides_is_answered_by_the_ordinary_path(
    client: TestClient, world: World, engine: Engine, verb: str
) -> None:
    """The answer names the key (the record's operator, the decision's requester); a name
    the audit log hides (a webhook secret's form) is hidden there by the ordinary path."""
    with transaction(engine) as s:
        made = keys.create(
            s, principal="partner", partner_id=world.a, role="operator", name="whsec_pipeline"
        )
    assert made.secret_key is not None
    fast = client.app.state.fast_credit  # type: ignore[attr-defined]
    # The first request looks the key up and leases its rate limit; the second would be
    # the fast path's.
    for _ in range(2):
        before = fast.answered if fast is not None else 0
        answer = client.post(
            f"/v1/customers/{world.a_customer}/{verb}",
            json={"amount": "1.00"},
            headers={"Authorization": f"Bearer {made.secret_id}:{made.secret_key}"},
        )
        assert answer.status_code == 200, answer.text
        assert fast is None or fast.answered == before
        with transaction(engine) as s:
            kept = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert kept.after is not None and "whsec_pipeline" not in json.dumps(kept.after)

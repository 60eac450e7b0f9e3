"""The allocation's fast path (api/fast.py on PostgreSQL, api/fast_sqlite.py on SQLite)
answers and stores exactly what the ordinary path does: the answer, the record, the
outbox event, the stored idempotent answer, the audit row, the customer and the pool."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select
from tests.api.conftest import World

from creditline.auth import keys
from creditline.db import transaction
from creditline.db.tables import (
    AllocationRecord,
    AuditEvent,
    Customer,
    IdempotentRequest,
    OutboxEvent,
    Partner,
)

#: What differs between two writes by nature: row ids, times (an event nobody takes is
#: written handed over, at its own time), the request's id and the
#: idempotency key each request was sent with.
_OWN = frozenset({"id", "created_at", "delivered_at", "at", "request_id", "idempotency_key", "key"})


def _same(value: Any) -> Any:
    """``value`` without what differs by nature (see :data:`_OWN`), at every depth."""
    if isinstance(value, dict):
        return {k: _same(v) for k, v in value.items() if k not in _OWN}
    if isinstance(value, list):
        return [_same(v) for v in value]
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

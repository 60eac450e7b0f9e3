"""Allocations in flight together go in one statement (api/fast.py's queue, PostgreSQL's
:func:`creditline.fast_write.batch_statement`), and leave exactly what each one's own
statement leaves: the answers, records, outbox events, stored answers or claimed
signatures, audit rows, customers and pools, for each of the statement's forms. An
allocation the batch refuses at first sight changes nothing and is the ordinary path's; a
batch undone after the pool gave runs each allocation alone. Purchase checks made together
keep the decisions and audit rows, and answer, what each check alone does."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.api import test_fast_path_equal as equal
from tests.api.conftest import World

from creditline import audit
from creditline.api import fast
from creditline.auth import idempotency, keys, signatures
from creditline.db import transaction
from creditline.db.tables import (
    AllocationRecord,
    AuditEvent,
    Customer,
    IdempotentRequest,
    OutboxEvent,
    Partner,
    PurchaseCheck,
    Tc3Signature,
)
from creditline.ledger import accounts, purchases
from creditline.ledger.records import Origin
from creditline.ledger.verify import verify

CHECKS_FORM = fast.CHECKS
FORMS: list[fast.Form] = [(None, "rest"), ("idempotency", "rest"), ("signature", "tencent")]
#: What differs between two writes by nature: ids, times, the request's id, the
#: idempotency key and the signature each was sent with, a check's time.
_OWN = frozenset(
    {
        "id",
        "created_at",
        "delivered_at",
        "at",
        "request_id",
        "idempotency_key",
        "key",
        "signature_hash",
        "decided_at",
    }
)


def _same(value: Any) -> Any:
    """``value`` without what differs by nature (see :data:`_OWN`), at every depth."""
    return equal._same(value, _OWN)


_row = equal._row


@pytest.fixture
def client(engine: Engine, client: TestClient) -> Iterator[TestClient]:
    if engine.dialect.name != "postgresql":
        pytest.skip("batches are PostgreSQL's (SQLite's writer has one connection)")
    yield client


def _targets(engine: Engine, world: World) -> list[tuple[keys.ApiKey, int, int]]:
    """Two allocations' key, partner and customer: reseller A's and reseller B's."""
    found = []
    for name, partner, uin in (
        ("a_admin", world.a, world.a_customer),
        ("b_admin", world.b, world.b_customer),
    ):
        key, _ = keys.authenticate_kept(engine, *world.keys[name])
        found.append((key, partner, uin))
    return found


def _write(key: keys.ApiKey, partner: int, uin: int, form: fast.Form, amount: int) -> fast.Write:
    """An allocation as the REST or the Tencent fast path asks for it."""
    claims, shape = form
    tag = uuid.uuid4().hex
    now = datetime.now(UTC)
    claim = None
    if claims == "idempotency":
        claim = idempotency.claimed(
            api_key_id=key.id, partner_id=partner, key=tag, fingerprint="the same request"
        )
    elif claims == "signature":
        claim = signatures.claim_params(
            secret_id=key.secret_id,
            signature=tag,
            expires_at=datetime(2030, 1, 1, tzinfo=UTC),
            now=now - timedelta(days=1),
        )
    actor = audit.Actor(
        source="api" if shape == "rest" else "tc3",
        principal=f"api-key:{key.secret_id} ({key.name})",
        partner_id=partner,
        source_ip="127.0.0.1",
        request_id=tag,
    )
    base = audit.statement_row(actor, action="allocate", object=f"/v1/customers/{uin}/allocate")
    return fast.Write(
        key_id=key.id,
        partner_id=partner,
        uin=uin,
        amount=amount,
        origin=Origin(
            operator=key.name,
            source="api" if shape == "rest" else "tc3",
            remark="batched",
            idempotency_key=tag if claims == "idempotency" else None,
        ),
        claims=claims,
        claim=claim,
        request={"amount": "1.00", "remark": "batched"},
        audit=base,
        answer=lambda change: "",
        shape=shape,
    )


_NEW = (AllocationRecord, OutboxEvent, AuditEvent, IdempotentRequest)


def _last_ids(engine: Engine) -> dict[type, int]:
    with transaction(engine) as s:
        return {t: s.scalar(select(func.coalesce(func.max(t.id), 0))) for t in _NEW}


def _written(engine: Engine, since: dict[type, int]) -> dict[str, Any]:
    """What was written after ``since`` (each table's new rows, by partner), and the
    customers and pools as they are."""
    with transaction(engine) as s:
        found: dict[str, Any] = {}
        for table in _NEW:
            rows = [_row(r) for r in s.scalars(select(table).where(table.id > since[table]))]
            for row in rows:
                if isinstance(row.get("response_body"), str):  # a stored answer's JSON
                    row["response_body"] = json.loads(row["response_body"])
            found[table.__tablename__] = sorted(
                (_same(row) for row in rows), key=lambda r: repr(sorted(r.items()))
            )
        found["signatures"] = sorted(
            str(r.secret_id) for r in s.scalars(select(Tc3Signature)).all()
        )
        found["customers"] = [_row(c) for c in s.scalars(select(Customer).order_by(Customer.uin))]
        found["pools"] = [_row(p) for p in s.scalars(select(Partner).order_by(Partner.id))]
        return found


@pytest.mark.parametrize("form", FORMS, ids=lambda form: "-".join(map(str, form)))
def test_a_batch_writes_what_each_allocation_alone_writes(
    client: TestClient, world: World, engine: Engine, form: fast.Form
) -> None:
    writer: fast.FastCredit = client.app.state.fast_credit  # type: ignore[attr-defined]
    targets = _targets(engine, world)
    since = _last_ids(engine)
    alone = [
        client.portal.call(writer.write_one, *writer.prepared(_write(*target, form, 1_23)))  # type: ignore[union-attr]
        for target in targets
    ]
    by_one = _written(engine, since)
    # The customers and the pools as they were, the signatures forgotten.
    for target in targets:
        assert client.portal.call(  # type: ignore[union-attr]
            writer.write_one, *writer.prepared(_write(*target, (None, "rest"), -1_23))
        )
    with transaction(engine) as s:
        s.query(Tc3Signature).delete()
    since = _last_ids(engine)
    batches = writer.batches
    asked = [writer.prepared(_write(*target, form, 1_23)) for target in targets]
    together = client.portal.call(  # type: ignore[union-attr]
        writer.write_many, form, [params for _, params in asked]
    )
    assert writer.batches == batches + 1  # one statement wrote both
    assert None not in alone and None not in together
    assert [_same_answer(a) for a in together] == [_same_answer(a) for a in alone]
    assert _written(engine, since) == by_one
    with transaction(engine) as s:
        assert verify(s) == []


def _same_answer(answer: str | None) -> Any:
    return _same(json.loads(answer or "null"))


def test_what_a_batch_refuses_at_first_sight_changes_nothing(
    client: TestClient, world: World, engine: Engine
) -> None:
    writer: fast.FastCredit = client.app.state.fast_credit  # type: ignore[attr-defined]
    (a_key, a, a_uin), (b_key, b, b_uin) = _targets(engine, world)
    before = _written(engine, _last_ids(engine))
    with transaction(engine) as s:
        b_records = s.scalar(select(func.count()).where(AllocationRecord.partner_id == b))
    form: fast.Form = ("idempotency", "rest")
    # B's customer has 50.00: a withdrawal of 60.00 is refused by the customer's guard.
    asked = [
        writer.prepared(_write(a_key, a, a_uin, form, 5_00))[1],
        writer.prepared(_write(b_key, b, b_uin, form, -60_00))[1],
    ]
    answers = client.portal.call(writer.write_many, form, asked)  # type: ignore[union-attr]
    assert answers[0] is not None and answers[1] is None
    after = _written(engine, _last_ids(engine))
    b_before = next(c for c in before["customers"] if c["uin"] == b_uin)
    b_after = next(c for c in after["customers"] if c["uin"] == b_uin)
    assert b_after == b_before
    assert [p for p in after["pools"] if p["id"] == b] == [
        p for p in before["pools"] if p["id"] == b
    ]
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).where(AllocationRecord.partner_id == b)) == b_records
        assert verify(s) == []


def test_a_batch_undone_after_the_pool_gave_runs_each_alone(
    client: TestClient, world: World, engine: Engine
) -> None:
    writer: fast.FastCredit = client.app.state.fast_credit  # type: ignore[attr-defined]
    (a_key, a, a_uin), (b_key, b, b_uin) = _targets(engine, world)
    form: fast.Form = ("signature", "tencent")
    first = writer.prepared(_write(a_key, a, a_uin, form, 1_00))[1]
    second = writer.prepared(_write(b_key, b, b_uin, form, 1_00))[1]
    # One signature claimed twice in one statement: the second claim finds the first and
    # takes nothing, after both pools gave. The batch is undone whole; alone, the first
    # is written and the second refused (its signature used): the ordinary path's.
    second["sig_hash"] = first["sig_hash"]
    batches = writer.batches
    with transaction(engine) as s:
        records = s.scalar(select(func.count()).select_from(AllocationRecord))
    answers = client.portal.call(writer.write_many, form, [first, second])  # type: ignore[union-attr]
    assert writer.batches == batches  # no batch written
    assert answers[0] is not None and answers[1] is None
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(AllocationRecord)) == records + 1
        assert s.scalar(select(func.count()).select_from(Tc3Signature)) == 1
        assert verify(s) == []


def test_allocations_in_flight_together_share_statements(
    client: TestClient, world: World, engine: Engine
) -> None:
    """Through the queue: allocations of two partners asked at once, more than one each,
    are written by fewer statements than allocations, each answered."""
    writer: fast.FastCredit = client.app.state.fast_credit  # type: ignore[attr-defined]
    targets = _targets(engine, world)
    form: fast.Form = ("idempotency", "rest")
    statements = writer.statements
    writes = [_write(*targets[n % 2], form, 1_00) for n in range(8)]

    async def all_at_once() -> list[str | None]:
        return list(await asyncio.gather(*(writer.write(w) for w in writes)))

    answers = client.portal.call(all_at_once)  # type: ignore[union-attr]
    assert None not in answers
    assert writer.statements - statements < len(writes)
    with transaction(engine) as s:
        assert verify(s) == []


@pytest.mark.parametrize("scoped", [False, True], ids=["platform", "partner"])
def test_checks_together_keep_what_each_check_alone_keeps(
    client: TestClient, world: World, engine: Engine, scoped: bool
) -> None:
    writer: fast.FastCredit = client.app.state.fast_credit  # type: ignore[attr-defined]
    # A partner's key checks its own customers; the platform's, any partner's.
    key, _ = keys.authenticate_kept(engine, *world.keys["a_admin" if scoped else "platform"])
    with transaction(engine) as s:
        other = accounts.create_customer(s, partner_id=world.a, name="Another Ltd").uin
    checks = [(world.a_customer, 12_34), (other, 99_999_00)]

    def asked(uin: int, amount: int) -> tuple[fast.Form, dict[str, Any]]:
        params = purchases.check_params(
            partner_id=world.a if scoped else None,
            customer_uin=uin,
            amount=amount,
            product="cvm",
            requested_by=key.name,
            decided_at=datetime.now(UTC),
        )
        actor = audit.Actor(
            source="api",
            principal=f"api-key:{key.secret_id} ({key.name})",
            partner_id=key.partner_id,
            source_ip="127.0.0.1",
            request_id=uuid.uuid4().hex,
        )
        base = audit.statement_row(
            actor, action="check", object=f"/v1/customers/{uin}/purchase-checks"
        )
        return writer.prepared_check(
            fast.Check(key_id=key.id, params=params, request={"amount": amount}, audit=base)
        )

    tables = (PurchaseCheck, AuditEvent)

    def last() -> dict[type, int]:
        with transaction(engine) as s:
            return {t: s.scalar(select(func.coalesce(func.max(t.id), 0))) for t in tables}

    def kept(since: dict[type, int]) -> dict[str, Any]:
        with transaction(engine) as s:
            return {
                t.__tablename__: [
                    _same(_row(r)) for r in s.scalars(select(t).where(t.id > since[t]))
                ]
                for t in tables
            }

    since = last()
    alone = [client.portal.call(writer.write_one, *asked(*c)) for c in checks]  # type: ignore[union-attr]
    by_one = kept(since)
    since = last()
    batches = writer.batches
    form = CHECKS_FORM[scoped]
    together = client.portal.call(  # type: ignore[union-attr]
        writer.write_many, form, [asked(*c)[1] for c in checks]
    )
    assert writer.batches == batches + 1  # one statement kept both
    assert None not in alone and None not in together
    assert [_same_answer(a) for a in together] == [_same_answer(a) for a in alone]
    assert sorted(map(repr, kept(since).items())) == sorted(map(repr, by_one.items()))


def test_the_next_statement_starts_before_the_answers_are_handed_out() -> None:
    """The queue sends the writes that waited as soon as a statement's rows are back,
    before that statement's answers resume their requests (each of which then sends its
    answer): no statement would be in flight meanwhile."""
    events: list[str] = []

    class Writer:
        async def write_one(self, form: fast.Form, params: dict[str, int]) -> str:
            events.append(f"statement {params['n']}")
            await asyncio.sleep(0.01)
            return str(params["n"])

        async def write_many(self, form: fast.Form, items: list[dict[str, int]]) -> list[str]:
            events.append("statement " + ",".join(str(item["n"]) for item in items))
            await asyncio.sleep(0.01)
            return [str(item["n"]) for item in items]

    async def main() -> None:
        queue = fast._Queue(Writer(), limit=1, largest=16)  # type: ignore[arg-type]

        async def one(n: int) -> None:
            events.append(f"answered {await queue.write(('idempotency', 'rest'), n, {'n': n})}")

        first = asyncio.ensure_future(one(0))
        await asyncio.sleep(0)  # the first statement is in flight: the next two wait
        await asyncio.gather(first, one(1), one(2))

    asyncio.run(main())
    assert events == ["statement 0", "statement 1,2", "answered 0", "answered 1", "answered 2"]

"""One REST allocation's statements, pinned as a count: the benchmark's allocation rate is
bounded by round trips to the database (docs/benchmarks.md, run 5), so a change that adds
one shows here. A count, never a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from tests.api.conftest import World

from creditline.db import transaction
from creditline.db.tables import AllocationRecord, AuditEvent, Customer, Partner

#: Statements sent for one allocation with a fresh Idempotency-Key (COMMITs counted too).
#: Authentication: BEGIN (SQLite only: BEGIN IMMEDIATE; psycopg begins implicitly), key,
#: COMMIT. The write: BEGIN (SQLite), the idempotency claim, then on PostgreSQL one
#: statement for the pool's and the customer's guarded UPDATEs and the record's INSERT
#: (on SQLite those three), the outbox INSERT, the idempotency answer UPDATE, the audit
#: INSERT (from what the UPDATEs returned: no read after), COMMIT.
EXPECTED = {"sqlite": 12, "postgresql": 8}


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def _on_execute(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()))

    def _on_commit(_connection: Any) -> None:
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", _on_execute)
    event.listen(engine, "commit", _on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", _on_execute)
        event.remove(engine, "commit", _on_commit)


def test_one_allocation_makes_a_pinned_number_of_statements(
    client: TestClient, world: World, engine: Engine
) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    warm = world.h("a_operator", **{"Idempotency-Key": "warm-up"})
    assert client.post(path, json={"amount": "1.00"}, headers=warm).status_code == 200
    headers = world.h("a_operator", **{"Idempotency-Key": "counted"})
    with _statements(engine) as seen:
        answer = client.post(path, json={"amount": "2.00"}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["customer"]["total_credit"] == "3.00"
    listing = "\n".join(s[:90] + " ... " + s[-40:] for s in seen)
    assert len(seen) == EXPECTED[engine.dialect.name], listing
    # The customer and the pool are read neither before their UPDATEs (scope, audit) nor
    # after them (answer, audit): the UPDATEs' RETURNING is all of it.
    assert not [s for s in seen if s.startswith(("SELECT customers.", "SELECT partners."))]


def test_a_replay_reads_its_stored_answer_and_changes_nothing(
    client: TestClient, world: World, engine: Engine
) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    headers = world.h("a_operator", **{"Idempotency-Key": "again"})
    first = client.post(path, json={"amount": "2.00"}, headers=headers)
    before = _state(engine, world)
    with _statements(engine) as seen:
        second = client.post(path, json={"amount": "2.00"}, headers=headers)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert _state(engine, world) == before
    assert not [s for s in seen if s.startswith(("UPDATE", "DELETE"))], seen


def _state(engine: Engine, world: World) -> tuple[Any, ...]:
    with transaction(engine) as s:
        return (
            s.scalar(select(Customer.total_credit).where(Customer.uin == world.a_customer)),
            s.scalar(select(Partner.pool_allocated).where(Partner.id == world.a)),
            s.scalar(select(func.count()).select_from(AllocationRecord)),
            s.scalar(select(func.count()).select_from(AuditEvent)),
        )


def test_the_audits_derived_before_is_the_state_the_previous_write_left(
    client: TestClient, world: World, engine: Engine
) -> None:
    # "before" and "after" both come from the UPDATEs' RETURNING: two writes in a row must
    # agree on every field of the customer and the pool between them.
    path = f"/v1/customers/{world.a_customer}/allocate"
    for amount in ("2.00", "3.00"):
        answer = client.post(path, json={"amount": amount}, headers=world.h("a_operator"))
        assert answer.status_code == 200, answer.text
    with transaction(engine) as s:
        first, second = s.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "POST /v1/customers/{uin}/allocate")
            .order_by(AuditEvent.id)
        ).scalars()
        for label in (f"customer {world.a_customer}", f"pool {world.a}"):
            assert second.before[label] == first.after[label], label
        assert second.after[f"customer {world.a_customer}"]["total_credit"] == "5.00"

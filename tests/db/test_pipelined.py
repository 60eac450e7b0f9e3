"""A pipelined transaction (db/engine.py) hands its connection back to the pool only out
of pipeline mode and with its transaction ended, whatever happened in it, and a refusal
raised in it stays the answer even when a statement that fails is still queued.

On PostgreSQL statements without rows are queued (psycopg's pipeline mode) and sent with
the next one that has rows, or at the end; on SQLite pipelined() is a plain transaction,
so these are the same outcomes without the queue.

The connection used to go back to the pool from the session's COMMIT or ROLLBACK while
still in pipeline mode, and left it only afterwards: under load another request took it
meanwhile, and one of the two failed ("connection not in pipeline mode", a 503; "the
connection is closed", a 500). Here the pool holds one connection, so each transaction
takes the one the last gave back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.exc import IntegrityError

from creditline.config import Settings
from creditline.db import make_engine, pipelined, transaction
from creditline.db.tables import Partner
from creditline.errors import InsufficientCredit
from creditline.ledger import accounts, credit, pools
from creditline.ledger.records import Origin

ORIGIN = Origin(operator="test", source="cli")


@pytest.fixture
def one_connection(database_url: str) -> Iterator[Engine]:
    """An engine whose pool holds one connection (reused by every transaction in turn)."""
    engine = make_engine(
        database_url, Settings(database_url=database_url, pool_size=1, pool_overflow=0)
    )
    yield engine
    engine.dispose()


@pytest.fixture
def checked_in(one_connection: Engine) -> list[str]:
    """The state of each connection given back to the pool, as it arrives there."""
    states: list[str] = []

    @event.listens_for(one_connection, "checkin")
    def _checkin(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, psycopg.Connection):
            pipeline = pq.PipelineStatus(dbapi_connection.pgconn.pipeline_status).name
            status = dbapi_connection.info.transaction_status.name
            states.append(f"pipeline {pipeline}, transaction {status}")
        elif dbapi_connection is not None:  # SQLite
            states.append(f"in transaction: {dbapi_connection.in_transaction}")

    return states


def _settled(states: list[str]) -> bool:
    return bool(states) and all(
        state in ("pipeline OFF, transaction IDLE", "in transaction: False") for state in states
    )


@pytest.fixture
def customer(one_connection: Engine) -> tuple[int, int]:
    """A reseller with a pool and a customer holding 1.00 of credit: (partner, UIN)."""
    with transaction(one_connection) as s:
        partner = accounts.create_partner(s, name="Pipe Cloud", kind="reseller")
        uin = accounts.create_customer(s, partner_id=partner.id, name="Pipe Ltd").uin
        pools.grant(s, partner_id=partner.id, amount=10_000, origin=ORIGIN)
        credit.allocate_credit(
            s, partner_id=partner.id, customer_uin=uin, amount=100, origin=ORIGIN
        )
    return partner.id, uin


def _pool_allocated(engine: Engine, partner_id: int) -> int:
    with transaction(engine) as s:
        allocated = s.scalar(select(Partner.pool_allocated).where(Partner.id == partner_id))
    assert allocated is not None
    return allocated


def _failing_write(session: Any, partner_id: int) -> None:
    # No rows to return (on PostgreSQL only queued), refused by the CHECK constraint
    # pool_allocated >= 0 when it runs.
    session.execute(
        update(Partner)
        .where(Partner.id == partner_id)
        .values(pool_allocated=-1)
        .execution_options(synchronize_session=False)
    )


def _queue_failing_write(session: Any, partner_id: int) -> None:
    # Queued on PostgreSQL; on SQLite it would fail at once, and nothing is queued there.
    if session.get_bind().dialect.name == "postgresql":
        _failing_write(session, partner_id)


@pytest.mark.parametrize("outcome", ["committed", "refused", "failed"])
def test_the_connection_goes_back_to_the_pool_out_of_pipeline_mode(
    one_connection: Engine, checked_in: list[str], customer: tuple[int, int], outcome: str
) -> None:
    partner_id, uin = customer
    before = _pool_allocated(one_connection, partner_id)
    checked_in.clear()
    with suppress(InsufficientCredit, IntegrityError), pipelined(one_connection) as s:
        if outcome == "failed":
            _failing_write(s, partner_id)  # surfaces at the next statement
        amount = -10_000 if outcome == "refused" else -50
        credit.allocate_credit(
            s, partner_id=partner_id, customer_uin=uin, amount=amount, origin=ORIGIN
        )
        assert outcome == "committed"
    assert _settled(checked_in), checked_in
    expected = before - 50 if outcome == "committed" else before
    assert _pool_allocated(one_connection, partner_id) == expected


def test_a_refusal_stays_the_answer_whatever_is_still_queued(
    one_connection: Engine, checked_in: list[str], customer: tuple[int, int]
) -> None:
    # The rollback used to send what was still queued first (psycopg syncs the pipeline
    # before its ROLLBACK): the queued statement's error replaced the refusal, and a
    # refusal (409) was answered as that error (a 500, or a 503 for an OperationalError
    # such as a lock timeout).
    partner_id, _uin = customer
    before = _pool_allocated(one_connection, partner_id)
    checked_in.clear()
    with pytest.raises(InsufficientCredit), pipelined(one_connection) as s:
        s.execute(select(Partner.id).where(Partner.id == partner_id)).one()
        _queue_failing_write(s, partner_id)
        raise InsufficientCredit("refused")
    assert _settled(checked_in), checked_in
    assert _pool_allocated(one_connection, partner_id) == before


def test_a_refusal_stays_the_answer_when_a_queued_write_waits_past_its_lock_timeout(
    one_connection: Engine, database_url: str, customer: tuple[int, int]
) -> None:
    # The symptom as reported: a refused request answered 503 (an OperationalError, here
    # a lock timeout: SQLSTATE 55P03) by the ROLLBACK sending a queued write that waited
    # for a row another transaction held. SQLite takes its write lock at BEGIN instead.
    if not database_url.startswith("postgresql"):
        pytest.skip("a row lock held by another transaction (SQLite locks the whole file)")
    partner_id, _uin = customer
    holder = make_engine(database_url)
    try:
        with holder.begin() as other:
            other.execute(
                select(Partner.id).where(Partner.id == partner_id).with_for_update()
            ).all()
            with pytest.raises(InsufficientCredit), pipelined(one_connection) as s:
                s.execute(text("SET LOCAL lock_timeout = '1ms'"))
                s.execute(
                    update(Partner)
                    .where(Partner.id == partner_id)
                    .values(pool_allocated=Partner.pool_allocated + 1)
                    .execution_options(synchronize_session=False)
                )
                raise InsufficientCredit("refused")
    finally:
        holder.dispose()


def test_a_failed_commit_is_rolled_back_and_the_connection_serves_the_next(
    one_connection: Engine, checked_in: list[str], customer: tuple[int, int]
) -> None:
    # A queued statement's error surfaces at the COMMIT (on SQLite: at the statement).
    partner_id, uin = customer
    before = _pool_allocated(one_connection, partner_id)
    checked_in.clear()
    with pytest.raises(IntegrityError), pipelined(one_connection) as s:
        _failing_write(s, partner_id)
    assert _settled(checked_in), checked_in
    with pipelined(one_connection) as s:
        credit.allocate_credit(s, partner_id=partner_id, customer_uin=uin, amount=1, origin=ORIGIN)
    assert _pool_allocated(one_connection, partner_id) == before + 1

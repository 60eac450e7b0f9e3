"""The allocation's fast path on SQLite: ``POST /v1/customers/{uin}/allocate`` and
``/withdraw`` answered on the event loop, on a raw ``sqlite3`` connection of its own.

SQLite runs in-process and a statement takes microseconds, so the cost of the ordinary
path is its machinery — a thread hand-off, the ORM session, FastAPI's dependencies —
not the database. Here the same statements as the ordinary path (each built once by the
module that owns it, compiled once here: the idempotency claim, the pool's and the
customer's guarded UPDATEs, the record's INSERT, the outbox event, the alarm's statements
when one fires, the stored answer, the audit row) run one after the other on the event
loop between ``BEGIN IMMEDIATE`` and ``COMMIT``, with nothing awaited in between.

The write takes its turn in the file's write queue (db/writers.py) like every other
writer of the process: it waits in line without blocking the loop, and the ordinary
path's writers (other endpoints, in threads) keep their places. The request parsing, the
key cache and the answer are :class:`creditline.api.fast.FastPath`'s, shared with
PostgreSQL. Whatever is not the plain case — a refusal of the ledger, a key already used,
the write lock held by another process, a database error — is rolled back and handed to
the ordinary endpoint, which answers it in full.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from creditline import audit
from creditline.api.fast import Check, Write
from creditline.auth import idempotency, keys
from creditline.clock import utcnow
from creditline.db.compiled import Compiled, compile_for
from creditline.db.tables import Alarm, AllocationRecord, Customer
from creditline.db.writers import WriteQueue, queue_for
from creditline.ledger import alarms, credit, outbox, records
from creditline.ledger.records import Origin


class _NotPlain(Exception):
    """Not the plain case: rolled back, for the ordinary path."""


class FastSqliteCredit:
    """The raw connection and the compiled statements of one app's fast path on SQLite."""

    def __init__(self, app: FastAPI, engine: Engine, queue: WriteQueue, wait_seconds: float):
        self.app = app
        self.engine = engine
        self.queue = queue
        self.wait_seconds = wait_seconds
        self.database = engine.url.database or ""
        #: One connection per event loop that runs the app (one in a server process;
        #: tests may run several clients, each with its own loop, against one app).
        self.connections: dict[asyncio.AbstractEventLoop, sqlite3.Connection] = {}
        #: What the answered writes cost, for tests and benchmarks: statements run
        #: (BEGIN and COMMIT counted, as the ordinary path's are).
        self.statements = 0
        #: The writes answered here (not handed to the ordinary path).
        self.answered = 0
        # The ordinary path's statements on SQLite: the same requirements, the same SQL.
        plain = credit.Requirement(keys.LIVE_KEY, {})
        claimed = credit.Requirement(idempotency.LIVE_KEY_AND_CLAIM, {})
        self.pool_plain = compile_for(engine.dialect, credit.pool_statement(plain))
        self.pool_claimed = compile_for(engine.dialect, credit.pool_statement(claimed))
        self.customer = compile_for(engine.dialect, credit.customer_statement())
        self.record = compile_for(engine.dialect, credit.RECORD_INSERT)
        self.claim = compile_for(engine.dialect, idempotency.CLAIM_PENDING["sqlite"])
        self.store = compile_for(engine.dialect, idempotency.STORE_CLAIMED)
        self.outbox = compile_for(engine.dialect, outbox.INSERT)
        self.allocation_event = compile_for(engine.dialect, outbox.INSERT_ALLOCATION)
        self.audit = compile_for(engine.dialect, audit.INSERT)
        self.insert_alarm = compile_for(engine.dialect, alarms.INSERT_ALARM)
        self.fired = compile_for(engine.dialect, alarms.UPDATE_FIRED)
        self.fired_alarmed = compile_for(engine.dialect, alarms.UPDATE_FIRED_ALARMED)

    #: The purchase check stays on the ordinary path here: SQLite has no one statement
    #: for it (no data-modifying CTEs), and its machinery, not the file, is what it costs.
    purchase_checks = False

    async def check(self, asked: Check) -> str | None:
        """Not answered here (see :attr:`purchase_checks`): the ordinary path answers."""
        return None

    async def open(self) -> None:
        """Open the running event loop's connection (at the app's start)."""
        # Autocommit mode: the transaction is begun and ended here, explicitly. No busy
        # wait: the loop must not block; the ordinary path waits when another process
        # holds the file's write lock.
        connection = sqlite3.connect(self.database, isolation_level=None)
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=0")
        connection.execute("PRAGMA synchronous=NORMAL")
        self.connections[asyncio.get_running_loop()] = connection

    def is_open(self) -> bool:
        """Whether the running event loop has its connection (the app has started in it)."""
        return asyncio.get_running_loop() in self.connections

    async def close(self) -> None:
        """Close the running event loop's connection (at the app's end)."""
        connection = self.connections.pop(asyncio.get_running_loop(), None)
        if connection is not None:
            connection.close()

    async def write(self, asked: Write) -> str | None:
        """One allocation (negative: withdrawal) in one transaction, or None (rolled back,
        nothing changed) when it is not the plain case."""
        if asked.audited is None or asked.shape != "rest":
            return None  # a write only PostgreSQL's one statement makes
        audited = asked.audited
        connection = self.connections[asyncio.get_running_loop()]
        holder = id(connection)
        if not await self.queue.acquire_async(holder, self.wait_seconds):
            return None  # the line did not move: the ordinary path waits its own way
        counted = self.statements  # (nothing is awaited from here on)
        try:
            # From here to the COMMIT nothing is awaited: the turn is held for
            # microseconds, and no other request of this loop runs in between.
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return None  # another process holds the write lock
            try:
                text = self._write(
                    connection,
                    key_id=asked.key_id,
                    partner_id=asked.partner_id,
                    uin=asked.uin,
                    amount=asked.amount,
                    origin=asked.origin,
                    claim=asked.claim,
                    answer=asked.answer,
                    audited=audited,
                )
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            self.statements += 2
            self.answered += text is not None
            return text
        except _NotPlain:
            self.statements = counted  # rolled back: not an answered write's
            return None
        except BaseException:
            self.statements = counted
            raise
        finally:
            self.queue.release(holder)

    def _run(
        self, connection: sqlite3.Connection, statement: Compiled, values: Mapping[str, Any]
    ) -> list[Any]:
        self.statements += 1
        return connection.execute(statement.sql, statement.params(values)).fetchall()

    def _write(
        self,
        connection: sqlite3.Connection,
        *,
        key_id: int,
        partner_id: int,
        uin: int,
        amount: int,
        origin: Origin,
        claim: dict[str, Any] | None,
        answer: Callable[[credit.CreditChange], str],
        audited: Callable[[credit.CreditChange, str], dict[str, Any]],
    ) -> str:
        """The statements of one write inside the open transaction; :class:`_NotPlain`
        where the ordinary path must answer."""
        now = utcnow()
        params: dict[str, Any] = {
            "credit_partner_id": partner_id,
            "credit_customer_uin": uin,
            "credit_amount": amount,
            "require_key_id": key_id,
        }
        pool = self.pool_plain
        if claim is not None:
            self._run(connection, self.claim, claim)
            params["require_idempotency_key"] = claim["claim_key"]
            params["require_partner_id"] = partner_id
            pool = self.pool_claimed
        found = self._run(connection, pool, params)
        if not found:
            raise _NotPlain  # refused, or not confirmed (revoked, key used)
        pool_after = pool.row(found[0])
        changed = self._run(connection, self.customer, params)
        if not changed:
            raise _NotPlain  # refused by the customer's guard
        after = self.customer.row(changed[0])
        values = credit.record_values_of(
            partner_id=partner_id,
            customer_uin=uin,
            amount=amount,
            after=after,
            origin=origin,
            created_at=now,
        )
        (record_row,) = self._run(connection, self.record, credit.record_params(values))
        record = AllocationRecord(id=record_row[0], **values)
        event = outbox.event(
            partner_id=partner_id,
            type=outbox.ALLOCATION_RECORDED,
            payload=records.as_payload(record),
        )
        self._run(connection, self.allocation_event, event)
        alarm = self._alarm(connection, partner_id, after, pool_after, amount, now)
        change = credit.change_of(
            partner_id=partner_id,
            amount=amount,
            record=record,
            pool_after=pool_after,
            after=after,
            customer=Customer(**after),
            alarm=alarm,
        )
        text = answer(change)
        if claim is not None:
            stored = {
                "store_partner_id": partner_id,
                "store_api_key_id": key_id,
                "store_key": claim["claim_key"],
                "store_status_code": 200,
                "store_body": text,
            }
            self._run(connection, self.store, stored)
        self._run(connection, self.audit, audited(change, text))
        return text

    def _alarm(
        self,
        connection: sqlite3.Connection,
        partner_id: int,
        after: Mapping[str, Any],
        pool_after: Mapping[str, Any],
        amount: int,
        now: datetime,
    ) -> Alarm | None:
        """The alarm rule, as the ordinary path applies it (ledger.alarms.evaluate)."""
        customer_credit = credit.credit_of(partner_id, after)
        decision = alarms.decide(
            customer_credit, default=pool_after["thresholds"], cause=credit.kind_of(amount), now=now
        )
        if decision is None:
            return None
        alarm = None
        if decision.alarm is not None:
            (alarm_row,) = self._run(connection, self.insert_alarm, alarms.alarm_params(decision))
            alarm = Alarm(id=alarm_row[0], **decision.alarm)
            reached = outbox.event(
                partner_id=partner_id,
                type=outbox.THRESHOLD_REACHED,
                payload=alarms.threshold_payload(alarm, customer_name=after["name"]),
            )
            self._run(connection, self.outbox, reached)
        fired = self.fired if decision.alarm is None else self.fired_alarmed
        self._run(connection, fired, alarms.fired_params(customer_credit, decision))
        return alarm


def install(app: FastAPI, engine: Engine, *, busy_timeout_ms: int) -> FastSqliteCredit | None:
    """Put the fast path in front of the credit routes (SQLite files only: an in-memory
    database is the engine's own); the app's lifespan opens and closes its connection."""
    if engine.dialect.name != "sqlite":
        return None
    queue = queue_for(engine.url.database)
    if queue is None:
        return None
    return FastSqliteCredit(app, engine, queue, busy_timeout_ms / 1000)

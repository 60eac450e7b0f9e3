"""The allocation's fast path on PostgreSQL: ``POST /v1/customers/{uin}/allocate`` and
``/withdraw`` answered on the event loop, through an asyncio connection pool, in two round
trips — the idempotency claim with the ledger's one statement (the pool's and the
customer's guarded UPDATEs and the record's INSERT, which also checks that the API key is
still live), then the outbox event, the stored answer, the audit row and the COMMIT.

It runs the same statements as the ordinary path (each built once by the module that owns
it, compiled once here), with the key from the key cache, and answers exactly what the
ordinary path would. Whatever is not the plain case — no key in the cache, a body the
model refuses, a refusal of the ledger, a key already used, an alarm to raise, a database
error — is rolled back and handed to the ordinary endpoint, which answers it in full.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from sqlalchemy import CTE, Engine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditline import audit, money
from creditline.api.customers import CreditIn, _change_out
from creditline.auth import idempotency, keys
from creditline.auth.rate_limit import RateLimiter
from creditline.clock import utcnow
from creditline.db.tables import MAX_BIGINT, Alarm, AllocationRecord, Customer, loaded
from creditline.errors import CreditlineError
from creditline.ledger import alarms, credit, outbox, records
from creditline.ledger.records import Origin

log = logging.getLogger(__name__)

#: Request state: the rate limit's token is taken (by the fast path, before handing over).
RATE_TAKEN = "creditline.rate_taken"
_PATH = re.compile(r"^/v1/customers/([0-9]{1,19})/(allocate|withdraw)$")


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled once for psycopg, and its parameters' conversions."""

    sql: str
    processors: Mapping[str, Callable[[Any], Any]]
    #: The statement's own constants (its literal values), by parameter name.
    constants: Mapping[str, Any]

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        merged = {**self.constants, **values}
        return {
            name: (self.processors[name](value) if name in self.processors else value)
            for name, value in merged.items()
        }


def _compile(engine: Engine, statement: Executable) -> _Compiled:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=engine.dialect)
    assert isinstance(compiled, SQLCompiler)
    # SQLAlchemy's own conversions of each parameter (JSON values, for one).
    processors = dict(getattr(compiled, "_bind_processors", {}))
    constants = {
        name: value
        for name, value in compiled.params.items()
        if compiled.binds[name].value is not None
    }
    return _Compiled(str(compiled), processors, constants)


class FastCredit:
    """The connection pool and the compiled statements of one app's fast path."""

    def __init__(self, app: FastAPI, engine: Engine, size: int) -> None:
        self.app = app
        self.engine = engine
        self.size = size
        #: One connection pool per event loop that runs the app (one in a server process;
        #: tests may run several clients, each with its own loop, against one app).
        self.pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[AsyncConnection[Any]]] = {}
        #: What the answered writes cost, for tests and benchmarks: statements sent
        #: (COMMITs counted) and round trips (waits for the server's answers).
        self.statements = 0
        self.round_trips = 0
        # The ordinary path's statements: the same requirements, the same SQL.
        # The first round trip: one statement, the claim of the idempotency key (if any) and
        # the ledger's guarded UPDATEs and INSERT.
        plain = credit.Requirement(keys.LIVE_KEY, {})
        claimed = credit.Requirement(idempotency.LIVE_KEY_AND_CLAIMED_HERE, {})
        self.plain = _compile(engine, credit.combined_statement(plain))
        self.claimed = _compile(engine, credit.combined_statement(claimed))
        # The second: one statement writing the outbox event, the stored answer (if any) and
        # the audit row, then the COMMIT.
        self.after = {
            (event, store): _compile(engine, _after(event=event, store=store))
            for event in (True, False)
            for store in (True, False)
        }
        self.outbox = _compile(engine, outbox.INSERT)
        self.insert_alarm = _compile(engine, alarms.INSERT_ALARM)
        self.fired = _compile(engine, alarms.UPDATE_FIRED)
        self.fired_alarmed = _compile(engine, alarms.UPDATE_FIRED_ALARMED)

    async def open(self) -> None:
        """Open the running event loop's pool (at the app's start)."""
        url = self.engine.url.set(drivername="postgresql")
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            url.render_as_string(hide_password=False),
            min_size=1,
            max_size=self.size,
            open=False,
            timeout=30.0,
        )
        self.pools[asyncio.get_running_loop()] = pool
        await pool.open(wait=True, timeout=30.0)

    def is_open(self) -> bool:
        """Whether the running event loop has its pool (the app has started in it)."""
        return asyncio.get_running_loop() in self.pools

    async def close(self) -> None:
        """Close the running event loop's pool (at the app's end)."""
        pool = self.pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close(timeout=5.0)

    async def write(
        self,
        *,
        key_id: int,
        partner_id: int,
        uin: int,
        amount: int,
        origin: Origin,
        claim: dict[str, Any] | None,
        answer: Callable[[credit.CreditChange], str],
        audited: Callable[[credit.CreditChange, str], dict[str, Any]],
    ) -> str | None:
        """One allocation (negative: withdrawal) in two round trips, or None (rolled back,
        nothing changed) when it is not the plain case. ``claim``: the idempotency claim's
        parameters, whose answer is then stored; ``answer`` gives the answer's text,
        ``audited`` the audit row's parameters."""
        pool = self.pools[asyncio.get_running_loop()]
        now = utcnow()
        params = credit.combined_params(
            partner_id=partner_id,
            customer_uin=uin,
            amount=amount,
            origin=origin,
            created_at=now,
            require=None,
        )
        params["require_key_id"] = key_id
        statement = self.plain
        if claim is not None:
            params.update(claim)
            statement = self.claimed
        async with pool.connection() as connection, connection.pipeline():
            cursor = connection.cursor(row_factory=dict_row)
            await cursor.execute(statement.sql, statement.params(params))
            found = await cursor.fetchone()
            self.statements += 1
            self.round_trips += 1
            pool_after, after, record_id = credit.combined_outcome(found)
            if pool_after is None or after is None or record_id is None:
                await connection.rollback()  # refused, or not confirmed: the ordinary path
                return None
            kind = credit.kind_of(amount)
            values = credit.record_values_of(
                partner_id=partner_id,
                customer_uin=uin,
                amount=amount,
                after=after,
                origin=origin,
                created_at=now,
            )
            record = loaded(AllocationRecord, {"id": record_id, **values})
            payload = records.as_payload(record)
            event = outbox.event(
                partner_id=partner_id, type=outbox.ALLOCATION_RECORDED, payload=payload
            )
            # The alarm rule, as the ordinary path applies it (ledger.alarms.evaluate).
            customer_credit = credit.credit_of(partner_id, after)
            decision = alarms.decide(
                customer_credit, default=pool_after["thresholds"], cause=kind, now=now
            )
            alarm = None
            event_written = False
            if decision is not None:
                if decision.alarm is not None:
                    # The allocation's event first, then the alarm's (the ordinary order).
                    await cursor.execute(self.outbox.sql, self.outbox.params(event))
                    event_written = True
                    self.statements += 1
                    # An alarm fires: its id is needed, a round trip of its own.
                    raised = connection.cursor()
                    inserted = self.insert_alarm.params(alarms.alarm_params(decision))
                    await raised.execute(self.insert_alarm.sql, inserted)
                    alarm_row = await raised.fetchone()
                    assert alarm_row is not None
                    self.statements += 1
                    self.round_trips += 1
                    alarm = Alarm(id=alarm_row[0], **decision.alarm)
                    reached = outbox.event(
                        partner_id=partner_id,
                        type=outbox.THRESHOLD_REACHED,
                        payload=alarms.threshold_payload(alarm, customer_name=after["name"]),
                    )
                    await cursor.execute(self.outbox.sql, self.outbox.params(reached))
                    self.statements += 1
                fired = self.fired if decision.alarm is None else self.fired_alarmed
                await cursor.execute(
                    fired.sql, fired.params(alarms.fired_params(customer_credit, decision))
                )
                self.statements += 1
            change = credit.change_of(
                partner_id=partner_id,
                amount=amount,
                record=record,
                pool_after=pool_after,
                after=after,
                customer=loaded(Customer, after),
                alarm=alarm,
            )
            text = answer(change)
            written = audited(change, text)
            if not event_written:
                written.update(event)
            if claim is not None:
                written.update(
                    store_partner_id=partner_id,
                    store_api_key_id=key_id,
                    store_key=claim["claim_key"],
                    store_status_code=200,
                    store_body=text,
                )
            after_statement = self.after[not event_written, claim is not None]
            await cursor.execute(after_statement.sql, after_statement.params(written))
            await connection.commit()
            self.statements += 2
            self.round_trips += 1
        return text


def _after(*, event: bool, store: bool) -> Executable:
    """The allocation's outbox event (with ``event``), its stored answer (with ``store``)
    and its audit row as one statement (data-modifying CTEs), each the INSERT or UPDATE its
    module owns."""
    written: list[CTE] = []
    if event:
        written.append(outbox.INSERT.cte("outbox"))
    if store:
        written.append(idempotency.STORE_CLAIMED.cte("store"))
    return audit.INSERT.add_cte(*written)


class CreditWriter(Protocol):
    """What :class:`FastPath` writes through: :class:`FastCredit` (PostgreSQL), or
    SQLite's (api/fast_sqlite.py)."""

    app: FastAPI
    engine: Engine

    def is_open(self) -> bool: ...

    async def write(
        self,
        *,
        key_id: int,
        partner_id: int,
        uin: int,
        amount: int,
        origin: Origin,
        claim: dict[str, Any] | None,
        answer: Callable[[credit.CreditChange], str],
        audited: Callable[[credit.CreditChange, str], dict[str, Any]],
    ) -> str | None: ...


class FastPath:
    """ASGI middleware answering the plain credit writes; everything else, and every
    request it does not answer, passes through to the app."""

    def __init__(self, app: ASGIApp, *, fast: CreditWriter) -> None:
        self.app = app
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = None
        if scope["type"] == "http" and scope["method"] == "POST" and self.fast.is_open():
            matched = _PATH.match(scope["path"])
        if matched is None:
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        try:
            answer = await self._answer(scope, body, matched.group(1), matched.group(2))
        except Exception:  # the ordinary path answers it, and logs what it must
            log.debug("fast path fell back", exc_info=True)
            answer = None
        if answer is None:
            await self.app(scope, replaying(body, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _answer(self, scope: Scope, body: bytes, uin_text: str, verb: str) -> bytes | None:
        fast = self.fast
        sign = 1 if verb == "allocate" else -1
        if not fast.is_open():
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = _kept_key(fast.engine, headers.get("authorization", ""))
        if key is None or key.principal != "partner" or key.partner_id is None:
            return None
        if key.role not in ("operator", "admin"):
            return None
        try:
            uin = int(uin_text)
            asked = CreditIn.model_validate_json(body)
            amount = sign * money.parse_amount(asked.amount)
        except (ValueError, ValidationError, CreditlineError, KeyError):
            return None
        if not 1 <= uin <= MAX_BIGINT:
            return None
        idempotency_key = headers.get("idempotency-key")
        if idempotency_key is not None:
            try:
                idempotency.check_key(idempotency_key)
            except CreditlineError:
                return None
        limiter: RateLimiter = fast.app.state.rate_limiter
        state = scope.setdefault("state", {})
        try:
            limiter.take(key.secret_id)
        except CreditlineError:
            # Over the limit (the ordinary path refuses it the same way, and says so), or no
            # token leased yet in this process (the ordinary path's thread waits for one).
            return None
        state[RATE_TAKEN] = True  # the ordinary path, if it answers, takes no more
        state["secret_id"] = key.secret_id
        partner_id = key.partner_id
        try:
            origin = credit.check(
                amount,
                Origin(
                    operator=key.name,
                    source="api",
                    remark=asked.remark,
                    idempotency_key=idempotency_key,
                ),
            )
        except CreditlineError:
            return None
        claim = None
        if idempotency_key is not None:
            fingerprint = idempotency.request_hash(
                "POST", scope["path"], scope.get("query_string", b"").decode(), body
            )
            claim = idempotency.claimed(
                api_key_id=key.id,
                partner_id=partner_id,
                key=idempotency_key,
                fingerprint=fingerprint,
            )
        client = scope.get("client")
        actor = audit.Actor(
            source="api",
            principal=f"api-key:{key.secret_id} ({key.name})",
            partner_id=partner_id,
            source_ip=client[0] if client else "",
            request_id=str(state.get("request_id", "")),
        )

        def audited(change: credit.CreditChange, answer: str) -> dict[str, Any]:
            return audit.row(
                actor,
                action=f"POST /v1/customers/{{uin}}/{verb}",
                object=scope["path"],
                after={"request": _asked(body), "answer": json.loads(answer)},
                changed=audit.changed(change.changes),
            )

        answer = await fast.write(
            key_id=key.id,
            partner_id=partner_id,
            uin=uin,
            amount=amount,
            origin=origin,
            claim=claim,
            answer=_dump_answer,
            audited=audited,
        )
        return None if answer is None else answer.encode()


def _dump_answer(change: credit.CreditChange) -> str:
    result = _change_out(change, change.customer)
    return json.dumps(result.model_dump(mode="json"), separators=(",", ":"))


def _asked(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _kept_key(engine: Engine, authorization: str) -> keys.ApiKey | None:
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or ":" not in credentials:
        return None
    secret_id, _, secret_key = credentials.strip().partition(":")
    key = keys.CACHE.get(engine, secret_id.strip())
    if key is None or key.secret_key is None:
        return None
    if not secrets.compare_digest(key.secret_key.encode(), secret_key.strip().encode()):
        return None
    return key


async def _read(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    return body


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands on ``body`` (already read from ``receive``) as the one
    request message, then whatever ``receive`` says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def install(app: FastAPI, engine: Engine, *, size: int) -> FastCredit | None:
    """Put the fast path in front of the credit routes (PostgreSQL only); the app's
    lifespan opens and closes its pool."""
    if engine.dialect.name != "postgresql":
        return None
    fast = FastCredit(app, engine, size)
    app.add_middleware(FastPath, fast=fast)
    return fast

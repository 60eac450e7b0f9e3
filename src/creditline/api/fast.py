"""The allocation's fast path on PostgreSQL: ``POST /v1/customers/{uin}/allocate`` and
``/withdraw`` answered on the event loop, through an asyncio connection pool, by one
statement in autocommit (creditline.fast_write: the API key checked live, the idempotency
key claimed with the answer, the pool's and the customer's guarded UPDATEs, the record,
the outbox event and the audit row) — one round trip, its own transaction.

The purchase check, ``POST /v1/customers/{uin}/purchase-checks``, takes the same road:
the platform key or a partner operator's key from the key cache, authorised by the
endpoint's own rule, and one statement (creditline.fast_purchase) that looks the customer
up, decides, keeps the decision and its audit row and returns the answer; a request with
an ``Idempotency-Key`` goes to the ordinary path.

Writes in flight together share a statement (:class:`_Queue`): while a server process
has its statement out, the writes that arrive wait, and go as one statement of the same
rules, their parameters sent as one JSON text (the batch forms of both modules,
db/batched.py), each with its own answer — a statement's start, commit, round trip and
locks paid once for several.

It runs the same statements as the ordinary path (each built once by the module that owns
it, compiled once here), with the key from the key cache, and answers exactly what the
ordinary path would. Whatever is not the plain case — no key in the cache, a body the
model refuses, a refusal of the ledger, a key already used, an alarm to raise, a database
error — changes nothing and is handed to the ordinary endpoint, which answers it in full.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import psycopg
from fastapi import FastAPI
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from sqlalchemy import (
    Engine,
)
from sqlalchemy.sql import Executable
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditline import audit, fast_purchase, fast_write, money
from creditline.api import access, context
from creditline.api import purchases as purchases_api
from creditline.api.customers import CreditIn, _change_out
from creditline.auth import idempotency, keys
from creditline.auth.rate_limit import RateLimiter
from creditline.clock import utcnow
from creditline.db.batched import Batch
from creditline.db.compiled import Compiled, compile_for
from creditline.db.tables import MAX_BIGINT, Customer, Partner
from creditline.errors import CreditlineError
from creditline.ledger import credit, purchases
from creditline.ledger.records import Origin

log = logging.getLogger(__name__)

#: Request state: the rate limit's token is taken (by the fast path, before handing over).
RATE_TAKEN = "creditline.rate_taken"
_PATH = re.compile(r"^/v1/customers/([0-9]{1,19})/(allocate|withdraw|purchase-checks)$")
#: The purchase check's verb in :data:`_PATH`.
_CHECK = "purchase-checks"
#: The one statement's forms: REST's with or without an idempotency key, the Tencent
#: action's with its signature.
_STATEMENTS: tuple[tuple[fast_write.Claim, fast_write.Answer], ...] = (
    (None, "rest"),
    ("idempotency", "rest"),
    ("signature", "tencent"),
)
#: Whether the database is Citus's coordinator (api/fast.py makes no batches there).
_CITUS = "SELECT 1 FROM pg_extension WHERE extname = 'citus'"
#: The largest body the fast path reads (an amount and a remark); a larger one, or one of
#: unannounced length, goes to the ordinary layers.
_MAX_BODY = 4096


@dataclass(frozen=True)
class _Raw:
    """A statement compiled once for psycopg, with PostgreSQL's own placeholders (``$1``…),
    which psycopg sends as it is (a raw cursor): a long statement's text is not parsed
    again on every execution."""

    compiled: Compiled
    raw: str
    #: The parameters of :attr:`raw`, in order.
    names: tuple[str, ...]

    def positional(self, values: Mapping[str, Any]) -> list[Any]:
        """The values (converted) in the order of :attr:`raw`'s placeholders."""
        given = self.compiled.named(values)
        return [given[name] for name in self.names]


#: Each raw statement's text (:attr:`_Raw.raw`) → its named form and parameter names, for
#: what reads a statement as it is sent (the tests judge the named form).
RAW_STATEMENTS: dict[str, tuple[str, tuple[str, ...]]] = {}
_NAMED = re.compile(r"%\((\w+)\)s")


def _compile(engine: Engine, statement: Executable) -> _Raw:
    compiled = compile_for(engine.dialect, statement)
    # The statement's own plain constants (JSON keys, formats, bounds) written into its
    # text, so that each execution sends only its parameters.
    sql, constants = compiled.sql, dict(compiled.constants)
    for name, value in list(constants.items()):
        if name in compiled.processors or type(value) not in (int, str):
            continue
        written = str(value) if type(value) is int else "'" + value.replace("'", "''") + "'"
        sql = sql.replace(f"%({name})s", written.replace("%", "%%"))
        del constants[name]
    names: list[str] = []

    def numbered(found: re.Match[str]) -> str:
        if found.group(1) not in names:
            names.append(found.group(1))
        return f"${names.index(found.group(1)) + 1}"

    raw = _NAMED.sub(numbered, sql).replace("%%", "%")
    RAW_STATEMENTS[raw] = (sql, tuple(names))
    return _Raw(replace(compiled, sql=sql, constants=constants), raw, tuple(names))


class FastCredit:
    """The connection pool and the compiled statement of one app's fast path."""

    def __init__(self, app: FastAPI, engine: Engine, size: int) -> None:
        self.app = app
        self.engine = engine
        self.size = size
        #: One connection pool per event loop that runs the app (one in a server process;
        #: tests may run several clients, each with its own loop, against one app).
        self.pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[AsyncConnection[Any]]] = {}
        #: What the answered writes cost, for tests and benchmarks: statements sent and
        #: round trips (waits for the server's answers).
        self.statements = 0
        self.round_trips = 0
        #: The writes answered here (not handed to the ordinary path).
        self.answered = 0
        #: The one statement, by its form: what an allocation claims and which answer it
        #: builds, or a purchase check's (:data:`CHECKS`, by whether it is scoped).
        self.one: dict[Form, _Raw] = {
            (claim, answer): _compile(engine, fast_write.one_statement(claim=claim, answer=answer))
            for claim, answer in _STATEMENTS
        }
        #: Each form for several at once, and where it reads each one's parameters
        #: (:func:`fast_write.batch_statement`, :func:`fast_purchase.batch_statement`).
        self.many: dict[Form, tuple[_Raw, Batch]] = {}
        for claim, answer in _STATEMENTS:
            statement, items = fast_write.batch_statement(claim=claim, answer=answer)
            self.many[claim, answer] = (_compile(engine, statement), items)
        for scoped, form in CHECKS.items():
            self.one[form] = _compile(engine, fast_purchase.check_statement(scoped=scoped))
            statement, items = fast_purchase.batch_statement(scoped=scoped)
            self.many[form] = (_compile(engine, statement), items)
        #: The writes waiting for a statement, per event loop (:class:`_Queue`).
        self.queues: dict[asyncio.AbstractEventLoop, _Queue] = {}
        #: Statements that wrote several allocations or checks, and how many they wrote.
        self.batches = 0
        self.batched = 0
        #: The purchase check's one statement, by whether it is scoped to a partner.
        self.checks = {scoped: self.one[form] for scoped, form in CHECKS.items()}

    #: Purchase checks are answered here too (SQLite's writer hands them over).
    purchase_checks = True

    async def open(self) -> None:
        """Open the running event loop's pool (at the app's start)."""
        url = self.engine.url.set(drivername="postgresql")
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            url.render_as_string(hide_password=False),
            min_size=1,
            max_size=self.size,
            open=False,
            timeout=30.0,
            # One statement is one transaction: nothing to begin, nothing to commit. It is
            # prepared at once, and planned once: its plan is the same for every value (a
            # few rows by their keys), and planning it costs as much as running it. Every
            # row it reads is found by its key, so it never scans a table: planned once
            # while a table was small (the idempotency keys of a new database), the plan
            # would otherwise scan it for as long as the connection lives, however large
            # it grows (measured: 13 million rows read in 6,800 allocations). Likewise a
            # batch's rows are joined to the tables by their keys, one index look-up each:
            # a hash join would read a whole table (its index, scans being off) to join a
            # handful of rows (measured: 40 % of PostgreSQL's CPU building such hashes).
            kwargs={
                "autocommit": True,
                "prepare_threshold": 0,
                "options": (
                    "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off"
                    " -c enable_hashjoin=off -c enable_mergejoin=off"
                ),
            },
        )
        loop = asyncio.get_running_loop()
        self.pools[loop] = pool
        await pool.open(wait=True, timeout=30.0)
        async with pool.connection() as connection:
            # A batch spans partners, so shards on Citus, where a statement that writes
            # several shards is a distributed transaction: there each allocation is its own
            # statement, as many at once as the pool has connections.
            cursor = await connection.execute(_CITUS)
            distributed = await cursor.fetchone() is not None
        self.queues[loop] = (
            _Queue(self, limit=self.size, largest=1)
            if distributed
            else _Queue(self, limit=STATEMENTS_IN_FLIGHT, largest=LARGEST_BATCH)
        )

    def is_open(self) -> bool:
        """Whether the running event loop has its pool (the app has started in it)."""
        return asyncio.get_running_loop() in self.pools

    async def close(self) -> None:
        """Close the running event loop's pool (at the app's end)."""
        loop = asyncio.get_running_loop()
        self.queues.pop(loop, None)
        pool = self.pools.pop(loop, None)
        if pool is not None:
            await pool.close(timeout=5.0)

    async def write(self, asked: Write) -> str | None:
        """One allocation (negative: withdrawal), in one statement and its transaction —
        its own, or one it shares with the allocations in flight beside it
        (:class:`_Queue`): the answer, or None (nothing changed) when it is not the plain
        case."""
        form, params = self.prepared(asked)
        return await self.queues[asyncio.get_running_loop()].write(form, asked.partner_id, params)

    def prepared(self, asked: Write) -> tuple[Form, dict[str, Any]]:
        """The form of the one statement that writes ``asked``, and its parameters."""
        now = utcnow()
        params = credit.combined_params(
            partner_id=asked.partner_id,
            customer_uin=asked.uin,
            amount=asked.amount,
            origin=asked.origin,
            created_at=now,
            require=None,
        )
        params.update(asked.audit)
        params["require_key_id"] = asked.key_id
        params["outbox_created_at"] = now
        params["fast_request"] = json.dumps(asked.request)
        params["fast_created_iso"] = now.isoformat()
        params["fast_created_z"] = now.isoformat().replace("+00:00", "Z")
        params["fast_pool_label"] = audit.label_of(Partner.__tablename__, (asked.partner_id,))
        params["fast_customer_label"] = audit.label_of(
            Customer.__tablename__, (asked.partner_id, asked.uin)
        )
        if asked.claim is not None:
            params.update(asked.claim)
        return (asked.claims, asked.shape), params

    async def write_one(self, form: Form, params: Mapping[str, Any]) -> str | None:
        """One allocation or purchase check (``params``: its one statement's) as its one
        statement."""
        if form == CHECKS[False]:
            return await self._check_by_uin(params)
        return await self._run(self.one[form], params)

    async def write_many(self, form: Form, items: list[Mapping[str, Any]]) -> list[str | None]:
        """Allocations of distinct partners, or purchase checks of distinct customers
        (each its one statement's ``params``), as one statement, one transaction: each
        one's answer, or None (nothing of it changed or kept). Where the batch was undone
        (:data:`fast_write.REFUSED`: something refused after the pool gave; a claim, a lock
        or any other error of the database), each runs alone instead, as its one
        statement."""
        statement, batch = self.many[form]
        one = self.one[form].compiled
        params = batch.params([one.named(item) for item in items])
        pool = self.pools[asyncio.get_running_loop()]
        try:
            async with pool.connection() as connection:
                cursor = psycopg.AsyncRawCursor(connection)
                self.statements += 1
                self.round_trips += 1
                await cursor.execute(statement.raw, statement.positional(params), prepare=True)
                found = await cursor.fetchall()
        except psycopg.Error as error:
            log.debug("batch of %d undone (%s): each alone", len(items), error.sqlstate)
            return list(await asyncio.gather(*(self.write_one(form, item) for item in items)))
        answers: list[str | None] = [None] * len(items)
        for row in found:
            answers[row[0] - 1] = str(row[1])
        written = sum(answer is not None for answer in answers)
        self.answered += written
        self.batches += 1
        self.batched += written
        return answers

    async def check(self, asked: Check) -> str | None:
        """One purchase check as one statement, its own transaction: the answer, or None
        (nothing kept) when the customer is not found or the key is no longer live."""
        form, params = self.prepared_check(asked)
        queue = self.queues[asyncio.get_running_loop()]
        return await queue.write(form, asked.params["check_uin"], params)

    def prepared_check(self, asked: Check) -> tuple[Form, dict[str, Any]]:
        """The form of the one statement that answers ``asked``, and its parameters."""
        params = {
            **asked.params,
            **asked.audit,
            "require_key_id": asked.key_id,
            "fast_request": json.dumps(asked.request),
        }
        return CHECKS[asked.params["check_partner_id"] is not None], params

    async def _check_by_uin(self, params: Mapping[str, Any]) -> str | None:
        """The platform's check: the customer named by its UIN alone, found on whichever
        partner's shard holds it (what the ordinary path asks first, reports.partner_of,
        asked in the same statement), its decision kept there."""
        return await self._run(self.checks[False], params)

    async def _run(self, statement: _Raw, params: Mapping[str, Any]) -> str | None:
        """``statement``, prepared, in one round trip on the running loop's pool: the text
        of its one row's first column, or None (no row; undone whole by
        :data:`fast_write.REFUSED`)."""
        pool = self.pools[asyncio.get_running_loop()]
        async with pool.connection() as connection:
            cursor = psycopg.AsyncRawCursor(connection)
            self.statements += 1
            self.round_trips += 1
            try:
                await cursor.execute(statement.raw, statement.positional(params), prepare=True)
            except psycopg.Error as error:
                if error.sqlstate == fast_write.REFUSED:
                    return None  # undone whole: the ordinary path answers it
                raise
            found = await cursor.fetchone()
        if found is None:
            return None
        self.answered += 1
        return str(found[0])


#: A form of the one statement: what an allocation claims and which answer it builds, or
#: a purchase check's (:data:`CHECKS`).
Form = tuple[str | None, str]
#: The purchase check's forms, by whether the check is scoped to a partner.
CHECKS: dict[bool, Form] = {False: ("purchase check", "any"), True: ("purchase check", "scoped")}
#: Statements each event loop (server process) has in flight at most; the allocations
#: that arrive meanwhile wait, and go together in the next one (:class:`_Queue`).
STATEMENTS_IN_FLIGHT = 1
#: A statement in flight longer than this (seconds: e.g. waiting for a pool row that a
#: long transaction holds) no longer holds up the allocations after it.
STALLED = 0.05
#: The most allocations one statement writes.
LARGEST_BATCH = 16


@dataclass
class _Waiting:
    form: Form
    #: What no two writes of one statement share: an allocation's partner (its pool row is
    #: changed once), a purchase check's customer (its decision is found by it).
    distinct: int
    params: Mapping[str, Any]
    answer: asyncio.Future[str | None]


class _Queue:
    """The allocations and purchase checks of one event loop on their way to PostgreSQL:
    at most ``limit`` statements in flight (one that has stalled, :data:`STALLED`, no
    longer counts); a write that arrives while they are busy waits, and the writes waiting
    go together, as one statement, as soon as one is free (those of one form, allocations
    of distinct partners: each partner's pool row is changed once in a statement; checks
    of distinct customers). Under light load every write is its own statement at once;
    under load several share one statement's start, commit, round trip and locks, each
    with its own answer."""

    def __init__(self, fast: FastCredit, *, limit: int, largest: int) -> None:
        self.fast = fast
        self.limit = limit
        self.largest = largest
        self.running = 0
        self.waiting: list[_Waiting] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def write(self, form: Form, distinct: int, params: Mapping[str, Any]) -> str | None:
        """Write ``params`` in a statement of ``form``, with no other write of the same
        ``distinct``: its answer, or None."""
        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.waiting.append(_Waiting(form, distinct, params, answer))
        self._start()
        return await answer

    def _start(self) -> None:
        while self.waiting and self.running < self.limit:
            taken = self._take()
            self.running += 1
            task = asyncio.ensure_future(self._run(taken))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _take(self) -> list[_Waiting]:
        """The first waiting write, and those after it of its form and not sharing what
        must be distinct with one taken, in the order they came."""
        first = self.waiting[0]
        seen = set()
        taken: list[_Waiting] = []
        left: list[_Waiting] = []
        for one in self.waiting:
            if len(taken) < self.largest and one.form == first.form and one.distinct not in seen:
                taken.append(one)
                seen.add(one.distinct)
            else:
                left.append(one)
        self.waiting = left
        return taken

    async def _run(self, taken: list[_Waiting]) -> None:
        counted = True

        def release() -> None:
            """This statement no longer holds its place: the writes waiting go now."""
            nonlocal counted
            if counted:
                counted = False
                self.running -= 1
                self._start()

        timer = asyncio.get_running_loop().call_later(STALLED, release)
        answered: list[tuple[_Waiting, str | None]] = []
        failed: BaseException | None = None
        try:
            form = taken[0].form
            if len(taken) == 1:
                answers = [await self.fast.write_one(form, taken[0].params)]
            else:
                answers = await self.fast.write_many(form, [one.params for one in taken])
            # One answer per write, or every write is answered by the mismatch.
            answered = list(zip(taken, answers, strict=True))
        except BaseException as error:
            failed = error
        timer.cancel()
        # The next statement starts before this one's answers are handed out: its task
        # runs before the requests they resume, each of which then sends its answer (a
        # millisecond for a batch of eight, during which no statement would be in flight;
        # docs/benchmarks.md, run 19).
        release()
        if failed is None:
            for one, answer in answered:
                if not one.answer.done():
                    one.answer.set_result(answer)
            return
        for one in taken:
            if not one.answer.done():
                one.answer.set_exception(failed)
        if not isinstance(failed, Exception):
            raise failed


@dataclass(frozen=True)
class Write:
    """One allocation the fast path was asked for, checked."""

    key_id: int
    partner_id: int
    uin: int
    amount: int
    origin: Origin
    #: What the write claims (an idempotency key, a signature), and the claim's parameters
    #: (:func:`idempotency.claimed`, :func:`signatures.claim_params`).
    claims: fast_write.Claim
    claim: dict[str, Any] | None
    #: The request's body, as the audit row keeps it.
    request: Any
    #: The audit row's parameters but its before and after (:func:`audit.row`).
    audit: dict[str, Any]
    #: The answer's text from the change (SQLite's writer, which builds it in Python).
    answer: Callable[[credit.CreditChange], str]
    #: The audit row's parameters from the change and the answer (SQLite's writer).
    audited: Callable[[credit.CreditChange, str], dict[str, Any]] | None = None
    #: Which answer the statement builds (PostgreSQL's writer).
    shape: fast_write.Answer = "rest"


@dataclass(frozen=True)
class Check:
    """One purchase check the fast path was asked for, checked."""

    key_id: int
    #: :func:`purchases.check_params` (``check_partner_id`` None: any partner's customer).
    params: dict[str, Any]
    #: The request's body, as the audit row keeps it.
    request: Any
    #: The audit row's parameters but its before and after (:func:`audit.row`).
    audit: dict[str, Any]


class CreditWriter(Protocol):
    """What :class:`FastPath` writes through: :class:`FastCredit` (PostgreSQL), or
    SQLite's (api/fast_sqlite.py)."""

    app: FastAPI
    engine: Engine
    #: Whether :meth:`check` answers purchase checks (else they are not read here at all).
    purchase_checks: bool

    def is_open(self) -> bool: ...

    async def write(self, asked: Write) -> str | None: ...

    async def check(self, asked: Check) -> str | None: ...


class FastPath:
    """ASGI middleware in front of every other layer, answering the plain credit writes
    and purchase checks; everything else, and every request it does not answer, passes
    through to the app. What it answers gets what :class:`creditline.app.RequestContext`
    gives every other request: its ``X-Request-Id`` and log line, and the body cap."""

    def __init__(self, app: ASGIApp, *, fast: CreditWriter, max_body: int) -> None:
        self.app = app
        self.fast = fast
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = None
        if scope["type"] == "http" and scope["method"] == "POST" and self.fast.is_open():
            matched = _PATH.match(scope["path"])
            if matched is not None and matched.group(2) == _CHECK and not self.fast.purchase_checks:
                matched = None
        if matched is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not headers.get("content-length", "").isdigit() or int(headers["content-length"]) > min(
            self.max_body, _MAX_BODY
        ):
            await self.app(scope, receive, send)  # the ordinary layers refuse or read it
            return
        if not _json_content(headers.get("content-type", "")):
            await self.app(scope, receive, send)  # FastAPI reads no JSON from it: refused
            return
        request_id = access.request_id(headers.get("x-request-id", ""))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        body = await read_body(receive)
        try:
            answer = await self._answer(scope, headers, body, matched.group(1), matched.group(2))
        except Exception:  # the ordinary path answers it, and logs what it must
            log.debug("fast path fell back", exc_info=True)
            answer = None
        if answer is None:
            await self.app(scope, replaying(body, receive), send)
            return
        await send_json(send, answer, (b"x-request-id", request_id.encode()))
        access.log_request(
            request_id=request_id,
            method="POST",
            path=scope["path"],
            status=200,
            seconds=time.perf_counter() - started,
            state=state,
        )

    async def _answer(
        self, scope: Scope, headers: dict[str, str], body: bytes, uin_text: str, verb: str
    ) -> bytes | None:
        fast = self.fast
        if not fast.is_open():
            return None
        key = _kept_key(fast.engine, headers.get("authorization", ""))
        if key is None:
            return None
        uin = int(uin_text)
        if not 1 <= uin <= MAX_BIGINT:
            return None
        if verb == _CHECK:
            return await self._check(scope, headers, body, key, uin)
        if key.principal != "partner" or key.partner_id is None:
            return None
        if key.role not in ("operator", "admin"):
            return None
        sign = 1 if verb == "allocate" else -1
        try:
            asked = CreditIn.model_validate_json(body)
            amount = sign * money.parse_amount(asked.amount)
        except (ValueError, ValidationError, CreditlineError, KeyError):
            return None
        idempotency_key = headers.get("idempotency-key")
        if idempotency_key is not None:
            try:
                idempotency.check_key(idempotency_key)
            except CreditlineError:
                return None
        request = context.asked(body)
        # The answer's texts of the caller's are the request's remark and the key's name
        # (the record's operator).
        if audit.hides(request) or audit.hides(key.name):
            return None  # the audit row hides part of it: the ordinary path writes that
        if not self._admitted(scope, key):
            return None
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
        actor = _actor(scope, key)
        action = f"POST /v1/customers/{{uin}}/{verb}"

        def audited(change: credit.CreditChange, answer: str) -> dict[str, Any]:
            return audit.row(
                actor,
                action=action,
                object=scope["path"],
                after={"request": request, "answer": json.loads(answer)},
                changed=audit.changed(change.changes),
            )

        base = audit.statement_row(actor, action=action, object=scope["path"])
        answer = await fast.write(
            Write(
                claims=None if claim is None else "idempotency",
                key_id=key.id,
                partner_id=partner_id,
                uin=uin,
                amount=amount,
                origin=origin,
                claim=claim,
                request=request,
                audit=base,
                answer=_dump_answer,
                audited=audited,
            )
        )
        return None if answer is None else answer.encode()

    async def _check(
        self, scope: Scope, headers: dict[str, str], body: bytes, key: keys.ApiKey, uin: int
    ) -> bytes | None:
        """The purchase check: the endpoint's own questions of the key and the body, then
        its one statement (None: the ordinary path answers)."""
        if "idempotency-key" in headers:
            return None  # the ordinary path claims the key and keeps the answer
        try:
            owner = purchases_api.checker(context.principal_of(key))
            asked = purchases_api.PurchaseCheckIn.model_validate_json(body)
            params = purchases.check_params(
                partner_id=owner,
                customer_uin=uin,
                amount=money.parse_amount(asked.amount),
                product=asked.product,
                requested_by=key.name,
                decided_at=utcnow(),
            )
        except (ValueError, ValidationError, CreditlineError):
            return None
        request = context.asked(body)
        # The answer's texts of the caller's are the product and the key's name.
        if audit.hides(request) or audit.hides(
            [params["check_product"], params["check_requested_by"]]
        ):
            return None  # the audit row hides part of it: the ordinary path writes that
        if not self._admitted(scope, key):
            return None
        base = audit.statement_row(
            _actor(scope, key),
            action=f"POST /v1/customers/{{uin}}/{_CHECK}",
            object=scope["path"],
        )
        answer = await self.fast.check(
            Check(key_id=key.id, params=params, request=request, audit=base)
        )
        return None if answer is None else answer.encode()

    def _admitted(self, scope: Scope, key: keys.ApiKey) -> bool:
        """Whether the key's rate limit lets the request through here, its token taken
        (the ordinary path, if it answers after all, takes no more)."""
        limiter: RateLimiter = self.fast.app.state.rate_limiter
        try:
            limiter.take(key.secret_id)
        except CreditlineError:
            # Over the limit (the ordinary path refuses it the same way, and says so), or no
            # token leased yet in this process (the ordinary path's thread waits for one).
            return False
        state = scope.setdefault("state", {})
        state[RATE_TAKEN] = True
        state["secret_id"] = key.secret_id
        return True


def _actor(scope: Scope, key: keys.ApiKey) -> audit.Actor:
    """The audit log's view of the request (:func:`context.audit_actor`'s)."""
    client = scope.get("client")
    return audit.Actor(
        source="api",
        principal=f"api-key:{key.secret_id} ({key.name})",
        partner_id=key.partner_id,
        source_ip=client[0] if client else "",
        request_id=str(scope.setdefault("state", {}).get("request_id", "")),
    )


def _dump_answer(change: credit.CreditChange) -> str:
    return context.dump(_change_out(change, change.customer))


def _json_content(content_type: str) -> bool:
    """Whether FastAPI reads a body sent with ``content_type`` as JSON (as its routes do:
    ``application/json`` or ``application/*+json``; none at all is not JSON)."""
    maintype, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


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


async def send_json(send: Send, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    """Answer 200 with the JSON ``body`` (and ``headers``)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes:
    """The request's whole body."""
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
    """The fast path's writer on PostgreSQL (None on other engines); the app puts
    :class:`FastPath` in front of it and its lifespan opens and closes the pool."""
    if engine.dialect.name != "postgresql":
        return None
    return FastCredit(app, engine, size)

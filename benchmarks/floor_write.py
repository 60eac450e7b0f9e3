"""The smallest allocation that still does an allocation's writes: an ASGI application
answering ``POST /v1/customers/{uin}/allocate`` with one statement in autocommit (the API
key checked live, the idempotency key claimed, the pool's and the customer's guarded
UPDATEs, the record, an outbox row and an audit row, each a few columns), through an
asyncio connection pool, with the keys in memory. No alarm rule, no JSON built in SQL, no
answer stored, no audit state, no rate limit, the secret itself not compared (a key is
known by its secret id): whatever creditline's own statement does beyond this, this floor
does not. Served by the same uvicorn and loaded by the same clients as ``creditline
serve``, it measures what an allocation's writes cost this machine's PostgreSQL, and so
how much of an allocation's cost is the writes themselves and how much is what creditline
adds (docs/benchmarks.md). The database is ``CREDITLINE_FLOOR_DATABASE_URL``'s."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

_PATH = re.compile(r"^/v1/customers/([0-9]{1,19})/allocate$")

STATEMENT = """
WITH seen AS MATERIALIZED (
  SELECT true AS ok FROM api_keys WHERE id = $1 AND revoked_at IS NULL
), claim AS (
  INSERT INTO idempotent_requests (api_key_id, partner_id, key, request_hash, created_at)
  SELECT $1, $2, $4, $4, $7 FROM seen
  ON CONFLICT DO NOTHING RETURNING id
), pool AS (
  UPDATE partners SET pool_allocated = pool_allocated + $5
  FROM seen
  WHERE id = $2 AND pool_total - pool_allocated >= $5
  RETURNING partners.id, pool_total, pool_allocated
), customer AS (
  UPDATE customers SET total_credit = total_credit + $5
  WHERE partner_id = $2 AND uin = $3 AND EXISTS (SELECT FROM pool) AND EXISTS (SELECT FROM claim)
  RETURNING partner_id, uin, total_credit, consumed
), record AS (
  INSERT INTO allocation_records (partner_id, kind, customer_uin, operator, change,
    total_after, available_after, remark, source, idempotency_key, created_at)
  SELECT partner_id, 'allocation', uin, 'floor', $5, total_credit, total_credit - consumed,
    $6, 'api', $4, $7 FROM customer
  RETURNING id, partner_id, customer_uin, total_after, available_after
), outbox AS (
  INSERT INTO outbox_events (partner_id, type, payload, created_at)
  SELECT partner_id, 'credit.allocation_recorded', json_build_object('id', id), $7 FROM record
), audit AS (
  INSERT INTO audit_events (at, source, principal, partner_id, source_ip, request_id,
    action, object, outcome, after)
  SELECT $7, 'api', 'floor', partner_id, '', '', 'POST /v1/customers/{uin}/allocate', '',
    'ok', $8::json
  FROM record
)
SELECT json_build_object('id', id, 'total_after', total_after,
  'available_after', available_after)::text FROM record
"""

_pool: AsyncConnectionPool[Any] | None = None
_keys: dict[str, tuple[int, int]] = {}


async def _start() -> None:
    global _pool
    url = os.environ["CREDITLINE_FLOOR_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as connection:
        for secret_id, key_id, partner_id in connection.execute(
            "SELECT secret_id, id, partner_id FROM api_keys WHERE partner_id IS NOT NULL"
        ):
            _keys[secret_id] = (key_id, partner_id)
    _pool = AsyncConnectionPool(
        url,
        min_size=8,
        max_size=8,
        open=False,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "options": "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off",
        },
    )
    await _pool.open(wait=True)


async def _answer(scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    matched = _PATH.match(scope["path"])
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    secret_id = headers.get("authorization", "").partition(" ")[2].partition(":")[0]
    if matched is None or secret_id not in _keys or _pool is None:
        return 404, b'{"error":"not found"}'
    key_id, partner_id = _keys[secret_id]
    asked = json.loads(body)
    whole, _, cents = asked["amount"].partition(".")
    amount = int(whole) * 100 + int((cents + "00")[:2])
    now = datetime.now(UTC)
    async with _pool.connection() as connection:
        cursor = psycopg.AsyncRawCursor(connection)
        await cursor.execute(
            STATEMENT,
            [
                key_id,
                partner_id,
                int(matched.group(1)),
                headers.get("idempotency-key", ""),
                amount,
                asked.get("remark", ""),
                now,
                json.dumps({"request": asked}),
            ],
            prepare=True,
        )
        found = await cursor.fetchone()
    if found is None:
        return 409, b'{"error":"refused"}'
    return 200, str(found[0]).encode()


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await asyncio.wait_for(_pool.close(), 5)
                await send({"type": "lifespan.shutdown.complete"})
                return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status, answer = await _answer(scope, body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer})

"""Per-key rate limits, shared by every server process on one database.

A limit is a token bucket (``capacity`` tokens, refilled at ``rate`` a second) kept as one
row of ``rate_buckets`` per key and scope, so that several ``creditline serve`` processes
on several machines count one allowance. A request does not go to the database for its
token: each process *leases* tokens in small chunks from the row — one guarded
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per lease, which refills the bucket by the
database's clock, grants at most what is there and debits it in the same statement — and
spends them from memory. A key's first lease in a process is a chunk (a quarter of a
second's refill, at most an eighth of the bucket); later ones follow the process's own
demand for the key (half a second of it, up to the chunk), so a process that sees the key
rarely leases one token at a time. For a key in use, the next lease is taken in the
background when the local lease runs low, so a key at a steady rate never waits for one.

Every token a process spends was debited from the shared row first, so the requests
admitted by all processes together never exceed what the one bucket grants. A leased token
not spent within :data:`LEASE_SECONDS` is dropped (never returned: that would cost a round
trip), which can only refuse a little early, never admit more.

On a thread that runs an event loop (the allocation fast path, ``api/fast.py``) a call
never waits for the database: with no leased token left it starts a lease in the background
and raises :class:`LeasePending` (a :class:`RateLimited`), and the fast path hands the
request to the ordinary endpoint, whose thread waits for the lease.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BindParameter,
    Double,
    Engine,
    Integer,
    Table,
    bindparam,
    case,
    literal_column,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from creditline.db import compiled
from creditline.db.tables import RateBucket
from creditline.errors import CreditlineError

log = logging.getLogger(__name__)

#: Seconds a leased token may be spent after its lease; unspent, it is dropped.
LEASE_SECONDS = 1.0
#: A lease is at most this share of a second's refill and of the bucket's capacity, so the
#: tokens idle in the leases of many processes stay a small part of the allowance.
_CHUNK_OF_RATE = 0.25
_CHUNK_OF_CAPACITY = 1 / 8
#: Past its first, a lease asks for this share of a second of the process's own recent
#: demand for the key: a process that sees a key rarely leases one token at a time, so
#: tokens that expire unspent stay few however many processes serve the key.
_CHUNK_OF_DEMAND = 0.5


class RateLimited(CreditlineError):
    code = "rate_limited"
    kind = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests for this API key; retry after {retry_after} s")
        self.retry_after = retry_after


class LeasePending(RateLimited):
    """Raised, instead of waiting, when the process holds no token of the key and one is
    being leased in the background: on an event loop's thread (the caller hands the request
    to a thread, which waits), or to a caller that asked not to wait because it holds a
    transaction open (:meth:`wait` for the lease after ending it, then try again). Should
    it ever reach a client, it reads as a 429 with ``Retry-After: 1``."""

    def __init__(self, lease: Future[None]) -> None:
        super().__init__(1)
        self.lease = lease

    def wait(self) -> None:
        """Until the lease is in (a database error is raised here)."""
        self.lease.result()


def chunk_of(capacity: int, rate: float) -> int:
    """The most tokens one lease asks for (the first of a key in a process: this many)."""
    return max(1, min(int(rate * _CHUNK_OF_RATE), int(capacity * _CHUNK_OF_CAPACITY)))


# --- The lease statement ---


class _db_seconds(FunctionElement[float]):
    """The database's clock, in seconds since the epoch (one clock for every process)."""

    type = Double()
    inherit_cache = True


@compiles(_db_seconds, "postgresql")
def _db_seconds_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@compiles(_db_seconds, "sqlite")
def _db_seconds_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


class _whole(FunctionElement[int]):
    """The whole part of a non-negative number (SQLite has no FLOOR in every build)."""

    type = Integer()
    inherit_cache = True


@compiles(_whole, "postgresql")
def _whole_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(_whole, "sqlite")
def _whole_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


def _lease_statement(dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO UPDATE … RETURNING granted, tokens``: refill the row by the
    time passed (up to its capacity), grant up to ``chunk`` whole tokens of what is there,
    debit them. A new row starts full. Parameters: secret_id, scope, capacity, rate, chunk."""
    table = RateBucket.__table__
    assert isinstance(table, Table)
    capacity: BindParameter[float] = bindparam("capacity", type_=Double())
    rate: BindParameter[float] = bindparam("rate", type_=Double())
    chunk = bindparam("chunk", type_=Integer())
    now = _db_seconds()
    elapsed = case((now > table.c.refilled_at, now - table.c.refilled_at), else_=0.0)
    refilled = table.c.tokens + elapsed * rate
    available = case((refilled > capacity, capacity), else_=refilled)
    granted = case(
        (available >= chunk, chunk),
        (available >= 1.0, _whole(available)),
        else_=literal_column("0"),
    )
    first = case((capacity >= chunk, chunk), else_=_whole(capacity))
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return (
        insert.values(
            secret_id=bindparam("secret_id"),
            scope=bindparam("scope"),
            tokens=capacity - first,
            granted=first,
            refilled_at=now,
        )
        .on_conflict_do_update(
            index_elements=[table.c.secret_id, table.c.scope],
            set_={"tokens": available - granted, "granted": granted, "refilled_at": now},
        )
        .returning(table.c.granted, table.c.tokens)
    )


@dataclass(frozen=True)
class Grant:
    """What one lease got: whole tokens, and the fraction left in the shared bucket."""

    granted: int
    left: float


class BucketStore:
    """The ``rate_buckets`` rows of one database: one statement per lease."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._statement = _lease_statement(engine.dialect.name)

    def lease(self, secret_id: str, scope: str, *, capacity: int, rate: float, chunk: int) -> Grant:
        """Up to ``chunk`` tokens of the bucket, debited from it in the same statement."""
        values = {
            "secret_id": secret_id,
            "scope": scope,
            "capacity": float(capacity),
            "rate": rate,
            "chunk": chunk,
        }
        if self.engine.dialect.name == "postgresql":
            # On its own, outside any transaction: one round trip, and the row's lock is
            # held only for the statement.
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                granted, tokens = compiled.execute(c, self._statement, values).one()
        else:
            # SQLite: a write transaction of its own (BEGIN IMMEDIATE, in this process's
            # writer queue); one machine, so no round trip to spare.
            with self.engine.begin() as c:
                granted, tokens = compiled.execute(c, self._statement, values).one()
        return Grant(int(granted), float(tokens))


# --- One process's leases ---


@dataclass
class _Local:
    """The tokens this process holds of one bucket, in batches of (count, expiry), and how
    many it spent in the current and the previous second."""

    batches: deque[list[float]] = field(default_factory=deque)
    refused_until: float = 0.0
    pending: Future[None] | None = None
    leases: int = 0
    second: float = 0.0
    spent_this_second: int = 0
    spent_last_second: int = 0

    def held(self, now: float) -> int:
        while self.batches and self.batches[0][1] <= now:
            self.batches.popleft()
        return int(sum(batch[0] for batch in self.batches))

    def spend(self, now: float) -> bool:
        if self.held(now) == 0:
            return False
        self.batches[0][0] -= 1
        if self.batches[0][0] == 0:
            self.batches.popleft()
        self._roll(now)
        self.spent_this_second += 1
        return True

    def _roll(self, now: float) -> None:
        if now - self.second >= 1.0:
            recent = now - self.second < 2.0
            self.spent_last_second = self.spent_this_second if recent else 0
            self.spent_this_second = 0
            self.second = now

    def demand(self, now: float) -> int:
        """Tokens spent in about the last second."""
        self._roll(now)
        return max(self.spent_this_second, self.spent_last_second)

    def chunk(self, most: int, now: float) -> int:
        """How many tokens the next lease asks for."""
        if self.leases == 0:
            return most
        return max(1, min(most, math.ceil(self.demand(now) * _CHUNK_OF_DEMAND)))


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SharedBuckets:
    """Token buckets in the database, spent from leases held in this process's memory."""

    def __init__(self, store: BucketStore, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._local: dict[tuple[str, str], _Local] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rate-lease")

    def take(
        self, secret_id: str, scope: str, *, capacity: int, rate: float, wait: bool | None = None
    ) -> None:
        """Spend one token of the key's bucket, or raise :class:`RateLimited`. With no token
        held, wait for a lease — unless ``wait`` is false (default: false on an event loop's
        thread), where :class:`LeasePending` is raised instead."""
        if wait is None:
            wait = not _on_event_loop()
        most = chunk_of(capacity, rate)
        while True:
            with self._lock:
                local = self._local.setdefault((secret_id, scope), _Local())
                now = self._clock()
                if local.spend(now):
                    chunk = local.chunk(most, now)
                    busy = local.demand(now) >= 2
                    if busy and local.pending is None and local.held(now) <= chunk // 2:
                        # Running low: the next lease is taken before this one is used up
                        # (only for a key in use: a rare one would let the tokens expire).
                        local.pending = self._lease_later(local, secret_id, scope, capacity, rate)
                    return
                if now < local.refused_until:
                    raise RateLimited(max(1, math.ceil(local.refused_until - now)))
                pending = local.pending
                if pending is None:
                    pending = local.pending = self._lease_later(
                        local, secret_id, scope, capacity, rate
                    )
                if not wait:
                    raise LeasePending(pending)
            pending.result()  # a database error is this request's error

    def _lease_later(
        self, local: _Local, secret_id: str, scope: str, capacity: int, rate: float
    ) -> Future[None]:
        """Start a lease (called under the lock, which the lease waits for to record it)."""
        chunk = local.chunk(chunk_of(capacity, rate), self._clock())
        local.leases += 1
        future = self._executor.submit(self._lease, local, secret_id, scope, capacity, rate, chunk)
        future.add_done_callback(_log_failure)
        return future

    def _lease(
        self, local: _Local, secret_id: str, scope: str, capacity: int, rate: float, chunk: int
    ) -> None:
        try:
            grant = self.store.lease(secret_id, scope, capacity=capacity, rate=rate, chunk=chunk)
        except BaseException:
            with self._lock:
                local.pending = None
            raise
        now = self._clock()
        with self._lock:
            # One step with the grant: no other thread sees "no lease, none coming" between.
            local.pending = None
            if grant.granted > 0:
                local.batches.append([float(grant.granted), now + LEASE_SECONDS])
                local.refused_until = 0.0
            elif local.held(now) == 0:
                # Nothing left anywhere: refused here, without asking, until one token has
                # come back to the shared bucket (nobody but time adds to it).
                local.refused_until = now + max(0.0, 1.0 - grant.left) / rate


def _log_failure(future: Future[None]) -> None:
    error = future.exception()
    if error is not None:
        log.warning("rate limit lease failed: %s", type(error).__name__)


class RateLimiter:
    """The REST API's limit: ``per_minute`` requests a minute per key, in bursts of up to
    ``per_minute``, counted in the database (``rate_buckets``, scope ``api``)."""

    SCOPE = "api"

    def __init__(self, per_minute: int, buckets: SharedBuckets) -> None:
        self.per_minute = per_minute
        self.buckets = buckets

    def take(self, key: str) -> None:
        """Spend one token of ``key``'s bucket, or raise :class:`RateLimited`."""
        if self.per_minute <= 0:
            return
        self.buckets.take(key, self.SCOPE, capacity=self.per_minute, rate=self.per_minute / 60.0)

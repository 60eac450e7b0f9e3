"""Engines and transactions. One transaction per request or command, begun and committed
at the edge; the core only flushes (and uses savepoints so a refusal undoes itself)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from psycopg import pq
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ReleaseSavepointClause, SavepointClause

from creditline.config import Settings, get_settings
from creditline.db.compiled import RETURNS_ROWS
from creditline.db.writers import queue_for

log = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at psycopg 3, the driver creditline uses."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


#: The execution option marking a read-only transaction (see :func:`read_transaction`).
READ_ONLY = "creditline_read_only"


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over,
    # as SQLAlchemy's documentation recommends. BEGIN IMMEDIATE takes the write lock at the
    # start, so two writers queue on the busy timeout instead of failing on lock upgrade.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # A read transaction (read_transaction) is a plain deferred BEGIN: under WAL it reads
    # a snapshot and never takes the write lock, so an export or a page being read cannot
    # hold writers up. (A write slipped into one is caught by PostgreSQL, where the same
    # transaction is READ ONLY; every stored-data test runs on both engines.)
    # Writers of this process wait in line for the file's write lock (db/writers.py),
    # served in arrival order rather than by the busy handler's retries.
    queue = queue_for(engine.url.database)
    wait_seconds = busy_timeout_ms / 1000

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        if not read_only and queue is not None:
            queue.acquire(id(connection.connection.dbapi_connection), wait_seconds)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    if queue is not None:

        @event.listens_for(engine, "checkin")
        def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
            # Back in the pool: its COMMIT or ROLLBACK is done, the next writer's turn.
            queue.release(id(dbapi_connection))


def make_engine(url: str | None = None, settings: Settings | None = None) -> Engine:
    """An engine for ``url`` (default: the configured database), set up for creditline."""
    settings = settings or get_settings()
    url = normalise_url(url or settings.database_url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url)
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_overflow,
        pool_pre_ping=True,
    )
    event.listen(engine, "after_cursor_execute", _sync_for_rows)
    return engine


#: ``info`` key, on a pooled connection, of its open psycopg pipeline (see :func:`pipelined`).
_PIPELINE = "creditline.pipeline"
#: Round trips of the pipelined transactions, by engine (see :func:`round_trips`).
_round_trips: WeakKeyDictionary[Engine, int] = WeakKeyDictionary()


def round_trips(engine: Engine) -> int:
    """How many round trips the pipelined transactions of ``engine`` made so far (each
    wait for the server's answers: a statement with rows, or the COMMIT)."""
    return _round_trips.get(engine, 0)


def _count_round_trip(engine: Engine) -> None:
    _round_trips[engine] = _round_trips.get(engine, 0) + 1


#: Statements of a transaction's own that return no rows and cannot fail where the
#: statements before them did not: queued like a write without RETURNING.
_NO_ROWS = (SavepointClause, ReleaseSavepointClause)


def _sync_for_rows(
    connection: Any, _cursor: Any, _statement: Any, _params: Any, context: Any, _many: Any
) -> None:
    # In a pipelined transaction a statement without rows to return is only queued: it
    # goes with the next statement that has rows, or with the COMMIT. One with rows (a
    # SELECT, a RETURNING) sends everything queued and waits, so its rows can be read.
    fairy = connection.connection
    pipeline = fairy.info.get(_PIPELINE)
    if pipeline is None:
        return
    compiled = context.compiled
    writes = context.isinsert or context.isupdate or context.isdelete
    if writes and not (compiled is not None and compiled.effective_returning):
        return
    if compiled is not None and isinstance(compiled.statement, _NO_ROWS):
        return  # SAVEPOINT, RELEASE SAVEPOINT
    if compiled is None and context.execution_options.get(RETURNS_ROWS) is False:
        return  # a statement compiled once (db/compiled.py) that returns no rows
    pipeline.sync()
    _count_round_trip(connection.engine)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (psycopg's; None for SQLite's or a client-side
    error such as a lost connection). Safe to log, unlike the message, which can quote
    the statement's parameters."""
    cause = getattr(exc, "orig", None) or exc
    state = getattr(cause, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_conflict(exc: BaseException) -> bool:
    """Whether the database rolled the transaction back over a concurrent one (SQLSTATE
    class 40: a deadlock, 40P01; a serialization failure, 40001). Nothing was applied
    and the database is fine: adapters answer a conflict to retry, not "unavailable".
    (Writers lock partner rows before customer rows and run READ COMMITTED, so neither
    is expected: the SQLSTATE is logged.)"""
    state = sqlstate(exc) if isinstance(exc, DBAPIError) else None
    return state is not None and state.startswith("40")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or dropped the connection
    (or a lock or pool wait ran out). The transaction did not commit — or, when the
    connection dropped during COMMIT itself, its outcome is unknown — so adapters answer
    "unavailable, retry" rather than an internal error; an idempotency key makes the retry
    of a write safe either way. A transaction the database rolled back over a concurrent
    one is not this: see :func:`is_conflict`."""
    if is_conflict(exc):
        return False
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


#: One pair of session factories (writing, reading) per engine: building one per
#: transaction showed in the profile.
_factories: WeakKeyDictionary[Engine, tuple[sessionmaker[Session], sessionmaker[Session]]] = (
    WeakKeyDictionary()
)


def _factory(engine: Engine, *, read_only: bool) -> sessionmaker[Session]:
    pair = _factories.get(engine)
    if pair is None:
        reading = engine.execution_options(**{READ_ONLY: True})
        if is_postgres(engine):
            reading = reading.execution_options(postgresql_readonly=True)
        pair = _factories[engine] = (
            sessionmaker(engine, expire_on_commit=False),
            sessionmaker(reading, expire_on_commit=False),
        )
    return pair[1] if read_only else pair[0]


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session in one **writing** transaction: committed when the block ends, rolled back
    if it raises. On SQLite it begins with ``BEGIN IMMEDIATE`` (the write lock, taken at
    the start), so use it only for work that writes; reads take :func:`read_transaction`."""
    with _factory(engine, read_only=False).begin() as session:
        yield session


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Session]:
    """A session in one **read-only** transaction, ended when the block ends (whatever
    happens in it). It takes no write lock (SQLite: a deferred ``BEGIN`` under WAL), so a
    reader cannot hold writers up; on PostgreSQL it is ``READ ONLY``, so a write hidden in
    a read fails at once (and fails the tests, which run on both engines). Keep it short:
    a long read (an export) reads in pages, each in its own read transaction."""
    with _factory(engine, read_only=True).begin() as session:
        yield session


@contextmanager
def pipelined(engine: Engine) -> Iterator[Session]:
    """Like :func:`transaction`, with fewer round trips on PostgreSQL: statements that
    return no rows are sent with the next one that does, or with the COMMIT (psycopg's
    pipeline mode; BEGIN goes with the first statement). A statement's error may therefore
    surface at a later one or at the COMMIT, still inside this block, and rolls it all
    back. On SQLite (in-process, no round trips) it is :func:`transaction`.

    The connection is this block's until pipeline mode is left and the transaction has
    ended: only then does it go back to the pool (a session's commit or rollback would
    hand it back at once, still in pipeline mode, for another request to take while this
    one was still leaving pipeline mode on it). When the block raises, what is still
    queued is sent and its errors set aside (the block's own exception is the answer: a
    refusal stays a refusal), pipeline mode is left, and then the transaction is rolled
    back. A connection left in any other state is closed, not pooled."""
    if not is_postgres(engine):
        with transaction(engine) as session:
            yield session
        return
    if not event.contains(engine, "after_cursor_execute", _sync_for_rows):
        event.listen(engine, "after_cursor_execute", _sync_for_rows)
    with engine.connect() as connection:
        fairy = connection.connection
        driver = fairy.driver_connection
        assert driver is not None
        try:
            with Session(bind=connection, expire_on_commit=False) as session:
                committed = False
                try:
                    with driver.pipeline() as pipeline:
                        fairy.info[_PIPELINE] = pipeline
                        try:
                            try:
                                yield session
                            except BaseException:
                                _settle(pipeline)
                                raise
                            session.commit()  # with whatever is still queued: one round trip
                            committed = True
                        finally:
                            fairy.info.pop(_PIPELINE, None)
                except BaseException as exc:
                    if committed and isinstance(exc, Exception):
                        # Committed; only leaving pipeline mode failed. The write stands
                        # (answering an error would invite a second one); the connection
                        # is dropped below.
                        log.warning(
                            "pipelined transaction committed; leaving pipeline mode failed (%s)",
                            _described(exc),
                        )
                    else:
                        _roll_back(connection, session, driver)
                        raise
                _count_round_trip(engine)
        finally:
            if not connection.invalidated and not _settled(driver):
                connection.invalidate()


def _described(exc: BaseException) -> str:
    """An error's class and SQLSTATE, never its message (which can quote parameters)."""
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}, SQLSTATE {sqlstate(exc)}"


def _settle(pipeline: psycopg.Pipeline) -> None:
    # The block raised: send what is still queued and collect every result, so pipeline
    # mode can be left. A queued statement's error (or the pipeline's aborted state) is
    # not this block's answer: its own exception is, and the transaction is rolled back.
    try:
        pipeline.sync()
    except psycopg.Error as exc:
        log.warning("pipelined transaction: a queued statement failed (%s)", _described(exc))


def _roll_back(connection: Connection, session: Session, driver: psycopg.Connection[Any]) -> None:
    """Roll back, out of pipeline mode. After a failed COMMIT, SQLAlchemy counts the
    transaction as ended while the server still holds it (failed): it is rolled back on
    the driver. If rolling back fails, the connection is closed (the transaction cannot
    have committed), and the caller raises the block's own exception."""
    try:
        session.rollback()
        if connection.invalidated or driver.closed:
            return
        if driver.info.transaction_status != pq.TransactionStatus.IDLE:
            driver.rollback()
    except Exception as exc:
        log.warning("pipelined transaction: rollback failed (%s)", _described(exc))
        if not connection.invalidated:
            connection.invalidate()


def _settled(driver: psycopg.Connection[Any]) -> bool:
    """Whether the connection may go back to the pool: out of pipeline mode, its
    transaction ended."""
    if driver.closed or driver.pgconn.pipeline_status != pq.PipelineStatus.OFF:
        return False
    return driver.info.transaction_status == pq.TransactionStatus.IDLE

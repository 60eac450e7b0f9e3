"""Engines and transactions. One transaction per request or command, begun and committed
at the edge; the core only flushes (and uses savepoints so a refusal undoes itself)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ReleaseSavepointClause, SavepointClause

from creditline.config import Settings, get_settings
from creditline.db.compiled import RETURNS_ROWS
from creditline.db.writers import queue_for


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


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or dropped the connection
    (or a lock or pool wait ran out). The transaction did not commit — or, when the
    connection dropped during COMMIT itself, its outcome is unknown — so adapters answer
    "unavailable, retry" rather than an internal error; an idempotency key makes the retry
    of a write safe either way."""
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
    back. On SQLite (in-process, no round trips) it is :func:`transaction`."""
    if not is_postgres(engine):
        with transaction(engine) as session:
            yield session
        return
    if not event.contains(engine, "after_cursor_execute", _sync_for_rows):
        event.listen(engine, "after_cursor_execute", _sync_for_rows)
    with _factory(engine, read_only=False)() as session:
        fairy = session.connection().connection
        driver = fairy.driver_connection
        assert driver is not None
        with driver.pipeline() as pipeline:
            fairy.info[_PIPELINE] = pipeline
            try:
                try:
                    yield session
                    session.commit()
                    _count_round_trip(engine)
                except BaseException:
                    session.rollback()
                    raise
            finally:
                fairy.info.pop(_PIPELINE, None)

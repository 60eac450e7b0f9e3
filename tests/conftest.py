"""Fixtures shared by every test: a migrated database on each engine.

Every stored-data test runs twice, on SQLite (a file per test) and on PostgreSQL (a
database per test run, emptied between tests). PostgreSQL comes from
``CREDITLINE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
when it cannot be reached its half is skipped with the reason, unless
``CREDITLINE_REQUIRE_POSTGRES=1``, where that is a failure.

Every statement run on PostgreSQL is judged as it is sent (``tests/shard_scope.py``): one
that reads or writes a distributed table without naming one partner fails the test that
issued it, unless the code issuing it is allowed to cross partners.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from tests import shard_scope

from creditline.api import fast
from creditline.db import make_engine
from creditline.db.migrate import upgrade
from creditline.db.tables import Base

POSTGRES_URL = os.environ.get(
    "CREDITLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("CREDITLINE_REQUIRE_POSTGRES") == "1"

# Hypothesis fails an example that takes longer than 200 ms by default: a timed assertion,
# which a busy shared machine trips with nothing wrong. The tests judge what the code
# answers; how fast it answers is the benchmarks' (benchmarks/).
settings.register_profile("creditline", deadline=None)
settings.load_profile("creditline")

#: Statements of the running test that leave one shard (see tests/shard_scope.py).
_offences: list[shard_scope.Offence] = []


@event.listens_for(Engine, "before_cursor_execute")
def _judge_statement(
    connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
) -> None:
    if connection.dialect.name == "postgresql":
        found = shard_scope.offence(statement, parameters)
        if found is not None:
            _offences.append(found)


_async_execute = psycopg.AsyncCursor.execute


async def _judged_async_execute(
    self: psycopg.AsyncCursor[Any], query: Any, params: Any = None, **kwargs: Any
) -> Any:
    # The allocation's fast path (api/fast.py) sends its compiled statements through
    # psycopg's own asyncio pool, past SQLAlchemy's events.
    if isinstance(query, str):
        judged, values = query, params
        named = fast.RAW_STATEMENTS.get(query) if isinstance(self, psycopg.AsyncRawCursor) else None
        if named is not None:  # a raw statement ($1…) judged in its named form
            judged, values = named[0], dict(zip(named[1], params or (), strict=True))
        found = shard_scope.offence(judged, values)
        if found is not None:
            _offences.append(found)
    return await _async_execute(self, query, params, **kwargs)


psycopg.AsyncCursor.execute = _judged_async_execute  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def one_shard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test when a statement it issued on PostgreSQL left one partner's shard."""
    _offences.clear()
    yield
    if _offences:
        seen = list(dict.fromkeys(str(o) for o in _offences))
        _offences.clear()
        pytest.fail(
            f"{request.node.nodeid} ran {len(seen)} statement(s) on more than one "
            "partner's shard (add the partner_id filter, or allow the code in "
            "tests/shard_scope.py with its reason):\n  " + "\n  ".join(seen),
            pytrace=False,
        )


def _postgres_admin_engine() -> Engine | str:
    """An engine on the server's maintenance database, or why there is none."""
    try:
        engine = make_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return engine
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc.__class__.__name__}: {exc}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test process, dropped at the end."""
    admin = _postgres_admin_engine()
    if isinstance(admin, str):
        if REQUIRE_POSTGRES:
            pytest.fail(admin + " (CREDITLINE_REQUIRE_POSTGRES=1)")
        pytest.skip(admin)
    name = f"creditline_test_{uuid.uuid4().hex[:12]}"
    autocommit = admin.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with autocommit.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close folds the WAL back into the file
    return path


def _empty_postgres(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # UINs start where a new database starts them.
        connection.execute(text("ALTER TABLE accounts ALTER COLUMN uin RESTART WITH 100000000001"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, migrated database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "creditline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    _empty_postgres(engine)
    engine.dispose()
    yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty, migrated database (each engine in turn)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@contextmanager
def database_at(engine_name: str, revision: str, directory: Path) -> Iterator[Engine]:
    """A database of its own on ``engine_name`` (sqlite, postgresql), migrated to
    ``revision`` only: for the tests of the migration after it. The PostgreSQL one is
    dropped at the end; without a server, as every PostgreSQL half, it skips (or fails
    where ``CREDITLINE_REQUIRE_POSTGRES=1``)."""
    if engine_name == "sqlite":
        engine = make_engine(f"sqlite:///{directory / 'old.db'}")
        upgrade(engine, revision)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    admin = _postgres_admin_engine()
    if isinstance(admin, str):
        if REQUIRE_POSTGRES:
            pytest.fail(admin)
        pytest.skip(admin)
    name = f"creditline_at_{revision}_{uuid.uuid4().hex[:12]}"
    autocommit = admin.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    )
    try:
        upgrade(engine, revision)
        yield engine
    finally:
        engine.dispose()
        with autocommit.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

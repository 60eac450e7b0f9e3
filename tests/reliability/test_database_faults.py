"""Database faults on PostgreSQL: connections cut (``pg_terminate_backend``) and the
database made unreachable for a moment while load runs. Every request fails cleanly — a
retriable 503 in the one error shape, never a 500 or a stack trace, never a half-applied
write — and the server and the worker recover by themselves, without a restart.

Restarting the PostgreSQL server terminates every backend and refuses connections until it
is back; these tests do exactly that to this test run's database only (the server is
shared, so it is not restarted): ``ALTER DATABASE … ALLOW_CONNECTIONS false`` plus
``pg_terminate_backend`` of each of its backends is a restart as far as creditline can see.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from tests.conftest import POSTGRES_URL
from tests.reliability.run import disturbed_run
from tests.reliability.service import SERVER_KEY, Server, Worker

from creditline.config import get_settings
from creditline.db import make_engine

LONG = os.environ.get("CREDITLINE_LONG_TESTS") == "1"


@pytest.fixture(autouse=True)
def server_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITLINE_SECRET_KEY", SERVER_KEY)
    get_settings.cache_clear()


@contextmanager
def outage(database_url: str, *, refuse: bool) -> Iterator[None]:
    """Cut every connection to the test database; with ``refuse``, also refuse new ones
    until the block ends (a server restart, for this database only)."""
    name = make_url(database_url).database
    admin = make_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            if refuse:
                c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            try:
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                yield
            finally:
                if refuse:
                    c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    finally:
        admin.dispose()


def postgres_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL fault (SQLite is a file in the server's own process)")


def run_with_faults(
    engine: Engine, database_url: str, tmp_path: Path, *, rounds: int, min_operations: int
) -> dict[str, int]:
    def cut(rng: random.Random, _server: Server, _worker: Worker) -> None:
        nonlocal done
        # Every other round the database is also unreachable for a moment (a restart);
        # the rest only lose their connections.
        refuse = done % 2 == 0
        with outage(database_url, refuse=refuse):
            if refuse:
                time.sleep(rng.uniform(0.3, 1.0))
        done += 1

    done = 0
    figures, server, worker = disturbed_run(
        engine, database_url, tmp_path, disturb=cut, rounds=rounds, min_operations=min_operations
    )
    assert done == rounds
    # No restart was needed: the same processes served before, during and after.
    assert server.kills == 0 and worker.kills == 0
    # The unreachable moments were really seen by clients, as clean 503s.
    assert figures["unavailable_503"] >= 1
    return figures


def test_cut_connections_fail_cleanly_and_recover(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    postgres_only(database_url)
    run_with_faults(engine, database_url, tmp_path, rounds=4, min_operations=120)


@pytest.mark.slow
@pytest.mark.skipif(not LONG, reason="long variant: set CREDITLINE_LONG_TESTS=1")
def test_many_cut_connections(engine: Engine, database_url: str, tmp_path: Path) -> None:
    postgres_only(database_url)
    run_with_faults(engine, database_url, tmp_path, rounds=30, min_operations=1500)

"""A streamed export never holds a transaction or a lock: while a client has read only the
first chunk of a records CSV (REST or console), and after it disconnects, no transaction of
the export is open — a write goes through at once on SQLite, and PostgreSQL shows no
session ``idle in transaction``. And reads in general never take SQLite's write lock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text, update
from sqlalchemy.exc import DBAPIError
from tests.api.conftest import World

from creditline.app import create_app
from creditline.auth import sessions, users
from creditline.config import Settings
from creditline.db import is_postgres, make_engine, read_transaction, transaction
from creditline.db.tables import AllocationRecord, Customer

#: Enough records for several CSV chunks (64,000 characters each) and keyset pages.
RECORDS = 1500


def _many_records(engine: Engine, world: World) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "partner_id": world.a,
            "kind": "allocation",
            "customer_uin": world.a_customer,
            "operator": "bulk-loader@example.com",
            "change": 100,
            "total_after": 100 * (n + 1),
            "available_after": 100 * (n + 1),
            "remark": "x" * 40,
            "source": "cli",
            "created_at": now,
        }
        for n in range(RECORDS)
    ]
    with transaction(engine) as s:
        s.execute(insert(AllocationRecord), rows)


def _open_transactions(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


def _writes_at_once(database_url: str) -> Callable[[], None]:
    """A check that a write commits without waiting for any lock (SQLite: busy timeout 0,
    so a held write lock fails it at once)."""
    probe = make_engine(database_url, Settings(database_url=database_url, sqlite_busy_timeout_ms=0))

    def check() -> None:
        with transaction(probe) as s:
            s.execute(update(Customer).where(Customer.uin == 0).values(remark="probe"))

    return check


def _export(
    app: Any, path: str, headers: dict[str, str], on_first_chunk: Callable[[], None]
) -> int:
    """Request ``path`` as a client that reads the first body chunk, runs
    ``on_first_chunk`` while the export is half-read, then disconnects. The chunks read."""
    chunks: list[bytes] = []
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
        elif message["type"] == "http.response.body" and message.get("body"):
            chunks.append(message["body"])
            if len(chunks) == 1:
                assert message.get("more_body"), "the export fitted in one chunk"
                on_first_chunk()
                gone.set()
                raise OSError("the client went away")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run() -> None:
        with contextlib.suppress(OSError):
            await app(scope, receive, send)

    asyncio.run(run())
    return len(chunks)


@pytest.mark.parametrize("door", ["rest", "console"])
def test_a_half_read_or_abandoned_export_holds_no_transaction(
    door: str, engine: Engine, database_url: str, world: World
) -> None:
    _many_records(engine, world)
    app = create_app(Settings(database_url=database_url), engine, worker=False)
    if door == "rest":
        path, headers = "/v1/allocation-records.csv", world.h("a_viewer")
    else:
        with transaction(engine) as s:
            user = users.create_user(
                s,
                partner_id=world.a,
                email="viewer@alpha.example",
                password="x" * 16,
                role="viewer",
            )
            token = sessions.start_session(s, user)
        path, headers = "/records.csv", {"Cookie": f"creditline_session={token}"}
    postgres = is_postgres(engine)
    writes = _writes_at_once(database_url)
    seen: list[int] = []

    def half_read() -> None:
        if postgres:
            seen.append(_open_transactions(engine))
        else:
            writes()  # raises "database is locked" if the export holds the write lock
            seen.append(0)

    assert _export(app, path, headers, half_read) == 1
    assert seen == [0]
    if postgres:
        assert _open_transactions(engine) == 0
    writes()


def test_reads_take_no_write_lock(engine: Engine, database_url: str) -> None:
    writes = _writes_at_once(database_url)
    with read_transaction(engine) as s:
        s.execute(text("SELECT count(*) FROM customers")).scalar_one()
        writes()  # a writer is not held up by an open read
        if is_postgres(engine):  # and a write hidden in a read fails the tests there
            with pytest.raises(DBAPIError):
                s.execute(update(Customer).where(Customer.uin == 0).values(remark="sneaked"))

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

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from tests.conftest import POSTGRES_URL
from tests.reliability.load import make_world
from tests.reliability.run import disturbed_run
from tests.reliability.service import SERVER_KEY, Process, Receiver, Server, Worker

from creditline.config import get_settings
from creditline.db import make_engine, transaction
from creditline.ledger import credit
from creditline.ledger.records import Origin
from creditline.notify.worker import Worker as DeliveryWorker

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


def _until(condition: Callable[[], bool], what: str, *, seconds: float = 90) -> None:
    """Poll ``condition`` (bounded: what never happens fails the test, not hangs it)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.05)


def _one_event(engine: Engine, receiver_url: str) -> None:
    """A reseller with a webhook endpoint and one allocation event waiting for it."""
    world = make_world(engine, customers=1, pool=10_000, webhook_url=receiver_url)
    with transaction(engine) as s:
        credit.allocate_credit(
            s,
            partner_id=world.partner_id,
            customer_uin=world.customers[0],
            amount=100,
            origin=Origin(operator="setup", source="cli"),
        )


def _lines(log: Path, text: str) -> int:
    return sum(text in line for line in log.read_text(errors="replace").splitlines())


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_started_while_the_database_refuses_waits_then_works(
    engine: Engine, database_url: str, tmp_path: Path, command: str
) -> None:
    # PostgreSQL refusing connections as it (re)starts: `creditline worker` used to exit
    # with "error: cannot open the database"; both processes now wait for it.
    postgres_only(database_url)
    receiver = Receiver()
    _one_event(engine, receiver.url)
    log = tmp_path / f"{command}.log"
    process: Process = (
        Worker(database_url, log) if command == "worker" else Server(database_url, log)
    )
    try:
        with outage(database_url, refuse=True):
            Process.start(process)  # not Server.start: that waits for an answer
            child = process.child
            assert child is not None
            _until(
                lambda: _lines(log, "database unavailable") > 0 or child.poll() is not None,
                "the outage is noticed",
            )
            assert child.poll() is None, log.read_text(errors="replace")
        if command == "worker":
            _until(lambda: len(receiver.received) >= 1, "the event is delivered")
        else:
            assert isinstance(process, Server)
            _until(lambda: _answers(process.base_url + "/openapi.json"), "the server answers")
        assert process.child is not None and process.child.poll() is None
    finally:
        process.stop()
        receiver.close()
    text = log.read_text(errors="replace")
    assert _lines(log, "database unavailable") == 1, text
    assert _lines(log, "database available again") == 1, text
    assert "Traceback" not in text and "error:" not in text, text


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_in_process_worker_logs_an_outage_once_and_recovers(
    engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The worker `creditline serve` runs in a thread used to log a full traceback five
    # times a second while the database was away.
    postgres_only(database_url)
    receiver = Receiver()
    _one_event(engine, receiver.url)
    settings = get_settings().model_copy(update={"webhook_allow_private_targets": True})
    worker = DeliveryWorker(
        make_engine(database_url), settings, poll_interval=0.05, outage_base=0.05, outage_cap=0.2
    )
    caplog.set_level(logging.INFO, logger="creditline")
    try:
        with outage(database_url, refuse=True):
            worker.start_in_thread()
            # Many rounds fail meanwhile (0.2 s apart at most); one line says so.
            _until(
                lambda: sum("database unavailable" in r.message for r in caplog.records) > 0,
                "the outage is noticed",
            )
            time.sleep(1.0)
        _until(lambda: len(receiver.received) >= 1, "the event is delivered")
    finally:
        worker.stop()
        worker.close()
        worker.engine.dispose()
        receiver.close()
    mine = [r for r in caplog.records if r.name.startswith("creditline")]
    assert sum("database unavailable" in r.message for r in mine) == 1
    assert sum("database available again" in r.message for r in mine) == 1
    assert not any(r.exc_info for r in mine), "a traceback was logged"

"""Waiting out an unavailable database: capped exponential waits, one log line when the
outage starts and one when it ends, and anything else raised at once."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from creditline.app import create_app
from creditline.config import Settings
from creditline.db import make_engine
from creditline.db.migrate import upgrade
from creditline.db.outage import Outage, wait_for

log = logging.getLogger("creditline.test")


class Waits(threading.Event):
    """A stop event that is never set and records how long it was asked to wait."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.asked.append(timeout)
        return False


def refused() -> OperationalError:
    return OperationalError(
        "connect", {}, Exception('database "x" is not currently accepting connections\nDETAIL')
    )


def test_wait_for_retries_with_capped_backoff_and_logs_once_each_way(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tries = iter(range(12))

    def attempt() -> int:
        if next(tries) < 10:
            raise refused()
        return 42

    caplog.set_level(logging.INFO, logger="creditline")
    waits = Waits()
    assert wait_for(attempt, log=log, what="creditline worker", stop=waits, cap=5.0) == 42
    assert waits.asked == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0, 5.0]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        'creditline worker: database unavailable (database "x" is not currently accepting '
        "connections); retrying until it is back",
        lines[1],
    ]
    assert lines[1].startswith("creditline worker: database available again after ")
    assert lines[1].endswith("(10 failed tries)")
    assert not any(r.exc_info for r in caplog.records)


def test_wait_for_raises_anything_else_at_once() -> None:
    waits = Waits()

    def attempt() -> int:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        wait_for(attempt, log=log, what="x", stop=waits)
    assert waits.asked == []


def test_wait_for_gives_up_only_when_stopped() -> None:
    stop = threading.Event()
    stop.set()

    def attempt() -> int:
        raise refused()

    with pytest.raises(InterruptedError):
        wait_for(attempt, log=log, what="x", stop=stop)


def test_a_second_outage_is_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="creditline")
    outage = Outage(log, "delivery worker", base=1.0, cap=4.0)
    for _ in range(2):
        assert [outage.failed(refused()) for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
        outage.recovered()
        outage.recovered()  # nothing to say while it works
    messages = [r.getMessage().split(" (")[0].split(" after ")[0] for r in caplog.records]
    assert (
        messages
        == [
            "delivery worker: database unavailable",
            "delivery worker: database available again",
        ]
        * 2
    )


def test_another_failure_logs_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(log, "delivery worker")
    for _ in range(5):
        try:
            raise RuntimeError("a bug")
        except RuntimeError as exc:
            outage.failed(exc)
    assert [bool(r.exc_info) for r in caplog.records] == [True]


def test_app_start_waits_while_another_process_holds_the_sqlite_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The embedded database upgrades its schema at start; a writer holding the lock past
    # the busy timeout (a long usage import, say) used to make `creditline serve` exit.
    path = tmp_path / "creditline.db"
    settings = Settings(database_url=f"sqlite:///{path}", sqlite_busy_timeout_ms=50)
    engine = make_engine(settings.database_url, settings)
    upgrade(engine)
    caplog.set_level(logging.INFO, logger="creditline")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    failures: list[BaseException] = []
    started = threading.Event()

    def start() -> None:
        try:
            with TestClient(create_app(settings, engine, worker=False)):
                started.set()
        except BaseException as exc:  # the start failing is what the test looks for
            failures.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not failures and not any(
            "database unavailable" in r.getMessage() for r in caplog.records
        ):
            assert time.monotonic() < deadline, "the start neither waited nor failed"
            time.sleep(0.02)
        assert failures == []
        assert not started.is_set()
    finally:
        holder.execute("COMMIT")
        holder.close()
        thread.join(60)
        engine.dispose()
    assert started.is_set() and failures == []
    assert any("database available again" in r.getMessage() for r in caplog.records)

"""Waiting out an unavailable database: capped exponential waits, one log line when the
outage starts and one when it ends, and anything else raised at once."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy.exc import OperationalError

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

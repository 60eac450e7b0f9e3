"""Crash safety: mixed load against ``creditline serve`` and ``creditline worker`` running as
real processes, both killed with SIGKILL at random (seeded) moments and restarted; every
request whose answer was lost is retried with the same Idempotency-Key.

At the end (see :func:`tests.reliability.run.disturbed_run`): ``creditline verify`` is
clean; every operation the client saw succeed is in the database exactly once; no refused
operation left a trace; each customer's credit and consumption is exactly what the client
was told; every event was delivered to the webhook at least once. The short run (a few
kills) is in every test run; ``CREDITLINE_LONG_TESTS=1`` adds the long one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.reliability.run import disturbed_run
from tests.reliability.service import SERVER_KEY, Server, Worker

from creditline.config import get_settings

LONG = os.environ.get("CREDITLINE_LONG_TESTS") == "1"


@pytest.fixture(autouse=True)
def server_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process makes the keys the child processes check: one server key."""
    monkeypatch.setenv("CREDITLINE_SECRET_KEY", SERVER_KEY)
    get_settings.cache_clear()


def kill(rng: random.Random, server: Server, worker: Worker) -> None:
    """SIGKILL the server (and, more often than not, the worker), then start them again."""
    server.kill()
    if rng.random() < 0.6:
        worker.kill()
        worker.start()
    server.start()


def test_crashes_lose_nothing(engine: Engine, database_url: str, tmp_path: Path) -> None:
    """A few kills under load: the short variant, in every run."""
    figures, _, _ = disturbed_run(
        engine, database_url, tmp_path, disturb=kill, rounds=3, min_operations=150
    )
    assert figures["server_kills"] == 3


@pytest.mark.slow
@pytest.mark.skipif(not LONG, reason="long variant: set CREDITLINE_LONG_TESTS=1")
def test_many_crashes_lose_nothing(engine: Engine, database_url: str, tmp_path: Path) -> None:
    """Many kills under heavier load."""
    figures, _, _ = disturbed_run(
        engine, database_url, tmp_path, disturb=kill, rounds=25, min_operations=2000
    )
    assert figures["server_kills"] == 25

"""Fixtures for delivery tests: a real webhook receiver and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.notify.support import Receiver, SmtpSink


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(autouse=True)
def server_key(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    """Webhook signing secrets are encrypted with the server key: given on PostgreSQL,
    generated beside the file on SQLite (child processes inherit the environment)."""
    from creditline.config import get_settings

    if database_url.startswith("postgresql"):
        monkeypatch.setenv("CREDITLINE_SECRET_KEY", "test-server-key-" + "x" * 32)
    else:
        monkeypatch.delenv("CREDITLINE_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()

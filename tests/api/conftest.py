"""API test fixtures: the server key, and a partner world with keys of every kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from creditline.config import get_settings


@pytest.fixture(autouse=True)
def server_key(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[None]:
    """PostgreSQL needs ``CREDITLINE_SECRET_KEY``; SQLite runs with the generated key file,
    so both ways of keeping the server key are exercised."""
    if database_url.startswith("postgresql"):
        monkeypatch.setenv("CREDITLINE_SECRET_KEY", "test-server-key-" + "x" * 32)
    else:
        monkeypatch.delenv("CREDITLINE_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


__all__ = ["Engine"]

"""``creditline serve --workers N``: several processes only on PostgreSQL."""

from __future__ import annotations

import pytest
from tests.cli.conftest import Cli


def test_sqlite_refuses_more_than_one_worker(cli: Cli, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the refusal is SQLite's")
    ran = cli("serve", "--workers", "2", expect=3)
    assert "needs PostgreSQL" in ran.stderr


def test_workers_must_be_at_least_one(cli: Cli) -> None:
    ran = cli("serve", "--workers", "0", expect=2)
    assert "--workers" in ran.stderr

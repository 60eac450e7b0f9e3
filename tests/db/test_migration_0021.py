"""Migration 0021: an audit row's JSON is compressed with lz4 on PostgreSQL (when the
server offers it), and with pglz again after a downgrade; the rows read alike either
way. On SQLite it changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text
from tests.conftest import database_at

from creditline.db.migrate import alembic_config, current_revision, upgrade

_METHOD = (
    "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'audit_events'::regclass"
    " AND attname IN ('before', 'after') ORDER BY attname"
)
_ROW = (
    "INSERT INTO audit_events (at, source, principal, partner_id, source_ip, request_id,"
    " action, object, outcome, before, after) VALUES ('2026-12-01 00:00:00+00', 'cli',"
    " 'setup', 0, '', 'r', 'a', 'o', 'ok', :before, :after)"
)


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_audit_json_compressed_with_lz4_and_back(engine_name: str, tmp_path: Path) -> None:
    with database_at(engine_name, "0020", tmp_path) as engine:
        long = '{"state": "' + "x" * 9000 + '"}'  # beyond the TOAST threshold
        with engine.begin() as c:
            c.execute(text(_ROW), {"before": long, "after": long})
        upgrade(engine, "0021")
        assert current_revision(engine) == "0021"
        with engine.begin() as c:
            c.execute(text(_ROW), {"before": long, "after": long})
        _assert_methods(engine, "l")
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0020")
        _assert_methods(engine, "p")
        with engine.connect() as c:
            stored = c.execute(text("SELECT before, after FROM audit_events")).all()
        assert len(stored) == 2
        for before, after in stored:
            for value in (before, after):
                text_of = value if isinstance(value, str) else __import__("json").dumps(value)
                assert "x" * 9000 in text_of


def _assert_methods(engine: Engine, method: str) -> None:
    """The compression of ``before`` and ``after``: ``method`` ('l' lz4, 'p' pglz) where
    PostgreSQL offers lz4; the server's default ('') otherwise, and nothing on SQLite."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as c:
        offered = c.execute(
            text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar()
        found = dict(c.execute(text(_METHOD)).tuples().all())
    expected = method if offered is not None and "lz4" in offered else ""
    assert found == {"after": expected, "before": expected}

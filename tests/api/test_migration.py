from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from tests.db.test_migrations import is_sqlite_rowid_unique

from creditline.db.tables import Base

API_TABLES = {"api_keys", "idempotent_requests", "credit_applications"}


def test_migration_0002_matches_the_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    # SQLite's unique (partner_id, id) beside a rowid key (tables.rowid_key).
    diffs = [d for d in diffs if not is_sqlite_rowid_unique(d)]

    assert [d for d in diffs if any(t in repr(d) for t in API_TABLES)] == []
    assert not [d for d in diffs if isinstance(d, tuple) and d[0] in ("add_table", "remove_table")]

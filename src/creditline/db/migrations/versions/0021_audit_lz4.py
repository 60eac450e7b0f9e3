"""audit rows' JSON compressed with lz4 (PostgreSQL)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01

An audit row's ``before`` and ``after`` of an allocation (the pool's and the customer's
whole state, the request and the answer) are longer than PostgreSQL's TOAST threshold, so
every one is compressed as it is written; with the default method (pglz) that was 4.5 %
of PostgreSQL's CPU per allocation (``perf`` on the backends, a batched fast path). lz4
compresses several times faster. Rows already written keep their compression until they
are rewritten; both read alike. Skipped where the server was built without lz4 (the
method is then not offered), and on SQLite, which has no such setting.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

COLUMNS = (("audit_events", "before"), ("audit_events", "after"))


def _lz4_offered() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    offered = bind.execute(
        text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return offered is not None and "lz4" in offered


def _compress(method: str) -> None:
    if not _lz4_offered():
        return
    for table, column in COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET COMPRESSION {method}')


def upgrade() -> None:
    _compress("lz4")


def downgrade() -> None:
    _compress("pglz")

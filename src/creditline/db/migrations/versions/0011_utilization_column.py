"""customers.utilization: a generated column and an index for the sort by utilisation

Like ``available_credit`` (0010): the sort by utilisation ordered by a CASE expression
over every match, so a broad search sorted it whole; a plain index on a generated column
(stored on PostgreSQL, virtual on SQLite) lets the page read the matches in order and stop.
An expression index would do on PostgreSQL, but SQLite's reflection cannot see it.

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None

UTILIZATION = (
    "CASE WHEN total_credit > 0 THEN consumed * 1.0 / total_credit "
    "WHEN consumed > 0 THEN 1000000000000000000 ELSE 0 END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite appends the new column to the line of ``available_credit`` in the table's
        # stored CREATE TABLE, and SQLAlchemy's reflection takes each generated column's
        # expression up to the last ")" of its line: available_credit's would swallow this
        # one. A line break before the expression keeps both readable.
        op.execute(
            "ALTER TABLE customers ADD COLUMN utilization DOUBLE GENERATED ALWAYS AS"
            f"\n({UTILIZATION})"
        )
    else:
        op.add_column("customers", sa.Column("utilization", sa.Double(), sa.Computed(UTILIZATION)))
    op.create_index(
        "ix_customers_partner_id_utilization",
        "customers",
        ["partner_id", "utilization"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_customers_partner_id_utilization", table_name="customers")
    # Not a batch (copy-and-rename) on SQLite: its copy would write available_credit, a
    # generated column. SQLite (3.35+) drops a column in place.
    op.drop_column("customers", "utilization")

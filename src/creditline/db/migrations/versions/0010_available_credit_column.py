"""customers.available_credit: a generated column for the sort by available credit

The index on the expression ``(total_credit - consumed)`` becomes a plain index on a
generated column of the same value (stored on PostgreSQL, virtual on SQLite): SQLite's
reflection cannot see expression indexes, so the schema check could not compare it.

Revision ID: 0010
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("available_credit", sa.BigInteger(), sa.Computed("total_credit - consumed")),
    )
    op.drop_index("ix_customers_partner_id_available", table_name="customers")
    op.create_index(
        "ix_customers_partner_id_available_credit",
        "customers",
        ["partner_id", "available_credit"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_customers_partner_id_available_credit", table_name="customers")
    op.create_index(
        "ix_customers_partner_id_available",
        "customers",
        ["partner_id", sa.text("(total_credit - consumed)")],
        unique=False,
    )
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("available_credit")

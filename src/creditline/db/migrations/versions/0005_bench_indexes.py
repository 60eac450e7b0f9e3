"""indexes for the customers search and for filtered allocation-record pages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

A records page filtered by kind or operator walked the partner's records newest first
and discarded the others: at 5,000,000 records a rare kind (a grant) read them all.
These keep every filtered page a short index range, as the unfiltered one already is.

The customers page searches name, email and remark for a fragment (``ILIKE '%x%'``),
which no B-tree can serve: at 100,000 customers it read every one of them twice (rows and
total). On PostgreSQL a trigram GIN index (``pg_trgm``) answers it; SQLite has no such
index, so there the same name holds a plain index on the three columns (the declared
schema is one for both engines, and SQLite leaves an index alone on updates that do not
touch its columns).
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


SEARCH_INDEX = "ix_customers_name_email_remark"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            SEARCH_INDEX,
            "customers",
            ["name", "email", "remark"],
            postgresql_using="gin",
            postgresql_ops=dict.fromkeys(("name", "email", "remark"), "gin_trgm_ops"),
        )
    else:
        op.create_index(SEARCH_INDEX, "customers", ["name", "email", "remark"])
    op.create_index(
        "ix_allocation_records_partner_id_kind_id",
        "allocation_records",
        ["partner_id", "kind", "id"],
    )
    op.create_index(
        "ix_allocation_records_partner_id_operator_id",
        "allocation_records",
        ["partner_id", "operator", "id"],
    )


def downgrade() -> None:
    op.drop_index(SEARCH_INDEX, "customers")
    op.drop_index("ix_allocation_records_partner_id_operator_id", "allocation_records")
    op.drop_index("ix_allocation_records_partner_id_kind_id", "allocation_records")

"""indexes for filtered allocation-record pages (kind, operator) at millions of records

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-26

A records page filtered by kind or operator walked the partner's records newest first
and discarded the others: at 5,000,000 records a rare kind (a grant) read them all.
These keep every filtered page a short index range, as the unfiltered one already is.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    op.drop_index("ix_allocation_records_partner_id_operator_id", "allocation_records")
    op.drop_index("ix_allocation_records_partner_id_kind_id", "allocation_records")

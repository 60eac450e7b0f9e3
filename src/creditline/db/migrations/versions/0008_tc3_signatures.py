"""signatures of Tencent-compatible writes already used (replay protection)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tc3_signatures",
        sa.Column("signature_hash", sa.String(length=64), nullable=False),
        sa.Column("secret_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature_hash", name=op.f("pk_tc3_signatures")),
    )
    with op.batch_alter_table("tc3_signatures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tc3_signatures_secret_id_expires_at", ["secret_id", "expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tc3_signatures", schema=None) as batch_op:
        batch_op.drop_index("ix_tc3_signatures_secret_id_expires_at")
    op.drop_table("tc3_signatures")

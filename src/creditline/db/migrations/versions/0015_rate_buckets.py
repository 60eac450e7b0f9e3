"""rate_buckets: per-key rate limits counted in the database, shared by every server

Until now each ``creditline serve`` process kept its own token buckets in memory, so N
processes behind a load balancer let a key through N times its limit. One row per API key
and scope (``api``, ``tc3:<Action>``) holds the shared bucket; processes lease tokens from
it in chunks (creditline.auth.rate_limit). A new table: existing data is untouched, and the
buckets start full, as a restarted process's did.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("secret_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("refilled_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("secret_id", "scope", name=op.f("pk_rate_buckets")),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")

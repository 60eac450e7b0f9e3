"""customers by UIN: an index for the look-ups that name a customer by its UIN alone

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01

The vendor's order pipeline (the platform key) asks the purchase check about a customer
by its UIN alone, and so do the billing feed's usage batches and the platform's tools:
the customers' primary key leads with ``partner_id``, so each of those look-ups read
every customer (a sequential scan). A plain index on ``uin`` makes each an index scan.
Not unique: a UIN is one customer's already (each customer takes a new account's UIN),
and a unique index without ``partner_id`` could not be kept on a database distributed
by partner (creditline.db.distribution).
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

INDEX = "ix_customers_uin"


def upgrade() -> None:
    op.create_index(INDEX, "customers", ["uin"])


def downgrade() -> None:
    op.drop_index(INDEX, "customers")

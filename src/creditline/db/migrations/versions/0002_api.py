"""API: keys, idempotency, credit applications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "api_keys",
        _id(),
        sa.Column("secret_id", sa.String(length=64), nullable=False),
        sa.Column("secret_encrypted", sa.String(length=512), nullable=False),
        sa.Column("principal", sa.String(length=16), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=True),
        sa.Column("customer_uin", sa.BigInteger(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(principal = 'platform' AND partner_id IS NULL AND customer_uin IS NULL"
            " AND role IS NULL)"
            " OR (principal = 'partner' AND partner_id IS NOT NULL AND customer_uin IS NULL"
            " AND role IS NOT NULL)"
            " OR (principal = 'customer' AND partner_id IS NOT NULL"
            " AND customer_uin IS NOT NULL AND role IS NULL)",
            name=op.f("ck_api_keys_principal_shape"),
        ),
        sa.CheckConstraint(
            "principal IN ('platform', 'partner', 'customer')", name=op.f("ck_api_keys_principal")
        ),
        sa.CheckConstraint(
            "role IS NULL OR role IN ('admin', 'operator', 'viewer')", name=op.f("ck_api_keys_role")
        ),
        sa.ForeignKeyConstraint(
            ["customer_uin"], ["customers.uin"], name=op.f("fk_api_keys_customer_uin_customers")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_api_keys_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("secret_id", name=op.f("uq_api_keys_secret_id")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_partner_id_id", ["partner_id", "id"], unique=False)

    op.create_table(
        "idempotent_requests",
        _id(),
        sa.Column("api_key_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=True),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_idempotent_requests_api_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_idempotent_requests_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotent_requests")),
        sa.UniqueConstraint(
            "api_key_id", "key", name=op.f("uq_idempotent_requests_api_key_id_key")
        ),
    )
    with op.batch_alter_table("idempotent_requests", schema=None) as batch_op:
        batch_op.create_index("ix_idempotent_requests_created_at", ["created_at"], unique=False)

    op.create_table(
        "credit_applications",
        _id(),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("decider_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')",
            name=op.f("ck_credit_applications_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_credit_applications_amount_positive")),
        sa.ForeignKeyConstraint(
            ["decider_id"], ["partners.id"], name=op.f("fk_credit_applications_decider_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_credit_applications_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["allocation_records.id"],
            name=op.f("fk_credit_applications_record_id_allocation_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_applications")),
    )
    with op.batch_alter_table("credit_applications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credit_applications_decider_id_status", ["decider_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_credit_applications_partner_id_id", ["partner_id", "id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("credit_applications")
    op.drop_table("idempotent_requests")
    op.drop_table("api_keys")

"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column(
            "uin",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False, start=100000000001),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('partner', 'customer')", name=op.f("ck_accounts_kind")),
        sa.PrimaryKeyConstraint("uin", name=op.f("pk_accounts")),
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite has no identity start: seed AUTOINCREMENT so UINs begin at 100000000001.
        op.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('accounts', 100000000000)")
    op.create_table(
        "partners",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("pool_total", sa.BigInteger(), nullable=False),
        sa.Column("pool_allocated", sa.BigInteger(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'sub-reseller') = (parent_id IS NOT NULL)",
            name=op.f("ck_partners_parent_only_for_sub"),
        ),
        sa.CheckConstraint(
            "kind IN ('distributor', 'reseller', 'sub-reseller')", name=op.f("ck_partners_kind")
        ),
        sa.CheckConstraint("pool_allocated >= 0", name=op.f("ck_partners_allocated_not_negative")),
        sa.CheckConstraint(
            "pool_total >= pool_allocated", name=op.f("ck_partners_remaining_not_negative")
        ),
        sa.ForeignKeyConstraint(["id"], ["accounts.uin"], name=op.f("fk_partners_id_accounts")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["partners.id"], name=op.f("fk_partners_parent_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
    )
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.create_index("ix_partners_parent_id", ["parent_id"], unique=False)

    op.create_table(
        "customers",
        sa.Column("uin", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("mobile", sa.String(length=40), nullable=False),
        sa.Column("remark", sa.String(length=500), nullable=False),
        sa.Column("identity_status", sa.Integer(), nullable=False),
        sa.Column("associated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total_credit", sa.BigInteger(), nullable=False),
        sa.Column("consumed", sa.BigInteger(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=True),
        sa.Column("fired_thresholds", sa.JSON(), nullable=False),
        sa.Column("last_alarm_threshold", sa.Integer(), nullable=True),
        sa.Column("last_alarm_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("type IN ('personal', 'company')", name=op.f("ck_customers_type")),
        sa.CheckConstraint(
            "identity_status IN (0, 1, 2)", name=op.f("ck_customers_identity_status")
        ),
        sa.CheckConstraint(
            "total_credit >= 0", name=op.f("ck_customers_total_credit_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_customers_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(["uin"], ["accounts.uin"], name=op.f("fk_customers_uin_accounts")),
        sa.PrimaryKeyConstraint("uin", name=op.f("pk_customers")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customers_partner_id_associated_at",
            ["partner_id", "associated_at", "uin"],
            unique=False,
        )
        batch_op.create_index(
            "ix_customers_partner_id_available",
            ["partner_id", sa.text("(total_credit - consumed)")],
            unique=False,
        )

    op.create_table(
        "outbox_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_outbox_events_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_events_delivered_at_id", ["delivered_at", "id"], unique=False
        )

    op.create_table(
        "alarms",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_uin", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("thresholds_reached", sa.JSON(), nullable=False),
        sa.Column("total_credit", sa.BigInteger(), nullable=False),
        sa.Column("consumed", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_uin"], ["customers.uin"], name=op.f("fk_alarms_customer_uin_customers")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_alarms_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alarms_partner_id_customer_uin_id",
            ["partner_id", "customer_uin", "id"],
            unique=False,
        )
        batch_op.create_index("ix_alarms_partner_id_id", ["partner_id", "id"], unique=False)

    op.create_table(
        "allocation_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_uin", sa.BigInteger(), nullable=True),
        sa.Column("sub_partner_id", sa.BigInteger(), nullable=True),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("change", sa.BigInteger(), nullable=False),
        sa.Column("total_after", sa.BigInteger(), nullable=False),
        sa.Column("available_after", sa.BigInteger(), nullable=False),
        sa.Column("remark", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('grant', 'pool_allocation', 'allocation', 'withdrawal')",
            name=op.f("ck_allocation_records_kind"),
        ),
        sa.CheckConstraint(
            "source IN ('console', 'api', 'tc3', 'cli', 'bulk', 'demo')",
            name=op.f("ck_allocation_records_source"),
        ),
        sa.CheckConstraint("change <> 0", name=op.f("ck_allocation_records_change_not_zero")),
        sa.ForeignKeyConstraint(
            ["customer_uin"],
            ["customers.uin"],
            name=op.f("fk_allocation_records_customer_uin_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_allocation_records_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["sub_partner_id"],
            ["partners.id"],
            name=op.f("fk_allocation_records_sub_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_records")),
    )
    with op.batch_alter_table("allocation_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_allocation_records_partner_id_customer_uin_id",
            ["partner_id", "customer_uin", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_allocation_records_partner_id_id", ["partner_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_allocation_records_sub_partner_id", ["sub_partner_id"], unique=False
        )

    op.create_table(
        "usage_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_uin", sa.BigInteger(), nullable=False),
        sa.Column("product", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("list_amount", sa.BigInteger(), nullable=False),
        sa.Column("voucher_amount", sa.BigInteger(), nullable=False),
        sa.Column("counted", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "counted = CASE WHEN kind = 'refund' THEN voucher_amount - list_amount "
            "ELSE list_amount - voucher_amount END",
            name=op.f("ck_usage_events_counted_rule"),
        ),
        sa.CheckConstraint("kind IN ('charge', 'refund')", name=op.f("ck_usage_events_kind")),
        sa.CheckConstraint("list_amount >= 0", name=op.f("ck_usage_events_list_not_negative")),
        sa.CheckConstraint(
            "voucher_amount <= list_amount", name=op.f("ck_usage_events_voucher_within_list")
        ),
        sa.CheckConstraint(
            "voucher_amount >= 0", name=op.f("ck_usage_events_voucher_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["customer_uin"], ["customers.uin"], name=op.f("fk_usage_events_customer_uin_customers")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_usage_events_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_usage_events_event_id")),
    )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_events_partner_id_customer_uin_occurred_at",
            ["partner_id", "customer_uin", "occurred_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_events_partner_id_customer_uin_occurred_at")

    op.drop_table("usage_events")
    with op.batch_alter_table("allocation_records", schema=None) as batch_op:
        batch_op.drop_index("ix_allocation_records_sub_partner_id")
        batch_op.drop_index("ix_allocation_records_partner_id_id")
        batch_op.drop_index("ix_allocation_records_partner_id_customer_uin_id")

    op.drop_table("allocation_records")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_alarms_partner_id_id")
        batch_op.drop_index("ix_alarms_partner_id_customer_uin_id")

    op.drop_table("alarms")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_delivered_at_id")

    op.drop_table("outbox_events")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_partner_id_available")
        batch_op.drop_index("ix_customers_partner_id_associated_at")

    op.drop_table("customers")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_index("ix_partners_parent_id")

    op.drop_table("partners")
    op.drop_table("accounts")

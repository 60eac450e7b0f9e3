"""purchase checks: the partner's purchase policies and the decisions of the check

A partner may now restrict a customer's new purchases (issue 17): a default policy and
tolerance per partner (``partner_purchase_policies``), a customer's own policy
(``customer_purchase_policies``), and every answer of ``POST
/v1/customers/{uin}/purchase-checks`` kept in ``purchase_checks``. Three new tables and
nothing else: no stored row changes, and without a policy row every customer is
``notify_only`` — never restricted, as before.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_POLICY_IN = "policy IN ('notify_only', 'block_at_limit', 'block_all')"


def upgrade() -> None:
    op.create_table(
        "partner_purchase_policies",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("tolerance", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_POLICY_IN, name=op.f("ck_partner_purchase_policies_policy")),
        sa.CheckConstraint(
            "tolerance >= 0", name=op.f("ck_partner_purchase_policies_tolerance_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_purchase_policies_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_partner_purchase_policies")),
    )
    op.create_table(
        "customer_purchase_policies",
        sa.Column("customer_uin", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("tolerance", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_POLICY_IN, name=op.f("ck_customer_purchase_policies_policy")),
        sa.CheckConstraint(
            "tolerance >= 0", name=op.f("ck_customer_purchase_policies_tolerance_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id", "customer_uin"],
            ["customers.partner_id", "customers.uin"],
            name=op.f("fk_customer_purchase_policies_partner_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_customer_purchase_policies_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint(
            "partner_id", "customer_uin", name=op.f("pk_customer_purchase_policies")
        ),
    )
    op.create_table(
        "purchase_checks",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_uin", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("product", sa.String(length=100), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("tolerance", sa.BigInteger(), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("answer", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_POLICY_IN, name=op.f("ck_purchase_checks_policy")),
        sa.CheckConstraint(
            "answer IN ('allowed', 'refused')", name=op.f("ck_purchase_checks_answer")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_purchase_checks_amount_positive")),
        sa.CheckConstraint(
            "tolerance >= 0", name=op.f("ck_purchase_checks_tolerance_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id", "customer_uin"],
            ["customers.partner_id", "customers.uin"],
            name=op.f("fk_purchase_checks_partner_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_purchase_checks_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("partner_id", "id", name=op.f("pk_purchase_checks")),
    )
    op.create_index(
        "ix_purchase_checks_partner_id_customer_uin_id",
        "purchase_checks",
        ["partner_id", "customer_uin", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_purchase_checks_partner_id_customer_uin_id", table_name="purchase_checks")
    op.drop_table("purchase_checks")
    op.drop_table("customer_purchase_policies")
    op.drop_table("partner_purchase_policies")

"""automatic top-ups: rules, each month's tally, allocation records of source ``rule``

Issue 16.4: a partner's default top-up rule (``partner_top_up_rules``), customers' own
rules or "off" (``customer_top_up_rules``), and each customer's top-ups per calendar month
(``top_up_months``, the row the monthly cap is held on). A top-up is recorded as an
allocation whose source is ``rule``: the allocation records' CHECK on ``source`` gains it
(SQLite copies the table to change a CHECK; no table refers to it). New tables start
empty: no partner has a rule until it sets one, so nothing changes for existing data. The
downgrade is refused while a record of source ``rule`` exists (it would break the CHECK).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

SOURCES = "source IN ('console', 'api', 'tc3', 'cli', 'bulk', 'demo', 'rule')"
OLD_SOURCES = "source IN ('console', 'api', 'tc3', 'cli', 'bulk', 'demo')"
ONE_TRIGGER = "(below IS NULL) <> (utilization_percent IS NULL)"


def _rule_checks(table: str) -> list[sa.CheckConstraint]:
    return [
        sa.CheckConstraint("amount > 0", name=op.f(f"ck_{table}_amount_positive")),
        sa.CheckConstraint("monthly_cap >= amount", name=op.f(f"ck_{table}_cap_holds_one_top_up")),
        sa.CheckConstraint(
            "ceiling IS NULL OR ceiling >= amount",
            name=op.f(f"ck_{table}_ceiling_holds_one_top_up"),
        ),
        sa.CheckConstraint(
            "utilization_percent IS NULL OR utilization_percent BETWEEN 1 AND 1000",
            name=op.f(f"ck_{table}_utilization_percent"),
        ),
        sa.CheckConstraint(
            "below IS NULL OR below >= 0", name=op.f(f"ck_{table}_below_not_negative")
        ),
    ]


def _sources(check: str) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "allocation_records", recreate="always" if sqlite else "auto"
    ) as batch:
        batch.drop_constraint(op.f("ck_allocation_records_source"), type_="check")
        batch.create_check_constraint("source", check)


def upgrade() -> None:
    _sources(SOURCES)
    op.create_table(
        "partner_top_up_rules",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("below", sa.BigInteger(), nullable=True),
        sa.Column("utilization_percent", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("monthly_cap", sa.BigInteger(), nullable=False),
        sa.Column("ceiling", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(ONE_TRIGGER, name=op.f("ck_partner_top_up_rules_one_trigger")),
        *_rule_checks("partner_top_up_rules"),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_top_up_rules_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_partner_top_up_rules")),
    )
    op.create_table(
        "customer_top_up_rules",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_uin", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("below", sa.BigInteger(), nullable=True),
        sa.Column("utilization_percent", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("monthly_cap", sa.BigInteger(), nullable=True),
        sa.Column("ceiling", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            f"(enabled AND {ONE_TRIGGER} AND amount IS NOT NULL AND monthly_cap IS NOT NULL)"
            " OR (NOT enabled AND below IS NULL AND utilization_percent IS NULL"
            " AND amount IS NULL AND monthly_cap IS NULL AND ceiling IS NULL)",
            name=op.f("ck_customer_top_up_rules_rule_or_off"),
        ),
        *_rule_checks("customer_top_up_rules"),
        sa.ForeignKeyConstraint(
            ["partner_id", "customer_uin"],
            ["customers.partner_id", "customers.uin"],
            name=op.f("fk_customer_top_up_rules_partner_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_customer_top_up_rules_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint(
            "partner_id", "customer_uin", name=op.f("pk_customer_top_up_rules")
        ),
    )
    op.create_table(
        "top_up_months",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_uin", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("topped_up", sa.BigInteger(), nullable=False),
        sa.Column("top_ups", sa.Integer(), nullable=False),
        sa.Column("cap", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("topped_up >= 0", name=op.f("ck_top_up_months_topped_up_not_negative")),
        sa.CheckConstraint("topped_up <= cap", name=op.f("ck_top_up_months_within_cap")),
        sa.CheckConstraint(
            "refused IS NULL OR refused IN ('pool_short', 'monthly_cap', 'ceiling')",
            name=op.f("ck_top_up_months_refused"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id", "customer_uin"],
            ["customers.partner_id", "customers.uin"],
            name=op.f("fk_top_up_months_partner_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_top_up_months_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint(
            "partner_id", "customer_uin", "month", name=op.f("pk_top_up_months")
        ),
    )


def downgrade() -> None:
    if (
        op.get_bind()
        .execute(sa.text("SELECT 1 FROM allocation_records WHERE source = 'rule' LIMIT 1"))
        .first()
    ):
        raise RuntimeError(
            "allocation records of source 'rule' exist (automatic top-ups); "
            "revision 0015 has no such source"
        )
    op.drop_table("top_up_months")
    op.drop_table("customer_top_up_rules")
    op.drop_table("partner_top_up_rules")
    _sources(OLD_SOURCES)

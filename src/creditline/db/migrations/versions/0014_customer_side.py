"""the customer's side: customer logins, what partners show and send to customers

Customers see their own account (issue 17): a console user may now be a customer's
user (``users.role = 'customer'`` with ``users.customer_uin``); each partner's settings
for its customers (the statements' time zone, remarks in the allocation history, whether
customers receive their own alarms, the contact named to them) live in
``customer_view_settings``, a customer's own override of the alarm setting in
``customer_alarm_settings``, and the alarms a customer received in ``customer_alarms``.
Existing users keep their roles; existing partners start with the defaults (UTC, amounts
only, no customer alarms), which is what they had.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ROLES = "role IN ('admin', 'operator', 'viewer', 'platform', 'customer')"
OLD_ROLES = "role IN ('admin', 'operator', 'viewer', 'platform')"
CUSTOMER_HAS_UIN = "(role = 'customer') = (customer_uin IS NOT NULL)"


def _users(roles: str, *, with_customer: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # SQLite rebuilds the table to change a CHECK; with foreign keys on, dropping the
        # old table would delete every console session (ON DELETE CASCADE): keep them.
        op.execute("CREATE TEMP TABLE saved_console_sessions AS SELECT * FROM console_sessions")
    with op.batch_alter_table("users", recreate="always" if sqlite else "auto") as batch:
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        if with_customer:
            # No foreign key: users are local, customers distributed (db/distribution.py).
            batch.add_column(sa.Column("customer_uin", sa.BigInteger(), nullable=True))
            batch.create_check_constraint("customer_has_uin", CUSTOMER_HAS_UIN)
        else:
            batch.drop_constraint(op.f("ck_users_customer_has_uin"), type_="check")
            batch.drop_column("customer_uin")
        batch.create_check_constraint("role", roles)
    if sqlite:
        op.execute(
            "INSERT INTO console_sessions SELECT * FROM saved_console_sessions"
            " WHERE token_hash NOT IN (SELECT token_hash FROM console_sessions)"
        )
        op.execute("DROP TABLE saved_console_sessions")


def upgrade() -> None:
    _users(ROLES, with_customer=True)
    op.create_table(
        "customer_view_settings",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("show_remarks", sa.Boolean(), nullable=False),
        sa.Column("customer_alarms", sa.Boolean(), nullable=False),
        sa.Column("contact", sa.String(length=320), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_customer_view_settings_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_customer_view_settings")),
    )
    op.create_table(
        "customer_alarm_settings",
        sa.Column("customer_uin", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id", "customer_uin"],
            ["customers.partner_id", "customers.uin"],
            name=op.f("fk_customer_alarm_settings_partner_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_customer_alarm_settings_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint(
            "partner_id", "customer_uin", name=op.f("pk_customer_alarm_settings")
        ),
    )
    op.create_table(
        "customer_alarms",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_uin", sa.BigInteger(), nullable=False),
        sa.Column("alarm_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id", "alarm_id"],
            ["alarms.partner_id", "alarms.id"],
            name=op.f("fk_customer_alarms_partner_id_alarms"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id", "customer_uin"],
            ["customers.partner_id", "customers.uin"],
            name=op.f("fk_customer_alarms_partner_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_customer_alarms_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("partner_id", "id", name=op.f("pk_customer_alarms")),
        sa.UniqueConstraint(
            "partner_id", "alarm_id", name=op.f("uq_customer_alarms_partner_id_alarm_id")
        ),
    )
    op.create_index(
        "ix_customer_alarms_partner_id_customer_uin_id",
        "customer_alarms",
        ["partner_id", "customer_uin", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_customer_alarms_partner_id_customer_uin_id", table_name="customer_alarms")
    op.drop_table("customer_alarms")
    op.drop_table("customer_alarm_settings")
    op.drop_table("customer_view_settings")
    op.execute(
        "DELETE FROM console_sessions WHERE user_id IN"
        " (SELECT id FROM users WHERE role = 'customer')"
    )
    op.execute("DELETE FROM users WHERE role = 'customer'")
    _users(OLD_ROLES, with_customer=False)

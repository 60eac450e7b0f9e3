"""audit log; webhook signing secrets encrypted at rest

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("principal", sa.String(length=400), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=200), nullable=False),
        sa.Column("object", sa.String(length=500), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("before", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("after", sa.JSON(none_as_null=True), nullable=True),
        sa.CheckConstraint(
            "source IN ('api', 'tc3', 'console', 'cli')", name=op.f("ck_audit_events_source")
        ),
        sa.CheckConstraint("outcome IN ('ok', 'refused')", name=op.f("ck_audit_events_outcome")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_partner_id_id", ["partner_id", "id"], unique=False)

    # Webhook signing secrets are kept encrypted with the server key (as API secrets are):
    # the columns grow to hold the ciphertext, and the secrets already stored are encrypted.
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=100), type_=sa.String(length=400)
        )
        batch_op.alter_column(
            "previous_secret",
            existing_type=sa.String(length=100),
            type_=sa.String(length=400),
            existing_nullable=True,
        )
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, secret, previous_secret FROM webhook_endpoints")).all()
    if rows:
        from creditline.auth import server_key

        for row in rows:
            bind.execute(
                sa.text(
                    "UPDATE webhook_endpoints SET secret = :secret, previous_secret = :previous "
                    "WHERE id = :id"
                ),
                {
                    "id": row.id,
                    "secret": server_key.encrypt(bind.engine, row.secret),
                    "previous": None
                    if row.previous_secret is None
                    else server_key.encrypt(bind.engine, row.previous_secret),
                },
            )


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, secret, previous_secret FROM webhook_endpoints")).all()
    if rows:
        from creditline.auth import server_key

        for row in rows:
            bind.execute(
                sa.text(
                    "UPDATE webhook_endpoints SET secret = :secret, previous_secret = :previous "
                    "WHERE id = :id"
                ),
                {
                    "id": row.id,
                    "secret": server_key.decrypt(bind.engine, row.secret),
                    "previous": None
                    if row.previous_secret is None
                    else server_key.decrypt(bind.engine, row.previous_secret),
                },
            )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=400), type_=sa.String(length=100)
        )
        batch_op.alter_column(
            "previous_secret",
            existing_type=sa.String(length=400),
            type_=sa.String(length=100),
            existing_nullable=True,
        )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_partner_id_id")
    op.drop_table("audit_events")

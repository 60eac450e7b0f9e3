"""usage events' customer key checked at COMMIT

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01

A usage batch inserts its events first and only then locks its customers and adds their
consumption (creditline.ledger.usage). The check of each event's customer key took a
share lock on the customer's row at the INSERT; when two batches share customers (two
batches of the billing feed share most of them), the second's share lock joined the
first's, and every lock and update of those rows after it went through a multixact
(a list of the transactions holding the row): 6 % more of PostgreSQL's CPU per batch
under the usage load (docs/benchmarks.md, run 21). Checked at COMMIT, the lock falls on
the row version the batch has just written itself, which no other transaction holds: no
multixact. What the key guarantees is unchanged: a transaction that would leave an event
without its customer fails at its COMMIT. SQLite copies the table (it cannot alter a
constraint).
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

TABLE = "usage_events"
NAME = "fk_usage_events_partner_id_customers"


def _key(deferred: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        when = "DEFERRABLE INITIALLY DEFERRED" if deferred else "NOT DEFERRABLE"
        op.execute(f"ALTER TABLE {TABLE} ALTER CONSTRAINT {NAME} {when}")
        return
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        batch.drop_constraint(NAME, type_="foreignkey")
        batch.create_foreign_key(
            NAME,
            "customers",
            ["partner_id", "customer_uin"],
            ["partner_id", "uin"],
            deferrable=True if deferred else None,
            initially="DEFERRED" if deferred else None,
        )


def upgrade() -> None:
    _key(deferred=True)


def downgrade() -> None:
    _key(deferred=False)

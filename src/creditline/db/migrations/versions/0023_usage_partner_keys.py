"""usage events' and daily totals' partner held by their customer key alone

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01

A usage event and a customer's daily total each had two foreign keys: to their customer
(``partner_id, customer_uin`` -> ``customers``) and to their partner (``partner_id`` ->
``partners``). The second says nothing the first does not: the customer's row holds the
same ``partner_id`` under its own key to ``partners``, so no event or daily total can name
a partner that does not exist. It cost one check per row: a usage batch's INSERT of its
1,000 events ran the partner's check 1,000 times, about a third of the INSERT's time;
without it the suite's usage load took 13 % less of PostgreSQL's CPU per batch
(docs/benchmarks.md, run 23). The customer keys stay as they are (the events' checked at
COMMIT, migration 0022). SQLite copies the tables (it cannot drop a constraint).
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

KEYS = (
    ("usage_events", "fk_usage_events_partner_id_partners"),
    ("usage_daily", "fk_usage_daily_partner_id_partners"),
)


def upgrade() -> None:
    for table, name in KEYS:
        if op.get_bind().dialect.name == "postgresql":
            op.drop_constraint(name, table, type_="foreignkey")
            continue
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    for table, name in KEYS:
        if op.get_bind().dialect.name == "postgresql":
            op.create_foreign_key(name, table, "partners", ["partner_id"], ["id"])
            continue
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.create_foreign_key(name, "partners", ["partner_id"], ["id"])

"""the customers search's trigram index in a table of its own, off the credit's path

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01

A customer's row changes with every allocation, withdrawal and usage batch, and never in
place: its sort columns (available credit, utilisation, projected exhaustion) are indexed,
so PostgreSQL writes a new entry into every index of the table, the search's trigram GIN
index on name, email and remark included (some sixty trigrams per customer), although
those three never change with credit. Measured on a 630-customer usage update: 37 to 45 ms
with the GIN index, 24 ms without; a one-statement allocation at 16 clients: about 10 %
of PostgreSQL's CPU.

``customer_search`` holds each customer's name, email and remark (one row per customer,
by its key) and carries the search's index instead; triggers keep it equal to
``customers`` on insert, on delete, and on an update that names one of its columns (a
credit change names none, and fires nothing). The search reads the matches from it
(ledger.customers). As in 0005, SQLite's index of the same name is a plain one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

OLD_INDEX = "ix_customers_name_email_remark"
INDEX = "ix_customer_search_name_email_remark"
SEARCHED = ("name", "email", "remark")

_COLUMNS = "partner_id, uin, name, email, remark"
_NEW = "NEW.partner_id, NEW.uin, NEW.name, NEW.email, NEW.remark"
_FORGET_OLD = "DELETE FROM customer_search WHERE partner_id = OLD.partner_id AND uin = OLD.uin;"

POSTGRESQL = [
    f"""
CREATE FUNCTION creditline_customer_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    {_FORGET_OLD}
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO customer_search ({_COLUMNS}) VALUES ({_NEW});
  END IF;
  RETURN NULL;
END
$$""",
    """
CREATE TRIGGER customer_search_kept
AFTER INSERT OR DELETE OR UPDATE OF partner_id, uin, name, email, remark ON customers
FOR EACH ROW EXECUTE FUNCTION creditline_customer_search()""",
]

SQLITE = [
    f"""
CREATE TRIGGER customer_search_inserted AFTER INSERT ON customers BEGIN
  INSERT INTO customer_search ({_COLUMNS}) VALUES ({_NEW});
END""",
    f"""
CREATE TRIGGER customer_search_updated
AFTER UPDATE OF partner_id, uin, name, email, remark ON customers BEGIN
  {_FORGET_OLD}
  INSERT INTO customer_search ({_COLUMNS}) VALUES ({_NEW});
END""",
    f"""
CREATE TRIGGER customer_search_deleted AFTER DELETE ON customers BEGIN
  {_FORGET_OLD}
END""",
]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "customer_search",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("uin", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("remark", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "uin", name=op.f("pk_customer_search")),
    )
    op.execute(f"INSERT INTO customer_search ({_COLUMNS}) SELECT {_COLUMNS} FROM customers")
    op.drop_index(OLD_INDEX, "customers")
    if postgresql:
        op.create_index(
            INDEX,
            "customer_search",
            list(SEARCHED),
            postgresql_using="gin",
            postgresql_ops=dict.fromkeys(SEARCHED, "gin_trgm_ops"),
        )
    else:
        op.create_index(INDEX, "customer_search", list(SEARCHED))
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("DROP TRIGGER IF EXISTS customer_search_kept ON customers")
        op.execute("DROP FUNCTION IF EXISTS creditline_customer_search()")
        op.create_index(
            OLD_INDEX,
            "customers",
            list(SEARCHED),
            postgresql_using="gin",
            postgresql_ops=dict.fromkeys(SEARCHED, "gin_trgm_ops"),
        )
    else:
        for trigger in ("inserted", "updated", "deleted"):
            op.execute(f"DROP TRIGGER IF EXISTS customer_search_{trigger}")
        op.create_index(OLD_INDEX, "customers", list(SEARCHED))
    op.drop_table("customer_search")

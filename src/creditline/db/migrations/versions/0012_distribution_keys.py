"""Keys that distribute: every key of a partner's table holds partner_id

So that the schema can be distributed by Citus unchanged (classes in
``creditline.db.distribution``): every primary and unique key of a distributed table
includes ``partner_id`` (an event id is now unique per partner, an idempotency key per
partner and API key, a delivery per partner, event and target); every foreign key between
two distributed tables includes it on both sides; foreign keys that cross partners (a
sub-reseller's distributor, a pool allocation's sub-reseller, an application's decider and
record) or join a coordinator-local table (API keys, users, sessions) to a distributed one
are dropped; ``partner_id`` of idempotency and audit rows is never NULL (0 for the
platform's own). The indexes on ``(partner_id, id)`` become the primary keys.

Rows are kept. On SQLite, whose tables change only by being copied (batch mode), the
copies are made with the tables emptied, children first, and refilled parents first: a
table cannot be replaced while rows of another refer to it. There a generated ``id`` stays
the rowid, beside a unique ``(partner_id, id)``.

One way only: once two partners hold one event id, the old global key cannot come back.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

PLATFORM = 0

#: Foreign keys dropped: they cross partners or join a local table to a distributed one,
#: or become composite below.
DROPPED_FKS = {
    "partners": ["fk_partners_parent_id_partners"],
    "allocation_records": [
        "fk_allocation_records_customer_uin_customers",
        "fk_allocation_records_sub_partner_id_partners",
    ],
    "usage_events": ["fk_usage_events_customer_uin_customers"],
    "alarms": ["fk_alarms_customer_uin_customers"],
    "api_keys": ["fk_api_keys_partner_id_partners", "fk_api_keys_customer_uin_customers"],
    "idempotent_requests": [
        "fk_idempotent_requests_api_key_id_api_keys",
        "fk_idempotent_requests_partner_id_partners",
    ],
    "credit_applications": [
        "fk_credit_applications_decider_id_partners",
        "fk_credit_applications_record_id_allocation_records",
    ],
    "users": ["fk_users_partner_id_partners"],
    "console_sessions": ["fk_console_sessions_partner_id_partners"],
    "deliveries": [
        "fk_deliveries_event_id_outbox_events",
        "fk_deliveries_endpoint_id_webhook_endpoints",
    ],
    "delivery_attempts": ["fk_delivery_attempts_delivery_id_deliveries"],
    "partner_notices": ["fk_partner_notices_endpoint_id_webhook_endpoints"],
}

#: Composite foreign keys added: (table, name, columns, referred table, referred, ondelete).
ADDED_FKS = [
    (
        "allocation_records",
        "fk_allocation_records_partner_id_customers",
        ["partner_id", "customer_uin"],
        "customers",
        ["partner_id", "uin"],
        None,
    ),
    (
        "usage_events",
        "fk_usage_events_partner_id_customers",
        ["partner_id", "customer_uin"],
        "customers",
        ["partner_id", "uin"],
        None,
    ),
    (
        "alarms",
        "fk_alarms_partner_id_customers",
        ["partner_id", "customer_uin"],
        "customers",
        ["partner_id", "uin"],
        None,
    ),
    (
        "deliveries",
        "fk_deliveries_partner_id_outbox_events",
        ["partner_id", "event_id"],
        "outbox_events",
        ["partner_id", "id"],
        None,
    ),
    (
        "deliveries",
        "fk_deliveries_partner_id_webhook_endpoints",
        ["partner_id", "endpoint_id"],
        "webhook_endpoints",
        ["partner_id", "id"],
        None,
    ),
    (
        "delivery_attempts",
        "fk_delivery_attempts_partner_id_deliveries",
        ["partner_id", "delivery_id"],
        "deliveries",
        ["partner_id", "id"],
        "CASCADE",
    ),
    (
        "partner_notices",
        "fk_partner_notices_partner_id_webhook_endpoints",
        ["partner_id", "endpoint_id"],
        "webhook_endpoints",
        ["partner_id", "id"],
        None,
    ),
]

#: Unique keys replaced: table -> (old name, new name, new columns).
UNIQUES = {
    "usage_events": (
        "uq_usage_events_event_id",
        "uq_usage_events_partner_id_event_id",
        ["partner_id", "event_id"],
    ),
    "idempotent_requests": (
        "uq_idempotent_requests_api_key_id_key",
        "uq_idempotent_requests_partner_id_api_key_id_key",
        ["partner_id", "api_key_id", "key"],
    ),
    "deliveries": (
        "uq_deliveries_event_id_target",
        "uq_deliveries_partner_id_event_id_target",
        ["partner_id", "event_id", "target"],
    ),
}

#: Tables keyed (partner_id, id) from now on; their index on (partner_id, id), where they
#: had one, is the primary key's now.
KEYED_BY_ID = {
    "allocation_records": "ix_allocation_records_partner_id_id",
    "usage_events": None,
    "alarms": "ix_alarms_partner_id_id",
    "outbox_events": None,
    "idempotent_requests": None,
    "credit_applications": "ix_credit_applications_partner_id_id",
    "webhook_endpoints": "ix_webhook_endpoints_partner_id_id",
    "deliveries": None,
    "delivery_attempts": None,
    "partner_notices": "ix_partner_notices_partner_id_id",
    "audit_events": "ix_audit_events_partner_id_id",
}

#: Whose partner_id is never NULL from now on (the platform's rows: 0).
NOT_NULL = ["idempotent_requests", "audit_events"]

#: Every table SQLite copies, parents before children.
SQLITE_ORDER = [
    "partners",
    "customers",
    "allocation_records",
    "usage_events",
    "alarms",
    "outbox_events",
    "api_keys",
    "idempotent_requests",
    "credit_applications",
    "users",
    "console_sessions",
    "notification_settings",
    "webhook_endpoints",
    "deliveries",
    "delivery_attempts",
    "partner_notices",
    "audit_events",
]

CUSTOMERS_GENERATED = ["available_credit", "utilization"]
UTILIZATION = (
    "CASE WHEN total_credit > 0 THEN consumed * 1.0 / total_credit "
    "WHEN consumed > 0 THEN 1000000000000000000 ELSE 0 END"
)


def upgrade() -> None:
    for table in NOT_NULL:
        op.execute(f"UPDATE {table} SET partner_id = {PLATFORM} WHERE partner_id IS NULL")
    if op.get_bind().dialect.name == "sqlite":
        _upgrade_sqlite()
    else:
        _upgrade_postgresql()


def _upgrade_postgresql() -> None:
    for table, names in DROPPED_FKS.items():
        for name in names:
            op.drop_constraint(name, table, type_="foreignkey")
    for table, (old, _, _) in UNIQUES.items():
        op.drop_constraint(old, table, type_="unique")
    for table in NOT_NULL:
        op.alter_column(table, "partner_id", existing_type=sa.BigInteger(), nullable=False)
    op.drop_constraint("pk_customers", "customers", type_="primary")
    op.create_primary_key("pk_customers", "customers", ["partner_id", "uin"])
    for table, index in KEYED_BY_ID.items():
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["partner_id", "id"])
        if index is not None:
            op.drop_index(index, table_name=table)
    for table, (_, new, columns) in UNIQUES.items():
        op.create_unique_constraint(new, table, columns)
    for table, name, columns, referred, remote, ondelete in ADDED_FKS:
        op.create_foreign_key(name, table, referred, columns, remote, ondelete=ondelete)


def _columns(table: str) -> str:
    names = [
        c["name"]
        for c in sa.inspect(op.get_bind()).get_columns(table)
        if c["name"] not in CUSTOMERS_GENERATED or table != "customers"
    ]
    return ", ".join(names)


def _upgrade_sqlite() -> None:
    columns = {table: _columns(table) for table in SQLITE_ORDER}
    for table in SQLITE_ORDER:
        op.execute(f"CREATE TEMP TABLE keep_{table} AS SELECT {columns[table]} FROM {table}")
    for table in reversed(SQLITE_ORDER):
        op.execute(f"DELETE FROM {table}")

    # A copy cannot write generated columns: customers loses them for its copy and gets
    # them back after (as 0010 and 0011 made them).
    op.drop_index("ix_customers_partner_id_utilization", table_name="customers")
    op.drop_index("ix_customers_partner_id_available_credit", table_name="customers")
    op.drop_column("customers", "utilization")
    op.drop_column("customers", "available_credit")

    added: dict[str, list[tuple[str, list[str], str, list[str], str | None]]] = {}
    for table, name, cols, referred, remote, ondelete in ADDED_FKS:
        added.setdefault(table, []).append((name, cols, referred, remote, ondelete))
    for table in SQLITE_ORDER:
        with op.batch_alter_table(table, recreate="always") as batch:
            for name in DROPPED_FKS.get(table, []):
                batch.drop_constraint(name, type_="foreignkey")
            if table in UNIQUES:
                old, new, cols = UNIQUES[table]
                batch.drop_constraint(old, type_="unique")
                batch.create_unique_constraint(new, cols)
            if table in NOT_NULL:
                batch.alter_column("partner_id", existing_type=sa.BigInteger(), nullable=False)
            if table == "customers":
                batch.drop_constraint("pk_customers", type_="primary")
                batch.create_primary_key("pk_customers", ["partner_id", "uin"])
            if table in KEYED_BY_ID:
                # id stays the rowid (SQLite numbers no composite key); the declared key
                # is kept unique beside it, and serves the pages the old index served.
                batch.create_unique_constraint(f"uq_{table}_partner_id_id", ["partner_id", "id"])
                index = KEYED_BY_ID[table]
                if index is not None:
                    batch.drop_index(index)
            for name, cols, referred, remote, ondelete in added.get(table, []):
                batch.create_foreign_key(name, referred, cols, remote, ondelete=ondelete)

    op.add_column(
        "customers",
        sa.Column("available_credit", sa.BigInteger(), sa.Computed("total_credit - consumed")),
    )
    # A line break before the expression: see 0011.
    op.execute(
        f"ALTER TABLE customers ADD COLUMN utilization DOUBLE GENERATED ALWAYS AS\n({UTILIZATION})"
    )
    op.create_index(
        "ix_customers_partner_id_available_credit", "customers", ["partner_id", "available_credit"]
    )
    op.create_index(
        "ix_customers_partner_id_utilization", "customers", ["partner_id", "utilization"]
    )

    for table in SQLITE_ORDER:
        op.execute(
            f"INSERT INTO {table} ({columns[table]}) SELECT {columns[table]} FROM keep_{table}"
        )
        op.execute(f"DROP TABLE keep_{table}")


def downgrade() -> None:
    raise NotImplementedError(
        "0012 is one way: event ids, idempotency keys and deliveries are unique per partner "
        "now, and rows that only the new keys allow would break the old ones"
    )

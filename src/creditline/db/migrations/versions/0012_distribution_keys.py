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

The downgrade restores the old keys, and is refused by them once two partners hold one
event id.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

PLATFORM = 0

#: Foreign keys dropped: they cross partners or join a local table to a distributed one,
#: or become composite below. (table, name, columns, referred table, referred, ondelete)
OLD_FKS = [
    ("partners", "fk_partners_parent_id_partners", ["parent_id"], "partners", ["id"], None),
    (
        "allocation_records",
        "fk_allocation_records_customer_uin_customers",
        ["customer_uin"],
        "customers",
        ["uin"],
        None,
    ),
    (
        "allocation_records",
        "fk_allocation_records_sub_partner_id_partners",
        ["sub_partner_id"],
        "partners",
        ["id"],
        None,
    ),
    (
        "usage_events",
        "fk_usage_events_customer_uin_customers",
        ["customer_uin"],
        "customers",
        ["uin"],
        None,
    ),
    ("alarms", "fk_alarms_customer_uin_customers", ["customer_uin"], "customers", ["uin"], None),
    ("api_keys", "fk_api_keys_partner_id_partners", ["partner_id"], "partners", ["id"], None),
    (
        "api_keys",
        "fk_api_keys_customer_uin_customers",
        ["customer_uin"],
        "customers",
        ["uin"],
        None,
    ),
    (
        "idempotent_requests",
        "fk_idempotent_requests_api_key_id_api_keys",
        ["api_key_id"],
        "api_keys",
        ["id"],
        None,
    ),
    (
        "idempotent_requests",
        "fk_idempotent_requests_partner_id_partners",
        ["partner_id"],
        "partners",
        ["id"],
        None,
    ),
    (
        "credit_applications",
        "fk_credit_applications_decider_id_partners",
        ["decider_id"],
        "partners",
        ["id"],
        None,
    ),
    (
        "credit_applications",
        "fk_credit_applications_record_id_allocation_records",
        ["record_id"],
        "allocation_records",
        ["id"],
        None,
    ),
    ("users", "fk_users_partner_id_partners", ["partner_id"], "partners", ["id"], None),
    (
        "console_sessions",
        "fk_console_sessions_partner_id_partners",
        ["partner_id"],
        "partners",
        ["id"],
        None,
    ),
    (
        "deliveries",
        "fk_deliveries_event_id_outbox_events",
        ["event_id"],
        "outbox_events",
        ["id"],
        None,
    ),
    (
        "deliveries",
        "fk_deliveries_endpoint_id_webhook_endpoints",
        ["endpoint_id"],
        "webhook_endpoints",
        ["id"],
        "SET NULL",
    ),
    (
        "delivery_attempts",
        "fk_delivery_attempts_delivery_id_deliveries",
        ["delivery_id"],
        "deliveries",
        ["id"],
        "CASCADE",
    ),
    (
        "partner_notices",
        "fk_partner_notices_endpoint_id_webhook_endpoints",
        ["endpoint_id"],
        "webhook_endpoints",
        ["id"],
        "SET NULL",
    ),
]

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


ForeignKeys = list[tuple[str, str, list[str], str, list[str], str | None]]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite(_upgrade_table, null=None, into=PLATFORM)
        return
    _drop_fks(OLD_FKS)
    for table, (old, _, _) in UNIQUES.items():
        op.drop_constraint(old, table, type_="unique")
    for table in NOT_NULL:
        # After the foreign key into partners is gone: 0 is no partner.
        op.execute(f"UPDATE {table} SET partner_id = {PLATFORM} WHERE partner_id IS NULL")
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
    _create_fks(ADDED_FKS)


def downgrade() -> None:
    """Back to the keys of 0011; refused (by the old unique keys) once two partners hold
    one event id, or one API key's idempotency key twice."""
    if op.get_bind().dialect.name == "sqlite":
        _sqlite(_downgrade_table, null=PLATFORM, into=None)
        return
    _drop_fks(ADDED_FKS)
    for table, (_, new, _) in UNIQUES.items():
        op.drop_constraint(new, table, type_="unique")
    op.drop_constraint("pk_customers", "customers", type_="primary")
    op.create_primary_key("pk_customers", "customers", ["uin"])
    for table, index in KEYED_BY_ID.items():
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["id"])
        if index is not None:
            op.create_index(index, table, ["partner_id", "id"])
    for table in NOT_NULL:
        op.alter_column(table, "partner_id", existing_type=sa.BigInteger(), nullable=True)
        op.execute(f"UPDATE {table} SET partner_id = NULL WHERE partner_id = {PLATFORM}")
    for table, (old, _, columns) in UNIQUES.items():
        op.create_unique_constraint(old, table, [c for c in columns if c != "partner_id"])
    _create_fks(OLD_FKS)


def _drop_fks(fks: ForeignKeys) -> None:
    for table, name, *_ in fks:
        op.drop_constraint(name, table, type_="foreignkey")


def _create_fks(fks: ForeignKeys) -> None:
    for table, name, columns, referred, remote, ondelete in fks:
        op.create_foreign_key(name, table, referred, columns, remote, ondelete=ondelete)


def _of(fks: ForeignKeys, table: str) -> ForeignKeys:
    return [fk for fk in fks if fk[0] == table]


def _upgrade_table(batch: BatchOperations, table: str) -> None:
    for _, name, *_ in _of(OLD_FKS, table):
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
        # id stays the rowid (SQLite numbers no composite key); the declared key is kept
        # unique beside it, and serves the pages the old index served.
        batch.create_unique_constraint(f"uq_{table}_partner_id_id", ["partner_id", "id"])
        index = KEYED_BY_ID[table]
        if index is not None:
            batch.drop_index(index)
    for _, name, cols, referred, remote, ondelete in _of(ADDED_FKS, table):
        batch.create_foreign_key(name, referred, cols, remote, ondelete=ondelete)


def _downgrade_table(batch: BatchOperations, table: str) -> None:
    for _, name, *_ in _of(ADDED_FKS, table):
        batch.drop_constraint(name, type_="foreignkey")
    if table in UNIQUES:
        old, new, cols = UNIQUES[table]
        batch.drop_constraint(new, type_="unique")
        batch.create_unique_constraint(old, [c for c in cols if c != "partner_id"])
    if table in NOT_NULL:
        batch.alter_column("partner_id", existing_type=sa.BigInteger(), nullable=True)
    if table == "customers":
        batch.drop_constraint("pk_customers", type_="primary")
        batch.create_primary_key("pk_customers", ["uin"])
    if table in KEYED_BY_ID:
        batch.drop_constraint(f"uq_{table}_partner_id_id", type_="unique")
        index = KEYED_BY_ID[table]
        if index is not None:
            batch.create_index(index, ["partner_id", "id"])
    for _, name, cols, referred, remote, ondelete in _of(OLD_FKS, table):
        batch.create_foreign_key(name, referred, cols, remote, ondelete=ondelete)


def _columns(table: str) -> str:
    names = [
        c["name"]
        for c in sa.inspect(op.get_bind()).get_columns(table)
        if c["name"] not in CUSTOMERS_GENERATED or table != "customers"
    ]
    return ", ".join(names)


def _sqlite(
    change: Callable[[BatchOperations, str], None], *, null: int | None, into: int | None
) -> None:
    """Copy every table with ``change`` made to it, rows kept: emptied children first,
    copied, refilled parents first (a table cannot be replaced while another's rows refer
    to it). The platform's partner_id ``null`` becomes ``into`` on the way."""
    columns = {table: _columns(table) for table in SQLITE_ORDER}
    for table in SQLITE_ORDER:
        op.execute(f"CREATE TEMP TABLE keep_{table} AS SELECT {columns[table]} FROM {table}")
    for table in reversed(SQLITE_ORDER):
        op.execute(f"DELETE FROM {table}")
    for table in NOT_NULL:
        was = "IS NULL" if null is None else f"= {null}"
        now = "NULL" if into is None else str(into)
        op.execute(f"UPDATE keep_{table} SET partner_id = {now} WHERE partner_id {was}")

    # A copy cannot write generated columns: customers loses them for its copy and gets
    # them back after (as 0010 and 0011 made them).
    op.drop_index("ix_customers_partner_id_utilization", table_name="customers")
    op.drop_index("ix_customers_partner_id_available_credit", table_name="customers")
    op.drop_column("customers", "utilization")
    op.drop_column("customers", "available_credit")
    for table in SQLITE_ORDER:
        with op.batch_alter_table(table, recreate="always") as batch:
            change(batch, table)
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

"""Tables. Every table of partner data carries ``partner_id`` (the distribution column
should one machine be outgrown: each table's class is in :mod:`creditline.db.distribution`)
and every key and index that serves a partner's pages leads with it. Money columns are
BIGINT cents; CHECK constraints hold every invariant a single row can state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.types import TypeDecorator

from creditline.db.distribution import DISTRIBUTION_COLUMN, PLATFORM_PARTNER_ID

# Ids and UINs are BIGINT columns; their largest value is one of the shared limits.
from creditline.limits import MAX_BIGINT as MAX_BIGINT

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: ``customers.utilization``: consumed / total credit; with no credit, anything consumed
#: sorts above every ratio (1e18) and nothing consumed as 0. Both engines compute it alike
#: (``* 1.0``: not an integer division), and written so, PostgreSQL's own rendering of it
#: reads the same to the schema comparison once its ``::`` casts are set aside.
UTILIZATION_SQL = (
    "CASE WHEN total_credit > 0 THEN consumed * 1.0 / total_credit "
    "WHEN consumed > 0 THEN 1000000000000000000 ELSE 0 END"
)

#: ``customers.runs_out_day``: the day (days since 1970-01-01, UTC) the customer's available
#: credit reaches 0 at its burn rate, counted from the day the rate was computed; NULL when
#: there is no rate (too little history, or nothing consumed). Kept by the database from
#: the row's own columns, so an allocation or a usage batch moves it at once, and the sort
#: by "runs out" reads a plain index (ledger.forecast).
RUNS_OUT_SQL = (
    "CASE WHEN burn_rate > 0 THEN forecast_day + CASE WHEN total_credit - consumed > 0 "
    "THEN (total_credit - consumed + burn_rate - 1) / burn_rate ELSE 0 END ELSE NULL END"
)

#: UINs of partners and customers share one number space and start here.
FIRST_UIN = 100_000_000_001


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; creditline stores UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PartnerOrPlatform(TypeDecorator[int]):
    """``partner_id`` of a distributed table whose rows may belong to no partner (the
    platform's): stored as :data:`PLATFORM_PARTNER_ID`, since a distribution column is
    never NULL, and read back as None."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int:
        return PLATFORM_PARTNER_ID if value is None else value

    def process_result_value(self, value: int | None, dialect: Dialect) -> int | None:
        return None if value is None or value == PLATFORM_PARTNER_ID else value


def rowid_key(table: Table) -> Column[Any] | None:
    """The generated ``id`` of a distributed table keyed ``(partner_id, id)``, if any."""
    column = table.autoincrement_column
    names = [c.name for c in table.primary_key.columns]
    if column is None or names != [DISTRIBUTION_COLUMN.get(table.name), column.name]:
        return None
    return column


# On SQLite, a distributed table's key ``(partner_id, id)`` with a generated ``id`` is ``id``
# alone, the rowid, which SQLite numbers (no composite key can), beside a unique
# ``(partner_id, id)`` that the composite foreign keys refer to. Unique on its own, ``id``
# holds the declared key a fortiori. (Alembic's schema comparison leaves primary keys out.)


@compiles(CreateColumn, "sqlite")
def _sqlite_column(element: CreateColumn, compiler: DDLCompiler, **kw: Any) -> str:
    column = element.element
    if isinstance(column.table, Table) and column is rowid_key(column.table):
        return f"{compiler.preparer.format_column(column)} INTEGER NOT NULL"
    return compiler.visit_create_column(element, **kw)


@compiles(PrimaryKeyConstraint, "sqlite")
def _sqlite_primary_key(constraint: PrimaryKeyConstraint, compiler: DDLCompiler, **kw: Any) -> str:
    text = compiler.visit_primary_key_constraint(constraint, **kw)
    column = rowid_key(constraint.table)
    if column is None:
        return text
    both = ", ".join(compiler.preparer.quote(c.name) for c in constraint.columns)
    key = compiler.preparer.quote(column.name)
    unique = compiler.preparer.quote(sqlite_rowid_unique(constraint.table))
    return text.replace(
        f"PRIMARY KEY ({both})", f"PRIMARY KEY ({key}), CONSTRAINT {unique} UNIQUE ({both})"
    )


def sqlite_rowid_unique(table: Table) -> str:
    """The name of the unique ``(partner_id, id)`` SQLite keeps beside a rowid key."""
    return f"uq_{table.name}_partner_id_id"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[int]: JSON,
    }


class Account(Base):
    """One UIN. Partners and customers both take theirs from here, so no two collide."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("kind IN ('partner', 'customer')", name="kind"),
        {"sqlite_autoincrement": True},
    )

    uin: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), Identity(start=FIRST_UIN), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class Partner(Base):
    """A distributor, reseller or second-level reseller, and its allocatable pool."""

    __tablename__ = "partners"
    __table_args__ = (
        CheckConstraint("kind IN ('distributor', 'reseller', 'sub-reseller')", name="kind"),
        CheckConstraint(
            "(kind = 'sub-reseller') = (parent_id IS NOT NULL)", name="parent_only_for_sub"
        ),
        CheckConstraint("pool_allocated >= 0", name="allocated_not_negative"),
        CheckConstraint("pool_total >= pool_allocated", name="remaining_not_negative"),
        # What its distributor gave a sub-reseller, net, is what the distributor may take
        # back; the rest of its pool is the platform's grants, never below zero (0007).
        CheckConstraint("pool_from_distributor >= 0", name="from_distributor_not_negative"),
        CheckConstraint(
            "pool_from_distributor <= pool_total", name="from_distributor_within_total"
        ),
        CheckConstraint(
            "parent_id IS NOT NULL OR pool_from_distributor = 0",
            name="from_distributor_only_for_sub",
        ),
        Index("ix_partners_parent_id", "parent_id"),
    )

    #: The partner's UIN; in every other table this value is ``partner_id``.
    id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.uin"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    #: A sub-reseller's distributor: another partner, so on another shard once the
    #: database is distributed, and no foreign key (the ledger checks it).
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    pool_total: Mapped[int] = mapped_column(BigInteger, default=0)
    pool_allocated: Mapped[int] = mapped_column(BigInteger, default=0)
    #: For a sub-reseller: the part of ``pool_total`` its distributor gave it, net of what
    #: it took back (the sum of its pool allocations to it); 0 for every other partner.
    pool_from_distributor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: The partner's default alarm thresholds (percent of total credit).
    thresholds: Mapped[list[int]] = mapped_column(default=lambda: [75, 90, 100])
    #: The default forecast alarm window: alarm when a customer's projected exhaustion is
    #: this many days away or fewer; 0 turns forecast alarms off (ledger.forecast).
    forecast_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    created_at: Mapped[datetime]

    @property
    def pool_remaining(self) -> int:
        return self.pool_total - self.pool_allocated


class Customer(Base):
    """A partner's customer (sub-customer) and its credit."""

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("type IN ('personal', 'company')", name="type"),
        CheckConstraint("identity_status IN (0, 1, 2)", name="identity_status"),
        CheckConstraint("total_credit >= 0", name="total_credit_not_negative"),
        PrimaryKeyConstraint("partner_id", "uin"),
        Index("ix_customers_partner_id_associated_at", "partner_id", "associated_at", "uin"),
        Index("ix_customers_partner_id_available_credit", "partner_id", "available_credit"),
        Index("ix_customers_partner_id_utilization", "partner_id", "utilization"),
        Index("ix_customers_partner_id_runs_out_day", "partner_id", "runs_out_day"),
        # A customer named by its UIN alone: the platform's purchase check, usage (0020).
        Index("ix_customers_uin", "uin"),
        # The search's index is on CustomerSearch: a credit change rewrites every index of
        # this table, and the trigram index need not be one of them (0019).
    )

    uin: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.uin"))
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16), default="personal")
    email: Mapped[str] = mapped_column(String(320), default="")
    mobile: Mapped[str] = mapped_column(String(40), default="")
    remark: Mapped[str] = mapped_column(String(500), default="")
    identity_status: Mapped[int] = mapped_column(Integer, default=0)
    associated_at: Mapped[datetime]
    total_credit: Mapped[int] = mapped_column(BigInteger, default=0)
    consumed: Mapped[int] = mapped_column(BigInteger, default=0)
    #: ``total_credit - consumed``, kept by the database (stored on PostgreSQL, virtual on
    #: SQLite) so that the sort by available credit has a plain index. Python reads
    #: :attr:`available` instead; this column is only ever named in SQL, never loaded.
    available_credit: Mapped[int] = mapped_column(
        BigInteger, Computed("total_credit - consumed"), deferred=True
    )
    #: ``consumed / total_credit`` (a customer with no credit sorts as the fullest once it
    #: has consumed anything: it has passed every threshold), kept by the database like
    #: ``available_credit`` for the sort by utilisation. Only ever named in SQL; Python
    #: computes utilisation from ``total_credit`` and ``consumed`` (ledger.alarms).
    utilization: Mapped[float] = mapped_column(Double, Computed(UTILIZATION_SQL), deferred=True)
    #: The customer's own thresholds; None means the partner's default list.
    thresholds: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True), default=None)
    #: Thresholds already fired and not yet re-armed.
    fired_thresholds: Mapped[list[int]] = mapped_column(default=list)
    last_alarm_threshold: Mapped[int | None] = mapped_column(Integer, default=None)
    last_alarm_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The forecast (ledger.forecast): the daily burn rate in cents, NULL when there is too
    #: little history; the day (days since 1970-01-01) it was computed for; the customer's
    #: first day of usage.
    burn_rate: Mapped[int | None] = mapped_column(BigInteger, default=None)
    forecast_day: Mapped[int | None] = mapped_column(Integer, default=None)
    usage_since: Mapped[int | None] = mapped_column(Integer, default=None)
    #: The projected day of exhaustion (see RUNS_OUT_SQL); only ever named in SQL.
    runs_out_day: Mapped[int | None] = mapped_column(
        BigInteger, Computed(RUNS_OUT_SQL), deferred=True
    )
    #: The customer's own forecast alarm window in days; None means the partner's.
    forecast_days: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Whether the forecast alarm has fired and not re-armed, and the day it last fired.
    forecast_fired: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    forecast_alarm_day: Mapped[int | None] = mapped_column(Integer, default=None)

    @property
    def available(self) -> int:
        return self.total_credit - self.consumed


class CustomerSearch(Base):
    """What the customers search looks in (``ILIKE '%x%'`` on name, email, remark), one row
    per customer, kept equal to ``customers`` by triggers (migration 0019): its trigram
    index (a plain one on SQLite) lives here rather than on ``customers``, whose every
    credit change would otherwise write sixty-odd trigrams into it. Never written by the
    application."""

    __tablename__ = "customer_search"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "uin"),
        Index(
            "ix_customer_search_name_email_remark",
            "name",
            "email",
            "remark",
            postgresql_using="gin",
            postgresql_ops=dict.fromkeys(("name", "email", "remark"), "gin_trgm_ops"),
        ),
    )

    partner_id: Mapped[int] = mapped_column(BigInteger)
    uin: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    remark: Mapped[str] = mapped_column(String(500))


class AllocationRecord(Base):
    """One immutable line of the credit ledger: a grant, a pool allocation, an allocation or
    a withdrawal. Corrections are new records, never edits."""

    __tablename__ = "allocation_records"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('grant', 'pool_allocation', 'allocation', 'withdrawal')", name="kind"
        ),
        CheckConstraint("change <> 0", name="change_not_zero"),
        CheckConstraint(
            "source IN ('console', 'api', 'tc3', 'cli', 'bulk', 'demo', 'rule')", name="source"
        ),
        PrimaryKeyConstraint("partner_id", "id"),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
        Index(
            "ix_allocation_records_partner_id_customer_uin_id", "partner_id", "customer_uin", "id"
        ),
        Index("ix_allocation_records_sub_partner_id", "sub_partner_id"),
        # Filtered pages stay short index ranges at millions of records (migration 0005).
        Index("ix_allocation_records_partner_id_kind_id", "partner_id", "kind", "id"),
        Index("ix_allocation_records_partner_id_operator_id", "partner_id", "operator", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    kind: Mapped[str] = mapped_column(String(16))
    customer_uin: Mapped[int | None] = mapped_column(BigInteger)
    #: For a pool allocation, the second-level reseller whose pool changed: another
    #: partner (another shard once distributed), so no foreign key.
    sub_partner_id: Mapped[int | None] = mapped_column(BigInteger)
    operator: Mapped[str] = mapped_column(String(200))
    change: Mapped[int] = mapped_column(BigInteger)
    #: Customer total credit (or pool total) after the change.
    total_after: Mapped[int] = mapped_column(BigInteger)
    #: Customer available credit (or pool remaining) after the change.
    available_after: Mapped[int] = mapped_column(BigInteger)
    remark: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime]


class UsageEvent(Base):
    """One charge or refund reported by the vendor's billing feed."""

    __tablename__ = "usage_events"
    __table_args__ = (
        CheckConstraint("kind IN ('charge', 'refund')", name="kind"),
        CheckConstraint("list_amount >= 0", name="list_not_negative"),
        CheckConstraint("voucher_amount >= 0", name="voucher_not_negative"),
        CheckConstraint("voucher_amount <= list_amount", name="voucher_within_list"),
        CheckConstraint(
            "counted = CASE WHEN kind = 'refund' THEN voucher_amount - list_amount "
            "ELSE list_amount - voucher_amount END",
            name="counted_rule",
        ),
        PrimaryKeyConstraint("partner_id", "id"),
        # An event id is unique per partner (a distributed table's unique keys hold the
        # distribution column); the billing feed's ids are unique across the vendor anyway.
        UniqueConstraint("partner_id", "event_id"),
        # Checked at COMMIT (migration 0022): by then the batch holds its customers' rows
        # (their consumption updated), so the check's share lock adds nothing to a row
        # another batch is locking too.
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"],
            ["customers.partner_id", "customers.uin"],
            deferrable=True,
            initially="DEFERRED",
        ),
        Index(
            "ix_usage_events_partner_id_customer_uin_occurred_at",
            "partner_id",
            "customer_uin",
            "occurred_at",
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(128))
    #: The partner exists by the customer key (its customer's row holds it under its own
    #: key to ``partners``): no key of its own, one check less per event (migration 0023).
    partner_id: Mapped[int] = mapped_column(BigInteger)
    customer_uin: Mapped[int] = mapped_column(BigInteger)
    product: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8))
    list_amount: Mapped[int] = mapped_column(BigInteger)
    voucher_amount: Mapped[int] = mapped_column(BigInteger)
    #: What counts against credit: list - voucher, negative for a refund.
    counted: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime]
    ingested_at: Mapped[datetime]


class UsageDaily(Base):
    """A customer's counted usage on one UTC day (the sum of its events' ``counted``), kept
    by usage ingestion in the transaction of the events: what forecasts are computed from."""

    __tablename__ = "usage_daily"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "customer_uin", "day"),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
    )

    #: As an event's: held by the customer key alone (migration 0023).
    partner_id: Mapped[int] = mapped_column(BigInteger)
    customer_uin: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    counted: Mapped[int] = mapped_column(BigInteger)


class Alarm(Base):
    """One alarm: a customer's consumption reached one or more thresholds at once."""

    __tablename__ = "alarms"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "id"),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
        Index("ix_alarms_partner_id_customer_uin_id", "partner_id", "customer_uin", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    customer_uin: Mapped[int] = mapped_column(BigInteger)
    #: The highest threshold newly reached; the one the alarm names.
    threshold: Mapped[int] = mapped_column(Integer)
    #: Every threshold newly reached by the change (all now count as fired).
    thresholds_reached: Mapped[list[int]]
    total_credit: Mapped[int] = mapped_column(BigInteger)
    consumed: Mapped[int] = mapped_column(BigInteger)
    #: What caused it: usage, refund, allocation, withdrawal.
    cause: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)


class OutboxEvent(Base):
    """An event written in the same transaction as its cause, delivered after commit."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "id"),
        Index("ix_outbox_events_delivered_at_id", "delivered_at", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


# --- API: keys, idempotency, credit applications ---


class ApiKey(Base):
    """An API key: the platform's, a partner's (with a role) or a customer's own. The
    secret is stored encrypted with the server key, so signatures can be recomputed."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("principal IN ('platform', 'partner', 'customer')", name="principal"),
        CheckConstraint("role IS NULL OR role IN ('admin', 'operator', 'viewer')", name="role"),
        CheckConstraint(
            "(principal = 'platform' AND partner_id IS NULL AND customer_uin IS NULL"
            " AND role IS NULL)"
            " OR (principal = 'partner' AND partner_id IS NOT NULL AND customer_uin IS NULL"
            " AND role IS NOT NULL)"
            " OR (principal = 'customer' AND partner_id IS NOT NULL"
            " AND customer_uin IS NOT NULL AND role IS NULL)",
            name="principal_shape",
        ),
        Index("ix_api_keys_partner_id_id", "partner_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    secret_id: Mapped[str] = mapped_column(String(64), unique=True)
    #: The secret key, encrypted (Fernet token); never stored or logged in plain text.
    secret_encrypted: Mapped[str] = mapped_column(String(512))
    principal: Mapped[str] = mapped_column(String(16))
    #: The key's partner and customer: distributed tables, which a table kept on the
    #: coordinator may not refer to (the keys module checks them instead).
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    customer_uin: Mapped[int | None] = mapped_column(BigInteger)
    role: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class IdempotentRequest(Base):
    """A write made with an ``Idempotency-Key``: inserted in the same transaction as the
    write, so of two concurrent requests with one key exactly one commits; its stored
    answer is replayed for 24 hours."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "id"),
        UniqueConstraint("partner_id", "api_key_id", "key"),
        Index("ix_idempotent_requests_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    #: A key of ``api_keys``, which stays on the coordinator: no foreign key.
    api_key_id: Mapped[int] = mapped_column(BigInteger)
    #: The key's partner; None (stored as 0) for a platform key. Not a foreign key: 0 is
    #: no partner, and rows only live for 24 hours.
    partner_id: Mapped[int | None] = mapped_column(PartnerOrPlatform)
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of the method, path, query and canonical body.
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime]


class Tc3Signature(Base):
    """A signed Tencent-compatible write already used: its signature is refused again
    until ``expires_at``, when ``X-TC-Timestamp`` would be refused as expired anyway. Kept
    in the database so every server process and machine sees the same uses."""

    __tablename__ = "tc3_signatures"
    __table_args__ = (Index("ix_tc3_signatures_secret_id_expires_at", "secret_id", "expires_at"),)

    #: SHA-256 (hex) of the request's signature.
    signature_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


class RateBucket(Base):
    """A per-key rate limit's token bucket, shared by every server process: ``tokens`` as
    of ``refilled_at`` (the database's clock, seconds since the epoch). Processes lease
    tokens from it in chunks (creditline.auth.rate_limit); ``granted`` is what the last
    lease got. Keyed by the API key's global ``secret_id``, like ``tc3_signatures``: a
    table of the coordinator, not of one partner."""

    __tablename__ = "rate_buckets"

    secret_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``api`` (the REST limit) or ``tc3:<Action>`` (the Tencent endpoint's, per action).
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)
    granted: Mapped[int] = mapped_column(Integer)
    refilled_at: Mapped[float] = mapped_column(Double)


class CreditApplication(Base):
    """A partner asks for more pool; the platform (or, for a second-level reseller, its
    distributor) approves — which grants — or rejects."""

    __tablename__ = "credit_applications"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        PrimaryKeyConstraint("partner_id", "id"),
        Index("ix_credit_applications_decider_id_status", "decider_id", "status"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    #: Who decides: the parent distributor of a second-level reseller, else None (platform).
    #: Another partner, so no foreign key.
    decider_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    requested_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decision_note: Mapped[str] = mapped_column(String(500), default="")
    #: The allocation record of the grant an approval made: a distributor's approval is
    #: the distributor's own pool allocation, another partner's record, so no foreign key.
    record_id: Mapped[int | None] = mapped_column(BigInteger)


# --- Console: users and sessions ---


class User(Base):
    """A person who logs in to the console: a partner's user (admin, operator, viewer), a
    customer's user (who sees only that customer's own account) or, with no partner, a
    platform admin of the vendor."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'operator', 'viewer', 'platform', 'customer')", name="role"
        ),
        CheckConstraint(
            "(role = 'platform') = (partner_id IS NULL)", name="platform_has_no_partner"
        ),
        CheckConstraint(
            "(role = 'customer') = (customer_uin IS NOT NULL)", name="customer_has_uin"
        ),
        Index("ix_users_partner_id_id", "partner_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    #: None for a platform admin; every other user belongs to exactly one partner (not a
    #: foreign key: users stay on the coordinator, partners are distributed).
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    #: Lower-cased; one login per address across the whole system.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    #: For a customer's user: the customer (of ``partner_id``) whose account it sees.
    #: A customer's user: its customer (a distributed row: checked by the code that makes
    #: the user, no foreign key from this local table).
    customer_uin: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginAttempt(Base):
    """One failed login, kept for throttling: by address and by client."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    email: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class ConsoleSession(Base):
    """A logged-in browser. Only a hash of the cookie's token is stored, so a copy of the
    database cannot be used to log in."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_user_id", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    #: The user's partner (not a foreign key, like ``users.partner_id``).
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    #: A one-time message for the next page (the result of the last form).
    flash: Mapped[str | None] = mapped_column(String(1000), default=None)


# --- Notifications: delivery, endpoints, settings ---


class NotificationSettings(Base):
    """A partner's email settings for alarms: who receives them, and whether the
    customer's own address is emailed too."""

    __tablename__ = "notification_settings"

    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"), primary_key=True)
    email_recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    email_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class WebhookEndpoint(Base):
    """A partner's URL that receives signed events of the types it subscribes to."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (PrimaryKeyConstraint("partner_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(500), default="")
    #: Encrypted with the server key (``auth.server_key``), like API secrets.
    secret: Mapped[str] = mapped_column(String(400))
    #: The secret before the last rotation, still signed with until it expires.
    previous_secret: Mapped[str | None] = mapped_column(String(400), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    disabled_reason: Mapped[str] = mapped_column(String(500), default="")
    #: Start of the current run of failed attempts; None while the endpoint answers.
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class Delivery(Base):
    """One outbox event on its way to one target (a webhook endpoint or an email address).

    A worker claims a delivery by setting ``claim_token`` and a lease (``locked_until``);
    a worker that dies mid-delivery leaves the lease to expire, and the delivery is tried
    again: at least once, never lost.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("channel IN ('webhook', 'email')", name="channel"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        PrimaryKeyConstraint("partner_id", "id"),
        UniqueConstraint("partner_id", "event_id", "target"),
        ForeignKeyConstraint(
            ["partner_id", "event_id"], ["outbox_events.partner_id", "outbox_events.id"]
        ),
        # No ON DELETE SET NULL: it would clear partner_id too. Removing an endpoint
        # clears endpoint_id first (notify.endpoints.remove_endpoint).
        ForeignKeyConstraint(
            ["partner_id", "endpoint_id"], ["webhook_endpoints.partner_id", "webhook_endpoints.id"]
        ),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_deliveries_partner_id_endpoint_id_id", "partner_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(16))
    #: ``webhook:<endpoint id>`` or ``email:<address>``: one delivery per event and target.
    target: Mapped[str] = mapped_column(String(400))
    endpoint_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    #: After this time a failed attempt is final (at least 24 hours after the first).
    give_up_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    claim_token: Mapped[str | None] = mapped_column(String(64), default=None)
    last_error: Mapped[str] = mapped_column(String(1000), default="")
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class DeliveryAttempt(Base):
    """The delivery log: one line per attempt, with what the target answered."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "id"),
        ForeignKeyConstraint(
            ["partner_id", "delivery_id"],
            ["deliveries.partner_id", "deliveries.id"],
            ondelete="CASCADE",
        ),
        Index("ix_delivery_attempts_partner_id_delivery_id_id", "partner_id", "delivery_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    attempted_at: Mapped[datetime]
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(String(1000), default="")


class PartnerNotice(Base):
    """A message to the partner about its own setup (e.g. a webhook endpoint disabled after
    failing for days), shown in its message centre beside the alarms."""

    __tablename__ = "partner_notices"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "id"),
        # No ON DELETE SET NULL (it would clear partner_id too): see ``deliveries``.
        ForeignKeyConstraint(
            ["partner_id", "endpoint_id"], ["webhook_endpoints.partner_id", "webhook_endpoints.id"]
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(1000))
    endpoint_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None] = mapped_column(default=None)


# --- The customer's side: its view, its alarms, its statements ---


class CustomerViewSettings(Base):
    """What a partner lets its customers see and receive, and how their statements are
    cut: the time zone of the calendar month, remarks on the allocation history, the
    customers' own alarms (off by default; each customer may be set otherwise), and the
    contact named to them."""

    __tablename__ = "customer_view_settings"

    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"), primary_key=True)
    #: An IANA time zone name; statements cut calendar months in it.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: Whether a customer's allocation history shows the remarks, or amounts only.
    show_remarks: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Whether customers receive their own threshold alarms (by default; see below).
    customer_alarms: Mapped[bool] = mapped_column(Boolean, default=False)
    #: How customers reach the partner (an address or a line of text), shown with alarms.
    contact: Mapped[str] = mapped_column(String(320), default="")
    updated_at: Mapped[datetime]


class CustomerAlarmSetting(Base):
    """One customer's own answer to "does it receive its alarms", over its partner's."""

    __tablename__ = "customer_alarm_settings"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "customer_uin"),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
    )

    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    customer_uin: Mapped[int] = mapped_column(BigInteger)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime]


class CustomerAlarm(Base):
    """An alarm as its customer received it (in its view and by email): written with the
    alarm, in the same transaction, only while the customer receives its alarms."""

    __tablename__ = "customer_alarms"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "id"),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
        ForeignKeyConstraint(["partner_id", "alarm_id"], ["alarms.partner_id", "alarms.id"]),
        UniqueConstraint("partner_id", "alarm_id"),
        Index("ix_customer_alarms_partner_id_customer_uin_id", "partner_id", "customer_uin", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    customer_uin: Mapped[int] = mapped_column(BigInteger)
    alarm_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None] = mapped_column(default=None)


# --- Audit log ---


class AuditEvent(Base):
    """One write or login through any door: who (principal, source IP, request id), what
    (action, object) and the change (``before``/``after``, never a secret). Appended in the
    same transaction as the write it describes, so it exists exactly when the write does."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("source IN ('api', 'tc3', 'console', 'cli')", name="source"),
        CheckConstraint("outcome IN ('ok', 'refused')", name="outcome"),
        PrimaryKeyConstraint("partner_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))
    #: ``api-key:<secret id> (<name>)``, ``user:<email>``, ``cli:<os user>``.
    principal: Mapped[str] = mapped_column(String(400))
    #: The partner the principal acts for (None, stored as 0: platform, customer key,
    #: unknown login).
    partner_id: Mapped[int | None] = mapped_column(PartnerOrPlatform, default=None)
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    request_id: Mapped[str] = mapped_column(String(100), default="")
    #: ``POST /v1/customers/{uin}/allocate``, ``AllocateCustomerCredit``, ``login``, ...
    action: Mapped[str] = mapped_column(String(200))
    #: The object acted on (the request path, or the Tencent action's subject).
    object: Mapped[str] = mapped_column(String(500), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    before: Mapped[Any | None] = mapped_column(JSON(none_as_null=True), default=None)
    after: Mapped[Any | None] = mapped_column(JSON(none_as_null=True), default=None)


# --- Purchase checks: the partner's policy on new purchases, and every decision ---

#: What a partner may choose for a customer's new purchases (ledger.purchases).
PURCHASE_POLICIES = ("notify_only", "block_at_limit", "block_all")
_POLICY_IN = "policy IN ('notify_only', 'block_at_limit', 'block_all')"


class PartnerPurchasePolicy(Base):
    """A partner's default purchase policy and its tolerance (how far below zero a
    ``block_at_limit`` customer's available credit may go). No row: ``notify_only``, 0."""

    __tablename__ = "partner_purchase_policies"
    __table_args__ = (
        CheckConstraint(_POLICY_IN, name="policy"),
        CheckConstraint("tolerance >= 0", name="tolerance_not_negative"),
    )

    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"), primary_key=True)
    policy: Mapped[str] = mapped_column(String(16))
    tolerance: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class CustomerPurchasePolicy(Base):
    """A customer's own purchase policy; its tolerance None: the partner's. No row: the
    partner's default applies."""

    __tablename__ = "customer_purchase_policies"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "customer_uin"),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
        CheckConstraint(_POLICY_IN, name="policy"),
        CheckConstraint("tolerance >= 0", name="tolerance_not_negative"),
    )

    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    customer_uin: Mapped[int] = mapped_column(BigInteger)
    policy: Mapped[str] = mapped_column(String(16))
    tolerance: Mapped[int | None] = mapped_column(BigInteger, default=None)
    updated_at: Mapped[datetime]


class PurchaseCheck(Base):
    """One decision of the purchase check, kept as it was made: the customer, the
    purchase, the policy and tolerance applied, the available credit seen, the answer."""

    __tablename__ = "purchase_checks"
    __table_args__ = (
        CheckConstraint(_POLICY_IN, name="policy"),
        CheckConstraint("answer IN ('allowed', 'refused')", name="answer"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("tolerance >= 0", name="tolerance_not_negative"),
        PrimaryKeyConstraint("partner_id", "id"),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
        Index("ix_purchase_checks_partner_id_customer_uin_id", "partner_id", "customer_uin", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), autoincrement=True
    )
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    customer_uin: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    product: Mapped[str] = mapped_column(String(100), default="")
    policy: Mapped[str] = mapped_column(String(16))
    tolerance: Mapped[int] = mapped_column(BigInteger)
    #: The customer's available credit when the check was made (before the purchase).
    available: Mapped[int] = mapped_column(BigInteger)
    answer: Mapped[str] = mapped_column(String(8))
    #: Why: not_restricted, within_limit, below_limit, on_hold (ledger.purchases).
    reason: Mapped[str] = mapped_column(String(32))
    #: Who asked: the API key's name, ``cli:<os user>``.
    requested_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime]


# --- Automatic top-ups: a partner's default rule, customers' own rules, each month's tally ---

#: A rule's trigger: exactly one of an amount of available credit or a utilisation percent.
_ONE_TRIGGER = "(below IS NULL) <> (utilization_percent IS NULL)"
_RULE_CHECKS = (
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("monthly_cap >= amount", name="cap_holds_one_top_up"),
    CheckConstraint("ceiling IS NULL OR ceiling >= amount", name="ceiling_holds_one_top_up"),
    CheckConstraint(
        "utilization_percent IS NULL OR utilization_percent BETWEEN 1 AND 1000",
        name="utilization_percent",
    ),
    CheckConstraint("below IS NULL OR below >= 0", name="below_not_negative"),
)


class PartnerTopUpRule(Base):
    """A partner's default top-up rule: when a customer's available credit falls below
    ``below`` (or its utilisation reaches ``utilization_percent``), allocate ``amount`` from
    the pool, at most ``monthly_cap`` a calendar month (UTC) and never past ``ceiling`` of
    total credit. No row: no default (ledger.top_ups)."""

    __tablename__ = "partner_top_up_rules"
    __table_args__ = (CheckConstraint(_ONE_TRIGGER, name="one_trigger"), *_RULE_CHECKS)

    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"), primary_key=True)
    below: Mapped[int | None] = mapped_column(BigInteger, default=None)
    utilization_percent: Mapped[int | None] = mapped_column(Integer, default=None)
    amount: Mapped[int] = mapped_column(BigInteger)
    monthly_cap: Mapped[int] = mapped_column(BigInteger)
    ceiling: Mapped[int | None] = mapped_column(BigInteger, default=None)
    updated_at: Mapped[datetime]


class CustomerTopUpRule(Base):
    """A customer's own top-up rule over its partner's default, or (``enabled`` false, no
    rule fields) "no top-ups for this customer". No row: the partner's default applies."""

    __tablename__ = "customer_top_up_rules"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "customer_uin"),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
        CheckConstraint(
            f"(enabled AND {_ONE_TRIGGER} AND amount IS NOT NULL AND monthly_cap IS NOT NULL)"
            " OR (NOT enabled AND below IS NULL AND utilization_percent IS NULL"
            " AND amount IS NULL AND monthly_cap IS NULL AND ceiling IS NULL)",
            name="rule_or_off",
        ),
        *_RULE_CHECKS,
    )

    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    customer_uin: Mapped[int] = mapped_column(BigInteger)
    enabled: Mapped[bool] = mapped_column(Boolean)
    below: Mapped[int | None] = mapped_column(BigInteger, default=None)
    utilization_percent: Mapped[int | None] = mapped_column(Integer, default=None)
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    monthly_cap: Mapped[int | None] = mapped_column(BigInteger, default=None)
    ceiling: Mapped[int | None] = mapped_column(BigInteger, default=None)
    updated_at: Mapped[datetime]


class TopUpMonth(Base):
    """A customer's top-ups in one calendar month (UTC, ``YYYY-MM``): their total and
    count, kept by the guarded statement that holds the monthly cap (``verify`` recomputes
    both from the allocation records of source ``rule``), the cap the latest top-up was
    held to, and the reason of the last refusal since the last top-up (alarmed once)."""

    __tablename__ = "top_up_months"
    __table_args__ = (
        PrimaryKeyConstraint("partner_id", "customer_uin", "month"),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
        CheckConstraint("topped_up >= 0", name="topped_up_not_negative"),
        CheckConstraint("topped_up <= cap", name="within_cap"),
        CheckConstraint(
            "refused IS NULL OR refused IN ('pool_short', 'monthly_cap', 'ceiling')",
            name="refused",
        ),
    )

    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    customer_uin: Mapped[int] = mapped_column(BigInteger)
    month: Mapped[str] = mapped_column(String(7))
    topped_up: Mapped[int] = mapped_column(BigInteger, default=0)
    top_ups: Mapped[int] = mapped_column(Integer, default=0)
    cap: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[str | None] = mapped_column(String(16), default=None)
    updated_at: Mapped[datetime]


_Row = TypeVar("_Row", bound=Base)


def loaded(cls: type[_Row], values: Mapping[str, Any]) -> _Row:
    """An object of ``cls`` holding ``values`` as if the ORM had loaded it from a row (no
    session, no attribute events; as the ORM's own loader builds one): for rows a statement
    already returned, at a fraction of the constructor's cost."""
    instance: _Row = cls._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    instance.__dict__.update(values)
    return instance

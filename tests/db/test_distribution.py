"""The declared tables satisfy what Citus requires of a schema it distributes by partner
(creditline.db.distribution): checked on the metadata, so a new table or key that would
not distribute fails here, on any engine."""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, Table, UniqueConstraint

from creditline.db.distribution import DISTRIBUTION_COLUMN, REASON, TABLE_CLASS
from creditline.db.tables import Base


def violations(metadata: MetaData, classes: dict[str, str]) -> list[str]:
    """Every way the tables of ``metadata`` break the rules of their classes."""
    found: list[str] = []
    tables = metadata.tables
    for name in sorted(set(tables) - set(classes)):
        found.append(f"{name}: no class")
    for name in sorted(set(classes) - set(tables)):
        found.append(f"{name}: classed, but no such table")

    def key_of(table: Table) -> str | None:
        if classes.get(table.name) != "distributed":
            return None
        return DISTRIBUTION_COLUMN.get(table.name, "partner_id")

    for name, table in sorted(tables.items()):
        kind = classes.get(name)
        column = key_of(table)
        if column is not None:
            if column not in table.c:
                found.append(f"{name}: no distribution column {column}")
                continue
            if table.c[column].nullable:
                found.append(f"{name}.{column}: nullable distribution column")
            keys: list[tuple[str, list[Column[object]]]] = [
                ("primary key", list(table.primary_key.columns))
            ]
            for constraint in table.constraints:
                if isinstance(constraint, UniqueConstraint):
                    keys.append((f"unique {constraint.name}", list(constraint.columns)))
            for index in table.indexes:
                if isinstance(index, Index) and index.unique:
                    keys.append((f"unique index {index.name}", list(index.columns)))
            for label, columns in keys:
                if column not in {c.name for c in columns}:
                    found.append(f"{name}: {label} lacks {column}")
        for fk in table.foreign_key_constraints:
            referred = fk.referred_table
            referred_kind = classes.get(referred.name)
            pairs = {(e.parent.name, e.column.name) for e in fk.elements}
            if kind == "distributed" and referred_kind == "distributed":
                if (column, key_of(referred)) not in pairs:
                    found.append(
                        f"{name}: foreign key {fk.name} into {referred.name} lacks "
                        "the distribution column on both sides"
                    )
            elif kind in ("reference", "local") and referred_kind == "distributed":
                found.append(f"{name}: {kind} table refers to distributed {referred.name}")
            elif kind == "distributed" and referred_kind == "local":
                found.append(f"{name}: distributed table refers to local {referred.name}")
    return found


def test_every_table_has_a_class_and_keeps_its_rules() -> None:
    assert violations(Base.metadata, TABLE_CLASS) == []


def test_every_class_says_why() -> None:
    assert set(REASON) == set(TABLE_CLASS)
    assert set(TABLE_CLASS.values()) <= {"distributed", "reference", "local"}


# The check itself: each rule fails on a table that breaks it.


def _schema() -> MetaData:
    from sqlalchemy import BigInteger, ForeignKey, ForeignKeyConstraint, String

    metadata = MetaData()
    Table("partners", metadata, Column("id", BigInteger, primary_key=True))
    Table(
        "customers",
        metadata,
        Column("partner_id", BigInteger, ForeignKey("partners.id"), primary_key=True),
        Column("uin", BigInteger, primary_key=True),
    )
    Table(
        "usage_events",
        metadata,
        Column("partner_id", BigInteger, primary_key=True, nullable=False),
        Column("id", BigInteger, primary_key=True),
        Column("event_id", String(10)),
        Column("customer_uin", BigInteger),
        ForeignKeyConstraint(
            ["partner_id", "customer_uin"], ["customers.partner_id", "customers.uin"]
        ),
    )
    Table("settings", metadata, Column("name", String(10), primary_key=True))
    Table("users", metadata, Column("id", BigInteger, primary_key=True))
    return metadata


CLASSES = {
    "partners": "distributed",
    "customers": "distributed",
    "usage_events": "distributed",
    "settings": "reference",
    "users": "local",
}


def test_a_sound_schema_passes() -> None:
    assert violations(_schema(), CLASSES) == []


def test_a_table_without_a_class_fails() -> None:
    classes = {k: v for k, v in CLASSES.items() if k != "users"}
    assert violations(_schema(), classes) == ["users: no class"]


def test_a_unique_key_without_partner_id_fails() -> None:
    metadata = _schema()
    metadata.tables["usage_events"].append_constraint(
        UniqueConstraint("event_id", name="uq_event_id")
    )
    assert violations(metadata, CLASSES) == ["usage_events: unique uq_event_id lacks partner_id"]


def test_a_unique_index_without_partner_id_fails() -> None:
    metadata = _schema()
    Index("ix_event_id", metadata.tables["usage_events"].c.event_id, unique=True)
    assert violations(metadata, CLASSES) == [
        "usage_events: unique index ix_event_id lacks partner_id"
    ]


def test_a_primary_key_without_partner_id_fails() -> None:
    from sqlalchemy import BigInteger

    metadata = _schema()
    Table(
        "alarms",
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column("partner_id", BigInteger, nullable=False),
    )
    classes = {**CLASSES, "alarms": "distributed"}
    assert violations(metadata, classes) == ["alarms: primary key lacks partner_id"]


def test_a_foreign_key_between_distributed_tables_without_partner_id_fails() -> None:
    from sqlalchemy import BigInteger, ForeignKeyConstraint

    metadata = _schema()
    Table(
        "alarms",
        metadata,
        Column("partner_id", BigInteger, primary_key=True),
        Column("id", BigInteger, primary_key=True),
        Column("customer_uin", BigInteger),
        Column("event_id", BigInteger),
        ForeignKeyConstraint(
            ["customer_uin", "event_id"],
            ["customers.uin", "customers.partner_id"],
            name="fk_crossed",
        ),
    )
    classes = {**CLASSES, "alarms": "distributed"}
    assert violations(metadata, classes) == [
        "alarms: foreign key fk_crossed into customers lacks the distribution column on both sides"
    ]


def test_a_reference_or_local_table_into_a_distributed_one_fails() -> None:
    from sqlalchemy import BigInteger, ForeignKey

    metadata = _schema()
    metadata.tables["settings"].append_column(
        Column("partner_id", BigInteger, ForeignKey("partners.id"))
    )
    metadata.tables["users"].append_column(
        Column("partner_id", BigInteger, ForeignKey("partners.id"))
    )
    assert violations(metadata, CLASSES) == [
        "settings: reference table refers to distributed partners",
        "users: local table refers to distributed partners",
    ]


def test_a_nullable_distribution_column_fails() -> None:
    from sqlalchemy import BigInteger

    metadata = _schema()
    Table(
        "audit_events",
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column("partner_id", BigInteger, nullable=True),
    )
    classes = {**CLASSES, "audit_events": "distributed"}
    assert violations(metadata, classes) == [
        "audit_events.partner_id: nullable distribution column",
        "audit_events: primary key lacks partner_id",
    ]

"""The Alembic migrations build exactly the schema declared in creditline.db.tables."""

from __future__ import annotations

import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Identity, inspect, text

from creditline.db import transaction
from creditline.db.migrate import head_revision, is_up_to_date
from creditline.db.tables import FIRST_UIN, Base, rowid_key, sqlite_rowid_unique
from creditline.ledger import accounts


def _differences(engine: Engine) -> tuple[list[Any], list[str]]:
    """What autogenerate would change, and what it said it could not compare."""
    with engine.connect() as connection, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = list(compare_metadata(context, Base.metadata))
    return differences, [str(w.message) for w in caught]


def test_migrations_reach_head(engine: Engine) -> None:
    assert head_revision() is not None
    assert is_up_to_date(engine)


def _is_sqlite_identity(diff: Any) -> bool:
    # SQLite has no identity columns: the migration seeds AUTOINCREMENT instead, so the
    # declared Identity(start=FIRST_UIN) shows as a default the database lacks. That the
    # seed works is test_uins_start_at_the_first_uin.
    return (
        isinstance(diff, list)
        and len(diff) == 1
        and diff[0][:4] == ("modify_default", None, "accounts", "uin")
        and isinstance(diff[0][-1], Identity)
        and diff[0][-1].start == FIRST_UIN
    )


def is_sqlite_rowid_unique(diff: Any) -> bool:
    # On SQLite a distributed table keyed (partner_id, id) keeps id as the rowid and the
    # declared key as a unique constraint beside it (tables.rowid_key), which the declared
    # tables do not list: PostgreSQL's primary key is that key.
    if not (isinstance(diff, tuple) and diff[0] == "remove_constraint"):
        return False
    table = Base.metadata.tables[diff[1].table.name]
    return rowid_key(table) is not None and diff[1].name == sqlite_rowid_unique(table)


def test_migrated_schema_equals_the_declared_tables(engine: Engine) -> None:
    differences, skipped = _differences(engine)
    if engine.dialect.name == "sqlite":
        assert sum(map(_is_sqlite_identity, differences)) == 1, differences
        keyed = [t for t in Base.metadata.tables.values() if rowid_key(t) is not None]
        assert sum(map(is_sqlite_rowid_unique, differences)) == len(keyed), differences
        differences = [
            d for d in differences if not _is_sqlite_identity(d) and not is_sqlite_rowid_unique(d)
        ]
    assert differences == []
    # Nothing was left out of the comparison (SQLite cannot reflect expression indexes, so
    # the schema has none).
    assert skipped == []


def test_available_credit_is_kept_by_the_database(engine: Engine) -> None:
    """The generated column behind the sort by available credit follows every change."""
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Sorted", kind="reseller")
        customer = accounts.create_customer(s, partner_id=partner.id, name="C")
        s.execute(
            text("UPDATE customers SET total_credit = 500, consumed = 700 WHERE uin = :u"),
            {"u": customer.uin},
        )
        kept = s.execute(
            text("SELECT available_credit FROM customers WHERE uin = :u"), {"u": customer.uin}
        ).scalar_one()
    assert kept == -200


def test_uins_start_at_the_first_uin(engine: Engine) -> None:
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="First", kind="reseller")
    assert partner.id == FIRST_UIN


def test_utilization_is_kept_by_the_database(engine: Engine) -> None:
    """The generated column behind the sort by utilisation: consumed / total credit, and
    with no credit the fullest once anything is consumed."""
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Sorted", kind="reseller")
        kept = []
        for total, consumed in [(500, 700), (400, 100), (0, 5), (0, 0)]:
            customer = accounts.create_customer(s, partner_id=partner.id, name="C")
            s.execute(
                text("UPDATE customers SET total_credit = :t, consumed = :c WHERE uin = :u"),
                {"t": total, "c": consumed, "u": customer.uin},
            )
            kept.append(
                s.execute(
                    text("SELECT utilization FROM customers WHERE uin = :u"), {"u": customer.uin}
                ).scalar_one()
            )
    assert kept == [1.4, 0.25, 1e18, 0]


def test_the_utilization_column_goes_and_comes_back_with_the_rows(engine: Engine) -> None:
    """0011 downgrades on both engines with customers in the table (on SQLite a copy of
    the table would have to write the generated available_credit, which it cannot) and
    upgrades again, computing the column for the rows already there."""
    from alembic import command

    from creditline.db.migrate import alembic_config, upgrade

    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Kept", kind="reseller")
        customer = accounts.create_customer(s, partner_id=partner.id, name="C")
        s.execute(
            text("UPDATE customers SET total_credit = 400, consumed = 100 WHERE uin = :u"),
            {"u": customer.uin},
        )
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    with engine.connect() as connection:
        assert "utilization" not in {
            c["name"] for c in inspect(connection).get_columns("customers")
        }
    upgrade(engine)
    with transaction(engine) as s:
        kept = s.execute(
            text("SELECT utilization FROM customers WHERE uin = :u"), {"u": customer.uin}
        ).scalar_one()
    assert kept == 0.25
    differences, skipped = _differences(engine)
    assert [
        d for d in differences if not _is_sqlite_identity(d) and not is_sqlite_rowid_unique(d)
    ] == []
    assert skipped == []

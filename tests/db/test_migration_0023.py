"""Migration 0023: usage events and daily totals keep their customer key and lose their
partner key (on both engines), their rows kept; an event or a daily total of no customer
of its partner still cannot be committed; the downgrade puts the partner keys back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from tests.conftest import database_at

from creditline.db.migrate import alembic_config, current_revision, upgrade

PARTNER, CUSTOMER, OTHER = 100_000_000_001, 100_000_000_002, 100_000_000_003
AT = "2026-11-01 00:00:00"

ROWS = [
    "INSERT INTO accounts (uin, kind, created_at) VALUES"
    f" ({PARTNER}, 'partner', :at), ({CUSTOMER}, 'customer', :at),"
    f" ({OTHER}, 'partner', :at)",
    "INSERT INTO partners (id, name, kind, parent_id, pool_total, pool_allocated,"
    " pool_from_distributor, thresholds, created_at) VALUES"
    f" ({PARTNER}, 'P', 'reseller', NULL, 100000, 0, 0, '[75, 90, 100]', :at),"
    f" ({OTHER}, 'O', 'reseller', NULL, 100000, 0, 0, '[75, 90, 100]', :at)",
    "INSERT INTO customers (uin, partner_id, name, type, email, mobile, remark,"
    " identity_status, associated_at, total_credit, consumed, fired_thresholds) VALUES"
    f" ({CUSTOMER}, {PARTNER}, 'A', 'personal', '', '', '', 0, :at, 0, 900, '[]')",
]


def _event(number: int, partner: int) -> str:
    return (
        "INSERT INTO usage_events (id, event_id, partner_id, customer_uin, product, kind,"
        " list_amount, voucher_amount, counted, occurred_at, ingested_at) VALUES"
        f" ({number}, 'e{number}', {partner}, {CUSTOMER}, 'cvm', 'charge', 1000, 100, 900,"
        " '2026-11-02 10:00:00', :at)"
    )


def _daily(day: str, partner: int) -> str:
    return (
        "INSERT INTO usage_daily (partner_id, customer_uin, day, counted) VALUES"
        f" ({partner}, {CUSTOMER}, '{day}', 900)"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0022(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with database_at(request.param, "0022", tmp_path) as engine:
        yield engine


def _keys(engine: Engine, table: str) -> dict[str, str]:
    """The table's foreign keys: the table each refers to, by the key's name."""
    return {fk["name"]: fk["referred_table"] for fk in inspect(engine).get_foreign_keys(table)}


def _customer_key_deferred(engine: Engine) -> bool:
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":
            found = c.execute(
                text("SELECT condeferrable AND condeferred FROM pg_constraint WHERE conname = :n"),
                {"n": "fk_usage_events_partner_id_customers"},
            ).scalar_one()
            return bool(found)
        ddl = c.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'usage_events'")
        ).scalar_one()
        return "DEFERRABLE INITIALLY DEFERRED" in ddl


def _refused(engine: Engine, statement: str) -> None:
    with pytest.raises(IntegrityError), engine.begin() as c:
        c.execute(text(statement), {"at": AT})


def test_0023_drops_the_partner_keys_the_customer_keys_hold_and_back(at_0022: Engine) -> None:
    with at_0022.begin() as c:
        for statement in [*ROWS, _event(1, PARTNER), _daily("2026-11-02", PARTNER)]:
            c.execute(text(statement), {"at": AT})
    before = {
        "usage_events": {
            "fk_usage_events_partner_id_customers": "customers",
            "fk_usage_events_partner_id_partners": "partners",
        },
        "usage_daily": {
            "fk_usage_daily_partner_id_customers": "customers",
            "fk_usage_daily_partner_id_partners": "partners",
        },
    }
    assert {table: _keys(at_0022, table) for table in before} == before

    upgrade(at_0022, "0023")
    assert current_revision(at_0022) == "0023"
    assert {table: _keys(at_0022, table) for table in before} == {
        "usage_events": {"fk_usage_events_partner_id_customers": "customers"},
        "usage_daily": {"fk_usage_daily_partner_id_customers": "customers"},
    }
    assert _customer_key_deferred(at_0022)
    with at_0022.connect() as c:
        assert c.execute(text("SELECT id, partner_id FROM usage_events")).all() == [(1, PARTNER)]
        assert c.execute(text("SELECT partner_id, counted FROM usage_daily")).all() == [
            (PARTNER, 900)
        ]
    # The customer belongs to PARTNER: rows naming it under another partner, or under no
    # partner at all, are still refused by the customer keys.
    for partner in (OTHER, 999):
        _refused(at_0022, _event(2, partner))
        _refused(at_0022, _daily("2026-11-03", partner))
    with at_0022.begin() as c:
        c.execute(text(_event(2, PARTNER)), {"at": AT})
        c.execute(text(_daily("2026-11-03", PARTNER)))

    config = alembic_config()
    with at_0022.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0022")
    assert {table: _keys(at_0022, table) for table in before} == before
    assert _customer_key_deferred(at_0022)
    with at_0022.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM usage_events")).scalar() == 2
        assert c.execute(text("SELECT COUNT(*) FROM usage_daily")).scalar() == 2

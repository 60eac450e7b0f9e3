"""Migration 0022: a usage event's customer key is checked at COMMIT (on both engines),
its rows kept; an event without its customer still cannot be committed; the downgrade
checks it at each statement again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from tests.conftest import database_at

from creditline.db.migrate import alembic_config, current_revision, upgrade

PARTNER, CUSTOMER, NOBODY = 100_000_000_001, 100_000_000_002, 100_000_000_009
AT = "2026-11-01 00:00:00"
KEY = "fk_usage_events_partner_id_customers"

ROWS = [
    "INSERT INTO accounts (uin, kind, created_at) VALUES"
    f" ({PARTNER}, 'partner', :at), ({CUSTOMER}, 'customer', :at)",
    "INSERT INTO partners (id, name, kind, parent_id, pool_total, pool_allocated,"
    " pool_from_distributor, thresholds, created_at) VALUES"
    f" ({PARTNER}, 'P', 'reseller', NULL, 100000, 0, 0, '[75, 90, 100]', :at)",
    "INSERT INTO customers (uin, partner_id, name, type, email, mobile, remark,"
    " identity_status, associated_at, total_credit, consumed, fired_thresholds) VALUES"
    f" ({CUSTOMER}, {PARTNER}, 'A', 'personal', '', '', '', 0, :at, 0, 900, '[]')",
]


def _event(number: int, uin: int) -> str:
    return (
        "INSERT INTO usage_events (id, event_id, partner_id, customer_uin, product, kind,"
        " list_amount, voucher_amount, counted, occurred_at, ingested_at) VALUES"
        f" ({number}, 'e{number}', {PARTNER}, {uin}, 'cvm', 'charge', 1000, 100, 900,"
        " '2026-11-02 10:00:00', :at)"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0021(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with database_at(request.param, "0021", tmp_path) as engine:
        yield engine


def _deferred(engine: Engine) -> bool:
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":
            found = c.execute(
                text("SELECT condeferrable AND condeferred FROM pg_constraint WHERE conname = :n"),
                {"n": KEY},
            ).scalar_one()
            return bool(found)
        ddl = c.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'usage_events'")
        ).scalar_one()
        return "DEFERRABLE INITIALLY DEFERRED" in ddl


def _orphan_refused(engine: Engine, *, at_statement: bool) -> None:
    """An event of no customer: refused by its INSERT (``at_statement``) or by COMMIT."""
    with pytest.raises(IntegrityError), engine.begin() as c:
        try:
            c.execute(text(_event(99, NOBODY)), {"at": AT})
        except IntegrityError:
            assert at_statement, "refused by the INSERT, not at COMMIT"
            raise
        assert not at_statement, "the INSERT was not refused"
    with engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM usage_events WHERE id = 99")).scalar() == 0


def test_0022_checks_the_customer_key_at_commit_and_back(at_0021: Engine) -> None:
    with at_0021.begin() as c:
        for statement in [*ROWS, _event(1, CUSTOMER)]:
            c.execute(text(statement), {"at": AT})
    assert not _deferred(at_0021)
    upgrade(at_0021, "0022")
    assert current_revision(at_0021) == "0022"
    assert _deferred(at_0021)
    with at_0021.connect() as c:
        kept = c.execute(text("SELECT id, event_id, customer_uin FROM usage_events")).all()
    assert [tuple(r) for r in kept] == [(1, "e1", CUSTOMER)]
    _orphan_refused(at_0021, at_statement=False)
    with at_0021.begin() as c:
        c.execute(text(_event(2, CUSTOMER)), {"at": AT})

    config = alembic_config()
    with at_0021.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0021")
    assert not _deferred(at_0021)
    _orphan_refused(at_0021, at_statement=True)
    with at_0021.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM usage_events")).scalar() == 2

"""Migration 0007 fills in what each distributor gave each sub-reseller from the pool
allocation records, and refuses a database in which a take-back already went beyond it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from tests.conftest import database_at

from creditline.db import transaction
from creditline.db.migrate import current_revision, upgrade
from creditline.ledger.verify import verify

DIST, SUB_ONE, SUB_TWO, RESELLER = (
    100_000_000_001,
    100_000_000_002,
    100_000_000_003,
    100_000_000_004,
)
AT = "2026-11-01 00:00:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0006(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, migrated to 0006 only."""
    with database_at(request.param, "0006", tmp_path) as engine:
        yield engine


def _partner(
    c: Connection, uin: int, kind: str, parent: int | None, total: int, allocated: int
) -> None:
    c.execute(
        text("INSERT INTO accounts (uin, kind, created_at) VALUES (:u, 'partner', :at)"),
        {"u": uin, "at": AT},
    )
    c.execute(
        text(
            "INSERT INTO partners (id, name, kind, parent_id, pool_total, pool_allocated,"
            " thresholds, created_at) VALUES (:u, 'P', :k, :p, :t, :a, '[75, 90, 100]', :at)"
        ),
        {"u": uin, "k": kind, "p": parent, "t": total, "a": allocated, "at": AT},
    )


def _record(c: Connection, partner: int, kind: str, change: int, sub: int | None = None) -> None:
    c.execute(
        text(
            "INSERT INTO allocation_records (partner_id, kind, sub_partner_id, operator, change,"
            " total_after, available_after, remark, source, created_at)"
            " VALUES (:p, :k, :s, 'ops', :c, 0, 0, '', 'cli', :at)"
        ),
        {"p": partner, "k": kind, "s": sub, "c": change, "at": AT},
    )


def test_what_each_distributor_gave_is_filled_in_from_the_records(at_0006: Engine) -> None:
    with at_0006.begin() as c:
        _partner(c, DIST, "distributor", None, 1_000_00, 250_00)
        _partner(c, SUB_ONE, "sub-reseller", DIST, 220_00, 0)
        _partner(c, SUB_TWO, "sub-reseller", DIST, 50_00, 0)
        _partner(c, RESELLER, "reseller", None, 70_00, 0)
        _record(c, DIST, "grant", 1_000_00)
        _record(c, DIST, "pool_allocation", 300_00, SUB_ONE)
        _record(c, DIST, "pool_allocation", -100_00, SUB_ONE)
        _record(c, DIST, "pool_allocation", 50_00, SUB_TWO)
        _record(c, SUB_ONE, "grant", 20_00)
        _record(c, RESELLER, "grant", 70_00)
    upgrade(at_0006)
    with at_0006.connect() as c:
        given = dict(c.execute(text("SELECT id, pool_from_distributor FROM partners")).all())
    assert given == {DIST: 0, SUB_ONE: 200_00, SUB_TWO: 50_00, RESELLER: 0}
    with transaction(at_0006) as s:
        assert verify(s) == []
    # The new constraints hold on the upgraded database too.
    with pytest.raises(Exception, match="from_distributor"), at_0006.begin() as c:
        c.execute(text("UPDATE partners SET pool_from_distributor = 1 WHERE id = :d"), {"d": DIST})


def test_a_take_back_beyond_what_was_given_stops_the_upgrade(at_0006: Engine) -> None:
    """The reproduced case of issue 12, small: the platform granted the sub-reseller
    500.00, the distributor gave it 100.00 and took back 300.00."""
    with at_0006.begin() as c:
        _partner(c, DIST, "distributor", None, 1_000_00, 0)
        _partner(c, SUB_ONE, "sub-reseller", DIST, 300_00, 0)
        _record(c, DIST, "grant", 1_000_00)
        _record(c, SUB_ONE, "grant", 500_00)
        _record(c, DIST, "pool_allocation", 100_00, SUB_ONE)
        _record(c, DIST, "pool_allocation", -300_00, SUB_ONE)
    with pytest.raises(
        RuntimeError, match=f"sub-reseller {SUB_ONE}: distributor {DIST} gave -200.00"
    ):
        upgrade(at_0006)
    assert current_revision(at_0006) == "0006"

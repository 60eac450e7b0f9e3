"""Migration 0017 (automatic top-ups) keeps every allocation record on both engines
(SQLite copies ``allocation_records`` to let its source CHECK accept ``rule``), and its
downgrade is refused while a top-up's record exists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from tests.conftest import database_at

from creditline.db.migrate import alembic_config, current_revision, upgrade

AT = "2026-11-01 00:00:00"
PARTNER, CUSTOMER = 100000000001, 100000000002
RECORD = (
    "INSERT INTO allocation_records (id, partner_id, kind, customer_uin, sub_partner_id,"
    " operator, change, total_after, available_after, remark, source, created_at) VALUES"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0015(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, migrated to 0016 only (0017 follows it), with a partner, a
    customer and two records."""
    with database_at(request.param, "0016", tmp_path) as engine:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO accounts (uin, kind, created_at) VALUES"
                    f" ({PARTNER}, 'partner', :at), ({CUSTOMER}, 'customer', :at)"
                ),
                {"at": AT},
            )
            c.execute(
                text(
                    "INSERT INTO partners (id, name, kind, pool_total, pool_allocated,"
                    " pool_from_distributor, thresholds, created_at)"
                    f" VALUES ({PARTNER}, 'P', 'reseller', 100000, 10000, 0, '[75]', :at)"
                ),
                {"at": AT},
            )
            c.execute(
                text(
                    "INSERT INTO customers (uin, partner_id, name, type, email, mobile,"
                    " remark, identity_status, associated_at, total_credit, consumed,"
                    " fired_thresholds) VALUES"
                    f" ({CUSTOMER}, {PARTNER}, 'C', 'personal', '', '', '', 0, :at, 10000, 0,"
                    " '[]')"
                ),
                {"at": AT},
            )
            c.execute(
                text(
                    RECORD + f" (1, {PARTNER}, 'grant', NULL, NULL, 'ops', 100000, 100000,"
                    f" 100000, '', 'cli', :at), (2, {PARTNER}, 'allocation', {CUSTOMER}, NULL,"
                    " 'ops', 10000, 10000, 10000, 'first', 'console', :at)"
                ),
                {"at": AT},
            )
        yield engine


def _records(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                text("SELECT id, kind, change, remark, source FROM allocation_records ORDER BY id")
            )
        ]


def _rule_record(engine: Engine) -> None:
    with engine.begin() as c:
        c.execute(
            text(
                RECORD + f" (3, {PARTNER}, 'allocation', {CUSTOMER}, NULL, 'top-up rule',"
                " 100, 10100, 10100, '', 'rule', :at)"
            ),
            {"at": AT},
        )


def test_records_survive_and_a_top_up_may_be_recorded(at_0015: Engine) -> None:
    before = _records(at_0015)
    with pytest.raises(IntegrityError):
        _rule_record(at_0015)
    upgrade(at_0015, "0017")
    assert current_revision(at_0015) == "0017"
    assert _records(at_0015) == before
    _rule_record(at_0015)
    assert _records(at_0015)[-1] == (3, "allocation", 100, "", "rule")


def test_the_downgrade_is_refused_while_a_top_up_is_recorded(at_0015: Engine) -> None:
    upgrade(at_0015, "0017")
    _rule_record(at_0015)
    config = alembic_config()
    with at_0015.begin() as connection:
        config.attributes["connection"] = connection
        with pytest.raises(RuntimeError, match="source 'rule'"):
            command.downgrade(config, "0016")
    assert current_revision(at_0015) == "0017"
    with at_0015.begin() as c:
        c.execute(text("DELETE FROM allocation_records WHERE id = 3"))
    with at_0015.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0016")
    assert current_revision(at_0015) == "0016"
    assert len(_records(at_0015)) == 2

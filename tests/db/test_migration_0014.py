"""Migration 0014 (the customer's side) keeps every user, role and console session on
both engines (SQLite rebuilds ``users`` to change its role CHECK), and a customer's user
needs its customer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from tests.conftest import database_at

from creditline.db.migrate import current_revision, upgrade

AT = "2026-11-01 00:00:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0011(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, migrated to 0011 only."""
    with database_at(request.param, "0011", tmp_path) as engine:
        yield engine


def test_users_and_sessions_survive(at_0011: Engine) -> None:
    with at_0011.begin() as c:
        c.execute(
            text(
                "INSERT INTO accounts (uin, kind, created_at) VALUES "
                "(100000000001, 'partner', :at), (100000000002, 'customer', :at)"
            ),
            {"at": AT},
        )
        c.execute(
            text(
                "INSERT INTO partners (id, name, kind, pool_total, pool_allocated,"
                " pool_from_distributor, thresholds, created_at)"
                " VALUES (100000000001, 'P', 'reseller', 0, 0, 0, '[75, 90, 100]', :at)"
            ),
            {"at": AT},
        )
        c.execute(
            text(
                "INSERT INTO customers (uin, partner_id, name, type, email, mobile, remark,"
                " identity_status, associated_at, total_credit, consumed, fired_thresholds)"
                " VALUES (100000000002, 100000000001, 'C', 'personal', '', '', '', 0, :at,"
                " 0, 0, '[]')"
            ),
            {"at": AT},
        )
        c.execute(
            text(
                "INSERT INTO users (id, partner_id, email, password_hash, role, created_at)"
                " VALUES (1, 100000000001, 'a@p.example', 'h', 'admin', :at),"
                " (2, NULL, 'staff@v.example', 'h', 'platform', :at)"
            ),
            {"at": AT},
        )
        c.execute(
            text(
                "INSERT INTO console_sessions (token_hash, user_id, partner_id, created_at,"
                " expires_at) VALUES ('t1', 1, 100000000001, :at, :at)"
            ),
            {"at": AT},
        )
    upgrade(at_0011, "0014")
    assert current_revision(at_0011) == "0014"
    with at_0011.connect() as c:
        users = c.execute(text("SELECT id, role, customer_uin FROM users ORDER BY id")).all()
        assert [tuple(u) for u in users] == [(1, "admin", None), (2, "platform", None)]
        assert c.execute(text("SELECT token_hash FROM console_sessions")).scalars().all() == ["t1"]
    # A customer's user without its customer is refused by the CHECK.
    with pytest.raises(IntegrityError, match=r"customer_has_uin|CHECK"), at_0011.begin() as c:
        c.execute(
            text(
                "INSERT INTO users (id, partner_id, email, password_hash, role, created_at)"
                " VALUES (3, 100000000001, 'c@p.example', 'h', 'customer', :at)"
            ),
            {"at": AT},
        )
    with at_0011.begin() as c:
        c.execute(
            text(
                "INSERT INTO users (id, partner_id, email, password_hash, role, customer_uin,"
                " created_at) VALUES (3, 100000000001, 'c@p.example', 'h', 'customer',"
                " 100000000002, :at)"
            ),
            {"at": AT},
        )

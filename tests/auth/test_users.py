"""Console users: a partner always keeps an admin, and failed logins are throttled —
also when the writers race (issue 12): each rule's count and the write that depends on
it are one atomic step, on PostgreSQL by a lock, on SQLite by its single writer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from tests.race import run_together

from creditline.auth import users
from creditline.db import is_postgres, transaction
from creditline.db.tables import LoginAttempt, User
from creditline.errors import InvalidInput
from creditline.ledger import accounts

PASSWORD = "correct horse battery staple"


def _partner_with_admins(engine: Engine, count: int) -> tuple[int, list[int]]:
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller").id
        admins = [
            users.create_user(
                s,
                partner_id=partner,
                email=f"admin{n}@acme.example",
                password=PASSWORD,
                role="admin",
            ).id
            for n in range(count)
        ]
    return partner, admins


def _admins(engine: Engine, partner: int) -> int:
    with transaction(engine) as s:
        return s.execute(
            select(func.count())
            .select_from(User)
            .where(User.partner_id == partner, User.role == "admin")
        ).scalar_one()


def test_the_last_admin_cannot_be_removed(engine: Engine) -> None:
    partner, (first, second) = _partner_with_admins(engine, 2)
    with transaction(engine) as s:
        users.remove_user(s, partner_id=partner, user_id=second)
    with transaction(engine) as s, pytest.raises(users.LastAdmin):
        users.remove_user(s, partner_id=partner, user_id=first)
    assert _admins(engine, partner) == 1


def test_two_admins_removing_each_other_leave_one(engine: Engine) -> None:
    """Each read "two admins", then each removed the other: the partner had none."""
    if not is_postgres(engine):
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no race to lose")
    partner, (first, second) = _partner_with_admins(engine, 2)
    outcomes = run_together(
        engine,
        [
            lambda s: users.remove_user(s, partner_id=partner, user_id=second),
            lambda s: users.remove_user(s, partner_id=partner, user_id=first),
        ],
    )
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], users.LastAdmin), outcomes
    assert _admins(engine, partner) == 1


def _fail_login(email: str, client: str) -> Callable[[Session], User | None]:
    def attempt(s: Session) -> User | None:
        return users.authenticate(s, email=email, password="wrong", client=client)

    return attempt


def test_concurrent_failed_logins_cannot_pass_the_limit(engine: Engine) -> None:
    """Eight wrong passwords for one address at once: five are checked and counted, the
    other three are throttled without a password check."""
    if not is_postgres(engine):
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no race to lose")
    _partner_with_admins(engine, 1)
    email = "admin0@acme.example"
    outcomes = run_together(
        engine,
        [_fail_login(email, f"198.51.100.{n}") for n in range(8)],
    )
    checked = [o for o in outcomes if o is None]
    throttled = [o for o in outcomes if isinstance(o, users.LoginThrottled)]
    assert (len(checked), len(throttled)) == (users.MAX_FAILURES_PER_EMAIL, 3), outcomes
    with transaction(engine) as s:
        counted = s.execute(
            select(func.count()).select_from(LoginAttempt).where(LoginAttempt.email == email)
        ).scalar_one()
    assert counted == users.MAX_FAILURES_PER_EMAIL


def test_one_address_added_twice_at_once_is_one_login(engine: Engine) -> None:
    """Both read "no such login yet"; the second insert broke the unique index and
    surfaced as a database error instead of the usual refusal."""
    if not is_postgres(engine):
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no race to lose")
    partner, _ = _partner_with_admins(engine, 1)

    def add(s: Session) -> User:
        return users.create_user(
            s, partner_id=partner, email="new@acme.example", password=PASSWORD, role="viewer"
        )

    outcomes = run_together(engine, [add, add])
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], InvalidInput), outcomes
    assert "already has a login" in refused[0].message

"""Console users: a partner's admins, operators and viewers, and the platform's admins.

A partner admin adds and removes its partner's users; nobody sees another partner's users
(they answer as missing ones). Failed logins are counted per address and per client, and
past the limit a login is refused without even checking the password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from creditline.auth.passwords import hash_password, needs_rehash, verify_password
from creditline.clock import utcnow
from creditline.db.tables import ConsoleSession, LoginAttempt, User
from creditline.errors import CreditlineError, InvalidInput, NotFound
from creditline.ledger.accounts import get_customer, get_partner, lock_partner

PARTNER_ROLES = ("admin", "operator", "viewer")
PLATFORM_ROLE = "platform"
#: A customer's user: sees its own customer's account, nothing of the partner's.
CUSTOMER_ROLE = "customer"

#: Failed logins allowed in the window, for one address and for one client address.
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_CLIENT = 30
THROTTLE_WINDOW = timedelta(minutes=15)


class LoginThrottled(CreditlineError):
    """Too many failed logins lately; the next attempt waits."""

    code = "login_throttled"
    kind = "forbidden"


class LastAdmin(CreditlineError):
    """A partner always keeps one admin, or nobody could manage its users again."""

    code = "last_admin"
    kind = "conflict"


@dataclass(frozen=True)
class Role:
    """What a role may do in the console."""

    name: str

    @property
    def is_platform(self) -> bool:
        return self.name == PLATFORM_ROLE

    @property
    def is_customer(self) -> bool:
        return self.name == CUSTOMER_ROLE

    @property
    def can_allocate(self) -> bool:
        """Allocate and withdraw credit, bulk allocation, pool allocation, applications."""
        return self.name in ("admin", "operator")

    @property
    def can_manage(self) -> bool:
        """Settings: thresholds, users, keys, webhooks."""
        return self.name == "admin"


def normalise_email(email: str) -> str:
    """An address as stored: trimmed, lower case, checked for the obvious."""
    value = email.strip().lower()
    if not value or len(value) > 320 or "@" not in value or any(c.isspace() for c in value):
        raise InvalidInput(f"{email!r} is not an email address", param="email")
    return value


def create_user(
    session: Session,
    *,
    partner_id: int | None,
    email: str,
    password: str,
    role: str,
    customer_uin: int | None = None,
) -> User:
    """Add a user: a partner's (``partner_id`` and a partner role), a customer's (the
    ``customer`` role and one of the partner's customers) or, with no partner, a platform
    admin. One login per address across the whole system."""
    address = normalise_email(email)
    if partner_id is None:
        if role != PLATFORM_ROLE or customer_uin is not None:
            raise InvalidInput("a user without a partner is a platform admin", param="role")
    elif role == CUSTOMER_ROLE:
        if customer_uin is None:
            raise InvalidInput("a customer's user needs its customer", param="customer_uin")
        get_customer(session, partner_id, customer_uin)
    else:
        get_partner(session, partner_id)
        if role not in PARTNER_ROLES:
            raise InvalidInput(f"role must be one of {', '.join(PARTNER_ROLES)}", param="role")
        if customer_uin is not None:
            raise InvalidInput("only a customer's user has a customer", param="customer_uin")
    password_hash = hash_password(password)
    taken = InvalidInput(f"{address} already has a login", param="email")
    if session.execute(select(User.id).where(User.email == address)).first() is not None:
        raise taken
    user = User(
        partner_id=partner_id,
        email=address,
        password_hash=password_hash,
        role=role,
        customer_uin=customer_uin,
        created_at=utcnow(),
    )
    # The read above answers the usual case; two logins added at once for one address
    # both pass it, and the unique index refuses the second: the same refusal, not a
    # database error (the savepoint keeps the caller's transaction usable).
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        raise taken from None
    return user


def list_users(session: Session, partner_id: int, *, customer_uin: int | None = None) -> list[User]:
    """The partner's users (with ``customer_uin``: that customer's users), oldest first."""
    query = select(User).where(User.partner_id == partner_id)
    if customer_uin is not None:
        query = query.where(User.customer_uin == customer_uin)
    return list(session.execute(query.order_by(User.id)).scalars())


def user_count(session: Session) -> int:
    """How many console users there are, of every partner and of the platform."""
    return int(session.execute(select(func.count()).select_from(User)).scalar_one())


def get_user(session: Session, partner_id: int, user_id: int) -> User:
    """One of the partner's users; another partner's answers as a missing one."""
    user = session.execute(
        select(User).where(User.partner_id == partner_id, User.id == user_id)
    ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user {user_id}", param="user")
    return user


def remove_user(session: Session, *, partner_id: int, user_id: int) -> User:
    """Remove one of the partner's users and end its sessions. The last admin stays,
    also when two admins remove each other at once (the partner's row is locked first)."""
    lock_partner(session, partner_id)
    user = get_user(session, partner_id, user_id)
    if user.role == "admin":
        admins = session.execute(
            select(func.count())
            .select_from(User)
            .where(User.partner_id == partner_id, User.role == "admin")
        ).scalar_one()
        if admins <= 1:
            raise LastAdmin("a partner keeps at least one admin", param="user")
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
    session.delete(user)
    session.flush()
    return user


#: Advisory lock namespaces (PostgreSQL) for the failures of one address, of one client.
_EMAIL_LOCKS, _CLIENT_LOCKS = 1, 2


def _count_alone(session: Session, address: str, client: str) -> None:
    """Until the transaction ends, be the only login counting and recording failures of
    this address and this client, so that concurrent failures cannot all read a count
    below the limit. PostgreSQL: transaction-scoped advisory locks, always the address's
    before the client's (one order, no deadlock). SQLite runs one writer at a time."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for namespace, key in ((_EMAIL_LOCKS, address), (_CLIENT_LOCKS, client)):
        session.execute(select(func.pg_advisory_xact_lock(namespace, func.hashtext(key))))


def _failures_since(session: Session, column: InstrumentedAttribute[str], value: str) -> int:
    since = utcnow() - THROTTLE_WINDOW
    return session.execute(
        select(func.count())
        .select_from(LoginAttempt)
        .where(column == value, LoginAttempt.at >= since)
    ).scalar_one()


def authenticate(session: Session, *, email: str, password: str, client: str) -> User | None:
    """The user whose address and password these are, or None (and the failure counted).

    Raises :class:`LoginThrottled` once the address or the client has failed too often in
    the window; the caller commits either way, so the failure is remembered.
    """
    address = email.strip().lower()[:320]
    client = client[:64]
    _count_alone(session, address, client)
    if (
        _failures_since(session, LoginAttempt.email, address) >= MAX_FAILURES_PER_EMAIL
        or _failures_since(session, LoginAttempt.client, client) >= MAX_FAILURES_PER_CLIENT
    ):
        minutes = int(THROTTLE_WINDOW.total_seconds() // 60)
        raise LoginThrottled(
            f"too many failed logins; try again in {minutes} minutes", param="email"
        )
    user = session.execute(select(User).where(User.email == address)).scalar_one_or_none()
    if not verify_password(None if user is None else user.password_hash, password):
        now = utcnow()
        session.execute(insert(LoginAttempt).values(email=address, client=client, at=now))
        # Old failures no longer count; keep the table small.
        session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - THROTTLE_WINDOW))
        return None
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.execute(delete(LoginAttempt).where(LoginAttempt.email == address))
    session.flush()
    return user

"""Console sessions and their CSRF tokens.

The browser holds a random token in an HttpOnly cookie; the database holds only its
SHA-256. Every form carries a CSRF token derived from the session token with HMAC
(OWASP's "signed double-submit" pattern): a page of another site can neither read the
cookie nor compute the token, and a token is worthless with any other session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import ConsoleSession, User

SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class LoggedIn:
    """A live session and its user."""

    token_hash: str
    user: User
    flash: str | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh unguessable token (256 bits)."""
    return secrets.token_urlsafe(32)


def csrf_token(session_token: str) -> str:
    """The CSRF token that forms of this session (or of this anonymous visitor) carry."""
    return hmac.new(session_token.encode(), b"creditline-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str | None, submitted: str | None) -> bool:
    """Whether a submitted form token belongs to this browser's session token."""
    if not session_token or not submitted:
        return False
    return hmac.compare_digest(csrf_token(session_token), submitted)


def start_session(session: Session, user: User) -> str:
    """Log ``user`` in: a new session, its token returned once for the cookie. A new token
    on every login means a token planted before login (session fixation) is worthless."""
    token = new_token()
    now = utcnow()
    session.add(
        ConsoleSession(
            token_hash=_digest(token),
            user_id=user.id,
            partner_id=user.partner_id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    # Expired sessions of this user are of no use to anyone.
    session.execute(
        delete(ConsoleSession).where(
            ConsoleSession.user_id == user.id, ConsoleSession.expires_at < now
        )
    )
    session.flush()
    return token


def load_session(
    session: Session, token: str | None, *, consume_flash: bool = True
) -> LoggedIn | None:
    """The live session for a cookie's token, or None (missing, unknown or expired).
    Reading it consumes its one-time message, unless ``consume_flash`` is False (a read
    transaction, whose caller consumes it with :func:`clear_flash`)."""
    if not token:
        return None
    row = session.execute(
        select(ConsoleSession, User)
        .join(User, User.id == ConsoleSession.user_id)
        .where(ConsoleSession.token_hash == _digest(token), ConsoleSession.expires_at > utcnow())
    ).one_or_none()
    if row is None:
        return None
    console_session, user = row
    flash = console_session.flash
    if flash is not None and consume_flash:
        console_session.flash = None
        session.flush()
    return LoggedIn(token_hash=console_session.token_hash, user=user, flash=flash)


def set_flash(session: Session, token_hash: str, message: str) -> None:
    """Leave a one-time message for the next page of this session."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == token_hash)
        .values(flash=message[:1000])
        .execution_options(synchronize_session=False)
    )


def clear_flash(session: Session, token_hash: str, shown: str) -> None:
    """The one-time message ``shown`` has been shown: forget it (unless another has
    replaced it meanwhile)."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == token_hash, ConsoleSession.flash == shown)
        .values(flash=None)
        .execution_options(synchronize_session=False)
    )


def end_session(session: Session, token: str | None) -> None:
    """Log out: the session is gone, its cookie worthless."""
    if token:
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _digest(token)))

"""The idempotency store. A write with an ``Idempotency-Key`` inserts one row — unique per
(partner, API key, idempotency key) — in the same transaction as the write itself, so of two
concurrent requests with one key exactly one commits, and the other then finds its answer.
Answers are kept for 24 hours; an error changes nothing and stores nothing, so retrying a
refused request asks again."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditline.auth.keys import LIVE_KEY
from creditline.clock import utcnow
from creditline.db import compiled
from creditline.db.tables import IdempotentRequest
from creditline.errors import CreditlineError, InvalidInput

RETENTION = timedelta(hours=24)
#: The unique key of a stored request: per partner (the distribution column leads every
#: unique key, creditline.db.distribution) and API key.
KEY = ["partner_id", "api_key_id", "key"]
MAX_KEY_LENGTH = 255


class IdempotencyConflict(CreditlineError):
    code = "idempotency_key_reused"
    kind = "conflict"


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: str


#: ``request_hash``'s ``parsed`` when the caller has not read the body.
UNREAD: Any = object()
#: ``request_hash``'s ``parsed`` for a body that is not JSON.
NOT_JSON: Any = object()


def request_hash(
    method: str,
    path: str,
    query: str,
    body: bytes,
    *,
    parsed: Any = UNREAD,
    canonical: bytes | None = None,
) -> str:
    """A fingerprint of the request: a JSON body is compared by meaning, not spacing.
    ``parsed``: the body as ``json.loads`` read it (or :data:`NOT_JSON`), when the caller
    has read it already (a large body is then not read twice); ``canonical``: its text
    with sorted keys, compact, when the caller has it (``creditline.json_text``)."""
    if canonical is None:
        if parsed is UNREAD:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = NOT_JSON
        if parsed is NOT_JSON:
            canonical = body
        else:
            canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    """An idempotency key as accepted: 1-255 printable ASCII characters."""
    # Printable ASCII but the space: 33 to 126, each.
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not (
        key.isascii() and key.isprintable() and " " not in key
    ):
        raise InvalidInput(
            "Idempotency-Key must be 1-255 printable ASCII characters", param="Idempotency-Key"
        )
    return key


def _of_partner(partner_id: int | None) -> ColumnElement[bool]:
    """The rows of ``partner_id``; None is the platform's (stored as the distribution
    column's platform value, so compared as a bound value, never as ``IS NULL``)."""
    return IdempotentRequest.partner_id == bindparam(
        None, partner_id, type_=IdempotentRequest.partner_id.type
    )


def recall(
    session: Session, *, api_key_id: int, partner_id: int | None, key: str, fingerprint: str
) -> StoredAnswer | None:
    """The stored answer for ``key`` within 24 hours, or None if the key is fresh.
    The same key with another request is :class:`IdempotencyConflict`."""
    row = session.execute(
        select(IdempotentRequest).where(
            _of_partner(partner_id),
            IdempotentRequest.api_key_id == api_key_id,
            IdempotentRequest.key == key,
            IdempotentRequest.created_at >= utcnow() - RETENTION,
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was used with a different request", param="Idempotency-Key"
        )
    assert row.status_code is not None and row.response_body is not None
    return StoredAnswer(row.status_code, row.response_body)


def _claim(dialect: Any) -> Any:
    return (
        dialect.insert(IdempotentRequest.__table__)
        .values(
            api_key_id=bindparam("claim_api_key_id", type_=BigInteger),
            partner_id=bindparam("claim_partner_id", type_=IdempotentRequest.partner_id.type),
            key=bindparam("claim_key", type_=String),
            request_hash=bindparam("claim_request_hash", type_=String),
            created_at=bindparam("claim_created_at", type_=IdempotentRequest.created_at.type),
        )
        .on_conflict_do_nothing(index_elements=KEY)
        .returning(IdempotentRequest.id)
    )


#: :func:`claim`'s statement, by engine: a dialect's INSERT, compiled once (db/compiled.py).
_CLAIM = {"postgresql": _claim(postgresql), "sqlite": _claim(sqlite)}


def claim(
    session: Session, *, api_key_id: int, partner_id: int | None, key: str, fingerprint: str
) -> int | None:
    """Insert the key's row in the caller's transaction; None when the key already has one
    (on PostgreSQL after waiting for a concurrent request holding it to finish). One
    statement, so the common case — a fresh key — costs a single round trip."""
    dialect = session.get_bind().dialect.name
    found = compiled.fetch_all(
        session,
        _CLAIM["postgresql" if dialect == "postgresql" else "sqlite"],
        claimed(api_key_id=api_key_id, partner_id=partner_id, key=key, fingerprint=fingerprint),
    )
    return found[0][0] if found else None


def _claim_pending(dialect: Any) -> Any:
    return (
        dialect.insert(IdempotentRequest.__table__)
        .inline()
        .values(
            api_key_id=bindparam("claim_api_key_id", type_=BigInteger),
            partner_id=bindparam("claim_partner_id", type_=IdempotentRequest.partner_id.type),
            key=bindparam("claim_key", type_=String),
            request_hash=bindparam("claim_request_hash", type_=String),
            created_at=bindparam("claim_created_at", type_=IdempotentRequest.created_at.type),
        )
        .on_conflict_do_nothing(index_elements=KEY)
    )


#: :func:`claim` without asking for its outcome, by engine (parameters: :func:`claimed`).
CLAIM_PENDING = {"postgresql": _claim_pending(postgresql), "sqlite": _claim_pending(sqlite)}


_CLAIMED_COLUMNS = ("api_key_id", "partner_id", "key", "request_hash", "created_at")


def claim_answered(answer: Any, *, rows: Any) -> Any:
    """PostgreSQL's claim of a key that stores its answer at once: :data:`CLAIM_PENDING`'s
    row with status 200 and ``answer`` (built by the same statement from ``rows``), or
    nothing when the key is taken (parameters: :func:`claimed`). Returns the row's id."""
    return (
        postgresql.insert(IdempotentRequest.metadata.tables[IdempotentRequest.__tablename__])
        .from_select(
            [*_CLAIMED_COLUMNS, "status_code", "response_body"],
            select(
                bindparam("claim_api_key_id", type_=BigInteger),
                bindparam("claim_partner_id", type_=IdempotentRequest.partner_id.type),
                bindparam("claim_key", type_=String),
                bindparam("claim_request_hash", type_=String),
                bindparam("claim_created_at", type_=IdempotentRequest.created_at.type),
                literal(200, Integer),
                cast(answer, Text),
            ).select_from(*rows),
        )
        .on_conflict_do_nothing(index_elements=KEY)
        .returning(IdempotentRequest.id)
    )


#: The condition that ``claim_key`` of ``claim_api_key_id`` is not yet used (no row of
#: it, answered or not), for the write's own guard (parameters: :func:`claimed`).
UNUSED: ColumnElement[bool] = ~exists().where(
    IdempotentRequest.partner_id
    == bindparam("claim_partner_id", type_=IdempotentRequest.partner_id.type),
    IdempotentRequest.api_key_id == bindparam("claim_api_key_id", type_=BigInteger),
    IdempotentRequest.key == bindparam("claim_key", type_=String),
)


def claimed(
    *, api_key_id: int, partner_id: int | None, key: str, fingerprint: str
) -> dict[str, Any]:
    """The parameters of :data:`CLAIM_PENDING`."""
    return {
        "claim_api_key_id": api_key_id,
        "claim_partner_id": partner_id,
        "claim_key": key,
        "claim_request_hash": fingerprint,
        "claim_created_at": utcnow(),
    }


def claim_pending(
    session: Session, *, api_key_id: int, partner_id: int | None, key: str, fingerprint: str
) -> None:
    """:func:`claim` without asking for its outcome, so that on PostgreSQL it goes with the
    write's own statement in one round trip; the write then holds only if
    :data:`LIVE_KEY_AND_CLAIM` does (the key's row is this transaction's, unanswered)."""
    compiled.execute(
        session,
        CLAIM_PENDING[session.get_bind().dialect.name],
        claimed(api_key_id=api_key_id, partner_id=partner_id, key=key, fingerprint=fingerprint),
    )


#: :data:`LIVE_KEY`, and the idempotency key ``require_idempotency_key`` claimed by this
#: transaction (:func:`claim_pending`): a row with no answer yet can only be its own, since
#: a concurrent claim of the same key waits for the holder's transaction to end.
LIVE_KEY_AND_CLAIM: ColumnElement[bool] = and_(
    LIVE_KEY,
    exists().where(
        IdempotentRequest.partner_id
        == bindparam("require_partner_id", type_=IdempotentRequest.partner_id.type),
        IdempotentRequest.api_key_id == bindparam("require_key_id"),
        IdempotentRequest.key == bindparam("require_idempotency_key"),
        IdempotentRequest.response_body.is_(None),
    ),
)


#: :data:`LIVE_KEY`, and the idempotency key claimed by the write's own statement: on
#: PostgreSQL the claim (:data:`CLAIM_PENDING`, parameters :func:`claimed`) runs as a CTE of
#: the statement that checks this condition, so the write changes nothing unless its claim
#: took the key (a key already used, or claimed by a transaction that committed meanwhile,
#: leaves the claim empty: the ordinary path then answers it).
LIVE_KEY_AND_CLAIMED_HERE: ColumnElement[bool] = and_(
    LIVE_KEY,
    exists(select(CLAIM_PENDING["postgresql"].returning(IdempotentRequest.id).cte("claim").c.id)),
)


#: :func:`store` for a row claimed by :func:`claim_pending` (its id unread); parameters
#: ``store_partner_id``, ``store_api_key_id``, ``store_key``, ``store_status_code``,
#: ``store_body``.
STORE_CLAIMED = (
    update(IdempotentRequest.metadata.tables[IdempotentRequest.__tablename__])
    .where(
        IdempotentRequest.partner_id
        == bindparam("store_partner_id", type_=IdempotentRequest.partner_id.type),
        IdempotentRequest.api_key_id == bindparam("store_api_key_id", type_=BigInteger),
        IdempotentRequest.key == bindparam("store_key", type_=String),
        IdempotentRequest.response_body.is_(None),
    )
    .values(
        status_code=bindparam("store_status_code", type_=Integer),
        response_body=bindparam("store_body", type_=String),
    )
)


def store_claimed(
    session: Session,
    *,
    api_key_id: int,
    partner_id: int | None,
    key: str,
    status_code: int,
    body: str,
) -> None:
    """:func:`store` for a row claimed by :func:`claim_pending` (its id unread)."""
    session.execute(
        STORE_CLAIMED,
        {
            "store_partner_id": partner_id,
            "store_api_key_id": api_key_id,
            "store_key": key,
            "store_status_code": status_code,
            "store_body": body,
        },
    )


def clear_expired(session: Session, *, api_key_id: int, partner_id: int | None, key: str) -> None:
    """Forget the key's row if it is older than 24 hours, so the key can be used afresh."""
    session.execute(
        delete(IdempotentRequest).where(
            _of_partner(partner_id),
            IdempotentRequest.api_key_id == api_key_id,
            IdempotentRequest.key == key,
            IdempotentRequest.created_at < utcnow() - RETENTION,
        )
    )


#: :func:`store`'s statement (compiled once: db/compiled.py).
_requests = IdempotentRequest.metadata.tables[IdempotentRequest.__tablename__]
_STORE = (
    update(_requests)
    .where(
        _requests.c.partner_id
        == bindparam("store_partner_id", type_=IdempotentRequest.partner_id.type),
        _requests.c.id == bindparam("store_id", type_=BigInteger),
    )
    .values(
        status_code=bindparam("store_status_code", type_=Integer),
        response_body=bindparam("store_body", type_=Text),
    )
)


def store(
    session: Session, row_id: int, *, partner_id: int | None, status_code: int, body: str
) -> None:
    """Keep the answer of the claimed row, in the same transaction as the write."""
    compiled.execute(
        session,
        _STORE,
        {
            "store_partner_id": partner_id,
            "store_id": row_id,
            "store_status_code": status_code,
            "store_body": body,
        },
    )

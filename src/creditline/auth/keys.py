"""API keys. One pair — a public ``secret_id`` (``AKID`` + 32 letters and digits, shaped like
Tencent's) and a ``secret_key`` shown once — authenticates REST calls and Tencent-style
signed requests. The secret is stored only encrypted with the server key."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, bindparam, exists, select, update
from sqlalchemy.orm import Session

from creditline.auth import server_key
from creditline.clock import utcnow
from creditline.db import compiled, read_transaction
from creditline.db.tables import ApiKey as ApiKeyRow
from creditline.db.tables import Partner as PartnerRow
from creditline.errors import CreditlineError, InvalidInput, NotFound
from creditline.ledger.accounts import get_customer, get_partner

#: The API key ``require_key_id`` is not revoked: checked in the write's own statement,
#: so a key kept in memory is refused on the request after its revocation.
LIVE_KEY: ColumnElement[bool] = exists().where(
    ApiKeyRow.id == bindparam("require_key_id"), ApiKeyRow.revoked_at.is_(None)
)
PRINCIPALS = ("platform", "partner", "customer")


#: :data:`LIVE_KEY` asked on its own (compiled once: every request that takes its key from
#: the key cache asks it, :func:`is_live`).
_IS_LIVE = select(LIVE_KEY)


def is_live(session: Session, params: Mapping[str, Any]) -> bool:
    """Whether the key of a write's requirement (``params``: ``require_key_id``) is still
    live: the same check :data:`LIVE_KEY` makes inside the write, asked on its own."""
    (found,) = compiled.fetch_all(session, _IS_LIVE, params)
    return bool(found[0])


ROLES = ("admin", "operator", "viewer")
_ALPHANUMERIC = string.ascii_letters + string.digits


class UnknownKey(CreditlineError):
    """The secret id is unknown, revoked, or its secret does not match."""

    code = "invalid_api_key"
    kind = "unauthenticated"


@dataclass(frozen=True)
class ApiKey:
    """A key as its holder acts with it. ``secret_key`` is the decrypted secret and is
    present only where a caller needs it (creation, :func:`lookup`)."""

    id: int
    secret_id: str
    principal: str
    partner_id: int | None
    customer_uin: int | None
    role: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None
    secret_key: str | None = None
    #: The kind of the key's partner (distributor, reseller, sub-reseller), where known.
    partner_kind: str | None = None

    def describe(self) -> dict[str, object]:
        """The key as listed: never the secret."""
        return {
            "secret_id": self.secret_id,
            "principal": self.principal,
            "partner_id": self.partner_id,
            "customer_uin": self.customer_uin,
            "role": self.role,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _view(row: ApiKeyRow, secret_key: str | None = None) -> ApiKey:
    return ApiKey(
        id=row.id,
        secret_id=row.secret_id,
        principal=row.principal,
        partner_id=row.partner_id,
        customer_uin=row.customer_uin,
        role=row.role,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        secret_key=secret_key,
    )


def new_secret_id() -> str:
    """``AKID`` followed by 32 random letters and digits."""
    return "AKID" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(32))


def new_secret_key() -> str:
    """40 random letters and digits (Tencent's secrets are 32; longer costs nothing)."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(40))


def create(
    session: Session,
    *,
    principal: str,
    partner_id: int | None = None,
    role: str | None = None,
    customer_uin: int | None = None,
    name: str | None = None,
) -> ApiKey:
    """Create a key for the platform, for a partner with a role, or for one customer.

    The answer carries the secret; it is never shown again.
    """
    if principal not in PRINCIPALS:
        raise InvalidInput(f"principal must be one of {', '.join(PRINCIPALS)}", param="principal")
    if principal == "partner":
        if partner_id is None:
            raise InvalidInput("a partner key names its partner", param="partner_id")
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", param="role")
        get_partner(session, partner_id)
        customer_uin = None
    elif principal == "customer":
        if customer_uin is None:
            raise InvalidInput("a customer key names its customer", param="customer_uin")
        if role is not None:
            raise InvalidInput("a customer key has no role", param="role")
        customer = get_customer(session, partner_id, customer_uin)
        partner_id = customer.partner_id
    else:
        if partner_id is not None or customer_uin is not None or role is not None:
            raise InvalidInput("a platform key names no partner, customer or role")
    secret_id = new_secret_id()
    secret_key = new_secret_key()
    label = (name or "").strip() or secret_id
    if len(label) > 200 or any(ord(c) < 32 for c in label):
        raise InvalidInput("name must be 1-200 printable characters", param="name")
    row = ApiKeyRow(
        secret_id=secret_id,
        secret_encrypted=server_key.encrypt(_engine(session), secret_key),
        principal=principal,
        partner_id=partner_id,
        customer_uin=customer_uin,
        role=role if principal == "partner" else None,
        name=label,
        created_at=utcnow(),
        revoked_at=None,
    )
    with session.begin_nested():
        session.add(row)
        session.flush()
    return _view(row, secret_key)


def _row(session: Session, secret_id: str, partner_id: int | None) -> ApiKeyRow:
    query = select(ApiKeyRow).where(ApiKeyRow.secret_id == secret_id)
    if partner_id is not None:
        query = query.where(ApiKeyRow.partner_id == partner_id)
    row = session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no API key {secret_id}", param="secret_id")
    return row


def revoke(session: Session, secret_id: str, *, partner_id: int | None = None) -> ApiKey:
    """Revoke a key (of ``partner_id`` only, when given); it fails from the next request."""
    row = _row(session, secret_id, partner_id)
    if row.revoked_at is None:
        session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == row.id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        row = _row(session, secret_id, partner_id)
    return _view(row)


def list_keys(
    session: Session, *, partner_id: int | None = None, include_revoked: bool = True
) -> list[ApiKey]:
    """Keys, oldest first: one partner's (its own and its customers'), or all."""
    query = select(ApiKeyRow).order_by(ApiKeyRow.id)
    if partner_id is not None:
        query = query.where(ApiKeyRow.partner_id == partner_id)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return [_view(row) for row in session.execute(query).scalars()]


#: Decrypted secrets by (database, secret id, encrypted form). Decrypting is the costly
#: part of a lookup; the row itself is still read on every request, so a revoked key
#: fails from the next request, and a changed encrypted form misses the cache.
_secrets: dict[tuple[str, str, str], str] = {}
_SECRETS_KEPT = 10_000


def _decrypted(engine: Engine, secret_id: str, token: str) -> str:
    cache_key = (str(engine.url), secret_id, token)
    found = _secrets.get(cache_key)
    if found is None:
        found = server_key.decrypt(engine, token)
        if len(_secrets) >= _SECRETS_KEPT:
            _secrets.clear()
        _secrets[cache_key] = found
    return found


def lookup(session: Session, secret_id: str) -> ApiKey:
    """The live key ``secret_id`` with its decrypted ``secret_key`` (and its partner's
    kind), for checking a signature or a presented secret. Unknown and revoked keys raise
    :class:`UnknownKey`."""
    row = session.execute(
        select(
            ApiKeyRow.id,
            ApiKeyRow.secret_id,
            ApiKeyRow.secret_encrypted,
            ApiKeyRow.principal,
            ApiKeyRow.partner_id,
            ApiKeyRow.customer_uin,
            ApiKeyRow.role,
            ApiKeyRow.name,
            ApiKeyRow.created_at,
            ApiKeyRow.revoked_at,
        ).where(ApiKeyRow.secret_id == secret_id)
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        raise UnknownKey("the API key is unknown or revoked")
    # Keys stay on the coordinator, partners on their shards: the kind is read apart.
    kind = None
    if row.partner_id is not None:
        kind = session.execute(
            select(PartnerRow.kind).where(PartnerRow.id == row.partner_id)
        ).scalar_one_or_none()
    return ApiKey(
        id=row.id,
        secret_id=row.secret_id,
        principal=row.principal,
        partner_id=row.partner_id,
        customer_uin=row.customer_uin,
        role=row.role,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        secret_key=_decrypted(_engine(session), row.secret_id, row.secret_encrypted),
        partner_kind=kind,
    )


def authenticate(session: Session, secret_id: str, secret_key: str) -> ApiKey:
    """The live key whose pair is exactly ``secret_id``/``secret_key`` (constant-time)."""
    key = lookup(session, secret_id)
    assert key.secret_key is not None
    if not secrets.compare_digest(key.secret_key.encode(), secret_key.encode()):
        raise UnknownKey("the API key is unknown or revoked")
    return key


class KeyCache:
    """Live keys by secret id, with their decrypted secret, so that a write can be
    authenticated without a statement of its own. A key taken from here is only as good
    as the check the write makes in its own statement (:data:`LIVE_KEY`): a key revoked
    since is refused there, on its next request, and forgotten. Keys never change
    otherwise (a new role or secret is a new key)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._keys: dict[tuple[str, str], ApiKey] = {}

    def get(self, engine: Engine, secret_id: str) -> ApiKey | None:
        return self._keys.get((str(engine.url), secret_id))

    def put(self, engine: Engine, key: ApiKey) -> None:
        if len(self._keys) >= self._size:
            self._keys.clear()
        self._keys[(str(engine.url), key.secret_id)] = key

    def forget(self, engine: Engine, secret_id: str) -> None:
        self._keys.pop((str(engine.url), secret_id), None)


CACHE = KeyCache()


def authenticate_kept(engine: Engine, secret_id: str, secret_key: str) -> tuple[ApiKey, bool]:
    """:func:`authenticate` from :data:`CACHE` when the key is there (no statement), else
    in a transaction of its own and kept; and whether it came from the cache. The caller
    must confirm a key from the cache is still live in its request's own transaction (in
    the write's own statement, or a read's first)."""
    key = CACHE.get(engine, secret_id)
    kept = key is not None
    if key is None:
        with read_transaction(engine) as session:
            key = lookup(session, secret_id)
        CACHE.put(engine, key)
    assert key.secret_key is not None
    if not secrets.compare_digest(key.secret_key.encode(), secret_key.encode()):
        raise UnknownKey("the API key is unknown or revoked")
    return key, kept

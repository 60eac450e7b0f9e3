"""Who is calling: the API key behind a SecretId, and what that key may do here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from creditline.auth import keys

PLATFORM = "platform"
PARTNER = "partner"
CUSTOMER = "customer"
#: Partner roles that may change credit or remarks; a viewer may only read.
WRITING_ROLES = ("admin", "operator")


@dataclass(frozen=True)
class Caller:
    """The principal of one API key.

    ``kind`` is platform, partner (with ``partner_id`` and ``role``) or customer (with
    ``customer_uin``). ``key_name`` is written as the operator of every record it makes.
    """

    key_name: str
    kind: str
    partner_id: int | None = None
    role: str | None = None
    customer_uin: int | None = None
    #: The key's row, when known: a write then confirms in its own statement that the key
    #: is still live (it may have come from the key cache).
    key_id: int | None = None


@dataclass(frozen=True)
class KeyMatch:
    """A SecretId found: its secret key (to check the signature) and its principal."""

    secret_key: str
    caller: Caller


class KeyStore(Protocol):
    """Where SecretIds are looked up; revoked or unknown ones answer None."""

    def lookup(self, session: Session, secret_id: str) -> KeyMatch | None:
        """The key for ``secret_id``, or None."""
        ...


class ApiKeyStore:
    """The keys of :mod:`creditline.auth.keys` (the same keys REST accepts)."""

    def lookup(self, session: Session, secret_id: str) -> KeyMatch | None:
        """The live key for ``secret_id`` with its decrypted secret, or None."""
        try:
            key = keys.lookup(session, secret_id)
        except keys.UnknownKey:
            return None
        return match_of(key)

    def kept(self, engine: Engine, session: Session, secret_id: str) -> KeyMatch | None:
        """:meth:`lookup` from the key cache (no statement) when the key is there, else
        looked up and kept. Only for a write that confirms the key is live in its own
        statement (``Caller.key_id``)."""
        key = keys.CACHE.get(engine, secret_id)
        if key is None:
            try:
                key = keys.lookup(session, secret_id)
            except keys.UnknownKey:
                return None
            keys.CACHE.put(engine, key)
        return match_of(key)


def match_of(key: keys.ApiKey) -> KeyMatch:
    assert key.secret_key is not None  # lookup() always decrypts it
    return KeyMatch(
        secret_key=key.secret_key,
        caller=Caller(
            key_name=key.name,
            kind=key.principal,
            partner_id=key.partner_id,
            role=key.role,
            customer_uin=key.customer_uin,
            key_id=key.id,
        ),
    )

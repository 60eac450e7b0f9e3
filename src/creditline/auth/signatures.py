"""Signatures already used, remembered in the database (``tc3_signatures``) so that every
server process and machine sees the same uses. The rule of what is remembered, and for how
long, is the Tencent-compatible API's (:mod:`creditline.tc3.replay`)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, bindparam, delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditline.db.tables import Tc3Signature

#: The condition that the signature ``sig_hash`` was not used yet (for a write's own
#: guard); :data:`FORGET_EXPIRED` and :func:`claim_from` are :func:`claim` as parts of
#: one statement (parameters ``sig_hash``, ``sig_secret_id``, ``sig_expires_at``,
#: ``sig_now``: :func:`claim_params`).
UNUSED: ColumnElement[bool] = ~exists().where(
    Tc3Signature.signature_hash == bindparam("sig_hash", type_=String)
)
_table = Tc3Signature.metadata.tables[Tc3Signature.__tablename__]
FORGET_EXPIRED = delete(_table).where(
    _table.c.secret_id == bindparam("sig_secret_id", type_=String),
    _table.c.expires_at < bindparam("sig_now", type_=_table.c.expires_at.type),
)


def claim_from(*, rows: Any) -> Any:
    """PostgreSQL's claim as part of a statement, its row only where ``rows`` (its FROM)
    has one: returns the claimed hash, or nothing when the signature was used."""
    return (
        postgresql.insert(_table)
        .from_select(
            ["signature_hash", "secret_id", "expires_at"],
            select(
                bindparam("sig_hash", type_=String),
                bindparam("sig_secret_id", type_=String),
                bindparam("sig_expires_at", type_=_table.c.expires_at.type),
            ).select_from(*rows),
        )
        .on_conflict_do_nothing(index_elements=["signature_hash"])
        .returning(_table.c.signature_hash)
    )


def claim_params(
    *, secret_id: str, signature: str, expires_at: datetime, now: datetime
) -> dict[str, Any]:
    """The parameters of :data:`UNUSED`, :data:`FORGET_EXPIRED` and :func:`claim_from`."""
    return {
        "sig_hash": hashlib.sha256(signature.encode("ascii")).hexdigest(),
        "sig_secret_id": secret_id,
        "sig_expires_at": expires_at,
        "sig_now": now,
    }


def claim(
    session: Session, *, secret_id: str, signature: str, expires_at: datetime, now: datetime
) -> bool:
    """Claim ``signature`` of the key ``secret_id`` until ``expires_at``, in the caller's
    transaction; False when it was claimed before (on PostgreSQL after waiting for a
    concurrent claim to commit or roll back). The key's expired claims are forgotten on
    the way."""
    session.execute(
        delete(Tc3Signature).where(
            Tc3Signature.secret_id == secret_id, Tc3Signature.expires_at < now
        )
    )
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        module.insert(Tc3Signature)
        .values(
            signature_hash=hashlib.sha256(signature.encode("ascii")).hexdigest(),
            secret_id=secret_id,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(index_elements=["signature_hash"])
        .returning(Tc3Signature.signature_hash)
    ).scalar_one_or_none()
    return inserted is not None

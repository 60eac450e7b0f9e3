"""Signatures already used, remembered in the database (``tc3_signatures``) so that every
server process and machine sees the same uses. The rule of what is remembered, and for how
long, is the Tencent-compatible API's (:mod:`creditline.tc3.replay`)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditline.db.tables import Tc3Signature


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

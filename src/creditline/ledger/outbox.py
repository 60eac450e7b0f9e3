"""The transactional outbox, as the core writes it: an event row in the same transaction as
its cause, so it exists exactly when the cause committed. Delivering it after commit is
:mod:`creditline.notify`'s work; it only reads these rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import OutboxEvent

THRESHOLD_REACHED = "credit.threshold_reached"
ALLOCATION_RECORDED = "credit.allocation_recorded"
EVENT_TYPES = (THRESHOLD_REACHED, ALLOCATION_RECORDED)


def enqueue(session: Session, *, partner_id: int, type: str, payload: dict[str, Any]) -> None:
    """Add one event for ``partner_id`` to the outbox, inside the caller's transaction."""
    session.execute(
        insert(OutboxEvent.metadata.tables[OutboxEvent.__tablename__])
        .inline()
        .values(partner_id=partner_id, type=type, payload=payload, created_at=utcnow())
    )

"""The transactional outbox, as the core writes it: an event row in the same transaction as
its cause, so it exists exactly when the cause committed. Delivering it after commit is
:mod:`creditline.notify`'s work; it only reads these rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import OutboxEvent

THRESHOLD_REACHED = "credit.threshold_reached"
ALLOCATION_RECORDED = "credit.allocation_recorded"
TOP_UP_REFUSED = "credit.top_up_refused"
EVENT_TYPES = (THRESHOLD_REACHED, ALLOCATION_RECORDED, TOP_UP_REFUSED)


#: The event's one INSERT, parameters named ``outbox_<column>`` (see :func:`event`).
INSERT = (
    insert(OutboxEvent.metadata.tables[OutboxEvent.__tablename__])
    .inline()
    .values(
        {
            name: bindparam(f"outbox_{name}", type_=OutboxEvent.__table__.c[name].type)
            for name in ("partner_id", "type", "payload", "created_at")
        }
    )
)


def event(*, partner_id: int, type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The parameters of :data:`INSERT` for one event."""
    return {
        "outbox_partner_id": partner_id,
        "outbox_type": type,
        "outbox_payload": payload,
        "outbox_created_at": utcnow(),
    }


def enqueue(session: Session, *, partner_id: int, type: str, payload: dict[str, Any]) -> None:
    """Add one event for ``partner_id`` to the outbox, inside the caller's transaction."""
    session.execute(INSERT, event(partner_id=partner_id, type=type, payload=payload))

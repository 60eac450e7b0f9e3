"""The transactional outbox, as the core writes it: an event row in the same transaction as
its cause, so it exists exactly when the cause committed. Delivering it after commit is
:mod:`creditline.notify`'s work; it only reads these rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Insert,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    insert,
    literal,
    null,
    select,
)
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import OutboxEvent, WebhookEndpoint

THRESHOLD_REACHED = "credit.threshold_reached"
ALLOCATION_RECORDED = "credit.allocation_recorded"
FORECAST_EXHAUSTION = "credit.forecast_exhaustion"
TOP_UP_REFUSED = "credit.top_up_refused"
EVENT_TYPES = (THRESHOLD_REACHED, ALLOCATION_RECORDED, FORECAST_EXHAUSTION, TOP_UP_REFUSED)


#: An event's columns, each its parameter ``outbox_<column>`` (see :func:`event`).
_VALUES = {
    name: bindparam(f"outbox_{name}", type_=OutboxEvent.__table__.c[name].type)
    for name in ("partner_id", "type", "payload", "created_at")
}
_OUTBOX = insert(OutboxEvent.metadata.tables[OutboxEvent.__tablename__]).inline()
#: The event's one INSERT, parameters named ``outbox_<column>`` (see :func:`event`).
INSERT = _OUTBOX.values(_VALUES)


def taken(partner_id: Any, event_type: str) -> ColumnElement[bool]:
    """In SQL: whether an enabled webhook endpoint of ``partner_id`` takes ``event_type``
    events (the delivery worker's own test, ``event.type in endpoint.event_types``, on the
    JSON list's text: the types are known names, written plainly)."""
    return exists().where(
        WebhookEndpoint.partner_id == partner_id,
        WebhookEndpoint.enabled.is_(True),
        cast(WebhookEndpoint.event_types, Text).contains(f'"{event_type}"', autoescape=True),
    )


#: :data:`INSERT` for an allocation's event: written handed over (``delivered_at``) when
#: no endpoint of its partner takes it, since the delivery worker's expansion would find
#: nothing to deliver (an allocation's event goes to webhooks only, never by email).
INSERT_ALLOCATION = _OUTBOX.values(
    _VALUES
    | {
        "delivered_at": case(
            (taken(bindparam("outbox_partner_id"), ALLOCATION_RECORDED), null()),
            else_=bindparam("outbox_created_at", type_=OutboxEvent.__table__.c.created_at.type),
        )
    }
)


#: :data:`INSERT` of many events of any types at once (an executemany, in the order of the
#: parameters: the ids follow it): parameters those of :func:`event` and
#: ``outbox_allocation``, whether the event is an allocation's, which is written handed
#: over as :data:`INSERT_ALLOCATION` writes it.
INSERT_EVENTS = _OUTBOX.values(
    _VALUES
    | {
        "delivered_at": case(
            (
                and_(
                    bindparam("outbox_allocation", type_=Boolean),
                    ~taken(bindparam("outbox_partner_id"), ALLOCATION_RECORDED),
                ),
                bindparam("outbox_created_at", type_=OutboxEvent.__table__.c.created_at.type),
            ),
            else_=null(),
        )
    }
)


def insert_from(
    *, partner_id: Any, type: str, payload: Any, rows: Any, handed_over: Any = None
) -> Insert:
    """:data:`INSERT` of one event whose partner and payload the statement builds itself
    (expressions over ``rows``, its FROM); its time: parameter ``outbox_created_at``.
    ``handed_over``: its ``delivered_at``, when the statement knows already that the event
    has no one to go to (the delivery worker then has nothing to expand)."""
    table = OutboxEvent.metadata.tables[OutboxEvent.__tablename__]
    created_at = bindparam("outbox_created_at", type_=table.c.created_at.type)
    return insert(table).from_select(
        ["partner_id", "type", "payload", "created_at", "delivered_at"],
        select(
            partner_id,
            literal(type, String),
            payload,
            created_at,
            cast(handed_over, table.c.delivered_at.type),
        ).select_from(*rows),
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
    statement = INSERT_ALLOCATION if type == ALLOCATION_RECORDED else INSERT
    session.execute(statement, event(partner_id=partner_id, type=type, payload=payload))

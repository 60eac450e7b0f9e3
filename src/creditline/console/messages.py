"""The message centre: the partner's alarms, newest first, and which are unread."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select, update
from starlette.responses import Response

from creditline.clock import utcnow
from creditline.console.visit import visit
from creditline.db.tables import Alarm, Customer

router = APIRouter()

PAGE_SIZE = 50


@router.get("/messages")
def message_centre(request: Request, before: int | None = None) -> Response:
    """Alarms of the partner's customers; unread ones marked."""
    with visit(request) as v:
        query = (
            select(Alarm, Customer.name)
            .join(Customer, Customer.uin == Alarm.customer_uin)
            .where(Alarm.partner_id == v.partner_id)
        )
        if before is not None:
            query = query.where(Alarm.id < before)
        rows = v.s.execute(query.order_by(Alarm.id.desc()).limit(PAGE_SIZE + 1)).all()
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        return v.render(
            "messages.html", rows=rows, next_before=rows[-1][0].id if more and rows else None
        )


@router.post("/messages/read")
def mark_all_read(request: Request) -> Response:
    """Mark every alarm of the partner read."""
    with visit(request) as v:
        # Reading messages is no money operation: viewers may clear their badge too.
        v.s.execute(
            update(Alarm)
            .where(Alarm.partner_id == v.partner_id, Alarm.read_at.is_(None))
            .values(read_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        v.notice("All messages marked read.")
    return RedirectResponse("/messages", status_code=303)


@router.post("/messages/{alarm_id}/read")
def mark_read(request: Request, alarm_id: int) -> Response:
    """Mark one alarm read."""
    with visit(request) as v:
        v.s.execute(
            update(Alarm)
            .where(Alarm.partner_id == v.partner_id, Alarm.id == alarm_id, Alarm.read_at.is_(None))
            .values(read_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return RedirectResponse("/messages", status_code=303)

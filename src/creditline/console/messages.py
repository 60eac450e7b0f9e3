"""The message centre: the partner's alarms and notices about its own setup, newest first,
unread ones marked. Read and marked through :mod:`creditline.notify.inbox`, as the REST
API does."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from creditline.console.visit import BeforeId, PathId, visit
from creditline.db.tables import Customer
from creditline.notify import inbox

router = APIRouter()

PAGE_SIZE = 50


@router.get("/messages")
def message_centre(request: Request, before: BeforeId = None) -> Response:
    """Alarms of the partner's customers, and notices; unread ones marked."""
    with visit(request) as v:
        alarms, more = inbox.alarms_page(
            v.s, partner_id=v.partner_id, limit=PAGE_SIZE, before_id=before
        )
        uins = {a.customer_uin for a in alarms}
        names = dict(
            v.s.execute(
                select(Customer.uin, Customer.name).where(
                    Customer.partner_id == v.partner_id, Customer.uin.in_(uins)
                )
            )
            .tuples()
            .all()
        )
        notices, _ = inbox.notices_page(v.s, partner_id=v.partner_id, limit=20)
        return v.render(
            "messages.html",
            rows=[(a, names.get(a.customer_uin, "")) for a in alarms],
            notices=notices,
            next_before=alarms[-1].id if more and alarms else None,
        )


@router.post("/messages/read")
def mark_all_read(request: Request) -> Response:
    """Mark every alarm and notice of the partner read."""
    with visit(request) as v:
        # A write like any other: viewers only look, as their API keys do (REST asks for
        # an operator to mark an alarm read).
        v.require_allocate()
        inbox.mark_alarms_read(v.s, partner_id=v.partner_id)
        inbox.mark_notices_read(v.s, partner_id=v.partner_id)
        v.notice("All messages marked read.")
    return RedirectResponse("/messages", status_code=303)


@router.post("/messages/{alarm_id}/read")
def mark_read(request: Request, alarm_id: PathId) -> Response:
    """Mark one alarm read (another partner's answers as a missing one)."""
    with visit(request) as v:
        v.require_allocate()
        inbox.mark_alarms_read(v.s, partner_id=v.partner_id, alarm_ids=[alarm_id])
    return RedirectResponse("/messages", status_code=303)

"""The message centre: the partner's alarms and notices about its own setup, newest first,
unread ones marked. Read and marked through :mod:`creditline.notify.inbox`, as the REST
API does."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline.console.visit import BeforeId, PageError, PathId, day_range, number_in, visit
from creditline.db.tables import Alarm
from creditline.ledger import customers
from creditline.notify import inbox

router = APIRouter()

PAGE_SIZE = 50


def _alarm_filter(
    customer: str, level: str, status: str, since: str, until: str
) -> inbox.AlarmFilter:
    """The message centre's filters as the inbox's (those of the REST API's alarm list,
    with days); a filter that makes no sense is a :class:`PageError` saying which."""
    uin: int | None = None
    if customer.strip():
        uin = number_in(customer)
        if uin is None:
            raise PageError(400, "Refused", f"customer {customer.strip()!r} is not a UIN")
    threshold: int | None = None
    if level.strip():
        text = level.strip().rstrip("%").strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 4:
            raise PageError(400, "Refused", f"level {level.strip()!r} is not a percentage")
        threshold = int(text)
    start, end = day_range(since, until)
    return inbox.AlarmFilter(
        customer_uin=uin,
        threshold=threshold,
        unread={"unread": True, "read": False}.get(status),
        since=start,
        until=end,
    )


@router.get("/messages")
def message_centre(
    request: Request,
    before: BeforeId = None,
    customer: str = "",
    level: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    """Alarms of the partner's customers, filtered by level, customer, read or unread and
    days, and notices; unread ones marked."""
    with visit(request) as v:
        filters = {
            "customer": customer[:40],
            "level": level[:10],
            "status": status if status in ("unread", "read") else "",
            "since": since[:20],
            "until": until[:20],
        }
        error = ""
        alarms: list[Alarm] = []
        more = False
        try:
            where = _alarm_filter(**filters)
        except PageError as exc:
            error = exc.message
        else:
            alarms, more = inbox.alarms_page(
                v.s, partner_id=v.partner_id, where=where, limit=PAGE_SIZE, before_id=before
            )
        uins = {a.customer_uin for a in alarms}
        found = customers.by_uins(v.s, v.partner_id, sorted(uins))
        names = {uin: customer.name for uin, customer in found.items()}
        notices, _ = inbox.notices_page(v.s, partner_id=v.partner_id, limit=20)
        query = {k: val for k, val in filters.items() if val}
        assert v.partner is not None
        return v.render(
            "messages.html",
            status=400 if error else 200,
            rows=[(a, names.get(a.customer_uin, "")) for a in alarms],
            notices=notices,
            filters=filters,
            levels=sorted(set(v.partner.thresholds)),
            filtered=bool(query),
            error=error,
            next_query=urlencode({**query, "before": alarms[-1].id}) if more and alarms else "",
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

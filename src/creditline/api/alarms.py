"""Alarms, the partner's message centre: list, unread count, mark read, acknowledge."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from creditline import money
from creditline.api.context import Call, call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.db.tables import MAX_BIGINT, Alarm
from creditline.limits import MAX_REQUEST_PAGE_SIZE
from creditline.notify import inbox

router = APIRouter(tags=["alarms"], responses=ERROR_RESPONSES)


class AlarmOut(BaseModel):
    id: int
    customer_uin: int
    threshold: int
    thresholds_reached: list[int]
    total_credit: str
    consumed: str
    cause: str
    created_at: datetime
    read_at: datetime | None
    acknowledged_at: datetime | None

    @classmethod
    def of(cls, a: Alarm) -> AlarmOut:
        return cls(
            id=a.id,
            customer_uin=a.customer_uin,
            threshold=a.threshold,
            thresholds_reached=list(a.thresholds_reached),
            total_credit=money.to_text(a.total_credit),
            consumed=money.to_text(a.consumed),
            cause=a.cause,
            created_at=a.created_at,
            read_at=a.read_at,
            acknowledged_at=a.acknowledged_at,
        )


class AlarmPage(BaseModel):
    data: list[AlarmOut]
    has_more: bool
    next_before: int | None


class UnreadCount(BaseModel):
    unread: int


@router.get("/alarms", response_model=AlarmPage)
def list_alarms(
    c: Call = Depends(call),
    customer_uin: int | None = Query(None, ge=1, le=MAX_BIGINT),
    threshold: int | None = Query(None, ge=1, le=1000),
    unread: bool | None = Query(None, description="true: only unread; false: only read"),
    limit: int = Query(50, ge=1, le=MAX_REQUEST_PAGE_SIZE),
    before: int | None = Query(None, ge=1, le=MAX_BIGINT),
) -> AlarmPage:
    """The partner's alarms, newest first."""
    partner_id = c.principal.partner()
    where = inbox.AlarmFilter(customer_uin=customer_uin, threshold=threshold, unread=unread)
    with c.read() as s:
        rows, more = inbox.alarms_page(
            s, partner_id=partner_id, where=where, limit=limit, before_id=before
        )
        data = [AlarmOut.of(a) for a in rows]
    return AlarmPage(data=data, has_more=more, next_before=data[-1].id if more else None)


@router.get("/alarms/unread-count", response_model=UnreadCount)
def unread_count(c: Call = Depends(call)) -> UnreadCount:
    """How many of the partner's alarms are unread."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return UnreadCount(unread=inbox.unread_counts(s, partner_id).alarms)


def _read(s: Session, partner_id: int, alarm_id: int) -> AlarmOut:
    inbox.mark_alarms_read(s, partner_id=partner_id, alarm_ids=[alarm_id])
    return AlarmOut.of(inbox.get_alarm(s, partner_id=partner_id, alarm_id=alarm_id))


AlarmId = Path(ge=1, le=MAX_BIGINT)


@router.post("/alarms/{alarm_id}/read", response_model=AlarmOut)
def mark_read(alarm_id: int = AlarmId, c: Call = Depends(write_call)) -> Response:
    """Mark an alarm read."""
    partner_id = c.principal.partner("operator")
    return c.write(lambda s: _read(s, partner_id, alarm_id))


@router.post("/alarms/{alarm_id}/acknowledge", response_model=AlarmOut)
def acknowledge(alarm_id: int = AlarmId, c: Call = Depends(write_call)) -> Response:
    """Acknowledge an alarm (which also marks it read)."""
    partner_id = c.principal.partner("operator")
    return c.write(
        lambda s: AlarmOut.of(inbox.acknowledge_alarm(s, partner_id=partner_id, alarm_id=alarm_id))
    )

"""Alarms, the partner's message centre: list, unread count, mark read, acknowledge."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from creditline import money
from creditline.api.context import MAX_PAGE_SIZE, Call, call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.clock import utcnow
from creditline.db.tables import Alarm
from creditline.errors import NotFound

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
    customer_uin: int | None = Query(None, ge=1, le=2**63 - 1),
    threshold: int | None = Query(None, ge=1, le=1000),
    unread: bool | None = Query(None, description="true: only unread; false: only read"),
    limit: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
    before: int | None = Query(None, ge=1),
) -> AlarmPage:
    """The partner's alarms, newest first."""
    partner_id = c.principal.partner()
    query = select(Alarm).where(Alarm.partner_id == partner_id)
    if customer_uin is not None:
        query = query.where(Alarm.customer_uin == customer_uin)
    if threshold is not None:
        query = query.where(Alarm.threshold == threshold)
    if unread is not None:
        query = query.where(Alarm.read_at.is_(None) if unread else Alarm.read_at.is_not(None))
    if before is not None:
        query = query.where(Alarm.id < before)
    with c.read() as s:
        rows = list(s.execute(query.order_by(Alarm.id.desc()).limit(limit + 1)).scalars())
        data = [AlarmOut.of(a) for a in rows[:limit]]
    more = len(rows) > limit
    return AlarmPage(data=data, has_more=more, next_before=data[-1].id if more else None)


@router.get("/alarms/unread-count", response_model=UnreadCount)
def unread_count(c: Call = Depends(call)) -> UnreadCount:
    """How many of the partner's alarms are unread."""
    partner_id = c.principal.partner()
    with c.read() as s:
        count = s.execute(
            select(func.count())
            .select_from(Alarm)
            .where(Alarm.partner_id == partner_id, Alarm.read_at.is_(None))
        ).scalar_one()
    return UnreadCount(unread=count)


def _mark(s: Session, partner_id: int, alarm_id: int, *, acknowledge: bool) -> AlarmOut:
    now = utcnow()
    scope = (Alarm.partner_id == partner_id, Alarm.id == alarm_id)
    # First time only: a repeated mark keeps the original moment.
    s.execute(
        update(Alarm)
        .where(*scope, Alarm.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    if acknowledge:
        s.execute(
            update(Alarm)
            .where(*scope, Alarm.acknowledged_at.is_(None))
            .values(acknowledged_at=now)
            .execution_options(synchronize_session=False)
        )
    alarm = s.execute(
        select(Alarm).where(*scope).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if alarm is None:
        raise NotFound(f"no alarm {alarm_id}", param="alarm_id")
    return AlarmOut.of(alarm)


AlarmId = Path(ge=1, le=2**63 - 1)


@router.post("/alarms/{alarm_id}/read", response_model=AlarmOut)
def mark_read(alarm_id: int = AlarmId, c: Call = Depends(write_call)) -> Response:
    """Mark an alarm read."""
    partner_id = c.principal.partner("operator")
    return c.write(lambda s: _mark(s, partner_id, alarm_id, acknowledge=False))


@router.post("/alarms/{alarm_id}/acknowledge", response_model=AlarmOut)
def acknowledge(alarm_id: int = AlarmId, c: Call = Depends(write_call)) -> Response:
    """Acknowledge an alarm (which also marks it read)."""
    partner_id = c.principal.partner("operator")
    return c.write(lambda s: _mark(s, partner_id, alarm_id, acknowledge=True))

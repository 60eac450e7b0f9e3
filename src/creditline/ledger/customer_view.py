"""What a customer's own user sees (issue 17): its credit, its allocation history (amounts
only, or with remarks, as its partner allows) and the alarms it received. Every query is
scoped to the partner and the one customer; nothing of the partner's pool or of another
customer is read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditline.db.tables import Alarm, AllocationRecord, CustomerAlarm
from creditline.ledger.accounts import get_customer

PAGE = 20


@dataclass(frozen=True)
class HistoryLine:
    """One allocation or withdrawal as the customer sees it."""

    at: datetime
    change: int
    total_after: int
    #: Empty unless the partner shows remarks to its customers.
    remark: str


@dataclass(frozen=True)
class ReceivedAlarm:
    """An alarm the customer received."""

    at: datetime
    threshold: int
    thresholds_reached: list[int]
    total_credit: int
    consumed: int
    read: bool


def history(
    session: Session, *, partner_id: int, customer_uin: int, remarks: bool, limit: int = PAGE
) -> list[HistoryLine]:
    """The customer's latest allocations and withdrawals, newest first."""
    get_customer(session, partner_id, customer_uin)
    rows = session.execute(
        select(
            AllocationRecord.created_at,
            AllocationRecord.change,
            AllocationRecord.total_after,
            AllocationRecord.remark,
        )
        .where(
            AllocationRecord.partner_id == partner_id,
            AllocationRecord.customer_uin == customer_uin,
        )
        .order_by(AllocationRecord.id.desc())
        .limit(limit)
    ).all()
    return [
        HistoryLine(r.created_at, r.change, r.total_after, r.remark if remarks else "")
        for r in rows
    ]


def received_alarms(
    session: Session, *, partner_id: int, customer_uin: int, limit: int = PAGE
) -> list[ReceivedAlarm]:
    """The alarms the customer received (while it received its alarms), newest first."""
    rows = session.execute(
        select(Alarm, CustomerAlarm.read_at)
        .join(
            CustomerAlarm,
            (CustomerAlarm.partner_id == Alarm.partner_id) & (CustomerAlarm.alarm_id == Alarm.id),
        )
        .where(
            CustomerAlarm.partner_id == partner_id,
            CustomerAlarm.customer_uin == customer_uin,
        )
        .order_by(CustomerAlarm.id.desc())
        .limit(limit)
    ).all()
    return [
        ReceivedAlarm(
            at=alarm.created_at,
            threshold=alarm.threshold,
            thresholds_reached=list(alarm.thresholds_reached),
            total_credit=alarm.total_credit,
            consumed=alarm.consumed,
            read=read_at is not None,
        )
        for alarm, read_at in rows
    ]

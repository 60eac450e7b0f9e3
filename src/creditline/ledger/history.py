"""What one partner's charts draw: its customers' usage over time and its pool's changes,
read for one partner at a time (drawn by :mod:`creditline.console.charts`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from creditline.db.tables import AllocationRecord, UsageEvent


def customer_usage(
    session: Session, *, partner_id: int, uin: int, since: datetime
) -> list[tuple[datetime, str, int]]:
    """The customer's usage events since ``since``: (occurred at, product, counted)."""
    rows = session.execute(
        select(UsageEvent.occurred_at, UsageEvent.product, UsageEvent.counted).where(
            UsageEvent.partner_id == partner_id,
            UsageEvent.customer_uin == uin,
            UsageEvent.occurred_at >= since,
        )
    ).tuples()
    return [(at, product, int(counted)) for at, product, counted in rows]


def usage_by_day(session: Session, *, partner_id: int, since: datetime) -> dict[date, int]:
    """What all of the partner's customers consumed on each UTC day since ``since``,
    summed by the database (days without usage absent)."""
    moment: Any = UsageEvent.occurred_at
    if session.get_bind().dialect.name == "postgresql":
        # The UTC day, whatever the connection's time zone.
        moment = func.timezone("UTC", moment)
    day = func.date(moment)
    rows = session.execute(
        select(day, func.sum(UsageEvent.counted))
        .where(UsageEvent.partner_id == partner_id, UsageEvent.occurred_at >= since)
        .group_by(day)
    ).all()
    # SQLite answers text, PostgreSQL a date: both print as YYYY-MM-DD.
    return {date.fromisoformat(str(d)): int(cents or 0) for d, cents in rows}


def pool_changes(
    session: Session, *, partner_id: int, since: datetime
) -> list[tuple[datetime, str, int, int]]:
    """The records that changed the partner's pool since ``since``: (created at, kind,
    owner, change) — its own, and the pool allocations its distributor made to it (owned
    by the distributor)."""
    rows = session.execute(
        select(
            AllocationRecord.created_at,
            AllocationRecord.kind,
            AllocationRecord.partner_id,
            AllocationRecord.change,
        ).where(
            or_(
                AllocationRecord.partner_id == partner_id,
                AllocationRecord.sub_partner_id == partner_id,
            ),
            AllocationRecord.created_at >= since,
        )
    ).tuples()
    return [(at, kind, int(owner), int(change)) for at, kind, owner, change in rows]

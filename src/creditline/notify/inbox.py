"""The partner's message centre: its alarms (each lands here the moment it commits) and
notices about its own setup, with unread counts, filters and marking read.

The REST API and the console read it through these functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import Alarm, PartnerNotice
from creditline.errors import NotFound
from creditline.ledger.accounts import get_partner
from creditline.limits import check_page_size


@dataclass(frozen=True)
class AlarmFilter:
    """What an alarm page is narrowed to; every field optional."""

    customer_uin: int | None = None
    threshold: int | None = None
    #: True: only unread alarms; False: only read ones; None: both.
    unread: bool | None = None
    #: Raised at or after ``since`` and before ``until``.
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class UnreadCounts:
    """What the message centre's badge shows."""

    alarms: int
    notices: int

    @property
    def total(self) -> int:
        return self.alarms + self.notices


def unread_counts(session: Session, partner_id: int) -> UnreadCounts:
    """How many alarms and notices the partner has not read."""
    get_partner(session, partner_id)
    alarms = session.execute(
        select(func.count())
        .select_from(Alarm)
        .where(Alarm.partner_id == partner_id, Alarm.read_at.is_(None))
    ).scalar_one()
    notices = session.execute(
        select(func.count())
        .select_from(PartnerNotice)
        .where(PartnerNotice.partner_id == partner_id, PartnerNotice.read_at.is_(None))
    ).scalar_one()
    return UnreadCounts(alarms, notices)


def alarms_page(
    session: Session,
    *,
    partner_id: int,
    where: AlarmFilter = AlarmFilter(),
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[Alarm], bool]:
    """A page of the partner's alarms, newest first, and whether more follow (keyset on
    the alarm id: pass the last id of a page as ``before_id``)."""
    check_page_size(limit)
    get_partner(session, partner_id)
    query = select(Alarm).where(Alarm.partner_id == partner_id)
    if where.customer_uin is not None:
        query = query.where(Alarm.customer_uin == where.customer_uin)
    if where.threshold is not None:
        query = query.where(Alarm.threshold == where.threshold)
    if where.unread is not None:
        query = query.where(Alarm.read_at.is_(None) if where.unread else Alarm.read_at.is_not(None))
    if where.since is not None:
        query = query.where(Alarm.created_at >= where.since)
    if where.until is not None:
        query = query.where(Alarm.created_at < where.until)
    if before_id is not None:
        query = query.where(Alarm.id < before_id)
    rows = list(session.execute(query.order_by(Alarm.id.desc()).limit(limit + 1)).scalars())
    return rows[:limit], len(rows) > limit


def mark_alarms_read(
    session: Session,
    *,
    partner_id: int,
    alarm_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> int:
    """Mark the given alarms (or, with None, all of the partner's) read; returns how many
    changed. An id that is missing or another partner's is :class:`NotFound` and nothing
    changes."""
    get_partner(session, partner_id)
    scope = Alarm.partner_id == partner_id
    if alarm_ids is not None:
        wanted = set(alarm_ids)
        found = set(session.execute(select(Alarm.id).where(scope, Alarm.id.in_(wanted))).scalars())
        missing = sorted(wanted - found)
        if missing:
            raise NotFound(f"no alarm {missing[0]}", param="alarm_ids")
    query = update(Alarm).where(scope, Alarm.read_at.is_(None))
    if alarm_ids is not None:
        query = query.where(Alarm.id.in_(set(alarm_ids)))
    with session.begin_nested():
        result = session.execute(
            query.values(read_at=now or utcnow()).execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)


def get_alarm(session: Session, *, partner_id: int, alarm_id: int) -> Alarm:
    """One of the partner's alarms; another partner's is :class:`NotFound`, as a missing one."""
    alarm = session.execute(
        select(Alarm)
        .where(Alarm.partner_id == partner_id, Alarm.id == alarm_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if alarm is None:
        raise NotFound(f"no alarm {alarm_id}", param="alarm_id")
    return alarm


def acknowledge_alarm(
    session: Session, *, partner_id: int, alarm_id: int, now: datetime | None = None
) -> Alarm:
    """Acknowledge one alarm, which also marks it read; a repeat keeps the first moment."""
    get_alarm(session, partner_id=partner_id, alarm_id=alarm_id)
    moment = now or utcnow()
    scope = (Alarm.partner_id == partner_id, Alarm.id == alarm_id)
    for column in (Alarm.read_at, Alarm.acknowledged_at):
        session.execute(
            update(Alarm)
            .where(*scope, column.is_(None))
            .values({column: moment})
            .execution_options(synchronize_session=False)
        )
    return get_alarm(session, partner_id=partner_id, alarm_id=alarm_id)


def notices_page(
    session: Session,
    *,
    partner_id: int,
    unread_only: bool = False,
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[PartnerNotice], bool]:
    """A page of the partner's notices, newest first, and whether more follow."""
    check_page_size(limit)
    get_partner(session, partner_id)
    query = select(PartnerNotice).where(PartnerNotice.partner_id == partner_id)
    if unread_only:
        query = query.where(PartnerNotice.read_at.is_(None))
    if before_id is not None:
        query = query.where(PartnerNotice.id < before_id)
    rows = list(session.execute(query.order_by(PartnerNotice.id.desc()).limit(limit + 1)).scalars())
    return rows[:limit], len(rows) > limit


def mark_notices_read(
    session: Session, *, partner_id: int, notice_ids: Sequence[int] | None = None
) -> int:
    """Mark notices read, as :func:`mark_alarms_read` does for alarms."""
    get_partner(session, partner_id)
    scope = PartnerNotice.partner_id == partner_id
    if notice_ids is not None:
        wanted = set(notice_ids)
        found = set(
            session.execute(
                select(PartnerNotice.id).where(scope, PartnerNotice.id.in_(wanted))
            ).scalars()
        )
        missing = sorted(wanted - found)
        if missing:
            raise NotFound(f"no notice {missing[0]}", param="notice_ids")
    query = update(PartnerNotice).where(scope, PartnerNotice.read_at.is_(None))
    if notice_ids is not None:
        query = query.where(PartnerNotice.id.in_(set(notice_ids)))
    with session.begin_nested():
        result = session.execute(
            query.values(read_at=utcnow()).execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)

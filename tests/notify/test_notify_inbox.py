"""The message centre: every alarm is in the partner's inbox the moment it commits."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from tests.notify.support import consume, customer_with_credit

from creditline.db import transaction
from creditline.errors import NotFound
from creditline.notify import inbox
from creditline.notify.inbox import AlarmFilter


def test_unread_count_list_filters_and_mark_read(engine: Engine) -> None:
    partner_id, first = customer_with_credit(engine)
    with transaction(engine) as s:
        from tests.notify.support import OPERATOR

        from creditline.ledger import accounts, credit

        second = accounts.create_customer(s, partner_id=partner_id, name="Second").uin
        credit.allocate_credit(
            s, partner_id=partner_id, customer_uin=second, amount=10_000, origin=OPERATOR
        )
    assert consume(engine, first, "80.00") == [75]
    assert consume(engine, first, "20.00") == [100]
    assert consume(engine, second, "91.00") == [90]
    with transaction(engine) as s:
        assert inbox.unread_counts(s, partner_id).alarms == 3
        rows, more = inbox.alarms_page(s, partner_id=partner_id)
        assert [a.threshold for a in rows] == [90, 100, 75] and not more
        only_first, _ = inbox.alarms_page(
            s, partner_id=partner_id, where=AlarmFilter(customer_uin=first)
        )
        assert [a.threshold for a in only_first] == [100, 75]
        at_100, _ = inbox.alarms_page(s, partner_id=partner_id, where=AlarmFilter(threshold=100))
        assert [a.customer_uin for a in at_100] == [first]
        page, more = inbox.alarms_page(s, partner_id=partner_id, limit=2)
        assert more
        rest, more = inbox.alarms_page(s, partner_id=partner_id, limit=2, before_id=page[-1].id)
        assert [a.threshold for a in rest] == [75] and not more
        assert inbox.mark_alarms_read(s, partner_id=partner_id, alarm_ids=[page[0].id]) == 1
    with transaction(engine) as s:
        assert inbox.unread_counts(s, partner_id).alarms == 2
        unread, _ = inbox.alarms_page(s, partner_id=partner_id, where=AlarmFilter(unread=True))
        assert len(unread) == 2
        assert inbox.mark_alarms_read(s, partner_id=partner_id) == 2
    with transaction(engine) as s:
        assert inbox.unread_counts(s, partner_id).total == 0


def test_another_partners_alarm_looks_missing(engine: Engine) -> None:
    partner_id, uin = customer_with_credit(engine)
    other_id, _ = customer_with_credit(engine)
    consume(engine, uin, "80.00")
    with transaction(engine) as s:
        alarm_id = inbox.alarms_page(s, partner_id=partner_id)[0][0].id
        assert inbox.alarms_page(s, partner_id=other_id) == ([], False)
        with pytest.raises(NotFound) as taken:
            inbox.mark_alarms_read(s, partner_id=other_id, alarm_ids=[alarm_id])
        with pytest.raises(NotFound) as missing:
            inbox.mark_alarms_read(s, partner_id=other_id, alarm_ids=[alarm_id + 1000])
        assert taken.value.message.replace(str(alarm_id), "N") == missing.value.message.replace(
            str(alarm_id + 1000), "N"
        )
    with transaction(engine) as s:
        assert inbox.unread_counts(s, partner_id).alarms == 1


def test_alarms_filtered_by_days(engine: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from creditline.db.tables import Alarm

    partner_id, uin = customer_with_credit(engine)
    assert consume(engine, uin, "80.00") == [75]
    assert consume(engine, uin, "20.00") == [100]
    with transaction(engine) as s:
        rows, _ = inbox.alarms_page(s, partner_id=partner_id)
        older = min(a.id for a in rows)
        s.execute(
            update(Alarm)
            .where(Alarm.id == older)
            .values(created_at=datetime(2026, 1, 5, 12, tzinfo=UTC))
            .execution_options(synchronize_session=False)
        )
    day = datetime(2026, 1, 5, tzinfo=UTC)
    with transaction(engine) as s:

        def thresholds(where: AlarmFilter) -> list[int]:
            return [
                a.threshold for a in inbox.alarms_page(s, partner_id=partner_id, where=where)[0]
            ]

        assert thresholds(AlarmFilter(since=day, until=day + timedelta(days=1))) == [75]
        assert thresholds(AlarmFilter(since=day + timedelta(days=1))) == [100]
        assert thresholds(AlarmFilter(until=day)) == []

"""The demo's history reads like a real one: credit handed out before it is used, and
each alarm dated when its customer's usage crossed the threshold."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, select

from creditline.clock import utcnow
from creditline.db import transaction
from creditline.db.tables import Alarm, AllocationRecord, Customer, UsageEvent
from creditline.demo import build_demo


def test_demo_alarms_and_records_are_spread_over_realistic_times(engine: Engine) -> None:
    with transaction(engine) as s:
        summary = build_demo(s, seed=11, customers=40, today=date(2026, 3, 20))
        ids = [p.id for p in summary.partners]
        alarms = list(
            s.execute(select(Alarm).where(Alarm.partner_id.in_(ids)).order_by(Alarm.id)).scalars()
        )
        usage_times = set(
            s.execute(
                select(UsageEvent.occurred_at).where(UsageEvent.partner_id.in_(ids))
            ).scalars()
        )
        first_usage = min(usage_times)
        records = list(
            s.execute(
                select(AllocationRecord.created_at)
                .where(AllocationRecord.partner_id.in_(ids))
                .order_by(AllocationRecord.id)
            ).scalars()
        )
        last_alarms = dict(
            s.execute(
                select(Customer.uin, Customer.last_alarm_at).where(Customer.partner_id.in_(ids))
            )
            .tuples()
            .all()
        )
    assert len(alarms) == summary.alarms > 10
    moments = [a.created_at for a in alarms]
    # Each at a moment usage came in (not all at the moment the demo ran), in the order
    # they were raised, never in the future.
    assert set(moments) <= usage_times and len({m.date() for m in moments}) > 1
    assert moments == sorted(moments) and moments[-1] <= utcnow()
    # A customer's last alarm is the time of its newest alarm.
    newest: dict[int, object] = {}
    for alarm in alarms:
        newest[alarm.customer_uin] = alarm.created_at
    assert all(last_alarms[uin] == at for uin, at in newest.items())
    # Credit was handed out, in order, before the first usage.
    assert records == sorted(records) and records[-1] < first_usage

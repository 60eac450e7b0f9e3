"""Forecasts (docs/ledger.md, "Forecasts"): the burn rate's error on synthetic histories,
the daily totals kept by ingestion, the stored projection, and the forecast alarm rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, func, select
from tests.ledger.scenario import allocate, charge, ingest, reseller

from creditline.db import transaction
from creditline.db.tables import Customer, OutboxEvent, PartnerNotice, UsageDaily, UsageEvent
from creditline.errors import InvalidInput
from creditline.ledger import accounts, forecast
from creditline.ledger.outbox import FORECAST_EXHAUSTION

TODAY = date(2026, 3, 29)

# --- The burn rate's error on synthetic histories ---------------------------------------
#
# Each history is 8 weeks of daily usage ending yesterday, and goes on the same way after
# today. The error is measured against what actually follows: the rate against the mean of
# the next 14 days, the projected exhaustion against the day the credit really runs out.
# The bounds (docs/ledger.md states them): steady, weekly cycle and one spike within 1 %
# of the rate and 2 days of the exhaustion; linear growth of 2 % of the first day's usage a
# day within 15 % of the rate (measured: 12.5 %), the exhaustion never earlier than the
# true one and within 30 % of the days left (measured: 24 %): the rate of whole past
# weeks lags a growing usage by a week.


def steady(day: int) -> int:
    return 100_00


def weekly(day: int) -> int:
    # Weekdays 100.00, weekends 20.00 (TODAY is a Sunday; day 0 is 8 weeks earlier).
    return 20_00 if (TODAY - timedelta(days=56 - day)).weekday() >= 5 else 100_00


def spike(day: int) -> int:
    return 5_000_00 if day == 50 else 100_00


def growth(day: int) -> int:
    return 100_00 + 2_00 * day


HISTORIES: dict[str, tuple[Callable[[int], int], float, int | None, float | None]] = {
    # name: (usage of day n, bound on the rate's relative error, on the exhaustion in
    # days, on the exhaustion relative to the days left)
    "steady": (steady, 0.01, 2, None),
    "weekly cycle": (weekly, 0.01, 2, None),
    "one spike": (spike, 0.01, 2, None),
    "growth": (growth, 0.15, None, 0.30),
}


def _history(usage: Callable[[int], int]) -> dict[date, int]:
    return {TODAY - timedelta(days=56 - n): usage(n) for n in range(56)}


def _true_exhaustion(usage: Callable[[int], int], available: int) -> int:
    """Days from today until the credit really runs out, the history going on."""
    left, day = available, 0
    while left > 0:
        left -= usage(56 + day)
        day += 1
    return day


@pytest.mark.parametrize("name", HISTORIES)
def test_burn_rate_error_is_within_its_bound(name: str) -> None:
    usage, rate_bound, days_bound, share_bound = HISTORIES[name]
    rate = forecast.burn_rate(_history(usage), on=TODAY, usage_since=TODAY - timedelta(days=56))
    assert rate is not None
    following = sum(usage(56 + n) for n in range(14)) / 14
    assert abs(rate - following) / following <= rate_bound, (rate, following)
    for available in (1_000_00, 3_000_00, 9_000_00):
        projected = forecast.days_left(available, rate)
        true = _true_exhaustion(usage, available)
        if days_bound is not None:
            assert abs(projected - true) <= days_bound, (available, projected, true)
        if share_bound is not None:
            assert true <= projected <= true * (1 + share_bound) + 1, (available, projected, true)


def test_a_spike_moves_the_rate_by_little_and_a_cycle_not_at_all() -> None:
    since = TODAY - timedelta(days=56)
    assert forecast.burn_rate(_history(steady), on=TODAY, usage_since=since) == 100_00
    assert forecast.burn_rate(_history(spike), on=TODAY, usage_since=since) == 100_00
    cycle = forecast.burn_rate(_history(weekly), on=TODAY, usage_since=since)
    assert cycle == (5 * 100_00 + 2 * 20_00) // 7


def test_too_little_history_says_so() -> None:
    daily = {TODAY - timedelta(days=n): 50_00 for n in range(1, 7)}
    assert forecast.burn_rate(daily, on=TODAY, usage_since=TODAY - timedelta(days=6)) is None
    assert forecast.burn_rate({}, on=TODAY, usage_since=None) is None
    # One whole week is enough; the window is then that week.
    daily[TODAY - timedelta(days=7)] = 50_00
    assert forecast.burn_rate(daily, on=TODAY, usage_since=TODAY - timedelta(days=7)) == 50_00


def test_refunds_lower_the_rate_and_never_below_zero() -> None:
    since = TODAY - timedelta(days=30)
    daily = {TODAY - timedelta(days=n): -10_00 for n in range(1, 15)}
    assert forecast.burn_rate(daily, on=TODAY, usage_since=since) == 0


# --- Stored, kept by ingestion ------------------------------------------------------------


def _on(day: date) -> str:
    return f"{day.isoformat()}T12:00:00Z"


@pytest.fixture
def today(monkeypatch: pytest.MonkeyPatch) -> Callable[[date], None]:
    """Set the forecasts' today."""

    def set_today(day: date) -> None:
        monkeypatch.setattr(forecast, "today", lambda: day)

    set_today(TODAY)
    return set_today


def _customer(engine: Engine, partner_id: int, uin: int) -> Customer:
    with transaction(engine) as s:
        customer = accounts.get_customer(s, partner_id, uin)
        s.expunge(customer)
        return customer


def _daily(engine: Engine, partner_id: int) -> dict[tuple[int, date], int]:
    with transaction(engine) as s:
        rows = s.execute(
            select(UsageDaily.customer_uin, UsageDaily.day, UsageDaily.counted).where(
                UsageDaily.partner_id == partner_id
            )
        ).tuples()
        return {(uin, day): counted for uin, day, counted in rows}


def test_ingestion_keeps_the_daily_totals_of_counted_usage(
    engine: Engine, today: Callable[[date], None]
) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(500_00, 500_00))
    a, b = acme.customers
    day1, day2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
    ingest(
        engine,
        charge(a, "10.00", "2.00", occurred_at=_on(day1), event_id="e1"),
        charge(a, "5.00", occurred_at=f"{day1.isoformat()}T23:30:00-02:00"),  # next UTC day
        charge(b, "7.00", occurred_at=_on(day1)),
    )
    ingest(
        engine,
        charge(a, "10.00", "2.00", occurred_at=_on(day1), event_id="e1"),  # duplicate
        charge(a, "3.00", "1.00", kind="refund", occurred_at=_on(day2)),
    )
    assert _daily(engine, acme.id) == {(a, day1): 8_00, (a, day2): 3_00, (b, day1): 7_00}
    # The same figure as consumed, day by day: the sum of the events' counted.
    with transaction(engine) as s:
        events = s.execute(
            select(UsageEvent.customer_uin, func.sum(UsageEvent.counted))
            .where(UsageEvent.partner_id == acme.id)
            .group_by(UsageEvent.customer_uin)
        ).tuples()
        assert dict(events.all()) == {a: 11_00, b: 7_00}
    assert _customer(engine, acme.id, a).consumed == 11_00


def test_a_customer_with_history_gets_a_stored_forecast(
    engine: Engine, today: Callable[[date], None]
) -> None:
    acme = reseller(engine, pool=10_000_00, credits=(3_000_00, 3_000_00))
    a, b = acme.customers
    ingest(
        engine,
        *(charge(a, "100.00", occurred_at=_on(TODAY - timedelta(days=n))) for n in range(1, 15)),
        charge(b, "100.00", occurred_at=_on(TODAY - timedelta(days=3))),
    )
    fa, fb = _customer(engine, acme.id, a), _customer(engine, acme.id, b)
    assert fa.burn_rate == 100_00 and fa.forecast_day == forecast.day_number(TODAY)
    assert fb.burn_rate is None
    with transaction(engine) as s:
        shown = forecast.forecast_of(s, partner_id=acme.id, uin=a)
        assert shown.status == forecast.RUNS_OUT
        # 3,000 - 1,400 = 1,600 left at 100 a day: 16 days.
        assert shown.runs_out_on == TODAY + timedelta(days=16) and shown.days_left == 16
        # March: nothing today yet, 2 days left after today: 100 today + 2 x 100, plus the
        # 1,400 of March so far (all 14 days are in March).
        assert shown.month_to_date == 1_400_00 and shown.month_projected == 1_700_00
        assert forecast.forecast_of(s, partner_id=acme.id, uin=b).status == (
            forecast.NOT_ENOUGH_HISTORY
        )
        # The stored, indexed projection the sort reads.
        stored = s.execute(
            select(Customer.runs_out_day).where(Customer.partner_id == acme.id, Customer.uin == a)
        ).scalar_one()
        assert stored == forecast.day_number(TODAY) + 16
    # An allocation moves it at once.
    allocate(engine, acme.id, a, 1_000_00)
    with transaction(engine) as s:
        assert forecast.forecast_of(s, partner_id=acme.id, uin=a).days_left == 26
        soon = forecast.running_out(s, partner_id=acme.id, within_days=30)
        assert [c.uin for c in soon] == [a]
        assert forecast.running_out(s, partner_id=acme.id, within_days=7) == []


def _alarms(engine: Engine, partner_id: int) -> list[dict[str, object]]:
    with transaction(engine) as s:
        return list(
            s.execute(
                select(OutboxEvent.payload)
                .where(
                    OutboxEvent.partner_id == partner_id, OutboxEvent.type == FORECAST_EXHAUSTION
                )
                .order_by(OutboxEvent.id)
            ).scalars()
        )


def _notices(engine: Engine, partner_id: int) -> int:
    with transaction(engine) as s:
        return s.execute(
            select(func.count()).where(
                PartnerNotice.partner_id == partner_id,
                PartnerNotice.kind == "forecast_exhaustion",
            )
        ).scalar_one()


def _fortnight(uin: int, amount: str = "100.00") -> list[dict[str, object]]:
    return [charge(uin, amount, occurred_at=_on(TODAY - timedelta(days=n))) for n in range(1, 15)]


def test_forecast_alarm_fires_once_rearms_silently_and_at_most_daily(
    engine: Engine, today: Callable[[date], None]
) -> None:
    acme = reseller(engine, pool=10_000_00, credits=(2_000_00,))
    uin = acme.customer
    ingest(engine, *_fortnight(uin))  # 600 left at 100 a day: 6 days, within 7
    alarms = _alarms(engine, acme.id)
    assert len(alarms) == 1 and _notices(engine, acme.id) == 1
    assert alarms[0]["customer_uin"] == uin and alarms[0]["days_left"] == 6
    assert alarms[0]["runs_out_on"] == (TODAY + timedelta(days=6)).isoformat()
    assert alarms[0]["burn_rate"] == "100.00" and alarms[0]["window_days"] == 7
    assert alarms[0]["available_credit"] == "600.00"
    # Still within: no repeat.
    ingest(engine, charge(uin, "50.00", occurred_at=_on(TODAY)))
    assert len(_alarms(engine, acme.id)) == 1
    # Beyond the window: re-armed, silently.
    allocate(engine, acme.id, uin, 1_000_00)
    ingest(engine, charge(uin, "1.00", occurred_at=_on(TODAY)))
    assert not _customer(engine, acme.id, uin).forecast_fired
    assert len(_alarms(engine, acme.id)) == 1
    # Within again the same day: no second alarm that day.
    allocate(engine, acme.id, uin, -1_000_00)
    ingest(engine, charge(uin, "1.00", occurred_at=_on(TODAY)))
    assert _customer(engine, acme.id, uin).forecast_fired
    assert len(_alarms(engine, acme.id)) == 1
    # Out and in again the next day: the alarm again.
    today(TODAY + timedelta(days=1))
    allocate(engine, acme.id, uin, 1_000_00)
    ingest(engine, charge(uin, "1.00", occurred_at=_on(TODAY + timedelta(days=1))))
    allocate(engine, acme.id, uin, -1_000_00)
    ingest(engine, charge(uin, "1.00", occurred_at=_on(TODAY + timedelta(days=1))))
    assert len(_alarms(engine, acme.id)) == 2


def test_window_zero_turns_forecast_alarms_off_and_a_customer_may_differ(
    engine: Engine, today: Callable[[date], None]
) -> None:
    acme = reseller(engine, pool=10_000_00, credits=(2_000_00, 2_000_00))
    a, b = acme.customers
    with transaction(engine) as s:
        assert forecast.set_alarm_days(s, partner_id=acme.id, days=0) == 0
        assert forecast.set_alarm_days(s, partner_id=acme.id, days=3, customer_uin=b) == 3
    ingest(engine, *_fortnight(a), *_fortnight(b, "150.00"))
    # a: off; b: 2,000 - 2,100 < 0, out already: within its 3 days.
    assert [p["customer_uin"] for p in _alarms(engine, acme.id)] == [b]
    with transaction(engine) as s:
        assert forecast.alarm_days(s, partner_id=acme.id, customer_uin=a) == 0
        assert forecast.alarm_days(s, partner_id=acme.id, customer_uin=b) == 3
        # Back to the default (0): re-armed silently.
        assert forecast.set_alarm_days(s, partner_id=acme.id, days=None, customer_uin=b) == 0
    assert not _customer(engine, acme.id, b).forecast_fired
    # Turned on again: the projection already within fires silently (as a new threshold
    # list does), so no alarm comes of the setting itself.
    with transaction(engine) as s:
        forecast.set_alarm_days(s, partner_id=acme.id, days=7)
    assert _customer(engine, acme.id, a).forecast_fired
    ingest(engine, charge(a, "1.00", occurred_at=_on(TODAY)))
    assert len(_alarms(engine, acme.id)) == 1


@pytest.mark.parametrize("bad", [-1, 367, "7", 1.5, True])
def test_bad_windows_are_refused(engine: Engine, bad: object) -> None:
    acme = reseller(engine)
    with transaction(engine) as s, pytest.raises(InvalidInput):
        forecast.set_alarm_days(s, partner_id=acme.id, days=bad)
    with transaction(engine) as s:
        assert forecast.alarm_days(s, partner_id=acme.id) == 7


def test_the_daily_refresh_follows_the_calendar(
    engine: Engine, today: Callable[[date], None]
) -> None:
    acme = reseller(engine, pool=10_000_00, credits=(5_000_00,))
    uin = acme.customer
    ingest(engine, *_fortnight(uin))
    assert _customer(engine, acme.id, uin).burn_rate == 100_00
    # A week without usage: the rate falls to the last 7 days' worth.
    later = TODAY + timedelta(days=7)
    today(later)
    with transaction(engine) as s:
        assert forecast.refresh(s, partner_id=acme.id) == 1
        assert forecast.refresh(s, partner_id=acme.id) == 0  # nothing stale now
    refreshed = _customer(engine, acme.id, uin)
    assert refreshed.forecast_day == forecast.day_number(later)
    # 7 days of 100 and 7 without: the highest day replaced by the next, also 100.
    assert refreshed.burn_rate == 7 * 100_00 // 14


def test_late_usage_of_an_earlier_day_recomputes_the_rate(
    engine: Engine, today: Callable[[date], None]
) -> None:
    acme = reseller(engine, pool=10_000_00, credits=(5_000_00,))
    uin = acme.customer
    ingest(engine, *_fortnight(uin))
    ingest(
        engine,
        charge(uin, "140.00", occurred_at=_on(TODAY - timedelta(days=3))),
        charge(uin, "140.00", occurred_at=_on(TODAY - timedelta(days=4))),
    )
    # 240, 240 and twelve days of 100: the highest replaced by the next (also 240).
    assert _customer(engine, acme.id, uin).burn_rate == (2 * 240_00 + 12 * 100_00) // 14

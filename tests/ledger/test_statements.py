"""Monthly statements (issue 17): a customer's calendar month cut by the time each change
was recorded; a closed month never changes; late usage is a correction line of the month
it was recorded in; every opening and closing reconciles with the balances the records
give at that instant (verify)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from tests.ledger.scenario import allocate, charge, ingest, reseller

from creditline.db import transaction
from creditline.errors import InvalidInput, NotFound
from creditline.ledger import customer_settings, statements, verify
from creditline.ledger.statements import Month


class Clock:
    """The time every ledger module reads, moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        from creditline.ledger import accounts, alarms, credit, outbox, records, usage

        for module in (
            accounts,
            alarms,
            credit,
            outbox,
            records,
            usage,
            statements,
            customer_settings,
        ):
            monkeypatch.setattr(module, "utcnow", lambda: self.now)

    def at(self, text: str) -> None:
        self.now = datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def _statement(engine: Engine, partner: int, uin: int, month: str) -> statements.Statement:
    with transaction(engine) as s:
        return statements.statement(
            s, partner_id=partner, customer_uin=uin, month=Month.parse(month)
        )


def _reconciles(engine: Engine, st: statements.Statement) -> None:
    with transaction(engine) as s:
        opening = verify.balances_at(s, partner_id=st.partner_id, moment=st.start)
        closing = verify.balances_at(s, partner_id=st.partner_id, moment=st.end)
    uin = st.customer_uin
    assert (st.opening_total_credit, st.opening_consumed) == (
        opening[uin].total_credit,
        opening[uin].consumed,
    )
    assert (st.closing_total_credit, st.closing_consumed, st.closing_available) == (
        closing[uin].total_credit,
        closing[uin].consumed,
        closing[uin].available,
    )


def test_a_month_with_allocations_usage_refunds_and_corrections(
    engine: Engine, clock: Clock
) -> None:
    clock.at("2026-01-02T09:00:00+00:00")
    acme = reseller(engine, pool=1_000_00, credits=(0,))
    uin = acme.customer
    clock.at("2026-01-05T09:00:00+00:00")
    allocate(engine, acme.id, uin, 100_00)
    clock.at("2026-01-10T09:00:00+00:00")
    ingest(
        engine,
        charge(uin, "30.00", "5.00", occurred_at="2026-01-09T00:00:00Z"),
        {**charge(uin, "10.00", occurred_at="2026-01-09T00:00:00Z"), "product": "cdn"},
        charge(uin, "4.00", kind="refund", occurred_at="2026-01-09T00:00:00Z"),
    )
    clock.at("2026-01-20T09:00:00+00:00")
    allocate(engine, acme.id, uin, -10_00)
    clock.at("2026-01-25T09:00:00+00:00")
    january_so_far = _statement(engine, acme.id, uin, "2026-01")
    assert not january_so_far.closed

    # February: late January usage arrives, then February's own, which passes 75 %.
    clock.at("2026-02-03T09:00:00+00:00")
    ingest(engine, charge(uin, "20.00", occurred_at="2026-01-31T23:00:00Z"))
    january = _statement(engine, acme.id, uin, "2026-01")
    assert january.closed
    assert january.opening_available == 0
    assert (january.allocations, january.withdrawals) == (100_00, 10_00)
    assert [(u.product, u.charges, u.vouchers, u.refunds, u.counted) for u in january.usage] == [
        ("cdn", 10_00, 0, 0, 10_00),
        ("cvm", 30_00, 5_00, 4_00, 21_00),
    ]
    assert january.corrections == []
    assert january.closing_available == 100_00 - 10_00 - 31_00
    # The late charge is not January's: January reads as it did before it came.
    assert january.closing_available == january_so_far.closing_available
    _reconciles(engine, january)

    clock.at("2026-02-10T09:00:00+00:00")
    ingest(engine, charge(uin, "30.00", occurred_at="2026-02-09T00:00:00Z"))
    clock.at("2026-03-01T00:00:00+00:00")
    february = _statement(engine, acme.id, uin, "2026-02")
    assert february.closed
    assert february.opening_available == january.closing_available
    assert [(u.month, u.product, u.counted) for u in february.corrections] == [
        ("2026-01", "cvm", 20_00)
    ]
    assert [u.counted for u in february.usage] == [30_00]
    assert february.closing_available == 59_00 - 20_00 - 30_00
    # 81 consumed of 90: one alarm in February, naming 90 %, reached 75 % with it.
    assert [(a.threshold, a.thresholds_reached) for a in february.thresholds] == [(90, [75, 90])]
    assert february.thresholds_reached == [75, 90]
    _reconciles(engine, february)

    # Months later, both closed months read the same; March (open) ends at the balances.
    clock.at("2026-03-15T00:00:00+00:00")
    ingest(engine, charge(uin, "1.00", occurred_at="2025-12-01T00:00:00Z"))
    assert _statement(engine, acme.id, uin, "2026-01") == january
    assert _statement(engine, acme.id, uin, "2026-02") == february
    march = _statement(engine, acme.id, uin, "2026-03")
    assert [(u.month, u.counted) for u in march.corrections] == [("2025-12", 1_00)]
    with transaction(engine) as s:
        assert verify.verify(s) == []
        stored = s.get(statements.Customer, (acme.id, uin))
        assert stored is not None
        assert march.closing_available == stored.total_credit - stored.consumed
    _reconciles(engine, march)


def test_months_are_cut_in_the_partner_time_zone(engine: Engine, clock: Clock) -> None:
    clock.at("2026-01-02T09:00:00+00:00")
    acme = reseller(engine, pool=1_000_00, credits=(50_00,))
    with transaction(engine) as s:
        customer_settings.update_customer_settings(s, partner_id=acme.id, time_zone="Asia/Tokyo")
    # 20:00 UTC on 31 January is 05:00 on 1 February in Tokyo.
    clock.at("2026-01-31T20:00:00+00:00")
    ingest(engine, charge(acme.customer, "5.00", occurred_at="2026-01-31T20:00:00Z"))
    clock.at("2026-03-01T00:00:00+00:00")
    january = _statement(engine, acme.id, acme.customer, "2026-01")
    february = _statement(engine, acme.id, acme.customer, "2026-02")
    assert january.usage == [] and [u.counted for u in february.usage] == [5_00]
    assert february.start == datetime(2026, 1, 31, 15, tzinfo=UTC)
    _reconciles(engine, january)
    _reconciles(engine, february)


def test_a_month_not_begun_and_other_partners_customers_are_refused(
    engine: Engine, clock: Clock
) -> None:
    clock.at("2026-01-02T09:00:00+00:00")
    acme = reseller(engine, pool=1_000_00, credits=(0,))
    other = reseller(engine, pool=1_000_00, credits=(0,))
    with transaction(engine) as s:
        with pytest.raises(InvalidInput, match="not begun"):
            statements.statement(
                s, partner_id=acme.id, customer_uin=acme.customer, month=Month(2026, 2)
            )
        with pytest.raises(NotFound):
            statements.statement(
                s, partner_id=acme.id, customer_uin=other.customer, month=Month(2026, 1)
            )
    for text in ("2026-13", "2026-1", "26-01", "1999-12", "2026-01-01", ""):
        with pytest.raises(InvalidInput):
            Month.parse(text)


def test_a_partner_month_lists_every_customer(engine: Engine, clock: Clock) -> None:
    clock.at("2026-01-02T09:00:00+00:00")
    acme = reseller(engine, pool=1_000_00, credits=(10_00, 20_00, 0))
    clock.at("2026-02-01T00:00:00+00:00")
    with transaction(engine) as s:
        made = statements.statements(s, partner_id=acme.id, month=Month(2026, 1))
    assert [m.customer_uin for m in made] == sorted(acme.customers)
    assert [m.closing_total_credit for m in made] == [10_00, 20_00, 0]


def test_the_time_zone_is_kept_once_a_month_with_changes_has_closed(
    engine: Engine, clock: Clock
) -> None:
    clock.at("2026-01-02T09:00:00+00:00")
    acme = reseller(engine, pool=1_000_00, credits=(50_00,))
    # Within the first month nothing has closed yet: the zone may change, and back.
    for zone in ("Asia/Tokyo", "UTC"):
        with transaction(engine) as s:
            customer_settings.update_customer_settings(s, partner_id=acme.id, time_zone=zone)
    # 20:00 UTC on 31 January: January in UTC, February in Tokyo.
    clock.at("2026-01-31T20:00:00+00:00")
    ingest(engine, charge(acme.customer, "5.00", occurred_at="2026-01-31T20:00:00Z"))
    clock.at("2026-02-03T00:00:00+00:00")
    january = _statement(engine, acme.id, acme.customer, "2026-01")
    assert [u.counted for u in january.usage] == [5_00]
    with transaction(engine) as s, pytest.raises(InvalidInput, match="stays UTC") as refused:
        customer_settings.update_customer_settings(
            s, partner_id=acme.id, time_zone="Asia/Tokyo", contact="billing@acme.example"
        )
    assert refused.value.param == "time_zone"
    with transaction(engine) as s:
        # Nothing changed, and the closed January reads as before.
        assert (
            customer_settings.customer_settings(s, acme.id) == customer_settings.CustomerSettings()
        )
        # The same zone again, or any other setting, is no change of the cut.
        kept = customer_settings.update_customer_settings(
            s, partner_id=acme.id, time_zone="UTC", contact="billing@acme.example"
        )
        assert (kept.time_zone, kept.contact) == ("UTC", "billing@acme.example")
    assert _statement(engine, acme.id, acme.customer, "2026-01") == january


def test_the_zone_in_force_says_which_months_have_closed(engine: Engine, clock: Clock) -> None:
    # At 20:00 UTC on 28 February Tokyo is already in March: February has closed there, not
    # in UTC.
    clock.at("2026-02-10T09:00:00+00:00")
    acme = reseller(engine, pool=1_000_00, credits=(50_00,))
    clock.at("2026-02-28T20:00:00+00:00")
    with transaction(engine) as s:
        customer_settings.update_customer_settings(s, partner_id=acme.id, time_zone="Asia/Tokyo")
    february = _statement(engine, acme.id, acme.customer, "2026-02")
    assert february.closed and february.closing_total_credit == 50_00
    # Back to UTC would reopen February (closed in Tokyo, with a change in it): refused.
    with transaction(engine) as s, pytest.raises(InvalidInput, match="stays Asia/Tokyo"):
        customer_settings.update_customer_settings(s, partner_id=acme.id, time_zone="UTC")
    assert _statement(engine, acme.id, acme.customer, "2026-02") == february

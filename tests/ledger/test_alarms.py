"""Alarms (DESIGN §3): thresholds in percent of total credit; one alarm per change naming
the highest newly reached threshold; silent re-arming; alarm and outbox event written in
the transaction of the change that caused them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from tests.ledger.scenario import allocate, charge, ingest, post_usage, reseller

from creditline.clock import utcnow
from creditline.db import transaction
from creditline.db.tables import Alarm, Customer, OutboxEvent
from creditline.errors import InvalidInput
from creditline.ledger import alarms


def _alarms(engine: Engine) -> list[tuple[int, list[int], str]]:
    with transaction(engine) as s:
        rows = s.execute(select(Alarm).order_by(Alarm.id)).scalars()
        return [(a.threshold, list(a.thresholds_reached), a.cause) for a in rows]


def _threshold_events(engine: Engine) -> list[dict[str, object]]:
    with transaction(engine) as s:
        rows = s.execute(
            select(OutboxEvent)
            .where(OutboxEvent.type == "credit.threshold_reached")
            .order_by(OutboxEvent.id)
        ).scalars()
        return [e.payload for e in rows]


def test_default_thresholds_are_75_90_100(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    with transaction(engine) as s:
        assert alarms.effective_thresholds(s, partner_id=acme.id, customer_uin=acme.customer) == [
            75,
            90,
            100,
        ]
    ingest(engine, charge(acme.customer, "74.99"))
    assert _alarms(engine) == []
    ingest(engine, charge(acme.customer, "0.01"))
    ingest(engine, charge(acme.customer, "15.00"))
    ingest(engine, charge(acme.customer, "10.00"))
    assert _alarms(engine) == [(75, [75], "usage"), (90, [90], "usage"), (100, [100], "usage")]


def test_jump_from_0_to_95_percent_raises_one_alarm_naming_90(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    result = ingest(engine, charge(acme.customer, "95.00"))
    assert [(a.threshold, a.thresholds_reached) for a in result.alarms] == [(90, [75, 90])]
    assert _alarms(engine) == [(90, [75, 90], "usage")]
    [event] = _threshold_events(engine)
    assert event["threshold"] == 90
    assert event["thresholds_reached"] == [75, 90]
    assert event["utilization_percent"] == "95.00"
    # 75 and 90 both count as fired: more usage below 100 % raises nothing.
    ingest(engine, charge(acme.customer, "4.00"))
    assert len(_alarms(engine)) == 1


def test_partner_default_list(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    with transaction(engine) as s:
        assert alarms.set_thresholds(s, partner_id=acme.id, thresholds=[50, 80]) == [50, 80]
    ingest(engine, charge(acme.customer, "60.00"))
    assert _alarms(engine) == [(50, [50], "usage")]


def test_per_customer_list_overrides_the_partner_default(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00, 100_00))
    own, other = acme.customers
    with transaction(engine) as s:
        alarms.set_thresholds(s, partner_id=acme.id, thresholds=[20, 150], customer_uin=own)
    ingest(engine, charge(own, "80.00"), charge(other, "80.00"))
    assert sorted(_alarms(engine)) == [(20, [20], "usage"), (75, [75], "usage")]
    ingest(engine, charge(own, "70.00"))
    assert _alarms(engine)[-1] == (150, [150], "usage")
    with transaction(engine) as s:
        # None: back to the partner's default list.
        alarms.set_thresholds(s, partner_id=acme.id, thresholds=None, customer_uin=own)
        assert alarms.effective_thresholds(s, partner_id=acme.id, customer_uin=own) == [
            75,
            90,
            100,
        ]


@pytest.mark.parametrize(
    "bad",
    [[0], [1001], [-5], [75.5], ["90"], [True], [], list(range(1, 12))],
    ids=["zero", "above-1000", "negative", "fraction", "text", "bool", "empty", "eleven"],
)
def test_threshold_lists_are_validated(engine: Engine, bad: list[object]) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    with transaction(engine) as s, pytest.raises(InvalidInput):
        alarms.set_thresholds(s, partner_id=acme.id, thresholds=bad)
    with transaction(engine) as s, pytest.raises(InvalidInput):
        alarms.set_thresholds(s, partner_id=acme.id, thresholds=bad, customer_uin=acme.customer)
    with transaction(engine) as s:
        assert alarms.effective_thresholds(s, partner_id=acme.id, customer_uin=acme.customer) == [
            75,
            90,
            100,
        ]


def test_threshold_list_limits_are_inclusive() -> None:
    assert alarms.validate_thresholds([1000, 1, 1]) == [1, 1000]
    assert alarms.validate_thresholds(range(1, 11)) == list(range(1, 11))


def test_allocation_re_arms_silently_and_the_threshold_fires_again(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    ingest(engine, charge(acme.customer, "80.00"))
    assert _alarms(engine) == [(75, [75], "usage")]
    change = allocate(engine, acme.id, acme.customer, 100_00)  # 80 of 200: 40 %
    assert change.alarm is None
    assert _alarms(engine) == [(75, [75], "usage")]
    with transaction(engine) as s:
        assert s.get(Customer, (acme.id, acme.customer)).fired_thresholds == []  # type: ignore[union-attr]
    ingest(engine, charge(acme.customer, "70.00"))  # 150 of 200: 75 % again
    assert _alarms(engine)[-1] == (75, [75], "usage")


def test_refund_re_arms_silently(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    ingest(engine, charge(acme.customer, "92.00"))
    result = ingest(engine, charge(acme.customer, "10.00", kind="refund"))  # 82 %
    assert result.alarms == []
    ingest(engine, charge(acme.customer, "9.00"))  # 91 %: 90 fires again, 75 stayed fired
    assert _alarms(engine) == [(90, [75, 90], "usage"), (90, [90], "usage")]


def test_withdrawal_can_raise_an_alarm(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    ingest(engine, charge(acme.customer, "50.00"))
    change = allocate(engine, acme.id, acme.customer, -40_00)  # 50 of 60: 83 %
    assert change.alarm is not None
    assert (change.alarm.threshold, change.alarm.thresholds_reached) == (75, [75])
    assert _alarms(engine) == [(75, [75], "withdrawal")]


def test_no_credit_and_any_consumption_reaches_every_threshold(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(0,))
    result = ingest(engine, charge(acme.customer, "0.01"))
    assert [(a.threshold, a.thresholds_reached) for a in result.alarms] == [(100, [75, 90, 100])]
    [event] = _threshold_events(engine)
    assert event["utilization_percent"] is None


def test_nothing_consumed_reaches_nothing(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(0,))
    result = ingest(engine, charge(acme.customer, "5.00", "5.00"))
    assert result.alarms == []
    assert alarms.reached([75, 90, 100], total_credit=0, consumed=0) == []


def test_reached_is_exact_at_the_boundary() -> None:
    assert alarms.reached([75], total_credit=100_00, consumed=75_00) == [75]
    assert alarms.reached([75], total_credit=100_00, consumed=74_99) == []
    assert alarms.reached([75, 100, 1000], total_credit=3, consumed=30) == [75, 100, 1000]


def test_alarm_and_outbox_event_roll_back_with_their_cause(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction(engine) as s:
        result = post_usage(s, charge(acme.customer, "95.00"))
        assert len(result.alarms) == 1
        assert len(s.execute(select(Alarm)).all()) == 1
        raise Abort
    assert _alarms(engine) == []
    assert _threshold_events(engine) == []
    with transaction(engine) as s:
        assert s.get(Customer, (acme.id, acme.customer)).fired_thresholds == []  # type: ignore[union-attr]
    # Nothing was lost: the same usage, posted again, raises the same alarm.
    ingest(engine, charge(acme.customer, "95.00"))
    assert _alarms(engine) == [(90, [75, 90], "usage")]
    assert len(_threshold_events(engine)) == 1


@settings(max_examples=500, deadline=None)
@given(
    thresholds=st.lists(st.integers(min_value=1, max_value=1000), max_size=10),
    fired=st.lists(st.integers(min_value=1, max_value=1000), max_size=10),
    total_credit=st.integers(min_value=0, max_value=10**12),
    consumed=st.integers(min_value=-(10**12), max_value=10**12),
    matching=st.sampled_from([None, "same", "reversed twice"]),
)
def test_settled_is_exactly_when_the_rule_changes_nothing(
    thresholds: list[int], fired: list[int], total_credit: int, consumed: int, matching: str | None
) -> None:
    # A usage batch asks alarms.settled of every customer before it makes the rule's own
    # objects for those it moves: the two must agree on every customer.
    reached = alarms.reached(thresholds, total_credit=total_credit, consumed=consumed)
    if matching == "same":
        fired = reached
    elif matching == "reversed twice":
        fired = [*reversed(reached), *reached]
    credit = alarms.CustomerCredit(
        partner_id=1,
        uin=2,
        name="c",
        total_credit=total_credit,
        consumed=consumed,
        thresholds=None,
        fired=fired,
    )
    decided = alarms.decide(credit, default=thresholds, cause="usage", now=utcnow())
    assert alarms.settled(thresholds, fired, total_credit=total_credit, consumed=consumed) == (
        decided is None
    )

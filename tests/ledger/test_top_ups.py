"""Automatic top-ups (issue 16.4): a usage batch that leaves a customer's credit below its
rule's trigger allocates the rule's amount from the pool, once, as an ordinary allocation
of source ``rule``; a refused top-up (ceiling, monthly cap, pool) changes nothing and
alarms the partner once."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from tests.ledger.scenario import (
    OPS,
    allocate,
    balance,
    charge,
    ingest,
    pool,
    reseller,
    snapshot,
)

from creditline.db import transaction
from creditline.db.tables import AllocationRecord, OutboxEvent, PartnerNotice, TopUpMonth
from creditline.errors import InvalidAmount, InvalidInput, NotFound
from creditline.ledger import pools, top_ups
from creditline.ledger.outbox import TOP_UP_REFUSED
from creditline.ledger.verify import verify


def _rule(**given: int | None) -> top_ups.Rule:
    values: dict[str, int | None] = {"amount": 100_00, "monthly_cap": 300_00, "below": 50_00}
    values.update(given)
    return top_ups.check_rule(**values)


def _default(engine: Engine, partner_id: int, rule: top_ups.Rule | None) -> None:
    with transaction(engine) as s:
        top_ups.set_partner_rule(s, partner_id=partner_id, rule=rule)


def _rule_records(engine: Engine) -> list[tuple[int | None, int, str, str]]:
    with transaction(engine) as s:
        return [
            tuple(r)  # type: ignore[misc]
            for r in s.execute(
                select(
                    AllocationRecord.customer_uin,
                    AllocationRecord.change,
                    AllocationRecord.operator,
                    AllocationRecord.kind,
                )
                .where(AllocationRecord.source == "rule")
                .order_by(AllocationRecord.id)
            )
        ]


def _refusals(engine: Engine) -> list[dict[str, object]]:
    with transaction(engine) as s:
        return [
            dict(p)
            for p in s.execute(
                select(OutboxEvent.payload)
                .where(OutboxEvent.type == TOP_UP_REFUSED)
                .order_by(OutboxEvent.id)
            ).scalars()
        ]


def test_usage_below_the_trigger_tops_up_once_as_an_allocation(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    _default(engine, acme.id, _rule())
    result = ingest(engine, charge(acme.customer, "60.00"))  # available 40.00 < 50.00
    assert [t.change is not None for t in result.top_ups] == [True]
    assert balance(engine, acme.id, acme.customer) == (200_00, 60_00, 140_00)
    assert pool(engine, acme.id) == (1_000_00, 200_00, 800_00)
    assert _rule_records(engine) == [
        (acme.customer, 100_00, "top-up rule (partner default)", "allocation")
    ]
    with transaction(engine) as s:
        assert verify(s) == []
        month = s.execute(select(TopUpMonth)).scalar_one()
        assert (month.topped_up, month.top_ups, month.cap) == (100_00, 1, 300_00)


def test_one_top_up_per_batch_even_when_still_below(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    _default(engine, acme.id, _rule(amount=20_00))
    ingest(engine, charge(acme.customer, "90.00"), charge(acme.customer, "5.00"))
    # 10.00 - 5.00 left, one top-up of 20.00: still below 50.00, and no second one.
    assert balance(engine, acme.id, acme.customer) == (120_00, 95_00, 25_00)
    ingest(engine, charge(acme.customer, "1.00"))  # a new trigger: one more
    assert balance(engine, acme.id, acme.customer) == (140_00, 96_00, 44_00)
    assert len(_rule_records(engine)) == 2


def test_utilisation_trigger(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    _default(engine, acme.id, _rule(below=None, utilization_percent=80))
    ingest(engine, charge(acme.customer, "79.99"))
    assert balance(engine, acme.id, acme.customer)[0] == 100_00
    ingest(engine, charge(acme.customer, "0.01"))
    assert balance(engine, acme.id, acme.customer)[0] == 200_00


def test_refunds_withdrawals_and_duplicates_trigger_nothing(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    ingest(engine, charge(acme.customer, "70.00", event_id="once"))
    _default(engine, acme.id, _rule())
    ingest(engine, charge(acme.customer, "10.00", kind="refund"))  # 40 available, refund
    allocate(engine, acme.id, acme.customer, -30_00)  # withdrawal: 10.00 available
    ingest(engine, charge(acme.customer, "70.00", event_id="once"))  # duplicate
    assert _rule_records(engine) == []
    assert balance(engine, acme.id, acme.customer) == (70_00, 60_00, 10_00)


def test_the_customers_own_rule_and_off_override_the_default(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00, 100_00, 100_00))
    own, off, default = acme.customers
    _default(engine, acme.id, _rule())
    with transaction(engine) as s:
        top_ups.set_customer_rule(
            s, partner_id=acme.id, customer_uin=own, mode="own", rule=_rule(amount=30_00)
        )
        top_ups.set_customer_rule(s, partner_id=acme.id, customer_uin=off, mode="off")
    ingest(engine, *(charge(uin, "60.00") for uin in acme.customers))
    assert [balance(engine, acme.id, uin)[0] for uin in (own, off, default)] == [
        130_00,
        100_00,
        200_00,
    ]
    assert [r[2] for r in _rule_records(engine)] == [
        "top-up rule (customer's own)",
        "top-up rule (partner default)",
    ]
    with transaction(engine) as s:
        back = top_ups.set_customer_rule(s, partner_id=acme.id, customer_uin=own, mode="default")
        assert (back.mode, back.rule) == ("default", _rule())


def test_the_monthly_cap_refuses_changes_nothing_and_alarms_once(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    _default(engine, acme.id, _rule(monthly_cap=200_00))
    for _ in range(2):
        ingest(engine, charge(acme.customer, "100.00"))
    assert balance(engine, acme.id, acme.customer) == (300_00, 200_00, 100_00)
    ingest(engine, charge(acme.customer, "60.00"))  # 40.00 available: cap reached
    assert balance(engine, acme.id, acme.customer) == (300_00, 260_00, 40_00)
    assert pool(engine, acme.id) == (1_000_00, 300_00, 700_00)
    (refusal,) = _refusals(engine)
    assert refusal["reason"] == "monthly_cap"
    assert refusal["customer_uin"] == acme.customer
    assert (refusal["amount"], refusal["topped_up_this_month"]) == ("100.00", "200.00")
    assert refusal["available_credit"] == "40.00"
    ingest(engine, charge(acme.customer, "1.00"))  # refused again: not alarmed again
    assert len(_refusals(engine)) == 1
    with transaction(engine) as s:
        notices = s.execute(select(PartnerNotice.kind, PartnerNotice.message)).all()
        assert [n.kind for n in notices] == ["top_up_refused"]
        assert "monthly cap" in notices[0].message
        assert verify(s) == []


def test_the_ceiling_refuses(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    _default(engine, acme.id, _rule(ceiling=250_00))
    ingest(engine, charge(acme.customer, "60.00"))
    assert balance(engine, acme.id, acme.customer)[0] == 200_00
    ingest(engine, charge(acme.customer, "120.00"))  # 300.00 would pass 250.00
    assert balance(engine, acme.id, acme.customer)[0] == 200_00
    assert [r["reason"] for r in _refusals(engine)] == ["ceiling"]


def test_a_short_pool_refuses_and_changes_nothing_but_the_usage(engine: Engine) -> None:
    acme = reseller(engine, pool=150_00, credits=(100_00,))
    _default(engine, acme.id, _rule())
    before = snapshot(engine)
    ingest(engine, charge(acme.customer, "60.00"))
    assert balance(engine, acme.id, acme.customer) == (100_00, 60_00, 40_00)
    assert pool(engine, acme.id) == (150_00, 100_00, 50_00)
    after = snapshot(engine)
    assert after["allocation_records"] == before["allocation_records"]
    (refusal,) = _refusals(engine)
    assert (refusal["reason"], refusal["pool_remaining"]) == ("pool_short", "50.00")
    # A top-up that succeeds later clears the refusal: the next refusal alarms again.
    with transaction(engine) as s:
        pools.grant(s, partner_id=acme.id, amount=51_00, origin=OPS)
    ingest(engine, charge(acme.customer, "1.00"))
    assert balance(engine, acme.id, acme.customer)[0] == 200_00
    ingest(engine, charge(acme.customer, "160.00"))
    assert [r["reason"] for r in _refusals(engine)] == ["pool_short", "pool_short"]
    with transaction(engine) as s:
        assert verify(s) == []


def test_top_ups_by_partner_then_uin_when_the_pool_serves_one(engine: Engine) -> None:
    acme = reseller(engine, pool=300_00, credits=(100_00, 100_00))
    _default(engine, acme.id, _rule())
    result = ingest(engine, *(charge(uin, "60.00") for uin in reversed(acme.customers)))
    assert [(t.customer_uin, t.refused) for t in result.top_ups] == [
        (acme.customers[0], None),
        (acme.customers[1], "pool_short"),
    ]


def test_a_short_pool_refuses_in_uin_order_what_it_cannot_cover(engine: Engine) -> None:
    # 150.00 left: the first customer takes 100.00, the second's 100.00 does not fit, the
    # third's own 30.00 does, the fourth's 100.00 does not (20.00 left).
    acme = reseller(engine, pool=400_00 + 150_00, credits=(100_00,) * 4)
    _default(engine, acme.id, _rule())
    with transaction(engine) as s:
        top_ups.set_customer_rule(
            s,
            partner_id=acme.id,
            customer_uin=acme.customers[2],
            mode="own",
            rule=_rule(amount=30_00),
        )
    result = ingest(engine, *(charge(uin, "60.00") for uin in reversed(acme.customers)))
    assert [(t.customer_uin, t.refused) for t in result.top_ups] == [
        (acme.customers[0], None),
        (acme.customers[1], "pool_short"),
        (acme.customers[2], None),
        (acme.customers[3], "pool_short"),
    ]
    assert pool(engine, acme.id)[2] == 20_00
    refusals = _refusals(engine)
    assert [(r["customer_uin"], r["pool_remaining"]) for r in refusals] == [
        (acme.customers[1], "50.00"),
        (acme.customers[3], "20.00"),
    ]
    with transaction(engine) as s:
        assert verify(s) == []


@pytest.mark.parametrize(
    ("given", "error", "param"),
    [
        ({"below": None}, InvalidInput, "trigger"),
        ({"utilization_percent": 90}, InvalidInput, "trigger"),
        ({"below": None, "utilization_percent": 0}, InvalidInput, "utilization_percent"),
        ({"below": -1}, InvalidAmount, "available_below"),
        ({"amount": 0}, InvalidAmount, "amount"),
        ({"monthly_cap": 99_99}, InvalidAmount, "monthly_cap"),
        ({"ceiling": 50_00}, InvalidAmount, "ceiling"),
        ({"amount": 10**12}, InvalidAmount, "amount"),
    ],
)
def test_bad_rules_are_refused_by_name(
    given: dict[str, int | None], error: type[Exception], param: str
) -> None:
    with pytest.raises(error) as refused:
        _rule(**given)
    assert refused.value.param == param  # type: ignore[attr-defined]


def test_another_partners_customer_is_missing(engine: Engine) -> None:
    acme = reseller(engine, credits=(0,))
    other = reseller(engine, credits=(0,))
    with transaction(engine) as s, pytest.raises(NotFound):
        top_ups.set_customer_rule(s, partner_id=other.id, customer_uin=acme.customer, mode="off")


def test_verify_recomputes_each_months_top_ups_from_the_records(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    _default(engine, acme.id, _rule())
    ingest(engine, charge(acme.customer, "60.00"))
    with transaction(engine) as s:
        assert verify(s) == []
        month = top_ups.month_of(s.execute(select(TopUpMonth.updated_at)).scalar_one())
        s.execute(update(TopUpMonth).values(topped_up=TopUpMonth.topped_up + 1))
        found = verify(s)
        assert [(m.id, m.field, m.stored, m.expected) for m in found] == [
            (acme.customer, f"top-ups of {month}", 100_01, 100_00)
        ]
        s.rollback()
    # A month above its cap cannot even be stored (and verify would name it).
    with transaction(engine) as s, pytest.raises(IntegrityError):
        s.execute(update(TopUpMonth).values(topped_up=400_00))
    with transaction(engine) as s:
        s.execute(delete(TopUpMonth))
        assert [(m.field, m.stored, m.expected) for m in verify(s)] == [
            (f"top-ups of {month}", 0, 100_00),
            (f"number of top-ups of {month}", "0", "1"),
        ]
        s.rollback()

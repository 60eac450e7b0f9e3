"""Bad input is refused with a clear error naming what is wrong, and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from tests.ledger.scenario import (
    OPS,
    Reseller,
    assert_refused_changes_nothing,
    balance,
    charge,
    post_usage,
    reseller,
)

from creditline.errors import CreditlineError, InvalidAmount, InvalidBatch
from creditline.ledger import credit, pools
from creditline.money import from_float, parse_amount

BAD_AMOUNTS = [
    ("1.234", "more than two decimal places"),
    ("NaN", "not a decimal amount"),
    ("inf", "not a decimal amount"),
    ("-Infinity", "not a decimal amount"),
    ("1000000000.01", "beyond the limit"),
    ("1e3", "not a decimal amount"),
    ("", "not a decimal amount"),
    ("12,50", "not a decimal amount"),
]


@pytest.mark.parametrize(("text", "why"), BAD_AMOUNTS)
def test_bad_amount_text_is_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidAmount, match=why):
        parse_amount(text, allow_negative=True)


@pytest.mark.parametrize(
    ("number", "why"),
    [
        (float("nan"), "not a finite amount"),
        (float("inf"), "not a finite amount"),
        (1.234, "more than two decimal places"),
        (0.1 + 0.2, "more than two decimal places"),
        (1_000_000_000.01, "beyond the limit"),
        (1_000_000_001, "beyond the limit"),
    ],
)
def test_bad_amount_number_is_refused(number: float, why: str) -> None:
    with pytest.raises(InvalidAmount, match=why):
        from_float(number, allow_negative=True)


@pytest.mark.parametrize(
    "operation",
    [
        lambda s, r: credit.allocate_credit(
            s, partner_id=r.id, customer_uin=r.customer, amount=100_000_000_001, origin=OPS
        ),
        lambda s, r: credit.allocate_credit(
            s, partner_id=r.id, customer_uin=r.customer, amount=-100_000_000_001, origin=OPS
        ),
        lambda s, r: pools.grant(s, partner_id=r.id, amount=100_000_000_001, origin=OPS),
    ],
    ids=["allocate", "withdraw", "grant"],
)
def test_amount_beyond_the_limit_is_refused_by_the_core(
    engine: Engine, operation: Callable[[Session, Reseller], object]
) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    refused = assert_refused_changes_nothing(engine, lambda s: operation(s, acme), InvalidAmount)
    assert refused.code == "invalid_amount"


def _without(record: dict[str, object], field: str) -> dict[str, object]:
    return {k: v for k, v in record.items() if k != field}


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda uin: charge(uin, "1.234"), "more than two decimal places"),
        (lambda uin: charge(uin, "NaN"), "not a decimal amount"),
        (lambda uin: charge(uin, "1.00") | {"list_amount": float("nan")}, "not a finite amount"),
        (lambda uin: charge(uin, "1.00") | {"list_amount": float("inf")}, "not a finite amount"),
        (lambda uin: charge(uin, "1000000000.01"), "beyond the limit"),
        (lambda uin: charge(uin, "-5.00"), "must not be negative"),
        (lambda uin: charge(uin, "5.00", "-1.00"), "must not be negative"),
        (lambda uin: charge(uin, "5.00", "5.01"), "above list_amount"),
        (lambda uin: charge(uin, "5.00", occurred_at="yesterday"), "not an ISO 8601 time"),
        (lambda uin: charge(uin, "5.00", occurred_at="2026-13-01"), "not an ISO 8601 time"),
        (lambda uin: charge(uin, "5.00", kind="credit"), "kind must be charge or refund"),
        (lambda uin: charge(uin + 1000, "5.00"), "no customer"),
        (lambda uin: charge(0, "5.00"), "not a UIN"),
        (lambda uin: charge(uin, "5.00") | {"customer_uin": "abc"}, "not a UIN"),
        (lambda uin: _without(charge(uin, "5.00"), "event_id"), "missing event_id"),
        (lambda uin: _without(charge(uin, "5.00"), "customer_uin"), "missing customer_uin"),
        (lambda uin: _without(charge(uin, "5.00"), "list_amount"), "missing list_amount"),
        (lambda uin: _without(charge(uin, "5.00"), "voucher_amount"), "missing voucher_amount"),
        (lambda uin: _without(charge(uin, "5.00"), "occurred_at"), "missing occurred_at"),
        (lambda uin: charge(uin, "5.00") | {"product": " "}, "missing product|product must"),
    ],
    ids=[
        "three-decimals",
        "nan-text",
        "nan-number",
        "infinity",
        "beyond-limit",
        "negative-list",
        "negative-voucher",
        "voucher-above-list",
        "bad-time-word",
        "bad-time-month",
        "bad-kind",
        "unknown-customer",
        "zero-uin",
        "text-uin",
        "missing-event-id",
        "missing-customer",
        "missing-list",
        "missing-voucher",
        "missing-time",
        "blank-product",
    ],
)
def test_bad_usage_record_is_refused_and_named(
    engine: Engine, make: Callable[[int], dict[str, object]], why: str
) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    good = charge(acme.customer, "1.00")
    refused = assert_refused_changes_nothing(
        engine, lambda s: post_usage(s, good, make(acme.customer)), InvalidBatch
    )
    assert isinstance(refused, InvalidBatch)
    [error] = refused.errors
    assert error.line == 2
    assert re.search(why, error.message), error.message
    assert balance(engine, acme.id, acme.customer) == (100_00, 0, 100_00)


def test_every_refusal_is_a_creditline_error_with_a_stable_code() -> None:
    with pytest.raises(CreditlineError) as refused:
        parse_amount("0.001")
    assert (refused.value.code, refused.value.kind, refused.value.param) == (
        "invalid_amount",
        "invalid",
        "amount",
    )

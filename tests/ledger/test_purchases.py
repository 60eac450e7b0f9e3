"""The purchase policies, as issue 17 states them: a few lines of input, the answer."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from creditline.db import transaction
from creditline.db.tables import PurchaseCheck
from creditline.errors import InvalidAmount, InvalidInput, NotFound
from creditline.ledger import accounts, credit, pools, purchases
from creditline.ledger.records import Origin

SETUP = Origin(operator="setup", source="cli")


@pytest.mark.parametrize(
    ("policy", "tolerance", "available", "amount", "answer", "reason"),
    [
        ("notify_only", 0, 0, 1, "allowed", "not_restricted"),
        ("notify_only", 0, -500_00, 10_000_00, "allowed", "not_restricted"),
        ("block_all", 0, 1_000_00, 1, "refused", "on_hold"),
        ("block_at_limit", 0, 50_00, 50_00, "allowed", "within_limit"),  # ends at 0.00
        ("block_at_limit", 0, 50_00, 50_01, "refused", "below_limit"),
        ("block_at_limit", 10_00, 50_00, 60_00, "allowed", "within_limit"),  # at -10.00
        ("block_at_limit", 10_00, 50_00, 60_01, "refused", "below_limit"),
        ("block_at_limit", 0, -1, 1, "refused", "below_limit"),  # already negative
        ("block_at_limit", 5_00, -5_00, 1, "refused", "below_limit"),  # already at the limit
        ("block_at_limit", 5_00, -4_99, 1, "allowed", "within_limit"),
    ],
)
def test_the_rule(
    policy: str, tolerance: int, available: int, amount: int, answer: str, reason: str
) -> None:
    verdict = purchases.decide(
        policy=policy, tolerance=tolerance, available=available, amount=amount
    )
    assert (verdict.answer, verdict.reason) == (answer, reason)


def _customer(engine: Engine, credit_cents: int) -> tuple[int, int]:
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="P", kind="reseller")
        pools.grant(s, partner_id=partner.id, amount=10**8, origin=SETUP)
        uin = accounts.create_customer(s, partner_id=partner.id, name="C").uin
        if credit_cents:
            credit.allocate_credit(
                s, partner_id=partner.id, customer_uin=uin, amount=credit_cents, origin=SETUP
            )
        return partner.id, uin


def test_own_policy_default_and_tolerance_whose_each_is(engine: Engine) -> None:
    partner_id, uin = _customer(engine, 20_00)
    with transaction(engine) as s:
        assert purchases.customer_policy(s, partner_id, uin) == purchases.CustomerPolicy(
            uin, "notify_only", 0, own=False, own_tolerance=False
        )
        purchases.set_partner_default(
            s, partner_id=partner_id, policy="block_at_limit", tolerance=3_00
        )
        purchases.set_customer_policy(s, partner_id=partner_id, uin=uin, policy="block_all")
        assert purchases.customer_policy(s, partner_id, uin).tolerance == 3_00
        refused = purchases.check(
            s, partner_id=partner_id, customer_uin=uin, amount=1, requested_by="t"
        )
        assert (refused.answer, refused.policy) == ("refused", "block_all")
        purchases.set_customer_policy(
            s, partner_id=partner_id, uin=uin, policy="block_at_limit", tolerance=0
        )
        edge = purchases.check(
            s, partner_id=partner_id, customer_uin=uin, amount=20_01, requested_by="t"
        )
        assert (edge.answer, edge.tolerance, edge.available_after) == ("refused", 0, -1)
        purchases.set_customer_policy(s, partner_id=partner_id, uin=uin, policy=None)
        back = purchases.check(
            s, partner_id=partner_id, customer_uin=uin, amount=23_00, requested_by="t"
        )
        assert (back.answer, back.policy, back.tolerance) == ("allowed", "block_at_limit", 3_00)
        assert purchases.policies_of(s, partner_id, [uin])[uin].own is False


def test_refusals_keep_nothing(engine: Engine) -> None:
    partner_id, uin = _customer(engine, 0)
    other_id, _ = _customer(engine, 0)
    bad_calls: list[tuple[type[Exception], dict[str, Any]]] = [
        (InvalidAmount, {"amount": 0}),
        (InvalidAmount, {"amount": -1}),
        (InvalidAmount, {"amount": 100_000_000_001}),
        (InvalidInput, {"amount": 1, "product": "x" * 101}),
        (InvalidInput, {"amount": 1, "product": "bad\nname"}),
        (NotFound, {"amount": 1, "partner_id": other_id}),
        (NotFound, {"amount": 1, "customer_uin": 999_999_999_999}),
    ]
    for error, given in bad_calls:
        call = {"partner_id": partner_id, "customer_uin": uin, "requested_by": "t", **given}
        with pytest.raises(error), transaction(engine) as s:
            purchases.check(s, **call)
    with pytest.raises(InvalidInput), transaction(engine) as s:
        purchases.set_partner_default(s, partner_id=partner_id, policy="block_some")
    with pytest.raises(InvalidAmount), transaction(engine) as s:
        purchases.set_partner_default(s, partner_id=partner_id, policy="block_all", tolerance=-1)
    with pytest.raises(NotFound), transaction(engine) as s:
        purchases.set_customer_policy(s, partner_id=other_id, uin=uin, policy="block_all")
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(PurchaseCheck)) == 0
        assert purchases.partner_default(s, partner_id).policy == "notify_only"

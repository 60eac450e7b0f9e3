"""Customer credit (DESIGN §2): allocate needs amount <= pool remaining; withdraw needs
|amount| <= max(available, 0) and returns to the pool; 0 is invalid; a refusal changes
nothing; consumption may pass the credit."""

from __future__ import annotations

from sqlalchemy import Engine
from tests.ledger.scenario import (
    OPS,
    allocate,
    assert_refused_changes_nothing,
    balance,
    charge,
    ingest,
    pool,
    reseller,
)

from creditline.db import transaction
from creditline.errors import InsufficientCredit, InsufficientPool, InvalidAmount, NotFound
from creditline.ledger import accounts, credit
from creditline.ledger.verify import verify


def test_allocation_takes_from_the_pool(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00)
    change = allocate(engine, acme.id, acme.customer, 250_00)
    assert (change.total_credit, change.available, change.pool.remaining) == (
        250_00,
        250_00,
        750_00,
    )
    assert balance(engine, acme.id, acme.customer) == (250_00, 0, 250_00)
    assert pool(engine, acme.id) == (1_000_00, 250_00, 750_00)


def test_allocation_of_exactly_the_remaining_pool(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(400_00, 0))
    allocate(engine, acme.id, acme.customers[1], 600_00)
    assert pool(engine, acme.id) == (1_000_00, 1_000_00, 0)


def test_allocation_beyond_the_pool_is_refused(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(400_00, 0))
    refused = assert_refused_changes_nothing(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customers[1], amount=600_01, origin=OPS
        ),
        InsufficientPool,
    )
    assert "600.00 remaining" in refused.message


def test_withdrawal_returns_credit_to_the_pool(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(400_00,))
    ingest(engine, charge(acme.customer, "100.00"))
    change = allocate(engine, acme.id, acme.customer, -300_00)
    assert (change.total_credit, change.consumed, change.available) == (100_00, 100_00, 0)
    assert pool(engine, acme.id) == (1_000_00, 100_00, 900_00)


def test_withdrawal_beyond_available_is_refused(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(400_00,))
    ingest(engine, charge(acme.customer, "100.00"))
    refused = assert_refused_changes_nothing(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customer, amount=-300_01, origin=OPS
        ),
        InsufficientCredit,
    )
    assert "at most 300.00 withdrawable" in refused.message


def test_nothing_can_be_withdrawn_when_available_is_negative(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    ingest(engine, charge(acme.customer, "150.00"))
    assert balance(engine, acme.id, acme.customer) == (100_00, 150_00, -50_00)
    assert credit.max_withdrawable(100_00, 150_00) == 0
    assert_refused_changes_nothing(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customer, amount=-1, origin=OPS
        ),
        InsufficientCredit,
    )


def test_withdrawal_never_takes_total_credit_below_zero_after_refunds(engine: Engine) -> None:
    # A refund with no matching charge makes consumed negative and available exceed the
    # total credit; the total credit still may not go below zero. (Found by this test:
    # the core used to crash on the pool's CHECK constraint instead of refusing.)
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    ingest(engine, charge(acme.customer, "50.00", kind="refund"))
    assert balance(engine, acme.id, acme.customer) == (100_00, -50_00, 150_00)
    assert credit.max_withdrawable(100_00, -50_00) == 100_00
    assert_refused_changes_nothing(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customer, amount=-100_01, origin=OPS
        ),
        InsufficientCredit,
    )
    allocate(engine, acme.id, acme.customer, -100_00)
    assert balance(engine, acme.id, acme.customer) == (0, -50_00, 50_00)


def test_amount_zero_is_invalid(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    assert_refused_changes_nothing(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customer, amount=0, origin=OPS
        ),
        InvalidAmount,
    )


def test_another_partners_customer_looks_missing(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    rival = reseller(engine, pool=1_000_00)
    refused = assert_refused_changes_nothing(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=rival.id, customer_uin=acme.customer, amount=10_00, origin=OPS
        ),
        NotFound,
    )
    assert refused.message == f"no customer {acme.customer}"


def test_a_missing_customer_is_not_found_whatever_the_amount(engine: Engine) -> None:
    # The guarded UPDATEs run before anyone asks whether the customer exists: a pool too
    # small, an amount the pool could give, a withdrawal, another partner's customer whose
    # credit would allow it — each answers NotFound and leaves the pool as it was.
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    rival = reseller(engine, pool=1_000_00, credits=(100_00,))
    for uin, amount in (
        (999_999_999_999, 10_00),
        (999_999_999_999, 5_000_00),
        (999_999_999_999, -10_00),
        (rival.customer, 10_00),
        (rival.customer, -10_00),
        (rival.customer, 5_000_00),
    ):
        refused = assert_refused_changes_nothing(
            engine,
            lambda s, uin=uin, amount=amount: credit.allocate_credit(
                s, partner_id=acme.id, customer_uin=uin, amount=amount, origin=OPS
            ),
            NotFound,
        )
        assert refused.message == f"no customer {uin}"
    assert pool(engine, acme.id) == (1_000_00, 100_00, 900_00)
    assert balance(engine, rival.id, rival.customer) == (100_00, 0, 100_00)


def test_the_change_carries_the_customer_as_left(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    change = allocate(engine, acme.id, acme.customer, 50_00)
    assert (change.customer.uin, change.customer.total_credit) == (acme.customer, 150_00)
    assert change.customer.total_credit - change.customer.consumed == change.available


def test_consumption_may_pass_the_credit(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00,))
    result = ingest(engine, charge(acme.customer, "250.00"), charge(acme.customer, "40.00"))
    assert result.accepted == 2
    assert balance(engine, acme.id, acme.customer) == (100_00, 290_00, -190_00)
    # Not suspended or restricted: more usage is still counted, allocation still works.
    ingest(engine, charge(acme.customer, "10.00"))
    allocate(engine, acme.id, acme.customer, 500_00)
    assert balance(engine, acme.id, acme.customer) == (600_00, 300_00, 300_00)


def test_a_batch_is_all_or_nothing_and_names_every_refusal(engine: Engine) -> None:
    shop = reseller(engine, pool=10_000, credits=(0, 0))
    first, second = shop.customers
    items = [
        credit.BatchItem(1, first, 3_000),
        credit.BatchItem(2, second, 20_000),  # beyond the pool
        credit.BatchItem(3, first, -3_000),  # sees line 1's allocation
        credit.BatchItem(4, second, -1),  # nothing to withdraw
    ]
    with transaction(engine) as s:
        outcome = credit.allocate_batch(s, partner_id=shop.id, items=items, origin=OPS)
    assert [e.line for e in outcome.errors] == [2, 4]
    assert sorted(outcome.changes) == [1, 3] and not outcome.applied
    with transaction(engine) as s:
        assert accounts.pool_state(s, shop.id).remaining == 10_000


def test_a_batch_preview_changes_nothing_and_an_accepted_batch_applies(engine: Engine) -> None:
    shop = reseller(engine, pool=10_000, credits=(0, 0))
    items = [credit.BatchItem(n, uin, 2_000) for n, uin in enumerate(shop.customers, 1)]
    with transaction(engine) as s:
        preview = credit.allocate_batch(s, partner_id=shop.id, items=items, origin=OPS, apply=False)
        assert preview.changes[2].pool.remaining == 6_000 and not preview.applied
        assert accounts.pool_state(s, shop.id).remaining == 10_000
        applied = credit.allocate_batch(s, partner_id=shop.id, items=items, origin=OPS)
        assert applied.applied and not applied.errors
    with transaction(engine) as s:
        assert accounts.pool_state(s, shop.id).remaining == 6_000
        assert verify(s) == []


def test_refusals_show_amounts_as_people_read_them(engine: Engine) -> None:
    """Messages carry thousands separators (``2,950.66``), as the console shows amounts."""
    acme = reseller(engine, pool=5_000_00, credits=(2_049_34, 0))
    beyond_pool = assert_refused_changes_nothing(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customers[1], amount=3_000_00, origin=OPS
        ),
        InsufficientPool,
    )
    assert beyond_pool.message == "the pool has 2,950.66 remaining; cannot allocate 3,000.00"
    beyond_credit = assert_refused_changes_nothing(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customers[0], amount=-2_500_00, origin=OPS
        ),
        InsufficientCredit,
    )
    assert beyond_credit.message == (
        f"customer {acme.customers[0]} has at most 2,049.34 withdrawable; cannot withdraw 2,500.00"
    )

"""Taking back (DESIGN §2): each party takes back only what it gave, and only what is left.

- A partner withdraws from a customer at most ``max(available, 0)`` of its credit.
- A distributor takes back from its sub-reseller at most what it has given that
  sub-reseller, net, and at most the sub-reseller's remaining.
- The platform reduces a pool down to its remaining, and a sub-reseller's only by what
  the platform itself granted it: what the distributor gave is the distributor's.

Every refusal is the rule's error (never a database constraint) and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from tests.ledger.scenario import OPS, allocate, assert_refused_changes_nothing, balance, pool

from creditline.db import transaction
from creditline.errors import InsufficientCredit, InsufficientPool
from creditline.ledger import accounts, credit, pools
from creditline.ledger.verify import verify

# --- a customer's credit ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("allocated", "withdraw"),
    [(100_00, 100_01), (200_00, 200_01), (10_00, 50_00), (30_00, 50_00)],
    ids=["one-cent-beyond", "one-cent-beyond-larger", "far-beyond", "far-beyond-larger"],
)
def test_withdrawing_beyond_everything_the_pool_has_allocated(
    engine: Engine, allocated: int, withdraw: int
) -> None:
    """All the pool has allocated is this one customer's credit; withdrawing more is too
    much to withdraw (it once broke the pool's CHECK constraint instead)."""
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller").id
        customer = accounts.create_customer(s, partner_id=partner, name="Cust").uin
        pools.grant(s, partner_id=partner, amount=1_000_00, origin=OPS)
    allocate(engine, partner, customer, allocated)

    refused = assert_refused_changes_nothing(
        engine,
        lambda s: allocate_in(s, partner, customer, -withdraw),
        InsufficientCredit,
    )
    shown = f"{allocated // 100}.{allocated % 100:02d}"
    assert f"at most {shown} withdrawable" in refused.message
    assert pool(engine, partner)[1] == allocated
    assert balance(engine, partner, customer)[0] == allocated
    assert_verified(engine)


# --- a distributor's pool allocations ----------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """A distributor, its sub-reseller, and a customer of the distributor."""

    distributor: int
    sub: int
    customer: int


def chain(engine: Engine, *, granted: int) -> Chain:
    with transaction(engine) as s:
        d = accounts.create_partner(s, name="North", kind="distributor").id
        sub = accounts.create_partner(s, name="Harbor", kind="sub-reseller", parent_id=d).id
        customer = accounts.create_customer(s, partner_id=d, name="North's customer").uin
        pools.grant(s, partner_id=d, amount=granted, origin=OPS)
    return Chain(d, sub, customer)


def give(engine: Engine, c: Chain, amount: int) -> pools.PoolChange:
    """The distributor gives (negative: takes back) pool to its sub-reseller."""
    with transaction(engine) as s:
        return pools.allocate_pool(
            s, distributor_id=c.distributor, sub_reseller_id=c.sub, amount=amount, origin=OPS
        )


def grant(engine: Engine, partner: int, amount: int) -> pools.PoolChange:
    """The platform grants (negative: reduces) a partner's pool."""
    with transaction(engine) as s:
        return pools.grant(s, partner_id=partner, amount=amount, origin=OPS)


def test_the_reproduced_case_take_back_beyond_what_was_given(engine: Engine) -> None:
    """Issue 12: the platform grants D 10,000; D allocates 5,000 to a customer; the
    platform grants D's sub-reseller S 5,000 directly; D gives S 1,000 and then tries to
    take back 4,000. It was answered, leaving D with 2,000 allocated while its customer
    held 5,000 (which it could then no longer withdraw)."""
    c = chain(engine, granted=10_000_00)
    allocate(engine, c.distributor, c.customer, 5_000_00)
    grant(engine, c.sub, 5_000_00)
    give(engine, c, 1_000_00)

    refused = assert_refused_changes_nothing(
        engine,
        lambda s: pools.allocate_pool(
            s, distributor_id=c.distributor, sub_reseller_id=c.sub, amount=-4_000_00, origin=OPS
        ),
        InsufficientPool,
    )
    assert "has given it 1,000.00" in refused.message
    assert pool(engine, c.distributor) == (10_000_00, 6_000_00, 4_000_00)
    assert pool(engine, c.sub) == (6_000_00, 0, 6_000_00)

    # What it gave, it takes back; its customer still withdraws its own credit.
    taken = give(engine, c, -1_000_00)
    assert (taken.pool.total, taken.pool.remaining) == (5_000_00, 5_000_00)
    allocate(engine, c.distributor, c.customer, -5_000_00)
    assert pool(engine, c.distributor) == (10_000_00, 0, 10_000_00)
    assert given(engine, c.sub) == 0
    assert_verified(engine)


@pytest.mark.parametrize(
    ("gave", "take_back"), [(5_00, 5_01), (10_00, 50_00)], ids=["one-cent-beyond", "far-beyond"]
)
def test_taking_back_beyond_what_was_given(engine: Engine, gave: int, take_back: int) -> None:
    c = chain(engine, granted=1_000_00)
    give(engine, c, gave)
    assert_refused_changes_nothing(
        engine,
        lambda s: pools.allocate_pool(
            s, distributor_id=c.distributor, sub_reseller_id=c.sub, amount=-take_back, origin=OPS
        ),
        InsufficientPool,
    )
    assert pool(engine, c.distributor)[1] == gave
    assert pool(engine, c.sub)[0] == gave
    assert_verified(engine)


def test_taking_back_from_a_sub_reseller_never_given_anything(engine: Engine) -> None:
    # Found by the stateful test: the distributor's allocated went below zero and the
    # CHECK constraint failed instead of a refusal.
    c = chain(engine, granted=1_000_00)
    assert_refused_changes_nothing(
        engine,
        lambda s: pools.allocate_pool(
            s, distributor_id=c.distributor, sub_reseller_id=c.sub, amount=-1, origin=OPS
        ),
        InsufficientPool,
    )
    assert pool(engine, c.sub) == (0, 0, 0)


def test_taking_back_only_what_the_sub_reseller_has_remaining(engine: Engine) -> None:
    """Given 700.00, of which the sub-reseller allocated 500.00 to a customer: 200.00 can
    come back, not a cent more, though 700.00 was given."""
    c = chain(engine, granted=1_000_00)
    give(engine, c, 700_00)
    with transaction(engine) as s:
        customer = accounts.create_customer(s, partner_id=c.sub, name="Harbor's customer").uin
    allocate(engine, c.sub, customer, 500_00)

    refused = assert_refused_changes_nothing(
        engine,
        lambda s: pools.allocate_pool(
            s, distributor_id=c.distributor, sub_reseller_id=c.sub, amount=-200_01, origin=OPS
        ),
        InsufficientPool,
    )
    assert "200.00 remaining" in refused.message
    give(engine, c, -200_00)
    assert pool(engine, c.sub) == (500_00, 500_00, 0)
    assert pool(engine, c.distributor) == (1_000_00, 500_00, 500_00)
    assert given(engine, c.sub) == 500_00
    assert_verified(engine)


def test_the_platforms_grant_to_a_sub_reseller_is_not_the_distributors(engine: Engine) -> None:
    """The platform granted 300.00 directly and the distributor gave 100.00: the
    distributor takes back its 100.00 and no more, though 400.00 remains."""
    c = chain(engine, granted=1_000_00)
    grant(engine, c.sub, 300_00)
    give(engine, c, 100_00)
    assert_refused_changes_nothing(
        engine,
        lambda s: pools.allocate_pool(
            s, distributor_id=c.distributor, sub_reseller_id=c.sub, amount=-100_01, origin=OPS
        ),
        InsufficientPool,
    )
    give(engine, c, -100_00)
    assert pool(engine, c.sub) == (300_00, 0, 300_00)
    assert pool(engine, c.distributor) == (1_000_00, 0, 1_000_00)
    assert_verified(engine)


def test_the_platform_reduces_only_what_it_granted_a_sub_reseller(engine: Engine) -> None:
    """The mirror of the distributor's rule: the platform granted 300.00 and the
    distributor gave 100.00, so the platform may reduce by 300.00, not by 300.01 (which
    would take the distributor's 100.00 out of its reach for good)."""
    c = chain(engine, granted=1_000_00)
    grant(engine, c.sub, 300_00)
    give(engine, c, 100_00)
    refused = assert_refused_changes_nothing(
        engine,
        lambda s: pools.grant(s, partner_id=c.sub, amount=-300_01, origin=OPS),
        InsufficientPool,
    )
    assert "platform has granted it 300.00" in refused.message
    grant(engine, c.sub, -300_00)
    assert pool(engine, c.sub) == (100_00, 0, 100_00)
    assert given(engine, c.sub) == 100_00
    give(engine, c, -100_00)
    assert pool(engine, c.distributor) == (1_000_00, 0, 1_000_00)
    assert_verified(engine)


# --- small helpers ---------------------------------------------------------------------


def allocate_in(s: Session, partner: int, customer: int, amount: int) -> credit.CreditChange:
    return credit.allocate_credit(
        s, partner_id=partner, customer_uin=customer, amount=amount, origin=OPS
    )


def given(engine: Engine, sub: int) -> int:
    """What the sub-reseller's distributor has given it, net, as stored."""
    with transaction(engine) as s:
        return accounts.get_partner(s, sub).pool_from_distributor


def assert_verified(engine: Engine) -> None:
    with transaction(engine) as s:
        assert [m.describe() for m in verify(s)] == []

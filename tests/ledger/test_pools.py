"""Pools (DESIGN §2): total is the sum of grants, remaining = total - allocated, and a
reduction goes only down to remaining — for the platform's grants and for a distributor's
pool allocations to its second-level resellers alike. Who may take back what is
``test_taking_back.py``."""

from __future__ import annotations

from sqlalchemy import Engine
from tests.ledger.scenario import OPS, assert_refused_changes_nothing, pool, reseller

from creditline.db import transaction
from creditline.errors import InsufficientPool, InvalidAmount, NotFound
from creditline.ledger import accounts, pools


def test_pool_total_allocated_and_remaining(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(300_00, 150_00))
    with transaction(engine) as s:
        pools.grant(s, partner_id=acme.id, amount=500_00, origin=OPS)
    assert pool(engine, acme.id) == (1_500_00, 450_00, 1_050_00)


def test_negative_grant_reduces_down_to_remaining(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(600_00,))
    with transaction(engine) as s:
        change = pools.grant(s, partner_id=acme.id, amount=-400_00, origin=OPS)
    assert (change.pool.total, change.pool.remaining) == (600_00, 0)
    assert pool(engine, acme.id) == (600_00, 600_00, 0)


def test_negative_grant_below_remaining_is_refused(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(600_00,))
    refused = assert_refused_changes_nothing(
        engine,
        lambda s: pools.grant(s, partner_id=acme.id, amount=-400_01, origin=OPS),
        InsufficientPool,
    )
    assert "400.00 remaining" in refused.message
    assert pool(engine, acme.id) == (1_000_00, 600_00, 400_00)


def test_pool_refusals_show_amounts_as_people_read_them(engine: Engine) -> None:
    acme = reseller(engine, pool=5_000_00, credits=(2_049_34,))
    refused = assert_refused_changes_nothing(
        engine,
        lambda s: pools.grant(s, partner_id=acme.id, amount=-3_000_00, origin=OPS),
        InsufficientPool,
    )
    assert refused.message == (
        f"partner {acme.id} has 2,950.66 remaining; its pool cannot be reduced by 3,000.00"
    )


def test_zero_grant_is_invalid(engine: Engine) -> None:
    acme = reseller(engine, pool=100_00)
    assert_refused_changes_nothing(
        engine, lambda s: pools.grant(s, partner_id=acme.id, amount=0, origin=OPS), InvalidAmount
    )


def _distributor_with_sub(engine: Engine, pool_cents: int) -> tuple[int, int]:
    with transaction(engine) as s:
        distributor = accounts.create_partner(s, name="Dist", kind="distributor")
        sub = accounts.create_partner(s, name="Sub", kind="sub-reseller", parent_id=distributor.id)
        pools.grant(s, partner_id=distributor.id, amount=pool_cents, origin=OPS)
        return distributor.id, sub.id


def test_pool_allocation_moves_pool_to_sub_reseller(engine: Engine) -> None:
    distributor, sub = _distributor_with_sub(engine, 1_000_00)
    with transaction(engine) as s:
        change = pools.allocate_pool(
            s, distributor_id=distributor, sub_reseller_id=sub, amount=700_00, origin=OPS
        )
    assert (change.pool.total, change.pool.remaining) == (700_00, 700_00)
    assert pool(engine, distributor) == (1_000_00, 700_00, 300_00)
    assert pool(engine, sub) == (700_00, 0, 700_00)


def test_pool_allocation_beyond_distributor_remaining_is_refused(engine: Engine) -> None:
    distributor, sub = _distributor_with_sub(engine, 1_000_00)
    assert_refused_changes_nothing(
        engine,
        lambda s: pools.allocate_pool(
            s, distributor_id=distributor, sub_reseller_id=sub, amount=1_000_01, origin=OPS
        ),
        InsufficientPool,
    )


def test_another_distributors_sub_reseller_looks_missing(engine: Engine) -> None:
    distributor, sub = _distributor_with_sub(engine, 1_000_00)
    other, _ = _distributor_with_sub(engine, 1_000_00)
    refused = assert_refused_changes_nothing(
        engine,
        lambda s: pools.allocate_pool(
            s, distributor_id=other, sub_reseller_id=sub, amount=100_00, origin=OPS
        ),
        NotFound,
    )
    assert refused.code == "not_found"
    del distributor

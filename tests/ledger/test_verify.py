"""Conservation (DESIGN §2): ``verify`` is clean after normal operations and names each
balance changed behind the core's back."""

from __future__ import annotations

from sqlalchemy import Engine, insert, text
from tests.ledger.scenario import OPS, allocate, charge, ingest, post_usage

from creditline.clock import utcnow
from creditline.db import transaction
from creditline.db.tables import AllocationRecord
from creditline.ledger import accounts, credit, pools
from creditline.ledger.verify import verify


def _busy_ledger(engine: Engine) -> tuple[int, int, int]:
    """A distributor, its sub-reseller and customers of both, after a little of everything."""
    with transaction(engine) as s:
        dist = accounts.create_partner(s, name="Dist", kind="distributor").id
        sub = accounts.create_partner(s, name="Sub", kind="sub-reseller", parent_id=dist).id
        pools.grant(s, partner_id=dist, amount=10_000_00, origin=OPS)
        pools.allocate_pool(
            s, distributor_id=dist, sub_reseller_id=sub, amount=3_000_00, origin=OPS
        )
        pools.allocate_pool(s, distributor_id=dist, sub_reseller_id=sub, amount=-500_00, origin=OPS)
        own = accounts.create_customer(s, partner_id=dist, name="Own").uin
        subs = accounts.create_customer(s, partner_id=sub, name="Sub's").uin
    allocate(engine, dist, own, 1_000_00)
    allocate(engine, sub, subs, 2_000_00)
    ingest(engine, charge(own, "900.00", "100.00"), charge(subs, "10.00"))
    ingest(engine, charge(own, "20.00", kind="refund"))
    allocate(engine, dist, own, -200_00)
    allocate(engine, sub, subs, -1_000_00)
    return dist, sub, subs


def test_verify_is_clean_after_normal_operations(engine: Engine) -> None:
    _busy_ledger(engine)
    with transaction(engine) as s:
        assert verify(s) == []


def test_verify_is_clean_inside_the_transaction_that_made_the_changes(engine: Engine) -> None:
    # Found by this test: verify read balances from the session's identity map, stale
    # after the core's Core UPDATEs, and reported mismatches that did not exist.
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller")
        customer = accounts.create_customer(s, partner_id=partner.id, name="C")
        pools.grant(s, partner_id=partner.id, amount=100_00, origin=OPS)
        credit.allocate_credit(
            s, partner_id=partner.id, customer_uin=customer.uin, amount=50_00, origin=OPS
        )
        post_usage(s, charge(customer.uin, "40.00"))
        assert verify(s) == []


def test_platform_grant_to_a_sub_reseller_keeps_the_ledger_conserved(engine: Engine) -> None:
    # Found by the stateful test: verify counted the sub-reseller's whole pool as given by
    # its distributor, so a direct platform grant to it showed as a mismatch.
    with transaction(engine) as s:
        dist = accounts.create_partner(s, name="Dist", kind="distributor").id
        sub = accounts.create_partner(s, name="Sub", kind="sub-reseller", parent_id=dist).id
        pools.grant(s, partner_id=dist, amount=1_000_00, origin=OPS)
        pools.allocate_pool(s, distributor_id=dist, sub_reseller_id=sub, amount=300_00, origin=OPS)
        pools.grant(s, partner_id=sub, amount=50_00, origin=OPS)
    with transaction(engine) as s:
        assert verify(s) == []
        assert accounts.pool_state(s, sub).total == 350_00
        assert accounts.pool_state(s, dist).allocated == 300_00


def test_verify_names_each_corrupted_balance(engine: Engine) -> None:
    dist, sub, subs = _busy_ledger(engine)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE partners SET pool_allocated = pool_allocated + 1 WHERE id = :id"),
            {"id": dist},
        )
        connection.execute(
            text("UPDATE partners SET pool_total = pool_total + 700 WHERE id = :id"), {"id": sub}
        )
        connection.execute(
            text(
                "UPDATE customers SET total_credit = total_credit - 5, consumed = 0 WHERE uin = :u"
            ),
            {"u": subs},
        )
    with transaction(engine) as s:
        found = [m.describe() for m in verify(s)]
    assert found == [
        f"partner {dist}: pool allocated is 3,300.01, its records say 3,300.00",
        f"partner {sub}: pool total is 2,507.00, its records say 2,500.00",
        f"partner {sub}: pool allocated is 1,000.00, its records say 999.95",
        f"customer {subs}: total credit is 999.95, its records say 1,000.00",
        f"customer {subs}: consumed is 0.00, its records say 10.00",
    ]


def test_verify_names_a_take_back_beyond_what_was_given(engine: Engine) -> None:
    """The reproduced case of issue 12, as the old take-back guard (bounded by the
    distributor's whole allocated) left it: verify found nothing, since the distributor's
    allocated still equalled its customers' credit plus its pool allocations. It now names
    the sub-reseller twice: the stored net disagrees with the records, and the records
    show a take-back beyond what was given."""
    with transaction(engine) as s:
        dist = accounts.create_partner(s, name="Dist", kind="distributor").id
        sub = accounts.create_partner(s, name="Sub", kind="sub-reseller", parent_id=dist).id
        own = accounts.create_customer(s, partner_id=dist, name="Own").uin
        pools.grant(s, partner_id=dist, amount=10_000_00, origin=OPS)
        credit.allocate_credit(s, partner_id=dist, customer_uin=own, amount=5_000_00, origin=OPS)
        pools.grant(s, partner_id=sub, amount=5_000_00, origin=OPS)
        pools.allocate_pool(
            s, distributor_id=dist, sub_reseller_id=sub, amount=1_000_00, origin=OPS
        )
    # The take-back of 4,000.00 the old guard let through, written as it wrote it.
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE partners SET pool_allocated = pool_allocated - 400000 WHERE id = :d"),
            {"d": dist},
        )
        connection.execute(
            text("UPDATE partners SET pool_total = pool_total - 400000 WHERE id = :s"), {"s": sub}
        )
        record = connection.execute(
            insert(AllocationRecord.__table__)
            .values(
                partner_id=dist,
                kind="pool_allocation",
                sub_partner_id=sub,
                operator="ops",
                change=-4_000_00,
                total_after=2_000_00,
                available_after=2_000_00,
                remark="",
                source="cli",
                created_at=utcnow(),
            )
            .returning(AllocationRecord.__table__.c.id)
        ).scalar_one()
    with transaction(engine) as s:
        found = [m.describe() for m in verify(s)]
    assert found == [
        f"partner {sub}: pool given by its distributor is 1,000.00, its records say -3,000.00",
        f"partner {sub}: what distributor {dist} gave it, net, after record {record} is "
        f"-3,000.00; distributor {dist} took back more than it gave",
    ]


def test_verify_names_a_platform_reduction_of_what_a_distributor_gave(engine: Engine) -> None:
    with transaction(engine) as s:
        dist = accounts.create_partner(s, name="Dist", kind="distributor").id
        sub = accounts.create_partner(s, name="Sub", kind="sub-reseller", parent_id=dist).id
        pools.grant(s, partner_id=dist, amount=1_000_00, origin=OPS)
        pools.allocate_pool(s, distributor_id=dist, sub_reseller_id=sub, amount=300_00, origin=OPS)
    with engine.begin() as connection:
        record = connection.execute(
            insert(AllocationRecord.__table__)
            .values(
                partner_id=sub,
                kind="grant",
                operator="ops",
                change=-100_00,
                total_after=200_00,
                available_after=200_00,
                remark="",
                source="cli",
                created_at=utcnow(),
            )
            .returning(AllocationRecord.__table__.c.id)
        ).scalar_one()
    with transaction(engine) as s:
        found = [m.describe() for m in verify(s)]
    assert found == [
        f"partner {sub}: pool total is 300.00, its records say 200.00",
        f"partner {sub}: what the platform gave it, net, after record {record} is -100.00; "
        "the platform took back more than it gave",
    ]


def test_verify_names_daily_totals_that_disagree_with_the_events(engine: Engine) -> None:
    _, sub, subs = _busy_ledger(engine)
    with transaction(engine) as s:
        s.execute(
            text(
                "UPDATE usage_daily SET counted = counted + 1"
                " WHERE partner_id = :p AND customer_uin = :u"
            ),
            {"p": sub, "u": subs},
        )
    with transaction(engine) as s:
        found = [m.describe() for m in verify(s)]
    assert found == [f"customer {subs}: daily usage totals is 10.01, its records say 10.00"]

"""Conservation (DESIGN §2): ``verify`` is clean after normal operations and names each
balance changed behind the core's back."""

from __future__ import annotations

from sqlalchemy import Engine, text
from tests.ledger.scenario import OPS, allocate, charge, ingest, post_usage

from creditline.db import transaction
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

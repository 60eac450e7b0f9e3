from __future__ import annotations

import pytest
from sqlalchemy import Engine

from creditline.db import transaction
from creditline.errors import InsufficientCredit, InsufficientPool
from creditline.ledger import accounts, credit, pools
from creditline.ledger.records import Origin
from creditline.ledger.verify import verify


def test_withdrawing_more_than_the_pool_has_allocated_is_refused(engine: Engine) -> None:
    """The pool has 100.00 allocated, all to one customer; withdrawing 100.01 must be a
    refusal naming the customer's withdrawable credit, not a broken CHECK constraint."""
    op = Origin(operator="ops@example.com", source="cli")
    with transaction(engine) as s:
        p = accounts.create_partner(s, name="Acme", kind="reseller")
        c = accounts.create_customer(s, partner_id=p.id, name="Cust")
        pools.grant(s, partner_id=p.id, amount=100_000, origin=op)
        credit.allocate_credit(s, partner_id=p.id, customer_uin=c.uin, amount=10_000, origin=op)
    with transaction(engine) as s:
        with pytest.raises(InsufficientCredit, match=r"100\.00 withdrawable"):
            credit.allocate_credit(
                s, partner_id=p.id, customer_uin=c.uin, amount=-10_001, origin=op
            )
        assert accounts.pool_state(s, p.id).allocated == 10_000
        assert verify(s) == []


def test_taking_back_more_pool_than_was_passed_on_is_refused(engine: Engine) -> None:
    op = Origin(operator="ops@example.com", source="cli")
    with transaction(engine) as s:
        d = accounts.create_partner(s, name="Dist", kind="distributor")
        sub = accounts.create_partner(s, name="Sub", kind="sub-reseller", parent_id=d.id)
        pools.grant(s, partner_id=d.id, amount=100_000, origin=op)
        pools.allocate_pool(s, distributor_id=d.id, sub_reseller_id=sub.id, amount=500, origin=op)
    with transaction(engine) as s:
        with pytest.raises(InsufficientPool):
            pools.allocate_pool(
                s, distributor_id=d.id, sub_reseller_id=sub.id, amount=-501, origin=op
            )
        assert accounts.pool_state(s, d.id).allocated == 500
        assert verify(s) == []

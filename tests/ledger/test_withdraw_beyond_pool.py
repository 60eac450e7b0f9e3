from __future__ import annotations

import pytest
from sqlalchemy import Engine

from creditline.db import transaction
from creditline.errors import InsufficientCredit
from creditline.ledger import accounts, credit, pools
from creditline.ledger.records import Origin
from creditline.ledger.verify import verify


def test_withdrawing_more_than_the_pool_has_out_is_a_refusal(engine: Engine) -> None:
    """A withdrawal larger than everything the pool has allocated is refused as beyond the
    customer's credit (it once broke the pool's CHECK constraint instead)."""
    op = Origin(operator="ops", source="cli")
    with transaction(engine) as s:
        p = accounts.create_partner(s, name="Acme", kind="reseller")
        c = accounts.create_customer(s, partner_id=p.id, name="Cust")
        pools.grant(s, partner_id=p.id, amount=100_000, origin=op)
        credit.allocate_credit(s, partner_id=p.id, customer_uin=c.uin, amount=1_000, origin=op)
        with pytest.raises(InsufficientCredit, match=r"at most 10\.00 withdrawable"):
            credit.allocate_credit(s, partner_id=p.id, customer_uin=c.uin, amount=-5_000, origin=op)
        assert accounts.pool_state(s, p.id).allocated == 1_000
    with transaction(engine) as s:
        assert verify(s) == []

"""A withdrawal (or a pool taken back) larger than everything the partner has allocated is
a refusal like any other: the rule's error, nothing changed, not a database CHECK failure."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from creditline.db import transaction
from creditline.errors import InsufficientCredit, InsufficientPool
from creditline.ledger import accounts, credit, pools
from creditline.ledger.records import Origin
from creditline.ledger.verify import verify

OPS = Origin(operator="ops", source="cli")


def test_withdrawal_beyond_pool_allocated_is_insufficient_credit(engine: Engine) -> None:
    with transaction(engine) as s:
        p = accounts.create_partner(s, name="Acme", kind="reseller")
        c = accounts.create_customer(s, partner_id=p.id, name="C")
        pools.grant(s, partner_id=p.id, amount=10_000, origin=OPS)
        credit.allocate_credit(s, partner_id=p.id, customer_uin=c.uin, amount=3_000, origin=OPS)
        with pytest.raises(InsufficientCredit, match=r"at most 30\.00 withdrawable"):
            credit.allocate_credit(
                s, partner_id=p.id, customer_uin=c.uin, amount=-5_000, origin=OPS
            )
        assert accounts.pool_state(s, p.id).allocated == 3_000
        assert accounts.get_customer(s, p.id, c.uin).total_credit == 3_000
    with transaction(engine) as s:
        assert verify(s) == []


def test_pool_taken_back_beyond_what_was_passed_on_is_refused(engine: Engine) -> None:
    with transaction(engine) as s:
        d = accounts.create_partner(s, name="North", kind="distributor")
        sub = accounts.create_partner(s, name="Harbor", kind="sub-reseller", parent_id=d.id)
        pools.grant(s, partner_id=d.id, amount=10_000, origin=OPS)
        pools.allocate_pool(
            s, distributor_id=d.id, sub_reseller_id=sub.id, amount=1_000, origin=OPS
        )
        with pytest.raises(InsufficientPool, match=r"cannot be reduced by 50\.00"):
            pools.allocate_pool(
                s, distributor_id=d.id, sub_reseller_id=sub.id, amount=-5_000, origin=OPS
            )
        assert accounts.pool_state(s, d.id).allocated == 1_000
        assert accounts.pool_state(s, sub.id).total == 1_000
    with transaction(engine) as s:
        assert verify(s) == []

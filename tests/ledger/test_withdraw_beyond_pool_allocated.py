"""Withdrawing more than the partner has allocated in all is refused as too much to
withdraw (and changes nothing), not stopped by a database constraint."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from creditline.db import transaction
from creditline.errors import InsufficientCredit
from creditline.ledger import accounts, credit, pools
from creditline.ledger.records import Origin

OPERATOR = Origin(operator="ops@example.com", source="cli")


def test_withdraw_more_than_pool_allocated(engine: Engine) -> None:
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme", kind="reseller")
        customer = accounts.create_customer(s, partner_id=partner.id, name="Cust")
        pools.grant(s, partner_id=partner.id, amount=100_000, origin=OPERATOR)
        credit.allocate_credit(
            s, partner_id=partner.id, customer_uin=customer.uin, amount=20_000, origin=OPERATOR
        )
        with pytest.raises(InsufficientCredit) as refused:
            credit.allocate_credit(
                s, partner_id=partner.id, customer_uin=customer.uin, amount=-20_001, origin=OPERATOR
            )
        assert "at most 200.00 withdrawable" in refused.value.message
        assert accounts.pool_state(s, partner.id).allocated == 20_000
        assert accounts.get_customer(s, partner.id, customer.uin).total_credit == 20_000

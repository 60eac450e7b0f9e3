"""A distributor asking for a sub-reseller it does not have gets the same refusal whether
that partner is missing or belongs to another distributor."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from creditline.db import transaction
from creditline.errors import NotFound
from creditline.ledger import accounts, pools
from creditline.ledger.records import Origin

OPERATOR = Origin(operator="ops@example.com", source="cli")


def test_other_distributors_sub_reseller_answers_as_a_missing_one(engine: Engine) -> None:
    with transaction(engine) as s:
        mine = accounts.create_partner(s, name="Mine", kind="distributor")
        other = accounts.create_partner(s, name="Other", kind="distributor")
        theirs = accounts.create_partner(s, name="Theirs", kind="sub-reseller", parent_id=other.id)
        pools.grant(s, partner_id=mine.id, amount=10_000, origin=OPERATOR)
        answers = []
        for uin in (theirs.id, theirs.id + 1000):
            with pytest.raises(NotFound) as refused:
                pools.allocate_pool(
                    s, distributor_id=mine.id, sub_reseller_id=uin, amount=100, origin=OPERATOR
                )
            answers.append((refused.value.message.replace(str(uin), "<uin>"), refused.value.param))
        assert answers[0] == answers[1] == ("no sub-reseller <uin>", "sub_reseller")
        assert accounts.pool_state(s, mine.id).remaining == 10_000

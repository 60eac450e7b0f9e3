"""The purchase rule's SQL twin (``purchases.decide_sql`` and ``purchases.message_sql``),
which PostgreSQL's one-statement check decides and explains with: for any policy,
tolerance, available credit and price, the same answer, reason and message as the rule
itself (:func:`creditline.ledger.purchases.decide`, :attr:`Decision.message`) — as issue
17 states the rule: ``block_at_limit`` allows a purchase exactly at ``-tolerance``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Engine, String, bindparam, select
from sqlalchemy.sql.elements import ColumnElement

from creditline import money
from creditline.db import make_engine
from creditline.ledger import purchases

AMOUNT = st.integers(min_value=1, max_value=money.MAX_CENTS)
TOLERANCE = st.one_of(st.integers(min_value=0, max_value=money.MAX_CENTS), st.just(0))
AVAILABLE = st.one_of(
    st.integers(min_value=-(10**13), max_value=10**13), st.integers(min_value=-500, max_value=500)
)


@pytest.fixture(scope="module")
def pg(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


class _Decision:
    """A decision's columns as bound parameters, for :func:`purchases.message_sql`."""

    def __init__(self) -> None:
        self.amount: ColumnElement[int] = bindparam("amount", type_=BigInteger)
        self.tolerance: ColumnElement[int] = bindparam("tolerance", type_=BigInteger)
        self.available: ColumnElement[int] = bindparam("available", type_=BigInteger)
        self.answer: ColumnElement[str] = bindparam("answer", type_=String)
        self.reason: ColumnElement[str] = bindparam("reason", type_=String)


@settings(max_examples=400, deadline=None)
@given(
    policy=st.sampled_from(sorted(purchases.PURCHASE_POLICIES)),
    tolerance=TOLERANCE,
    available=AVAILABLE,
    amount=AMOUNT,
    near=st.integers(min_value=-2, max_value=2),
)
def test_the_sql_twin_decides_and_explains_as_the_rule(
    pg: Engine, policy: str, tolerance: int, available: int, amount: int, near: int
) -> None:
    if near:
        # On the limit's very edge (available after == -tolerance), and a cent or two off.
        amount = max(1, available + tolerance + near)
    verdict = purchases.decide(
        policy=policy, tolerance=tolerance, available=available, amount=amount
    )
    decided = purchases.Decision(
        id=1,
        partner_id=1,
        customer_uin=2,
        amount=amount,
        product="",
        policy=policy,
        tolerance=tolerance,
        available=available,
        answer=verdict.answer,
        reason=verdict.reason,
        requested_by="k",
        decided_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    params = {"policy": policy, "tolerance": tolerance, "available": available, "amount": amount}
    answer, reason = purchases.decide_sql(
        policy=bindparam("policy", type_=String),
        tolerance=bindparam("tolerance", type_=BigInteger),
        available=bindparam("available", type_=BigInteger),
        amount=bindparam("amount", type_=BigInteger),
    )
    message = purchases.message_sql(_Decision())
    with pg.connect() as connection:
        found = connection.execute(select(answer, reason), params).one()
        said = connection.scalar(
            select(message), {**params, "answer": verdict.answer, "reason": verdict.reason}
        )
    assert tuple(found) == (verdict.answer, verdict.reason)
    assert said == decided.message


def test_an_unknown_policy_decides_nothing(pg: Engine) -> None:
    answer, reason = purchases.decide_sql(
        policy=bindparam("policy", type_=String), tolerance=0, available=0, amount=1
    )
    with pg.connect() as connection:
        assert tuple(connection.execute(select(answer, reason), {"policy": "x"}).one()) == (
            None,
            None,
        )
    with pytest.raises(ValueError, match="unknown purchase policy"):
        purchases.decide(policy="x", tolerance=0, available=0, amount=1)

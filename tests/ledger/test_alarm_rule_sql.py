"""The alarm rule's SQL twin (``creditline_fired_after``, migration 0018), which
PostgreSQL's one-statement allocation uses as its guard and to re-arm: it answers NULL
exactly when the rule itself (:func:`creditline.ledger.alarms.decide`) raises an alarm,
and otherwise the fired list the rule leaves, for any list, credit, consumption and fired
list — as the rule is written in DESIGN §3, a threshold is reached once consumption is
positive and at least that percentage of the credit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, BigInteger, Engine, bindparam, select

from creditline.db import make_engine
from creditline.ledger import alarms

THRESHOLD = st.integers(min_value=1, max_value=1000)
AMOUNT = st.integers(min_value=-(10**12), max_value=10**12)


@pytest.fixture(scope="module")
def pg(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def _rule_leaves(
    thresholds: list[int] | None, default: list[int], total: int, consumed: int, fired: list[int]
) -> list[int] | None:
    """The fired list the rule leaves, or None when it raises an alarm."""
    credit = alarms.CustomerCredit(
        partner_id=1,
        uin=2,
        name="c",
        total_credit=total,
        consumed=consumed,
        thresholds=thresholds,
        fired=fired,
    )
    now = datetime(2026, 12, 1, tzinfo=UTC)
    decision = alarms.decide(credit, default=default, cause="allocation", now=now)
    if decision is None:
        return sorted(set(fired))
    return None if decision.alarm is not None else decision.fired


@settings(max_examples=400, deadline=None)
@given(
    own=st.one_of(st.none(), st.lists(THRESHOLD, max_size=10)),
    default=st.lists(THRESHOLD, max_size=10),
    total=AMOUNT,
    consumed=st.one_of(AMOUNT, st.integers(min_value=-5, max_value=5)),
    fired=st.lists(THRESHOLD, max_size=6, unique=True).map(sorted),
    near=st.booleans(),
)
def test_the_sql_twin_agrees_with_the_rule(
    pg: Engine,
    own: list[int] | None,
    default: list[int],
    total: int,
    consumed: int,
    fired: list[int],
    near: bool,
) -> None:
    if near and (own or default):
        # On a threshold's very edge (consumed * 100 == threshold * total), and around it.
        threshold = (own or default)[0]
        total = abs(total) or 100
        consumed = threshold * total // 100 + (consumed % 3) - 1
    effective = own if own is not None else default
    if near and effective:
        # A fired list the rule would keep, sometimes.
        fired = alarms.reached(effective, total_credit=total, consumed=consumed)
    query = select(
        alarms.fired_after_sql(
            thresholds=bindparam("effective", type_=JSON),
            total_credit=bindparam("total", type_=BigInteger),
            consumed=bindparam("consumed", type_=BigInteger),
            fired=bindparam("fired", type_=JSON),
        )
    )
    with pg.connect() as connection:
        left = connection.scalar(
            query,
            {"effective": effective, "total": total, "consumed": consumed, "fired": fired},
        )
    assert left == _rule_leaves(own, default, total, consumed, fired)

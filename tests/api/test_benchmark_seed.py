"""The benchmarks' bulk seed leaves the alarm rule's state as the ledger would: each
customer's fired thresholds are those its seeded consumption reaches (what ``verify``
checks), so that the loads measure allocations, not the repair of a state no write
leaves behind."""

from __future__ import annotations

from benchmarks import seed
from sqlalchemy import Engine, select

from creditline.db import transaction
from creditline.db.tables import Customer
from creditline.ledger.verify import verify


def test_seeded_customers_have_fired_what_they_reach(engine: Engine) -> None:
    # (The seed makes API keys: conftest.server_key gives PostgreSQL its server key.)
    seed.build_world(engine, partners=2, customers=40, credit=100_000)
    with transaction(engine) as session:
        wrong = [m for m in verify(session) if m.field == "fired thresholds"]
        fired = session.execute(select(Customer.fired_thresholds)).scalars().all()
    assert wrong == []
    # Every level is represented: the check is not passed by customers below every one.
    assert {tuple(f) for f in fired} == {(), (75,), (75, 90)}

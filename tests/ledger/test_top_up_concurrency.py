"""Automatic top-ups under concurrency (issue 16.5): 16 usage batches racing for one
customer make no more top-ups than its monthly cap allows, and alarm the refusal once;
batches racing for many customers of one short pool top up exactly as many as it holds;
usage batches that top up and allocations racing for the same customers never deadlock.

On PostgreSQL the writers run together (``tests/race.py``: each holds its transaction
open until every other has acted or waits for a lock, so a count-then-act race would
surely happen); SQLite runs them one after the other, its one writer at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import count

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from tests.ledger.scenario import OPS, balance, charge, pool, post_usage, reseller
from tests.race import run_together

from creditline.db import is_postgres, transaction
from creditline.db.tables import AllocationRecord, OutboxEvent, TopUpMonth
from creditline.ledger import credit, top_ups, usage
from creditline.ledger.outbox import TOP_UP_REFUSED
from creditline.ledger.verify import verify

RACERS = 16
_ids = count(1)


def _race(engine: Engine, writers: Sequence[Callable[[Session], object]]) -> list[object]:
    if is_postgres(engine):
        return run_together(engine, writers)
    results: list[object] = []
    for writer in writers:
        try:
            with transaction(engine) as s:
                results.append(writer(s))
        except Exception as exc:
            results.append(exc)
    return results


def _batch(uin: int, amount: str) -> Callable[[Session], usage.IngestResult]:
    event_id = f"race-{next(_ids)}"
    return lambda s: post_usage(s, charge(uin, amount, event_id=event_id))


def _rule_records(s: Session, partner_id: int) -> list[tuple[int | None, int]]:
    return [
        (uin, change)
        for uin, change in s.execute(
            select(AllocationRecord.customer_uin, AllocationRecord.change)
            .where(AllocationRecord.partner_id == partner_id, AllocationRecord.source == "rule")
            .order_by(AllocationRecord.id)
        ).tuples()
    ]


def test_the_monthly_cap_holds_with_16_racing_usage_batches(engine: Engine) -> None:
    acme = reseller(engine, pool=10_000_00, credits=(100_00,))
    with transaction(engine) as s:
        top_ups.set_partner_rule(
            s,
            partner_id=acme.id,
            rule=top_ups.check_rule(below=50_00, amount=100_00, monthly_cap=300_00),
        )
    # Every batch leaves the customer below 50.00 whatever came before it: each triggers.
    results = _race(engine, [_batch(acme.customer, "200.00") for _ in range(RACERS)])
    assert [r for r in results if isinstance(r, BaseException)] == []
    made = [t for r in results for t in r.top_ups]  # type: ignore[attr-defined]
    assert len(made) == RACERS
    assert sum(t.change is not None for t in made) == 3
    assert sum(t.refused == "monthly_cap" for t in made) == RACERS - 3
    assert sum(t.alarmed for t in made) == 1
    assert balance(engine, acme.id, acme.customer) == (400_00, 3_200_00, -2_800_00)
    assert pool(engine, acme.id) == (10_000_00, 400_00, 9_600_00)
    with transaction(engine) as s:
        assert _rule_records(s, acme.id) == [(acme.customer, 100_00)] * 3
        tally = s.execute(select(TopUpMonth)).scalar_one()
        assert (tally.topped_up, tally.top_ups, tally.refused) == (300_00, 3, "monthly_cap")
        refusals = s.execute(
            select(OutboxEvent.payload).where(OutboxEvent.type == TOP_UP_REFUSED)
        ).scalars()
        assert [p["reason"] for p in refusals] == ["monthly_cap"]
        assert verify(s) == []


def test_a_short_pool_serves_exactly_what_it_holds_to_racing_batches(engine: Engine) -> None:
    # 16 customers at 10.00 each: the pool keeps 5 top-ups of 100.00 (and 40.00 over).
    acme = reseller(engine, pool=RACERS * 10_00 + 540_00, credits=(10_00,) * RACERS)
    with transaction(engine) as s:
        top_ups.set_partner_rule(
            s,
            partner_id=acme.id,
            rule=top_ups.check_rule(below=50_00, amount=100_00, monthly_cap=1_000_00),
        )
    results = _race(engine, [_batch(uin, "5.00") for uin in acme.customers])
    assert [r for r in results if isinstance(r, BaseException)] == []
    made = [t for r in results for t in r.top_ups]  # type: ignore[attr-defined]
    assert sum(t.change is not None for t in made) == 5
    assert sum(t.refused == "pool_short" for t in made) == RACERS - 5
    assert pool(engine, acme.id)[2] == 40_00
    with transaction(engine) as s:
        assert len(_rule_records(s, acme.id)) == 5
        assert verify(s) == []


def test_top_ups_and_allocations_racing_for_the_same_customers_never_deadlock(
    engine: Engine,
) -> None:
    acme = reseller(engine, pool=10_000_00, credits=(100_00,) * 4)
    with transaction(engine) as s:
        top_ups.set_partner_rule(
            s,
            partner_id=acme.id,
            rule=top_ups.check_rule(below=50_00, amount=100_00, monthly_cap=10_000_00),
        )

    def allocation(uin: int) -> Callable[[Session], object]:
        return lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=uin, amount=1_00, origin=OPS
        )

    writers: list[Callable[[Session], object]] = []
    for n in range(RACERS // 2):
        uins = acme.customers[n % 4 :] + acme.customers[: n % 4]
        writers.append(lambda s, uins=uins: post_usage(s, *(charge(uin, "80.00") for uin in uins)))
        writers.append(allocation(acme.customers[-1 - n % 4]))
    results = _race(engine, writers)
    assert [r for r in results if isinstance(r, BaseException)] == []
    with transaction(engine) as s:
        assert verify(s) == []

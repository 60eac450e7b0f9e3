"""Concurrent usage batches that span partners and share event ids, posted in opposite
orders: each batch inserts its events before it locks its customers, and locks them
partner by partner in UIN order, so no batch waits on another in a cycle. Nothing may be
lost or counted twice, and no batch may fail (a deadlock would).

PostgreSQL runs 8 threads; SQLite (one writer at a time) runs a lighter variant."""

from __future__ import annotations

import random
import threading

from sqlalchemy import Engine, func, select
from tests.ledger.scenario import reseller

from creditline.db import is_postgres, transaction
from creditline.db.tables import Customer, UsageEvent
from creditline.ledger import usage
from creditline.ledger.verify import verify

BATCHES_PER_THREAD = 12
#: The shared pool of event ids the batches draw from (each batch repeats some of the
#: others' and brings new ones).
EVENT_IDS = 400


def _cents(event: int) -> int:
    """What event ``ev-<event>`` charges: always the same for one id."""
    return (1 + event % 7) * 100


def test_batches_across_partners_sharing_event_ids_neither_deadlock_nor_double_count(
    engine: Engine,
) -> None:
    threads = 8 if is_postgres(engine) else 3
    first = reseller(engine, credits=(0,) * 5)
    second = reseller(engine, credits=(0,) * 5)
    customers = first.customers + second.customers
    failures: list[BaseException] = []
    posted: set[int] = set()
    lock = threading.Lock()

    def work(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(BATCHES_PER_THREAD):
                # Event ids from a small shared pool: batches of other threads repeat them,
                # each id always for the same customer and amount (as the vendor's feed does).
                ids = rnd.sample(range(EVENT_IDS), 40)
                if seed % 2:
                    ids.reverse()  # half the threads post them in the opposite order
                raws = [
                    (
                        k + 1,
                        {
                            "event_id": f"ev-{i}",
                            "customer_uin": customers[i % len(customers)],
                            "product": "cvm",
                            "list_amount": f"{_cents(i) // 100}.00",
                            "voucher_amount": "0",
                            "occurred_at": "2026-03-01T00:00:00Z",
                        },
                    )
                    for k, i in enumerate(ids)
                ]
                with transaction(engine) as s:
                    usage.ingest(s, usage.parse_batch(raws))
                with lock:
                    posted.update(ids)
        except BaseException as exc:  # a deadlock or any other surprise fails the test
            with lock:
                failures.append(exc)

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert failures == []
    with transaction(engine) as s:
        assert verify(s) == []
        events = s.execute(
            select(UsageEvent.customer_uin, func.count(), func.sum(UsageEvent.counted)).group_by(
                UsageEvent.customer_uin
            )
        ).all()
        seen = {uin: (count, total) for uin, count, total in events}
        for uin in customers:
            ids = [i for i in posted if customers[i % len(customers)] == uin]
            # Each event id posted is stored and counted once, however many batches
            # carried it; the consumption is exactly what was counted.
            if ids:
                assert seen[uin] == (len(ids), sum(_cents(i) for i in ids))
            else:
                assert uin not in seen
            consumed = s.execute(select(Customer.consumed).where(Customer.uin == uin)).scalar_one()
            assert consumed == sum(_cents(i) for i in ids)

"""Concurrent writers against one partner's pool: many threads, each with its own
transactions, allocating, withdrawing and posting usage for the same customers. Nothing
may be lost or double-counted, no deadlock, no balance below zero.

PostgreSQL runs 16 threads; SQLite (one writer at a time) runs a lighter variant."""

from __future__ import annotations

import random
import threading
from itertools import count

from sqlalchemy import Engine
from tests.ledger.scenario import OPS, reseller

from creditline.db import is_postgres, transaction
from creditline.errors import InsufficientCredit, InsufficientPool
from creditline.ledger import accounts, credit, usage
from creditline.ledger.verify import verify
from creditline.money import to_text

OPERATIONS_PER_THREAD = 40
POOL = 5_000_00
#: Each thread's own customer starts with this much credit, and each thread's first operation
#: withdraws part of it: a success no other thread can prevent, so every run does real work
#: on the shared pool row whatever the random operations and their interleaving turn out to be.
OWN_CREDIT = 10_00
OWN_WITHDRAWAL = -1_00


def test_concurrent_allocations_withdrawals_and_usage(engine: Engine) -> None:
    threads = 16 if is_postgres(engine) else 4
    acme = reseller(engine, pool=POOL, credits=(0,) * 6 + (OWN_CREDIT,) * threads)
    uins, own = acme.customers[:6], acme.customers[6:]
    event_ids = count(1)
    lock = threading.Lock()
    succeeded: list[int] = []
    failures: list[BaseException] = []
    lows: list[tuple[str, int]] = []

    def work(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            with transaction(engine) as s:
                credit.allocate_credit(
                    s, partner_id=acme.id, customer_uin=own[seed], amount=OWN_WITHDRAWAL, origin=OPS
                )
            with lock:
                succeeded.append(OWN_WITHDRAWAL)
            for _ in range(OPERATIONS_PER_THREAD):
                choice = rnd.random()
                if choice < 0.25:
                    # Usage for several customers, in random order, with repeated event ids.
                    with lock:
                        base = next(event_ids)
                    raws = [
                        (
                            n + 1,
                            {
                                "event_id": f"ev-{rnd.choice([base, base // 2])}-{n}",
                                "customer_uin": rnd.choice(uins),
                                "product": "cvm",
                                "list_amount": to_text(rnd.randint(0, 80_00)),
                                "voucher_amount": "0",
                                "occurred_at": "2026-03-01T00:00:00Z",
                            },
                        )
                        for n in range(rnd.randint(1, 4))
                    ]
                    with transaction(engine) as s:
                        usage.ingest(s, usage.parse_batch(raws))
                    continue
                uin = rnd.choice(uins)
                amount = rnd.randint(1, 600_00) * (1 if choice < 0.7 else -1)
                try:
                    with transaction(engine) as s:
                        change = credit.allocate_credit(
                            s, partner_id=acme.id, customer_uin=uin, amount=amount, origin=OPS
                        )
                except (InsufficientPool, InsufficientCredit):
                    continue
                with lock:
                    succeeded.append(amount)
                    if change.total_credit < 0 or change.pool.remaining < 0:
                        lows.append(("after change", amount))
        except BaseException as exc:  # a deadlock or any other surprise fails the test
            with lock:
                failures.append(exc)

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert failures == []
    assert lows == []
    assert succeeded.count(OWN_WITHDRAWAL) >= threads  # every thread changed the pool row
    with transaction(engine) as s:
        assert verify(s) == []
        pool = accounts.pool_state(s, acme.id)
        assert pool.allocated == OWN_CREDIT * threads + sum(succeeded)
        assert 0 <= pool.allocated <= POOL
        for uin in uins:
            assert accounts.get_customer(s, acme.id, uin).total_credit >= 0

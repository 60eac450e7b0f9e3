"""Concurrent REST writes, some on the allocation's fast path and some on the ordinary
path, against one customer and one pool: every write applies exactly once, refusals fall
back to the ordinary path and change nothing, and the ledger still agrees with its
records. Each client runs its own event loop, so on SQLite each has its own fast-path
connection, and they and the ordinary path's threads share the file's write queue."""

from __future__ import annotations

import threading
from collections import Counter

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.api.conftest import World

from creditline.app import create_app
from creditline.auth import keys
from creditline.config import Settings
from creditline.db import transaction
from creditline.db.tables import AllocationRecord, AuditEvent, Customer
from creditline.ledger.verify import verify

CLIENTS = 4
ROUNDS = 8


def test_fast_and_ordinary_writers_interleave_and_apply_once(
    world: World, engine: Engine, database_url: str
) -> None:
    app = create_app(Settings(database_url=database_url), engine, worker=False)
    keys.authenticate_kept(engine, *world.keys["a_operator"])  # kept: the fast path answers
    path = f"/v1/customers/{world.a_customer}"
    with transaction(engine) as s:
        start = s.scalar(select(Customer.total_credit).where(Customer.uin == world.a_customer))
        records = s.scalar(select(func.count()).select_from(AllocationRecord))
    barrier = threading.Barrier(CLIENTS + 1)
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[BaseException] = []
    lock = threading.Lock()

    def crediting(n: int) -> None:
        try:
            with TestClient(app) as c:
                barrier.wait()
                for i in range(ROUNDS):
                    h = world.h("a_operator", **{"Idempotency-Key": f"c{n}-{i}"})
                    done = [
                        (
                            "allocate",
                            c.post(f"{path}/allocate", json={"amount": "1.00"}, headers=h),
                        ),
                        (
                            "withdraw",
                            c.post(
                                f"{path}/withdraw",
                                json={"amount": "0.50"},
                                headers=world.h("a_operator"),
                            ),
                        ),
                        # Refused by the ledger: handed to the ordinary path, nothing changes.
                        (
                            "refused",
                            c.post(
                                f"{path}/withdraw",
                                json={"amount": "99999.00"},
                                headers=world.h("a_operator"),
                            ),
                        ),
                        # The same key again: the ordinary path replays the stored answer.
                        ("replay", c.post(f"{path}/allocate", json={"amount": "1.00"}, headers=h)),
                    ]
                    with lock:
                        statuses.update((what, r.status_code) for what, r in done)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    def remarking() -> None:
        # The ordinary path's writers (another endpoint) take the write lock in turn.
        try:
            with TestClient(app) as c:
                barrier.wait()
                for i in range(ROUNDS):
                    r = c.patch(path, json={"remark": f"r{i}"}, headers=world.h("a_admin"))
                    with lock:
                        statuses[("remark", r.status_code)] += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=crediting, args=(n,)) for n in range(CLIENTS)]
    threads.append(threading.Thread(target=remarking))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    writes = CLIENTS * ROUNDS
    assert statuses == Counter(
        {
            ("allocate", 200): writes,
            ("withdraw", 200): writes,
            ("refused", 409): writes,
            ("replay", 200): writes,
            ("remark", 200): ROUNDS,
        }
    ), statuses
    assert app.state.fast_credit.statements > 0
    with transaction(engine) as s:
        total = s.scalar(select(Customer.total_credit).where(Customer.uin == world.a_customer))
        assert total == start + writes * 50
        added = s.scalar(select(func.count()).select_from(AllocationRecord)) - records
        assert added == 2 * writes
        audited = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action.like("POST /v1/customers/{uin}/%"), AuditEvent.outcome == "ok")
        )
        assert audited == 2 * writes
        assert verify(s) == []

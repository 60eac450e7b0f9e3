"""One disturbed run: the server and the worker as processes, client threads sending mixed
load, and a disturbance (a kill, a cut database) repeated at random moments; then every
check of the reliability tests, and the figures for the docs."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select
from tests.reliability.load import (
    Operation,
    Tally,
    check_database,
    make_world,
    next_operation,
    perform,
)
from tests.reliability.service import Receiver, Server, Worker, run_cli

from creditline.db import transaction
from creditline.db.tables import Delivery, OutboxEvent

CLIENTS = 4

#: A disturbance: given the run's random source, the server and the worker, do harm once.
Disturbance = Callable[[random.Random, Server, Worker], None]


def seed_of_run() -> int:
    """``CREDITLINE_CRASH_SEED`` to replay a run, else a fresh seed (printed)."""
    return int(os.environ.get("CREDITLINE_CRASH_SEED") or random.SystemRandom().randrange(10**6))


def _pending(engine: Engine) -> int:
    with transaction(engine) as s:
        deliveries = s.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status != "delivered")
        )
        events = s.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.delivered_at.is_(None))
        )
    return (deliveries or 0) + (events or 0)


def disturbed_run(
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    *,
    disturb: Disturbance,
    rounds: int,
    min_operations: int,
) -> tuple[dict[str, int], Server, Worker]:
    """Run load while disturbing ``rounds`` times; check everything; return the figures."""
    seed = seed_of_run()
    print(f"disturbed run seed {seed} on {engine.dialect.name}")
    receiver = Receiver()
    world = make_world(engine, customers=8, pool=200_000, webhook_url=receiver.url)
    server = Server(database_url, tmp_path / "serve.log")
    worker = Worker(database_url, tmp_path / "worker.log")
    server.start()
    worker.start()
    tally = Tally()
    counter = iter(range(10**9))
    disturbing = threading.Event()
    disturbing.set()

    def client(index: int) -> None:
        rng = random.Random(f"{seed}-{index}")
        while True:
            with tally.lock:
                if not disturbing.is_set() and len(tally.operations) >= min_operations:
                    return
                number = next(counter)
            op: Operation = next_operation(rng, world, number, seed)
            perform(lambda: server.base_url, op, tally)
            with tally.lock:
                tally.operations.append(op)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    harm = random.Random(seed)
    try:
        for _ in range(rounds):
            # Let some requests through after each disturbance, then strike at a random
            # moment among requests in flight.
            with tally.lock:
                seen = len(tally.operations)
            while True:
                with tally.lock:
                    if len(tally.operations) >= seen + 5:
                        break
                time.sleep(0.01)
            time.sleep(harm.uniform(0.0, 0.3))
            disturb(harm, server, worker)
    finally:
        disturbing.clear()
        for thread in threads:
            thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a client never got its answer"
    try:
        # The worker delivers every event at least once, whatever happened to it (a killed
        # worker's claims expire after its two-second lease). Bounded: a bug fails the test.
        deadline = time.monotonic() + 90
        pending = _pending(engine)
        while pending and time.monotonic() < deadline:
            time.sleep(0.2)
            pending = _pending(engine)
        server_alive = server.child is not None and server.child.poll() is None
        worker_alive = worker.child is not None and worker.child.poll() is None
    finally:
        worker.stop()
        server.stop()
        receiver.close()
    assert server_alive and worker_alive, "the server or the worker died by itself"
    assert pending == 0, f"{pending} events or deliveries were never delivered"
    assert tally.server_errors == [], tally.server_errors
    verified = run_cli(database_url, "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    figures = check_database(engine, world, tally)
    with transaction(engine) as s:
        deliveries = s.scalar(select(func.count()).select_from(Delivery)) or 0
        events = s.scalar(select(func.count()).select_from(OutboxEvent)) or 0
    # One endpoint subscribed to everything: each outbox event became one webhook delivery,
    # and each delivery reached the receiver at least once (more is allowed).
    assert deliveries == events
    assert len(set(receiver.received)) >= deliveries
    for log in (server.log, worker.log):
        text = log.read_text(errors="replace")
        for header in (*world.operator.values(), *world.platform.values()):
            assert header.split(":", 1)[1] not in text, f"a secret key is in {log.name}"
    figures |= {
        "operations": len(tally.operations),
        "server_kills": server.kills,
        "worker_kills": worker.kills,
        "answers_lost_and_retried": tally.lost,
        "sent_while_down_and_retried": tally.unreachable,
        "retries_replayed": sum(1 for op in tally.operations if op.replayed),
        "unavailable_503": tally.unavailable,
        "webhooks_delivered": deliveries,
        "webhook_posts_received": len(receiver.received),
        "seed": seed,
    }
    print("figures", json.dumps(figures))
    return figures, server, worker

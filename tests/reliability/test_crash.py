"""Crash safety: mixed load against ``creditline serve`` and ``creditline worker`` running as
real processes, both killed with SIGKILL at random (seeded) moments and restarted; every
request whose answer was lost is retried with the same Idempotency-Key.

At the end: ``creditline verify`` is clean; every operation the client saw succeed is in
the database exactly once; no refused operation left a trace; every alarm raised was
delivered to the webhook at least once. The short run (a few kills) is in every test run;
``CREDITLINE_LONG_TESTS=1`` adds the long one. Set ``CREDITLINE_CRASH_SEED`` to replay a
seed (the kill moments and the requests follow it; thread interleaving does not).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from tests.reliability.load import (
    Operation,
    Tally,
    check_database,
    make_world,
    next_operation,
    perform,
)
from tests.reliability.service import SERVER_KEY, Receiver, Server, Worker, run_cli

from creditline.config import get_settings
from creditline.db import transaction
from creditline.db.tables import Delivery, OutboxEvent

LONG = os.environ.get("CREDITLINE_LONG_TESTS") == "1"
CLIENTS = 4


@pytest.fixture(autouse=True)
def server_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process makes the keys the child processes check: one server key."""
    monkeypatch.setenv("CREDITLINE_SECRET_KEY", SERVER_KEY)
    get_settings.cache_clear()


def crash_run(
    engine: Engine, database_url: str, tmp_path: Path, *, kills: int, min_operations: int
) -> dict[str, int]:
    """Run load while killing and restarting the server and worker ``kills`` times; check
    everything; return the figures."""
    seed = int(os.environ.get("CREDITLINE_CRASH_SEED") or random.SystemRandom().randrange(10**6))
    print(f"crash run seed {seed} on {engine.dialect.name}")
    receiver = Receiver()
    world = make_world(engine, customers=8, pool=200_000, webhook_url=receiver.url)
    server = Server(database_url, tmp_path / "serve.log")
    worker = Worker(database_url, tmp_path / "worker.log")
    server.start()
    worker.start()
    tally = Tally()
    counter = iter(range(10**9))
    killing = threading.Event()
    killing.set()

    def client(index: int) -> None:
        rng = random.Random(f"{seed}-{index}")
        while True:
            with tally.lock:
                if not killing.is_set() and len(tally.operations) >= min_operations:
                    return
                number = next(counter)
            op: Operation = next_operation(rng, world, number, seed)
            perform(lambda: server.base_url, op, tally)
            with tally.lock:
                tally.operations.append(op)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    killer = random.Random(seed)
    try:
        for _ in range(kills):
            # Let some requests through after each restart, then kill at a random moment
            # among requests in flight.
            with tally.lock:
                seen = len(tally.operations)
            while True:
                with tally.lock:
                    if len(tally.operations) >= seen + 5:
                        break
                time.sleep(0.01)
            time.sleep(killer.uniform(0.0, 0.3))
            server.kill()
            if killer.random() < 0.6:
                worker.kill()
                worker.start()
            server.start()
    finally:
        killing.clear()
        for thread in threads:
            thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a client never got its answer"
    try:
        # The worker delivers every alarm at least once, whatever it was doing when killed
        # (its claims expire after the two-second lease). Bounded, so a bug fails the test.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with transaction(engine) as s:
                pending = (
                    s.scalar(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.status != "delivered")
                    )
                    or 0
                ) + (
                    s.scalar(
                        select(func.count())
                        .select_from(OutboxEvent)
                        .where(OutboxEvent.delivered_at.is_(None))
                    )
                    or 0
                )
            if pending == 0:
                break
            time.sleep(0.2)
    finally:
        worker.stop()
        server.stop()
        receiver.close()
    assert pending == 0, f"{pending} deliveries were never delivered"
    assert tally.server_errors == [], tally.server_errors
    verified = run_cli(database_url, "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    figures = check_database(engine, world, tally)
    with transaction(engine) as s:
        deliveries = s.scalar(select(func.count()).select_from(Delivery)) or 0
        events = s.scalar(select(func.count()).select_from(OutboxEvent)) or 0
    # One endpoint subscribed to everything: each outbox event became one webhook delivery.
    assert deliveries == events
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
    assert figures["server_kills"] == kills
    # Every delivery reached the receiver at least once (more is allowed: at least once).
    assert len(set(receiver.received)) >= deliveries
    for log in (server.log, worker.log):
        text = log.read_text(errors="replace")
        for secret in (*world.operator.values(), *world.platform.values()):
            assert secret.split(":", 1)[1] not in text, f"a secret key is in {log.name}"
    print("crash figures", json.dumps(figures))
    return figures


def test_crashes_lose_nothing(engine: Engine, database_url: str, tmp_path: Path) -> None:
    """A few kills under load: the short variant, in every run."""
    figures = crash_run(engine, database_url, tmp_path, kills=3, min_operations=150)
    assert figures["answers_lost_and_retried"] >= 1


@pytest.mark.slow
@pytest.mark.skipif(not LONG, reason="long variant: set CREDITLINE_LONG_TESTS=1")
def test_many_crashes_lose_nothing(engine: Engine, database_url: str, tmp_path: Path) -> None:
    """Many kills under heavier load."""
    figures = crash_run(engine, database_url, tmp_path, kills=25, min_operations=2000)
    assert figures["answers_lost_and_retried"] >= 1

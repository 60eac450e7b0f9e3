"""At least once, never lost: retries for a day then failure, endpoints disabled after
days of failure, two workers at once, a worker killed mid-batch, graceful stops."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from tests.notify.support import (
    FakeClock,
    Receiver,
    consume,
    customer_with_credit,
    drain,
    pending_deliveries,
)

from creditline.config import Settings
from creditline.db import transaction
from creditline.db.tables import Delivery, WebhookEndpoint
from creditline.notify import endpoints, inbox
from creditline.notify.deliveries import Backoff
from creditline.notify.outbox import THRESHOLD_REACHED
from creditline.notify.worker import Worker

# The receivers listen on 127.0.0.1: these tests opt in to private targets explicitly.
SETTINGS = Settings(
    smtp_host="", webhook_timeout_s=30.0, smtp_timeout_s=30.0, webhook_allow_private_targets=True
)


def _endpoint(engine: Engine, partner_id: int, receiver: Receiver) -> int:
    with transaction(engine) as s:
        endpoint = endpoints.add_endpoint(
            s,
            partner_id=partner_id,
            url=receiver.url,
            event_types=[THRESHOLD_REACHED],
            allow_private_targets=True,
        )
        receiver.secrets.append(endpoints.secret_of(s, endpoint))
        return endpoint.id


def _statuses(engine: Engine) -> dict[str, int]:
    with transaction(engine) as s:
        rows = s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        return {str(row[0]): int(row[1]) for row in rows}


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    backoff = Backoff(base=timedelta(seconds=5), cap=timedelta(hours=1), jitter=0.5)
    rng = random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(1, 15)]
    for n, delay in enumerate(delays, start=1):
        full = min(timedelta(hours=1), timedelta(seconds=5) * 2 ** (n - 1))
        assert full / 2 <= delay <= full
    assert len({d.total_seconds() for d in delays[-4:]}) == 4  # jittered, not lockstep
    # Capped at an hour, retries over the default 24-hour window number in the dozens.
    assert Backoff().window >= timedelta(hours=24)


def test_retried_for_the_window_then_failed_and_endpoint_disabled(
    engine: Engine, receiver: Receiver
) -> None:
    clock = FakeClock()
    backoff = Backoff(
        base=timedelta(minutes=1),
        cap=timedelta(hours=2),
        window=timedelta(hours=24),
        disable_after=timedelta(days=3),
    )
    partner_id, uin = customer_with_credit(engine)
    drain(Worker(engine, SETTINGS, clock=clock))
    endpoint_id = _endpoint(engine, partner_id, receiver)
    receiver.fail_first = 10**6  # down for good
    worker = Worker(engine, SETTINGS, clock=clock, backoff=backoff, rng=random.Random(1))
    consume(engine, uin, "80.00")
    started = clock.now
    attempts_at = []
    while True:
        if worker.run_once():
            attempts_at.append(clock.now)
        if not _statuses(engine).get("pending"):
            break
        clock.advance(minutes=10)
        assert clock.now - started < timedelta(days=2), "never gave up"
    assert _statuses(engine) == {"failed": 1}
    # Retried for at least the whole day, not fewer and not forever.
    assert attempts_at[-1] - started >= timedelta(hours=24)
    assert len(attempts_at) >= 10
    with transaction(engine) as s:
        assert endpoints.get_endpoint(s, partner_id, endpoint_id).enabled  # not yet days
        assert inbox.unread_counts(s, partner_id).notices == 0

    # Still failing days later: the endpoint is disabled and the partner told.
    clock.advance(days=2)
    consume(engine, uin, "15.00")
    worker.run_once()
    with transaction(engine) as s:
        endpoint = endpoints.get_endpoint(s, partner_id, endpoint_id)
        assert not endpoint.enabled and "disabled after failing" in endpoint.disabled_reason
        notices, _ = inbox.notices_page(s, partner_id=partner_id)
        assert [n.kind for n in notices] == ["webhook_endpoint_disabled"]
        assert receiver.url in notices[0].message
        assert inbox.unread_counts(s, partner_id).notices == 1
    assert _statuses(engine) == {"failed": 2}
    # A disabled endpoint is given no new deliveries.
    consume(engine, uin, "10.00")
    worker.run_once()
    assert _statuses(engine) == {"failed": 2}

    # Fixed and enabled again: a failed delivery can be sent again by hand.
    receiver.fail_first = 0
    with transaction(engine) as s:
        endpoints.update_endpoint(s, partner_id=partner_id, endpoint_id=endpoint_id, enabled=True)
        failed, _ = endpoints.list_deliveries(s, partner_id=partner_id, status="failed")
        for delivery in failed:
            endpoints.redeliver(s, partner_id=partner_id, delivery_id=delivery.id)
    drain(worker)
    assert _statuses(engine) == {"delivered": 2}
    assert len(receiver.successes()) == 2 and receiver.bad_signatures == []


def test_in_process_worker_thread_delivers_and_stops(engine: Engine, receiver: Receiver) -> None:
    partner_id, uin = customer_with_credit(engine)
    _endpoint(engine, partner_id, receiver)
    worker = Worker(engine, SETTINGS, poll_interval=0.05)
    thread = worker.start_in_thread()
    try:
        consume(engine, uin, "80.00")
        worker.wake()
        deadline = time.monotonic() + 30
        while not receiver.successes() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
        worker.close()
    assert not thread.is_alive()
    assert [r.body["data"]["threshold"] for r in receiver.successes() if r.body] == [75]


def test_two_workers_on_postgresql_share_without_overlap(
    engine: Engine, receiver: Receiver
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers at once is a PostgreSQL deployment")
    receiver.delay = 0.02  # widens the window in which a double claim would show
    customers = [customer_with_credit(engine) for _ in range(4)]
    drain(Worker(engine, SETTINGS))
    for partner_id, _ in customers:
        _endpoint(engine, partner_id, receiver)
    expected = 0
    for _, uin in customers:
        expected += len(consume(engine, uin, "75.00"))
        expected += len(consume(engine, uin, "15.00"))
        expected += len(consume(engine, uin, "10.00"))
        expected += len(consume(engine, uin, "40.00", kind="refund"))
        expected += len(consume(engine, uin, "40.00"))
    assert expected == 4 * 4
    stop = threading.Event()
    workers = [Worker(engine, SETTINGS, batch_size=3, poll_interval=0.01) for _ in range(2)]
    threads = [threading.Thread(target=w.run_forever, args=(stop,)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(receiver.successes()) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        for w in workers:
            w.close()
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == expected and len(set(ids)) == expected  # each once, none twice
    assert receiver.overlaps == [] and receiver.bad_signatures == []
    with transaction(engine) as s:
        attempts = s.execute(select(Delivery.attempts)).scalars().all()
    assert sorted(set(attempts)) == [1]
    assert _statuses(engine) == {"delivered": expected}


def _worker_process(database_url: str, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env["CREDITLINE_WEBHOOK_TIMEOUT_S"] = "0.5"
    env["CREDITLINE_SMTP_TIMEOUT_S"] = "0.5"
    env["CREDITLINE_SMTP_HOST"] = ""
    env["CREDITLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"  # the receiver is on 127.0.0.1
    command = "from creditline.cli import app, notify; app()"
    return subprocess.Popen(
        [sys.executable, "-c", command, "--database-url", database_url, "worker", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_worker_killed_mid_batch_loses_nothing(
    engine: Engine, database_url: str, receiver: Receiver
) -> None:
    customers = [customer_with_credit(engine) for _ in range(3)]
    drain(Worker(engine, SETTINGS))
    for partner_id, _ in customers:
        _endpoint(engine, partner_id, receiver)
    for _, uin in customers:
        for amount in ("75.00", "15.00", "10.00"):
            consume(engine, uin, amount)
    expected = 9
    receiver.delay = 0.3  # slow enough to kill the worker with deliveries in flight
    first = _worker_process(
        database_url, "--lease-seconds", "1", "--batch-size", "4", "--concurrency", "2"
    )
    try:
        deadline = time.monotonic() + 60
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.received, "the worker never started delivering"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert pending_deliveries(engine) > 0  # killed before it finished
    receiver.delay = 0.0
    second = _worker_process(database_url, "--lease-seconds", "1", "--poll-interval", "0.05")
    try:
        deadline = time.monotonic() + 90
        while pending_deliveries(engine) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        second.send_signal(signal.SIGTERM)  # graceful: exits cleanly
        code = second.wait(30)
    assert code == 0
    assert _statuses(engine) == {"delivered": expected}
    delivered = {r.webhook_id for r in receiver.successes()}
    assert len(delivered) == expected  # every event arrived (a few perhaps twice)
    assert receiver.bad_signatures == []


def test_endpoint_removed_ends_its_pending_deliveries(engine: Engine, receiver: Receiver) -> None:
    partner_id, uin = customer_with_credit(engine)
    drain(Worker(engine, SETTINGS))
    endpoint_id = _endpoint(engine, partner_id, receiver)
    consume(engine, uin, "80.00")
    Worker(engine, SETTINGS)._expand()
    with transaction(engine) as s:
        endpoints.remove_endpoint(s, partner_id=partner_id, endpoint_id=endpoint_id)
        assert s.get(WebhookEndpoint, (partner_id, endpoint_id)) is None
    assert _statuses(engine) == {"failed": 1}
    drain(Worker(engine, SETTINGS))
    assert receiver.received == []

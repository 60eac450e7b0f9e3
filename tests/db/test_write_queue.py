"""SQLite writers of one process wait in line for the file's write lock and are served in
arrival order (db/writers.py), instead of by the busy handler's retries in no order."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from creditline.db import make_engine, transaction
from creditline.db.writers import WriteQueue, queue_for

WAIT = 30.0  # generous: nothing here should take more than a moment


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the writers never lined up"
        time.sleep(0.01)


def test_the_queue_serves_waiters_in_arrival_order() -> None:
    queue = WriteQueue()
    assert queue.acquire(1, WAIT)
    served: list[int] = []

    def writer(holder: int) -> None:
        assert queue.acquire(holder, WAIT)
        served.append(holder)
        queue.release(holder)

    threads = []
    for holder in (2, 3, 4, 5):
        thread = threading.Thread(target=writer, args=(holder,))
        thread.start()
        threads.append(thread)
        _until(lambda n=len(threads): queue.waiting == n)
    queue.release(1)
    for thread in threads:
        thread.join(WAIT)
    assert served == [2, 3, 4, 5]


def test_sqlite_write_transactions_take_their_turn_in_arrival_order(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'queue.db'}")
    queue = queue_for(engine.url.database)
    assert queue is not None
    with transaction(engine) as s:
        s.execute(text("CREATE TABLE t (n INTEGER)"))
    order: list[int] = []
    holding = threading.Event()
    release = threading.Event()

    def first() -> None:
        with transaction(engine) as s:
            s.execute(text("INSERT INTO t VALUES (0)"))
            holding.set()
            release.wait(WAIT)

    def writer(n: int) -> None:
        with transaction(engine) as s:
            order.append(n)
            s.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert holding.wait(WAIT)
    for n in (1, 2, 3):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        threads.append(thread)
        _until(lambda n=n: queue.waiting == n)
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert order == [1, 2, 3]
    with transaction(engine) as s:
        assert s.scalar(text("SELECT count(*) FROM t")) == 4
    engine.dispose()


def test_writers_on_an_event_loop_wait_in_the_same_line_as_threads() -> None:
    queue = WriteQueue()
    assert queue.acquire(1, WAIT)
    served: list[int] = []
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def on_loop(holder: int) -> None:
        assert await queue.acquire_async(holder, WAIT)
        served.append(holder)
        queue.release(holder)

    def run_loop() -> None:
        asyncio.set_event_loop(loop)
        ready.set()
        loop.run_forever()

    def in_thread(holder: int) -> None:
        assert queue.acquire(holder, WAIT)
        served.append(holder)
        queue.release(holder)

    runner = threading.Thread(target=run_loop)
    runner.start()
    assert ready.wait(WAIT)
    waiting: list[Any] = []
    threads = []
    for n, holder in enumerate((2, 3, 4, 5), start=1):
        if holder % 2 == 0:
            waiting.append(asyncio.run_coroutine_threadsafe(on_loop(holder), loop))
        else:
            thread = threading.Thread(target=in_thread, args=(holder,))
            thread.start()
            threads.append(thread)
        _until(lambda n=n: queue.waiting == n)
    queue.release(1)
    for future in waiting:
        future.result(WAIT)
    for thread in threads:
        thread.join(WAIT)
    loop.call_soon_threadsafe(loop.stop)
    runner.join(WAIT)
    loop.close()
    assert served == [2, 3, 4, 5]


def test_a_writer_on_an_event_loop_that_gives_up_leaves_the_line() -> None:
    queue = WriteQueue()
    assert queue.acquire(1, WAIT)

    async def scenario() -> None:
        assert not await queue.acquire_async(2, 0.01)  # timed out: out of the line
        assert queue.waiting == 0
        waiter = asyncio.ensure_future(queue.acquire_async(3, WAIT))
        await asyncio.sleep(0.01)
        assert queue.waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert queue.waiting == 0
        # Cancelled after its turn came: the turn goes on to the next in line.
        waiter = asyncio.ensure_future(queue.acquire_async(4, WAIT))
        after = asyncio.ensure_future(queue.acquire_async(5, WAIT))
        await asyncio.sleep(0.01)
        queue.release(1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await after
        queue.release(5)

    asyncio.run(scenario())
    assert queue.acquire(6, 0.01)

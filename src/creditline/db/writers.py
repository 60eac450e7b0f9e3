"""Writers of one SQLite file, served in arrival order.

SQLite takes one writer at a time; a writer that finds the lock taken sleeps in its busy
handler and retries at growing intervals, so waiting writers are served in no order and a
few wait far longer than the rest. Within one process, :class:`WriteQueue` lets them wait
in line instead: each write transaction takes its turn before ``BEGIN IMMEDIATE`` and
passes it on when its connection returns to the pool (after its COMMIT or ROLLBACK).
Writers of other processes still meet SQLite's own lock and busy timeout. A writer on an
event loop (the allocation's fast path, api/fast_sqlite.py) waits in the same line without
blocking its loop (:meth:`WriteQueue.acquire_async`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from typing import Protocol


class _Turn(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...


class _LoopTurn:
    """A waiter's turn on an event loop: set from any thread, awaited on its loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self._set = False

    def set(self) -> None:
        self._set = True
        self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def is_set(self) -> bool:
        return self._set


class WriteQueue:
    """A lock handed to its waiters first come, first served."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: deque[_Turn] = deque()
        self._holder: int | None = None

    def acquire(self, holder: int, timeout: float) -> bool:
        """Wait for the turn of ``holder`` (a connection's id), at most ``timeout``
        seconds; False when it did not come (the caller goes on without the queue)."""
        with self._guard:
            if self._holder == holder:
                return True
            if self._holder is None and not self._waiting:
                self._holder = holder
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        came = turn.wait(timeout)
        with self._guard:
            if came or turn.is_set():
                self._holder = holder
                return True
            self._waiting.remove(turn)
            return False

    async def acquire_async(self, holder: int, timeout: float) -> bool:
        """:meth:`acquire` for a writer on an event loop: it waits in the same line, and
        its loop goes on serving others meanwhile."""
        with self._guard:
            if self._holder == holder:
                return True
            if self._holder is None and not self._waiting:
                self._holder = holder
                return True
            turn = _LoopTurn(asyncio.get_running_loop())
            self._waiting.append(turn)
        try:
            await asyncio.wait_for(asyncio.shield(turn.future), timeout)
        except TimeoutError:
            pass
        except BaseException:  # cancelled: out of the line, or the turn passed on
            self._give_up(turn)
            raise
        with self._guard:
            if turn.is_set():
                self._holder = holder
                return True
            self._waiting.remove(turn)
            return False

    def _give_up(self, turn: _Turn) -> None:
        with self._guard:
            if not turn.is_set():
                self._waiting.remove(turn)
                return
            # The turn came (reserved for this waiter): hand it to the next in line.
            self._holder = None
            if self._waiting:
                self._waiting.popleft().set()
                self._holder = -1

    def release(self, holder: int) -> None:
        """End the turn of ``holder``, if it has it, and hand it to the next in line."""
        with self._guard:
            if self._holder != holder:
                return
            self._holder = None
            if self._waiting:
                self._waiting.popleft().set()
                self._holder = -1  # reserved for the woken waiter, which takes it

    @property
    def waiting(self) -> int:
        """How many writers wait in line."""
        with self._guard:
            return len(self._waiting)


_queues: dict[str, WriteQueue] = {}
_queues_guard = threading.Lock()


def queue_for(database: str | None) -> WriteQueue | None:
    """The queue of the SQLite file ``database`` (one per file in this process); None for
    an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    path = os.path.realpath(database)
    with _queues_guard:
        found = _queues.get(path)
        if found is None:
            found = _queues[path] = WriteQueue()
        return found

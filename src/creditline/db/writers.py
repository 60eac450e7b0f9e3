"""Writers of one SQLite file, served in arrival order.

SQLite takes one writer at a time; a writer that finds the lock taken sleeps in its busy
handler and retries at growing intervals, so waiting writers are served in no order and a
few wait far longer than the rest. Within one process, :class:`WriteQueue` lets them wait
in line instead: each write transaction takes its turn before ``BEGIN IMMEDIATE`` and
passes it on when its connection returns to the pool (after its COMMIT or ROLLBACK).
Writers of other processes still meet SQLite's own lock and busy timeout.
"""

from __future__ import annotations

import os
import threading
from collections import deque


class WriteQueue:
    """A lock handed to its waiters first come, first served."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
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

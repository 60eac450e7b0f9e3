"""Run writers together on PostgreSQL so that a count-then-act race is certain, not
likely: each writer acts in its own transaction and then holds it open until every other
writer has acted too, or is waiting for a lock. Without a lock, all of them act on what
they read before any commits; with one, the others wait and read what the first did."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from creditline.db import transaction

#: A writer that neither finishes nor waits for a lock in this long is stuck: the test
#: fails rather than hangs. Generous; nothing is measured against it.
STUCK_AFTER_SECONDS = 120.0


def run_together(
    engine: Engine, writers: Sequence[Callable[[Session], object]]
) -> list[object | BaseException]:
    """Each writer's result, or the exception it raised (its transaction rolled back)."""
    assert engine.dialect.name == "postgresql", "SQLite serialises writers already"
    count = len(writers)
    start = threading.Barrier(count, timeout=STUCK_AFTER_SECONDS)
    pids: list[int] = [0] * count
    acted = [threading.Event() for _ in writers]
    results: list[object | BaseException] = [None] * count

    def waiting_for_a_lock(pid: int) -> bool:
        with engine.connect() as connection:
            return (
                connection.execute(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                ).scalar_one_or_none()
                == "Lock"
            )

    def hold_until_the_others_acted(me: int) -> None:
        deadline = time.monotonic() + STUCK_AFTER_SECONDS
        others = [n for n in range(count) if n != me]
        while not all(acted[n].is_set() or waiting_for_a_lock(pids[n]) for n in others):
            if time.monotonic() > deadline:
                raise TimeoutError("a writer neither acted nor waited for a lock")
            time.sleep(0.01)

    def run(me: int) -> None:
        try:
            with transaction(engine) as s:
                pids[me] = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
                start.wait()
                results[me] = writers[me](s)
                acted[me].set()
                hold_until_the_others_acted(me)
        except BaseException as exc:  # the caller looks at every outcome
            results[me] = exc
        finally:
            acted[me].set()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(STUCK_AFTER_SECONDS * 2)
        assert not thread.is_alive(), "a writer is stuck"
    return results

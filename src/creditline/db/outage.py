"""Waiting out the database's outages.

A long-running process (``creditline serve``, ``creditline worker``, the in-process
delivery worker) does not exit because the database is away for a while, as PostgreSQL
is while it restarts: it tries again with a capped exponential wait, says once that the
database is unavailable and once that it is back, and carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from creditline.db.engine import is_unavailable
from creditline.errors import first_line

T = TypeVar("T")


class Outage:
    """One process's record of a stretch of failures: it logs the first failure of a
    stretch (one line for an unavailable database; the traceback, once, for anything
    else), nothing for the ones that follow, and one line when a try succeeds again.
    :meth:`failed` gives how long to wait before the next try: ``base`` doubled on each
    failure in a row, at most ``cap`` seconds."""

    def __init__(
        self, log: logging.Logger, what: str, *, base: float = 0.2, cap: float = 10.0
    ) -> None:
        self.log = log
        self.what = what
        self.base = base
        self.cap = cap
        self.failures = 0
        self._since = 0.0
        self._database = False

    @property
    def ongoing(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> float:
        """Note a failed try; the seconds to wait before the next one."""
        if self.failures == 0:
            self._since = time.monotonic()
            self._database = is_unavailable(exc)
            if self._database:
                self.log.warning(
                    "%s: database unavailable (%s); retrying until it is back",
                    self.what,
                    first_line(exc),
                )
            else:
                self.log.error("%s: failed; retrying", self.what, exc_info=exc)
        self.failures += 1
        return float(min(self.cap, self.base * 2 ** min(self.failures - 1, 32)))

    def recovered(self) -> None:
        """Note a try that worked; logs the end of an outage."""
        if self.failures:
            self.log.info(
                "%s: %s again after %.1f s (%d failed tries)",
                self.what,
                "database available" if self._database else "working",
                time.monotonic() - self._since,
                self.failures,
            )
            self.failures = 0


def wait_for(
    attempt: Callable[[], T],
    *,
    log: logging.Logger,
    what: str,
    stop: threading.Event | None = None,
    base: float = 0.2,
    cap: float = 10.0,
) -> T:
    """``attempt()``, tried again for as long as the database is unavailable (logged as
    one :class:`Outage`). Any other error is raised at once; so is
    :class:`InterruptedError` when ``stop`` is set while waiting."""
    outage = Outage(log, what, base=base, cap=cap)
    stop = stop or threading.Event()
    while True:
        try:
            result = attempt()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            if stop.wait(outage.failed(exc)):
                raise InterruptedError(f"{what}: stopped while waiting for the database") from exc
            continue
        outage.recovered()
        return result

"""The delivery worker: drains the outbox after commit and delivers each event to its
webhooks and email recipients, at least once, with retries.

Several workers may run at once against PostgreSQL (claims skip rows another worker
holds); ``creditline serve`` runs one in a thread of its own process.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine

from creditline.clock import utcnow
from creditline.config import Settings, get_settings
from creditline.db import read_transaction, transaction
from creditline.db.outage import Outage
from creditline.notify import deliveries, email, targets, webhook
from creditline.notify.deliveries import Backoff, Job, Outcome

log = logging.getLogger(__name__)


class Worker:
    """One delivery worker. ``run_once`` does one round; ``run_forever`` loops until
    stopped; ``start_in_thread``/``stop`` run it beside a web server."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        backoff: Backoff | None = None,
        lease: timedelta = timedelta(seconds=60),
        batch_size: int = 20,
        concurrency: int = 4,
        poll_interval: float = 0.2,
        rng: random.Random | None = None,
        outage_base: float = 0.2,
        outage_cap: float = 10.0,
    ) -> None:
        self.engine = engine
        self.settings = settings or get_settings()
        self.clock = clock
        self.backoff = backoff or Backoff()
        # The lease must outlast the slowest attempt (timeouts below), or a second
        # worker could take a delivery that is still in flight.
        self.lease = max(
            lease,
            timedelta(
                seconds=2 * max(self.settings.webhook_timeout_s, self.settings.smtp_timeout_s)
            ),
        )
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)
        self.poll_interval = poll_interval
        #: While rounds fail, the wait before the next: doubled each time, capped.
        self.outage_base = outage_base
        self.outage_cap = outage_cap
        self.rng = rng or random.Random()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Events expanded per round, at most.
        self._expand_limit = batch_size * 5
        #: Whether the last round stopped at a limit (more work is waiting).
        self._full = False
        # Webhooks reach the public internet only, checked as each request connects
        # (targets.PublicTransport); no redirect is followed, no proxy from the
        # environment is taken (a proxy would connect where the check never looked).
        self._client = httpx.Client(
            transport=targets.PublicTransport(
                allow_private=self.settings.webhook_allow_private_targets, lookup_timeout=5.0
            ),
            timeout=httpx.Timeout(self.settings.webhook_timeout_s, connect=5.0),
            follow_redirects=False,
            trust_env=False,
        )

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll (e.g. right after a commit)."""
        self._wake.set()

    def run_once(self, *, delivery_ids: list[int] | None = None) -> int:
        """Expand new outbox events, then attempt every due delivery once (up to the batch
        size); with ``delivery_ids``, attempt only those. Returns the number of events
        expanded plus attempts made: 0 when idle."""
        with read_transaction(self.engine) as session:
            # Nothing new and nothing due: an idle round takes no write lock (SQLite).
            if not deliveries.has_work(session, now=self.clock(), delivery_ids=delivery_ids):
                return 0
        expanded = 0
        self._full = False
        if delivery_ids is None:
            expanded = self._expand()
            self._full = expanded >= self._expand_limit
        with transaction(self.engine) as session:
            jobs = deliveries.claim(
                session,
                now=self.clock(),
                lease=self.lease,
                limit=self.batch_size,
                delivery_ids=delivery_ids,
            )
        if len(jobs) <= 1 or self.concurrency == 1:
            for job in jobs:
                self._attempt(job)
        else:
            with ThreadPoolExecutor(min(self.concurrency, len(jobs))) as pool:
                list(pool.map(self._attempt, jobs))
        self._full = self._full or len(jobs) >= self.batch_size
        return expanded + len(jobs)

    def _expand(self) -> int:
        with transaction(self.engine) as session:
            return deliveries.expand(
                session,
                now=self.clock(),
                backoff=self.backoff,
                email_enabled=email.is_configured(self.settings),
                limit=self._expand_limit,
            )

    def _attempt(self, job: Job) -> str:
        try:
            outcome = self._deliver(job)
        except Exception as exc:  # a bug in one delivery must not stop the others
            log.exception("delivery %s failed unexpectedly", job.delivery_id)
            outcome = Outcome(False, 0, error=f"{exc.__class__.__name__}: {exc}")
        with transaction(self.engine) as session:
            status = deliveries.record(
                session, job, outcome, now=self.clock(), backoff=self.backoff, rng=self.rng
            )
        log.info(
            "delivery %s (%s %s) attempt %s: %s",
            job.delivery_id,
            job.channel,
            job.event_type,
            job.attempt,
            status if outcome.succeeded else f"{status}: {outcome.error}",
        )
        return status

    def _deliver(self, job: Job) -> Outcome:
        if job.channel == "webhook":
            return webhook.deliver(job, self._client)
        return email.deliver(job, self.settings)

    def run_forever(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set. Stopping waits for the attempts in flight, so a
        graceful stop never leaves a delivery half-recorded.

        A failed round (the database away, most often) is tried again after a capped
        exponential wait; the outage is logged once when it starts and once when a
        round works again. The worker never stops by itself."""
        outage = Outage(log, "delivery worker", base=self.outage_base, cap=self.outage_cap)
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception as exc:
                stop.wait(outage.failed(exc))
                continue
            outage.recovered()
            # The next round at once only while work is queued beyond one round's limits;
            # otherwise at the next poll (or wake): a steady trickle of events is then
            # expanded in rounds of many, not in a transaction per event.
            if not busy or not self._full:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    def start_in_thread(self) -> threading.Thread:
        """Run :meth:`run_forever` in a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, args=(self._stop,), name="creditline-worker", daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the thread started by :meth:`start_in_thread` and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()

"""Deliveries: the outbox expanded into one row per (event, target), claimed by workers
under a lease, and their outcomes recorded with retries, backoff and the delivery log.

The steps, each in its own short transaction, so nothing is held open while a slow
endpoint answers:

1. :func:`expand` claims undelivered outbox rows (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL; SQLite's single writer lock makes the claim exclusive there) and writes a
   delivery for each subscribed webhook endpoint and, for alarms (thresholds reached, top-ups
   refused), each email recipient.
2. :func:`claim` takes due deliveries under a lease (``locked_until``) and a claim token.
3. The worker delivers outside any transaction.
4. :func:`record` writes the attempt to the log and either ends the delivery or schedules
   the next attempt. A worker that dies before this step leaves the lease to expire, and
   the delivery is claimed again: at least once, never lost.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from creditline.db.tables import (
    Customer,
    Delivery,
    DeliveryAttempt,
    NotificationSettings,
    OutboxEvent,
    PartnerNotice,
    WebhookEndpoint,
)
from creditline.notify import customer_alarms
from creditline.notify.endpoints import signing_secrets
from creditline.notify.outbox import FORECAST_EXHAUSTION, THRESHOLD_REACHED, TOP_UP_REFUSED

#: The alarms: emailed to the partner's alarm recipients as well as sent to webhooks.
ALARM_TYPES = (THRESHOLD_REACHED, FORECAST_EXHAUSTION, TOP_UP_REFUSED)


@dataclass(frozen=True)
class Backoff:
    """When to try again: ``base x 2^(attempt-1)``, capped, times a random factor in
    [1 - jitter, 1] so that many failed deliveries do not retry in lockstep."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.5
    #: How long a delivery is retried before it is marked failed (at least 24 h in
    #: production; tests shorten it).
    window: timedelta = timedelta(hours=24)
    #: An endpoint that has failed without a single success for this long is disabled.
    disable_after: timedelta = timedelta(days=5)

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        exponent = min(max(attempt - 1, 0), 32)
        raw = min(self.cap, self.base * (2**exponent))
        factor = 1 - self.jitter * (rng or random).random()
        return raw * factor


@dataclass(frozen=True)
class Job:
    """One claimed delivery with everything needed to make the attempt, read before the
    claim's transaction ended."""

    delivery_id: int
    partner_id: int
    claim_token: str
    channel: str
    attempt: int
    event_id: int
    event_type: str
    event_created_at: datetime
    payload: dict[str, Any]
    endpoint_id: int | None = None
    url: str | None = None
    endpoint_enabled: bool = False
    secrets: list[str] = field(default_factory=list)
    email: str | None = None
    #: For a customer's own alarm email: its partner's name and contact.
    sender: customer_alarms.Sender | None = None

    @property
    def message_id(self) -> str:
        """Stable per event and target: a receiver deduplicates on it across retries."""
        if self.channel == "webhook":
            return f"msg_{self.event_id}_{self.endpoint_id}"
        return f"msg_{self.event_id}_{self.delivery_id}"


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave. ``final`` failures are not retried (e.g. endpoint removed)."""

    succeeded: bool
    latency_ms: int
    status_code: int | None = None
    error: str = ""
    final: bool = False


def expand(
    session: Session, *, now: datetime, backoff: Backoff, email_enabled: bool, limit: int = 100
) -> int:
    """Turn up to ``limit`` undelivered outbox events into deliveries; returns how many
    events were expanded. Each event is expanded once: its row is marked handed over
    (``delivered_at``) in the same transaction as its deliveries."""
    # Plain rows, not ORM objects, and not the payloads: only an alarm reads its payload.
    events = session.execute(
        select(OutboxEvent.id, OutboxEvent.partner_id, OutboxEvent.type)
        .where(OutboxEvent.delivered_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not events:
        return 0
    partner_ids = sorted({e.partner_id for e in events})
    endpoints: dict[int, list[WebhookEndpoint]] = {p: [] for p in partner_ids}
    for endpoint in session.execute(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.partner_id.in_(partner_ids), WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)
    ).scalars():
        endpoints[endpoint.partner_id].append(endpoint)
    settings = {
        s.partner_id: s
        for s in session.execute(
            select(NotificationSettings).where(NotificationSettings.partner_id.in_(partner_ids))
        ).scalars()
    }
    commons = {
        event.id: {
            "partner_id": event.partner_id,
            "event_id": event.id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "give_up_at": now + backoff.window,
            "last_error": "",
            "created_at": now,
        }
        for event in events
    }
    # An alarm's payload names its customer: the one event kind whose payload is read, all
    # of the round's at once; the customers' own copies of the thresholds reached likewise
    # (customer_alarms.hand_over_many), when their partners let them receive their alarms.
    alarmed = [event for event in events if event.type in ALARM_TYPES]
    payloads: dict[int, dict[str, Any]] = (
        dict(
            session.execute(
                select(OutboxEvent.id, OutboxEvent.payload).where(
                    tuple_(OutboxEvent.partner_id, OutboxEvent.id).in_(
                        [(event.partner_id, event.id) for event in alarmed]
                    )
                )
            )
            .tuples()
            .all()
        )
        if alarmed
        else {}
    )
    reached = [event for event in alarmed if event.type == THRESHOLD_REACHED]
    copies = dict(
        zip(
            [event.id for event in reached],
            customer_alarms.hand_over_many(
                session,
                [(event.partner_id, payloads[event.id], commons[event.id]) for event in reached],
                email_enabled=email_enabled,
            ),
            strict=True,
        )
    )
    rows: list[dict[str, Any]] = []
    for event in events:
        common = commons[event.id]
        for endpoint in endpoints[event.partner_id]:
            if event.type in endpoint.event_types:
                rows.append(
                    common
                    | {
                        "channel": "webhook",
                        "target": f"webhook:{endpoint.id}",
                        "endpoint_id": endpoint.id,
                        "email": None,
                    }
                )
        if event.type not in ALARM_TYPES:
            continue
        payload = payloads[event.id]
        rows.extend(copies.get(event.id, []))
        if email_enabled:
            # A refused top-up is the partner's business (its pool, its rule): its own
            # recipients only, never the customer.
            for address in _alarm_addresses(
                session,
                event.partner_id,
                payload,
                settings.get(event.partner_id),
                with_customer=event.type != TOP_UP_REFUSED,
            ):
                rows.append(
                    common
                    | {
                        "channel": "email",
                        "target": f"email:{address.lower()}",
                        "endpoint_id": None,
                        "email": address,
                    }
                )
    if rows:
        session.execute(insert(Delivery), rows)
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_([e.id for e in events]))
        .values(delivered_at=now)
        .execution_options(synchronize_session=False)
    )
    return len(events)


def _alarm_addresses(
    session: Session,
    partner_id: int,
    payload: dict[str, Any],
    settings: NotificationSettings | None,
    *,
    with_customer: bool = True,
) -> list[str]:
    if settings is None:
        return []
    addresses = {a.lower(): a for a in settings.email_recipients}
    if settings.email_customer and with_customer:
        email = session.execute(
            select(Customer.email).where(
                Customer.partner_id == partner_id,
                Customer.uin == payload["customer_uin"],
            )
        ).scalar_one_or_none()
        if email:
            addresses.setdefault(email.lower(), email)
    return list(addresses.values())


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Delivery.status == "pending",
        Delivery.next_attempt_at <= now,
        or_(Delivery.locked_until.is_(None), Delivery.locked_until <= now),
    )


def has_work(session: Session, *, now: datetime, delivery_ids: list[int] | None = None) -> bool:
    """Whether :func:`expand` or :func:`claim` would find anything: asked in a read
    transaction first, so an idle worker never takes the write lock (SQLite)."""
    due = select(Delivery.id).where(*_due(now))
    if delivery_ids is not None:
        return session.scalar(select(due.where(Delivery.id.in_(delivery_ids)).exists())) is True
    new = select(OutboxEvent.id).where(OutboxEvent.delivered_at.is_(None))
    return session.scalar(select(or_(new.exists(), due.exists()))) is True


def claim(
    session: Session,
    *,
    now: datetime,
    lease: timedelta,
    limit: int = 20,
    delivery_ids: list[int] | None = None,
) -> list[Job]:
    """Claim up to ``limit`` due deliveries (or just ``delivery_ids``) for ``lease``.

    A delivery is due when pending, its next attempt time has come, and no live lease is
    on it. Rows another worker is claiming right now are skipped, not waited for.
    """
    query = (
        select(Delivery.id)
        .where(*_due(now))
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if delivery_ids is not None:
        query = query.where(Delivery.id.in_(delivery_ids))
    ids = list(session.execute(query).scalars())
    if not ids:
        return []
    token = uuid.uuid4().hex
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(claim_token=token, locked_until=now + lease, attempts=Delivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(Delivery, OutboxEvent, WebhookEndpoint)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .outerjoin(
            WebhookEndpoint,
            and_(
                WebhookEndpoint.id == Delivery.endpoint_id,
                WebhookEndpoint.partner_id == Delivery.partner_id,
            ),
        )
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .execution_options(populate_existing=True)
    ).all()
    jobs = []
    for delivery, event, endpoint in rows:
        jobs.append(
            Job(
                delivery_id=delivery.id,
                partner_id=delivery.partner_id,
                claim_token=token,
                channel=delivery.channel,
                attempt=delivery.attempts,
                event_id=event.id,
                event_type=event.type,
                event_created_at=event.created_at,
                payload=dict(event.payload),
                endpoint_id=delivery.endpoint_id,
                url=None if endpoint is None else endpoint.url,
                endpoint_enabled=endpoint is not None and endpoint.enabled,
                secrets=[] if endpoint is None else signing_secrets(session, endpoint, now),
                email=delivery.email,
                sender=customer_alarms.sender(session, delivery.partner_id)
                if delivery.target.startswith(customer_alarms.TARGET)
                else None,
            )
        )
    return jobs


def record(
    session: Session,
    job: Job,
    outcome: Outcome,
    *,
    now: datetime,
    backoff: Backoff,
    rng: random.Random | None = None,
) -> str:
    """Log the attempt and move the delivery on; returns its status afterwards.

    A success always counts, even if this worker's lease had expired meanwhile. A failure
    only reschedules the delivery while this worker still holds the claim, so a slow
    worker cannot undo the work of the one that took over.
    """
    session.execute(
        insert(DeliveryAttempt).values(
            partner_id=job.partner_id,
            delivery_id=job.delivery_id,
            attempted_at=now,
            succeeded=outcome.succeeded,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error[:1000],
        )
    )
    mine = and_(Delivery.id == job.delivery_id, Delivery.partner_id == job.partner_id)
    release = {"claim_token": None, "locked_until": None, "last_status_code": outcome.status_code}
    if outcome.succeeded:
        session.execute(
            update(Delivery)
            .where(mine, Delivery.status == "pending")
            .values(status="delivered", delivered_at=now, last_error="", **release)
            .execution_options(synchronize_session=False)
        )
        if job.endpoint_id is not None:
            session.execute(
                update(WebhookEndpoint)
                .where(
                    WebhookEndpoint.id == job.endpoint_id,
                    WebhookEndpoint.partner_id == job.partner_id,
                    WebhookEndpoint.failing_since.is_not(None),
                )
                .values(failing_since=None)
                .execution_options(synchronize_session=False)
            )
        return "delivered"
    give_up_at = session.execute(
        select(Delivery.give_up_at).where(mine, Delivery.claim_token == job.claim_token)
    ).scalar_one_or_none()
    if give_up_at is None:
        return "superseded"
    final = outcome.final or now >= give_up_at
    values: dict[str, Any] = {"last_error": outcome.error[:1000], **release}
    if final:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = now + backoff.delay(job.attempt, rng)
    session.execute(
        update(Delivery)
        .where(mine, Delivery.claim_token == job.claim_token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if job.endpoint_id is not None and not outcome.final:
        _note_endpoint_failure(session, job, now=now, backoff=backoff)
    return "failed" if final else "pending"


def _note_endpoint_failure(session: Session, job: Job, *, now: datetime, backoff: Backoff) -> None:
    endpoint = session.execute(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == job.endpoint_id, WebhookEndpoint.partner_id == job.partner_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if endpoint is None or not endpoint.enabled:
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        session.flush()
        return
    if now - endpoint.failing_since < backoff.disable_after:
        return
    days = (now - endpoint.failing_since).total_seconds() / 86_400
    reason = (
        f"disabled after failing for {days:.1f} days without a successful delivery; "
        "fix the receiver, then enable it and redeliver what failed"
    )
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason
    session.execute(
        update(Delivery)
        .where(
            Delivery.partner_id == job.partner_id,
            Delivery.endpoint_id == job.endpoint_id,
            Delivery.status == "pending",
        )
        .values(status="failed", last_error="endpoint disabled", claim_token=None)
        .execution_options(synchronize_session=False)
    )
    session.add(
        PartnerNotice(
            partner_id=job.partner_id,
            kind="webhook_endpoint_disabled",
            message=f"Webhook endpoint {endpoint.id} ({endpoint.url}) was {reason}.",
            endpoint_id=endpoint.id,
            created_at=now,
        )
    )
    session.flush()

"""Webhook endpoints: a partner's URLs, the event types each subscribes to, its signing
secret (``whsec_...``, rotated with an overlap window), test events and redelivery.

Signing secrets are stored encrypted with the server key (:mod:`creditline.auth.server_key`,
as API secrets are): a copy of the database alone cannot forge the partner's webhooks.
Read one with :func:`secret_of`."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, Select, func, insert, select, update
from sqlalchemy.orm import Session

from creditline.auth import server_key
from creditline.clock import utcnow
from creditline.db.tables import (
    Delivery,
    DeliveryAttempt,
    OutboxEvent,
    PartnerNotice,
    WebhookEndpoint,
)
from creditline.errors import InvalidInput, NotFound
from creditline.ledger.accounts import get_partner, lock_partner
from creditline.limits import check_page_size
from creditline.notify import targets
from creditline.notify.outbox import EVENT_TYPES

#: Sent only on request, to one endpoint, whatever it subscribes to.
WEBHOOK_TEST = "webhook.test"
MAX_ENDPOINTS = 20
#: How long the secret before a rotation still signs, unless told otherwise.
DEFAULT_OVERLAP = timedelta(hours=24)
#: How long a delivery is retried before it is marked failed.
RETRY_WINDOW = timedelta(hours=24)


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form: ``whsec_`` + base64 of 32 bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def secret_of(session: Session, endpoint: WebhookEndpoint) -> str:
    """The endpoint's current signing secret, in clear (to show once, or to sign with)."""
    return server_key.decrypt(_engine(session), endpoint.secret)


def _url(value: str, *, allow_private_targets: bool) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise InvalidInput(f"{value!r} is not an http(s) URL", param="url")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput("url must not contain spaces or control characters", param="url")
    targets.check_url(url, allow_private=allow_private_targets)
    return url


def _event_types(values: Sequence[str] | None) -> list[str]:
    if not values:
        return list(EVENT_TYPES)
    unknown = sorted(set(values) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            f"unknown event type {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}",
            param="event_types",
        )
    return [t for t in EVENT_TYPES if t in values]


def add_endpoint(
    session: Session,
    *,
    partner_id: int,
    url: str,
    event_types: Sequence[str] | None = None,
    description: str = "",
    allow_private_targets: bool = False,
) -> WebhookEndpoint:
    """Register an endpoint for ``partner_id``; subscribed to every event type by default.

    The URL must point to the public internet (:mod:`creditline.notify.targets`) unless
    ``allow_private_targets`` (the ``webhook_allow_private_targets`` setting) says
    otherwise."""
    # The URL first: its check may wait for a name lookup, which must not hold the lock.
    url = _url(url, allow_private_targets=allow_private_targets)
    # Locked next, so two endpoints added at once cannot both count one under the limit.
    lock_partner(session, partner_id)
    types = _event_types(event_types)
    description = description.strip()
    if len(description) > 500:
        raise InvalidInput("description is longer than 500 characters", param="description")
    count = session.execute(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.partner_id == partner_id)
    ).scalar_one()
    if count >= MAX_ENDPOINTS:
        raise InvalidInput(f"a partner has at most {MAX_ENDPOINTS} endpoints", param="url")
    with session.begin_nested():
        endpoint = WebhookEndpoint(
            partner_id=partner_id,
            url=url,
            event_types=types,
            description=description,
            secret=server_key.encrypt(_engine(session), new_secret()),
            enabled=True,
            disabled_reason="",
            created_at=utcnow(),
        )
        session.add(endpoint)
        session.flush()
    return endpoint


def get_endpoint(session: Session, partner_id: int, endpoint_id: int) -> WebhookEndpoint:
    """The partner's endpoint; another partner's is :class:`NotFound`, as a missing one."""
    endpoint = session.execute(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.partner_id == partner_id, WebhookEndpoint.id == endpoint_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}", param="endpoint_id")
    return endpoint


def list_endpoints(session: Session, partner_id: int) -> list[WebhookEndpoint]:
    """The partner's endpoints, oldest first."""
    get_partner(session, partner_id)
    return list(
        session.execute(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.partner_id == partner_id)
            .order_by(WebhookEndpoint.id)
        ).scalars()
    )


def endpoints_page(
    session: Session, *, partner_id: int, limit: int = 50, after_id: int | None = None
) -> tuple[list[WebhookEndpoint], bool]:
    """A page of the partner's endpoints, oldest first, and whether more follow (keyset on
    the endpoint id: pass the last id of a page as ``after_id``)."""
    check_page_size(limit)
    get_partner(session, partner_id)
    query = select(WebhookEndpoint).where(WebhookEndpoint.partner_id == partner_id)
    if after_id is not None:
        query = query.where(WebhookEndpoint.id > after_id)
    rows = list(session.execute(query.order_by(WebhookEndpoint.id).limit(limit + 1)).scalars())
    return rows[:limit], len(rows) > limit


def update_endpoint(
    session: Session,
    *,
    partner_id: int,
    endpoint_id: int,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    enabled: bool | None = None,
    allow_private_targets: bool = False,
) -> WebhookEndpoint:
    """Change an endpoint. Enabling it again clears its failure streak. A new URL is
    checked as in :func:`add_endpoint`."""
    endpoint = get_endpoint(session, partner_id, endpoint_id)
    with session.begin_nested():
        if url is not None:
            endpoint.url = _url(url, allow_private_targets=allow_private_targets)
        if event_types is not None:
            endpoint.event_types = _event_types(event_types)
        if enabled is True and not endpoint.enabled:
            endpoint.enabled = True
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
            endpoint.failing_since = None
        elif enabled is False and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_at = utcnow()
            endpoint.disabled_reason = "disabled by the partner"
        session.flush()
    return endpoint


def remove_endpoint(session: Session, *, partner_id: int, endpoint_id: int) -> None:
    """Delete an endpoint. Its pending deliveries end as failed; its log is kept."""
    endpoint = get_endpoint(session, partner_id, endpoint_id)
    with session.begin_nested():
        session.execute(
            update(Delivery)
            .where(
                Delivery.partner_id == partner_id,
                Delivery.endpoint_id == endpoint_id,
                Delivery.status == "pending",
            )
            .values(status="failed", last_error="endpoint removed", claim_token=None)
            .execution_options(synchronize_session=False)
        )
        # What ON DELETE SET NULL did before the keys held partner_id (which it would clear
        # too): the log and the notices stay, pointing nowhere.
        for table in (Delivery, PartnerNotice):
            session.execute(
                update(table)
                .where(table.partner_id == partner_id, table.endpoint_id == endpoint_id)
                .values(endpoint_id=None)
                .execution_options(synchronize_session=False)
            )
        session.delete(endpoint)
        session.flush()


def rotate_secret(
    session: Session,
    *,
    partner_id: int,
    endpoint_id: int,
    overlap: timedelta = DEFAULT_OVERLAP,
    now: datetime | None = None,
) -> WebhookEndpoint:
    """Give the endpoint a new secret; the old one keeps signing (beside the new) until
    ``overlap`` has passed, so a receiver can switch without missing an event."""
    if overlap < timedelta(0) or overlap > timedelta(days=7):
        raise InvalidInput("the overlap window must be 0 to 7 days", param="overlap")
    endpoint = get_endpoint(session, partner_id, endpoint_id)
    now = now or utcnow()
    with session.begin_nested():
        endpoint.previous_secret = endpoint.secret if overlap > timedelta(0) else None
        endpoint.previous_secret_expires_at = now + overlap if overlap > timedelta(0) else None
        endpoint.secret = server_key.encrypt(_engine(session), new_secret())
        session.flush()
    return endpoint


def signing_secrets(session: Session, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets (in clear) an event is signed with now: the current one, and the
    previous one while its overlap window lasts."""
    engine = _engine(session)
    keys = [server_key.decrypt(engine, endpoint.secret)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        keys.append(server_key.decrypt(engine, endpoint.previous_secret))
    return keys


def send_test(session: Session, *, partner_id: int, endpoint_id: int) -> Delivery:
    """Queue a ``webhook.test`` event for one endpoint (delivered by the worker)."""
    endpoint = get_endpoint(session, partner_id, endpoint_id)
    now = utcnow()
    with session.begin_nested():
        # Written already handed to delivery: it goes to this endpoint only.
        event_id = session.execute(
            insert(OutboxEvent)
            .values(
                partner_id=partner_id,
                type=WEBHOOK_TEST,
                payload={
                    "partner_id": partner_id,
                    "endpoint_id": endpoint.id,
                    "message": "a test event from creditline",
                    "occurred_at": now.isoformat(),
                },
                created_at=now,
                delivered_at=now,
            )
            .returning(OutboxEvent.id)
        ).scalar_one()
        delivery = Delivery(
            partner_id=partner_id,
            event_id=event_id,
            channel="webhook",
            target=f"webhook:{endpoint.id}",
            endpoint_id=endpoint.id,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            give_up_at=now + RETRY_WINDOW,
            last_error="",
            created_at=now,
        )
        session.add(delivery)
        session.flush()
    return delivery


def get_delivery(session: Session, partner_id: int, delivery_id: int) -> Delivery:
    """The partner's delivery; another partner's is :class:`NotFound`."""
    delivery = session.execute(
        select(Delivery)
        .where(Delivery.partner_id == partner_id, Delivery.id == delivery_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", param="delivery_id")
    return delivery


def redeliver(session: Session, *, partner_id: int, delivery_id: int) -> Delivery:
    """Send a delivery again now (delivered or failed), with a fresh retry window. The
    ``webhook-id`` stays the same, so a receiver that already has it can ignore it."""
    delivery = get_delivery(session, partner_id, delivery_id)
    if delivery.channel == "webhook":
        if delivery.endpoint_id is None:
            raise InvalidInput("the endpoint of this delivery was removed", param="delivery_id")
        if not get_endpoint(session, partner_id, delivery.endpoint_id).enabled:
            raise InvalidInput("the endpoint is disabled; enable it first", param="delivery_id")
    now = utcnow()
    with session.begin_nested():
        delivery.status = "pending"
        delivery.next_attempt_at = now
        delivery.give_up_at = now + RETRY_WINDOW
        delivery.locked_until = None
        delivery.claim_token = None
        delivery.delivered_at = None
        session.flush()
    return delivery


def list_deliveries(
    session: Session,
    *,
    partner_id: int,
    endpoint_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[Delivery], bool]:
    """A page of the partner's deliveries, newest first, and whether more follow."""
    check_page_size(limit)
    if status is not None and status not in ("pending", "delivered", "failed"):
        raise InvalidInput("status must be pending, delivered or failed", param="status")
    query = select(Delivery).where(Delivery.partner_id == partner_id)
    if endpoint_id is not None:
        get_endpoint(session, partner_id, endpoint_id)
        query = query.where(Delivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    if before_id is not None:
        query = query.where(Delivery.id < before_id)
    rows = list(session.execute(query.order_by(Delivery.id.desc()).limit(limit + 1)).scalars())
    return rows[:limit], len(rows) > limit


def delivery_log(session: Session, *, partner_id: int, delivery_id: int) -> list[DeliveryAttempt]:
    """Every attempt of one delivery, oldest first: time, status code, latency, error."""
    get_delivery(session, partner_id, delivery_id)
    return list(session.execute(_attempts(partner_id, delivery_id)).scalars())


def delivery_log_page(
    session: Session,
    *,
    partner_id: int,
    delivery_id: int,
    limit: int = 50,
    after_id: int | None = None,
) -> tuple[list[DeliveryAttempt], bool]:
    """A page of one delivery's attempts, oldest first, and whether more follow (keyset on
    the attempt id: pass the last id of a page as ``after_id``)."""
    check_page_size(limit)
    get_delivery(session, partner_id, delivery_id)
    query = _attempts(partner_id, delivery_id)
    if after_id is not None:
        query = query.where(DeliveryAttempt.id > after_id)
    rows = list(session.execute(query.limit(limit + 1)).scalars())
    return rows[:limit], len(rows) > limit


def _attempts(partner_id: int, delivery_id: int) -> Select[tuple[DeliveryAttempt]]:
    return (
        select(DeliveryAttempt)
        .where(
            DeliveryAttempt.partner_id == partner_id,
            DeliveryAttempt.delivery_id == delivery_id,
        )
        .order_by(DeliveryAttempt.id)
    )

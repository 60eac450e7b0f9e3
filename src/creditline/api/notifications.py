"""Alarm delivery settings (as in the console's Settings > Notifications and ``creditline
webhooks`` / ``creditline notify settings``): the partner's webhook endpoints, their
deliveries and delivery log, and who is emailed about alarms.

Every rule is the core's (:mod:`creditline.notify.endpoints`,
:mod:`creditline.notify.recipients`); this module only maps requests to it. Any partner
key reads; only an admin key changes anything. A signing secret is answered only by the
request that created or rotated it (``Cache-Control: no-store``), never by a list or a
replay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditline.api.context import Call, call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Body
from creditline.config import app_settings
from creditline.db.tables import MAX_BIGINT, Delivery, DeliveryAttempt, WebhookEndpoint
from creditline.limits import MAX_REQUEST_PAGE_SIZE
from creditline.notify import endpoints, recipients
from creditline.notify.outbox import EVENT_TYPES
from creditline.notify.recipients import EmailSettings

router = APIRouter(tags=["notifications"], responses=ERROR_RESPONSES)

EndpointId = Path(ge=1, le=MAX_BIGINT)
DeliveryId = Path(ge=1, le=MAX_BIGINT)
#: The longest overlap of a secret rotation the core allows (7 days), in seconds.
MAX_OVERLAP_SECONDS = 7 * 24 * 3600
NO_STORE = {"Cache-Control": "no-store"}


# --- Webhook endpoints -------------------------------------------------------------------


class EndpointOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, e: WebhookEndpoint) -> EndpointOut:
        return cls(
            id=e.id,
            url=e.url,
            event_types=list(e.event_types),
            description=e.description,
            enabled=e.enabled,
            disabled_at=e.disabled_at,
            disabled_reason=e.disabled_reason or None,
            failing_since=e.failing_since,
            previous_secret_expires_at=e.previous_secret_expires_at,
            created_at=e.created_at,
        )


class EndpointWithSecret(EndpointOut):
    secret: str | None = Field(
        description="the signing secret (whsec_...), shown only in this answer; null when "
        "an idempotent request replays"
    )


class EndpointPage(BaseModel):
    data: list[EndpointOut]
    has_more: bool
    next_after: int | None


class EndpointIn(Body):
    url: str = Field(description="where events are POSTed (http or https)")
    event_types: list[str] | None = Field(
        None, description=f"event types to send; omitted or empty: all ({', '.join(EVENT_TYPES)})"
    )
    description: str = ""


class EndpointChange(Body):
    enabled: bool = Field(
        description="false stops sending to it; true sends again and clears its failure streak"
    )


class RotateIn(Body):
    overlap_seconds: int = Field(
        int(endpoints.DEFAULT_OVERLAP.total_seconds()),
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="how long the old secret keeps signing beside the new one",
    )


def _with_secret(s: Session, endpoint: WebhookEndpoint) -> EndpointWithSecret:
    return EndpointWithSecret(
        **EndpointOut.of(endpoint).model_dump(), secret=endpoints.secret_of(s, endpoint)
    )


def _without_secret(out: BaseModel) -> BaseModel:
    # A secret must never rest in plain text, so a replay answers without it.
    return out.model_copy(update={"secret": None})


@router.get("/webhook-endpoints", response_model=EndpointPage)
def list_endpoints(
    c: Call = Depends(call),
    limit: int = Query(50, ge=1, le=MAX_REQUEST_PAGE_SIZE),
    after: int | None = Query(None, ge=1, le=MAX_BIGINT),
) -> EndpointPage:
    """The partner's webhook endpoints, oldest first (never their secrets)."""
    partner_id = c.principal.partner()
    with c.read() as s:
        rows, more = endpoints.endpoints_page(s, partner_id=partner_id, limit=limit, after_id=after)
        data = [EndpointOut.of(e) for e in rows]
    return EndpointPage(data=data, has_more=more, next_after=data[-1].id if more else None)


@router.post("/webhook-endpoints", status_code=201, response_model=EndpointWithSecret)
def add_endpoint(body: EndpointIn, c: Call = Depends(write_call)) -> Response:
    """Add an endpoint; the answer carries its signing secret, shown only this once."""
    partner_id = c.principal.partner("admin")
    allow_private = app_settings(c.request.app).webhook_allow_private_targets

    def action(s: Session) -> EndpointWithSecret:
        endpoint = endpoints.add_endpoint(
            s,
            partner_id=partner_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            allow_private_targets=allow_private,
        )
        return _with_secret(s, endpoint)

    answer = c.write(action, status_code=201, stored=_without_secret)
    answer.headers.update(NO_STORE)
    return answer


@router.get("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(endpoint_id: int = EndpointId, c: Call = Depends(call)) -> EndpointOut:
    """One endpoint (never its secret)."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return EndpointOut.of(endpoints.get_endpoint(s, partner_id, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
def change_endpoint(
    body: EndpointChange, endpoint_id: int = EndpointId, c: Call = Depends(write_call)
) -> Response:
    """Enable or disable an endpoint."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: EndpointOut.of(
            endpoints.update_endpoint(
                s, partner_id=partner_id, endpoint_id=endpoint_id, enabled=body.enabled
            )
        )
    )


@router.delete("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
def remove_endpoint(endpoint_id: int = EndpointId, c: Call = Depends(write_call)) -> Response:
    """Remove an endpoint; its pending deliveries end as failed, its log stays. Answers
    the endpoint as it was."""
    partner_id = c.principal.partner("admin")

    def action(s: Session) -> EndpointOut:
        removed = EndpointOut.of(endpoints.get_endpoint(s, partner_id, endpoint_id))
        endpoints.remove_endpoint(s, partner_id=partner_id, endpoint_id=endpoint_id)
        return removed

    return c.write(action)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret)
def rotate_secret(
    body: RotateIn | None = None, endpoint_id: int = EndpointId, c: Call = Depends(write_call)
) -> Response:
    """A new signing secret, shown only in this answer; the old one keeps signing beside it
    for the overlap window (default 24 hours)."""
    partner_id = c.principal.partner("admin")
    overlap = timedelta(seconds=(body or RotateIn()).overlap_seconds)

    def action(s: Session) -> EndpointWithSecret:
        endpoint = endpoints.rotate_secret(
            s, partner_id=partner_id, endpoint_id=endpoint_id, overlap=overlap
        )
        return _with_secret(s, endpoint)

    answer = c.write(action, stored=_without_secret)
    answer.headers.update(NO_STORE)
    return answer


# --- Deliveries and the delivery log -----------------------------------------------------


class DeliveryOut(BaseModel):
    id: int
    event_id: int
    channel: str
    endpoint_id: int | None
    email: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            event_id=d.event_id,
            channel=d.channel,
            endpoint_id=d.endpoint_id,
            email=d.email,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error or None,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
        )


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    has_more: bool
    next_before: int | None


class AttemptOut(BaseModel):
    id: int
    attempted_at: datetime
    succeeded: bool
    status_code: int | None
    latency_ms: int
    error: str | None

    @classmethod
    def of(cls, a: DeliveryAttempt) -> AttemptOut:
        return cls(
            id=a.id,
            attempted_at=a.attempted_at,
            succeeded=a.succeeded,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            error=a.error or None,
        )


class AttemptPage(BaseModel):
    data: list[AttemptOut]
    has_more: bool
    next_after: int | None


@router.post("/webhook-endpoints/{endpoint_id}/test", status_code=201, response_model=DeliveryOut)
def send_test(endpoint_id: int = EndpointId, c: Call = Depends(write_call)) -> Response:
    """Queue a ``webhook.test`` event for one endpoint; the answer is its delivery, which
    the delivery worker sends (follow it in ``/v1/deliveries/{id}``)."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: DeliveryOut.of(
            endpoints.send_test(s, partner_id=partner_id, endpoint_id=endpoint_id)
        ),
        status_code=201,
    )


@router.get("/deliveries", response_model=DeliveryPage)
def list_deliveries(
    c: Call = Depends(call),
    endpoint_id: int | None = Query(None, ge=1, le=MAX_BIGINT, description="only this endpoint's"),
    status: Literal["pending", "delivered", "failed"] | None = Query(None),
    limit: int = Query(50, ge=1, le=MAX_REQUEST_PAGE_SIZE),
    before: int | None = Query(None, ge=1, le=MAX_BIGINT),
) -> DeliveryPage:
    """The partner's deliveries (webhook and email), newest first."""
    partner_id = c.principal.partner()
    with c.read() as s:
        rows, more = endpoints.list_deliveries(
            s,
            partner_id=partner_id,
            endpoint_id=endpoint_id,
            status=status,
            limit=limit,
            before_id=before,
        )
        data = [DeliveryOut.of(d) for d in rows]
    return DeliveryPage(data=data, has_more=more, next_before=data[-1].id if more else None)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut)
def get_delivery(delivery_id: int = DeliveryId, c: Call = Depends(call)) -> DeliveryOut:
    """One delivery."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return DeliveryOut.of(endpoints.get_delivery(s, partner_id, delivery_id))


@router.get("/deliveries/{delivery_id}/attempts", response_model=AttemptPage)
def delivery_log(
    delivery_id: int = DeliveryId,
    c: Call = Depends(call),
    limit: int = Query(50, ge=1, le=MAX_REQUEST_PAGE_SIZE),
    after: int | None = Query(None, ge=1, le=MAX_BIGINT),
) -> AttemptPage:
    """The delivery log of one delivery, oldest first: time, status code, latency, error."""
    partner_id = c.principal.partner()
    with c.read() as s:
        rows, more = endpoints.delivery_log_page(
            s, partner_id=partner_id, delivery_id=delivery_id, limit=limit, after_id=after
        )
        data = [AttemptOut.of(a) for a in rows]
    return AttemptPage(data=data, has_more=more, next_after=data[-1].id if more else None)


@router.post("/deliveries/{delivery_id}/redeliver", response_model=DeliveryOut)
def redeliver(delivery_id: int = DeliveryId, c: Call = Depends(write_call)) -> Response:
    """Send a delivery again now, with a fresh retry window and the same ``webhook-id``."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: DeliveryOut.of(
            endpoints.redeliver(s, partner_id=partner_id, delivery_id=delivery_id)
        )
    )


# --- Email settings ----------------------------------------------------------------------


class NotificationSettingsOut(BaseModel):
    recipients: list[str] = Field(description="who is emailed when a customer reaches a threshold")
    email_customer: bool = Field(description="whether the customer's own address is emailed too")

    @classmethod
    def of(cls, settings: EmailSettings) -> NotificationSettingsOut:
        return cls(recipients=settings.recipients, email_customer=settings.email_customer)


class NotificationSettingsChange(Body):
    recipients: list[str] | None = Field(
        None, description="replaces the recipient list ([] clears it); omitted: kept"
    )
    add: list[str] = Field([], description="addresses to add")
    remove: list[str] = Field([], description="addresses to remove")
    email_customer: bool | None = Field(None, description="omitted: kept")


@router.get("/notification-settings", response_model=NotificationSettingsOut)
def notification_settings(c: Call = Depends(call)) -> NotificationSettingsOut:
    """Who is emailed about alarms. (The message centre, ``/v1/alarms``, always has them.)"""
    partner_id = c.principal.partner()
    with c.read() as s:
        return NotificationSettingsOut.of(recipients.email_settings(s, partner_id))


@router.patch("/notification-settings", response_model=NotificationSettingsOut)
def change_notification_settings(
    body: NotificationSettingsChange, c: Call = Depends(write_call)
) -> Response:
    """Replace, add or remove alarm email recipients, and/or switch emailing the customer.
    Addresses keep the order given, without repeats (compared case-insensitively)."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: NotificationSettingsOut.of(
            recipients.update_email_settings(
                s,
                partner_id=partner_id,
                recipients=body.recipients,
                add=body.add,
                remove=body.remove,
                email_customer=body.email_customer,
            )
        )
    )

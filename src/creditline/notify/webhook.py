"""The webhook channel: a JSON body ``{"type", "timestamp", "data"}`` POSTed with the
Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from creditline.notify.deliveries import Job, Outcome

USER_AGENT = "creditline-webhooks/1"


def body(job: Job) -> str:
    """The request body, serialised once so the signature covers exactly these bytes."""
    document = {
        "type": job.event_type,
        "timestamp": job.event_created_at.isoformat(),
        "data": job.payload,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def sign(secrets: Sequence[str], *, message_id: str, timestamp: datetime, data: str) -> str:
    """The ``webhook-signature`` header: one ``v1,<base64>`` per secret, space-separated
    (during a rotation's overlap window a receiver with either secret can verify)."""
    return " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=timestamp, data=data)
        for secret in secrets
    )


def headers(job: Job, data: str, *, now: datetime | None = None) -> dict[str, str]:
    """The signed headers for one attempt; the timestamp is the time of sending, since
    receivers reject signatures older than a few minutes."""
    sent_at = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": job.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": sign(
            job.secrets, message_id=job.message_id, timestamp=sent_at, data=data
        ),
    }


def deliver(job: Job, client: httpx.Client) -> Outcome:
    """POST the event; any 2xx answer is a success, anything else is retried."""
    if job.url is None:
        return Outcome(False, 0, error="endpoint removed", final=True)
    if not job.endpoint_enabled:
        return Outcome(False, 0, error="endpoint disabled", final=True)
    data = body(job)
    started = time.monotonic()
    try:
        response = client.post(job.url, content=data.encode(), headers=headers(job, data))
    except httpx.HTTPError as exc:
        latency = int((time.monotonic() - started) * 1000)
        return Outcome(False, latency, error=f"{exc.__class__.__name__}: {exc}")
    latency = int((time.monotonic() - started) * 1000)
    if 200 <= response.status_code < 300:
        return Outcome(True, latency, status_code=response.status_code)
    snippet = response.text[:200].replace("\n", " ")
    return Outcome(
        False,
        latency,
        status_code=response.status_code,
        error=f"HTTP {response.status_code}: {snippet}",
    )

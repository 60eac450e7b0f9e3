"""The webhook channel: a JSON body ``{"type", "timestamp", "data"}`` POSTed with the
Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from creditline.notify import targets
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


def reason(exc: Exception) -> str:
    """A short reason for the delivery log, in words of ours: never the text of the
    exception (it can quote addresses, certificates or the receiver's words)."""
    if isinstance(exc, targets.TargetNotAllowed):
        return targets.NOT_ALLOWED
    if isinstance(exc, targets.NameNotResolved):
        return targets.NOT_RESOLVED
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return "TLS handshake failed"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "connection closed by the receiver"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return "invalid URL"
    return "request failed"


def deliver(job: Job, client: httpx.Client) -> Outcome:
    """POST the event; any 2xx answer is a success, anything else is retried. The log
    keeps the status code and a short reason, never what the receiver answered."""
    if job.url is None:
        return Outcome(False, 0, error="endpoint removed", final=True)
    if not job.endpoint_enabled:
        return Outcome(False, 0, error="endpoint disabled", final=True)
    data = body(job)
    started = time.monotonic()
    try:
        # The body is not read: nothing of it is kept, and a receiver cannot make the
        # worker hold a large answer.
        with client.stream(
            "POST", job.url, content=data.encode(), headers=headers(job, data)
        ) as response:
            status = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        latency = int((time.monotonic() - started) * 1000)
        return Outcome(False, latency, error=reason(exc))
    latency = int((time.monotonic() - started) * 1000)
    if 200 <= status < 300:
        return Outcome(True, latency, status_code=status)
    error = f"HTTP {status}"
    if 300 <= status < 400:
        error += " (redirects are not followed)"
    return Outcome(False, latency, status_code=status, error=error)

"""Commands for alarm delivery: ``creditline worker``, ``creditline webhooks ...`` and
``creditline notify settings``."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, MAX_BIGINT, emit, session, state

if TYPE_CHECKING:
    from creditline.db.tables import Delivery, DeliveryAttempt, WebhookEndpoint

webhooks_app = typer.Typer(
    help="Manage webhook endpoints: add, list, remove, test, and redeliver events."
)
notify_app = typer.Typer(help="Show and change alarm notification settings.")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(notify_app, name="notify")

PARTNER = typer.Option(..., "--partner", min=1, max=MAX_BIGINT, help="The partner's UIN.")
ENDPOINT = typer.Option(..., "--id", min=1, max=MAX_BIGINT, help="The endpoint's id.")


def endpoint_view(endpoint: WebhookEndpoint, *, secret: str | None = None) -> dict[str, Any]:
    """An endpoint as printed; the secret only when just created or rotated."""
    view: dict[str, Any] = {
        "id": endpoint.id,
        "partner_id": endpoint.partner_id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason or None,
        "failing_since": endpoint.failing_since,
        "created_at": endpoint.created_at,
    }
    if secret is not None:
        view["secret"] = secret
        view["previous_secret_expires_at"] = endpoint.previous_secret_expires_at
    return view


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    """A delivery as printed."""
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "channel": delivery.channel,
        "endpoint_id": delivery.endpoint_id,
        "email": delivery.email,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == "pending" else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error or None,
        "delivered_at": delivery.delivered_at,
        "created_at": delivery.created_at,
    }


def attempt_view(attempt: DeliveryAttempt) -> dict[str, Any]:
    """One line of the delivery log as printed."""
    return {
        "attempted_at": attempt.attempted_at,
        "succeeded": attempt.succeeded,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error or None,
    }


@app.command("worker")
def worker_command(
    once: bool = typer.Option(False, "--once", help="Do one round and exit."),
    lease_seconds: float = typer.Option(
        60.0,
        "--lease-seconds",
        help="How long, in seconds, a claimed delivery is held before another "
        "worker may take it (a worker killed mid-delivery is retried after this).",
    ),
    batch_size: int = typer.Option(
        20, "--batch-size", min=1, max=500, help="Claim at most this many deliveries at a time."
    ),
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, max=64, help="Send at most this many deliveries at once."
    ),
    poll_interval: float = typer.Option(
        0.2, "--poll-interval", help="The seconds to wait between polls of the outbox."
    ),
    backoff_base: float = typer.Option(
        5.0,
        "--backoff-base",
        help="The seconds before the first retry; the wait doubles each time.",
    ),
) -> None:
    """Deliver alarms and events from the outbox until stopped (SIGTERM or Ctrl-C)."""
    from creditline.notify.deliveries import Backoff
    from creditline.notify.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    worker = Worker(
        # A long-running worker waits for its database; one round (--once) does not.
        state.engine(wait=not once),
        lease=timedelta(seconds=lease_seconds),
        batch_size=batch_size,
        concurrency=concurrency,
        poll_interval=poll_interval,
        backoff=Backoff(base=timedelta(seconds=backoff_base)),
    )
    try:
        if once:
            done = worker.run_once()
            emit({"worked": done}, as_json=True)
            return
        stop = threading.Event()

        def _stop(signum: int, _frame: FrameType | None) -> None:
            # Finish the attempts in flight, then leave: nothing is half-recorded.
            logging.getLogger(__name__).info("signal %s: stopping after this round", signum)
            stop.set()
            worker.wake()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        worker.run_forever(stop)
    finally:
        worker.close()


@webhooks_app.command("add")
def webhooks_add(
    partner: int = PARTNER,
    url: str = typer.Option(..., "--url", help="The URL that events are POSTed to."),
    event: list[str] = typer.Option(
        [],
        "--event",
        help="An event type to send (repeat the option for more); by default every type "
        "is sent: credit.threshold_reached, credit.allocation_recorded, "
        "credit.forecast_exhaustion and credit.top_up_refused.",
    ),
    description: str = typer.Option(
        "", "--description", help="A description kept with the endpoint."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a webhook endpoint and print its id and signing secret (whsec_...)."""
    from creditline.config import get_settings
    from creditline.notify import endpoints

    with session(audited=True) as s:
        endpoint = endpoints.add_endpoint(
            s,
            partner_id=partner,
            url=url,
            event_types=event or None,
            description=description,
            allow_private_targets=get_settings().webhook_allow_private_targets,
        )
        view = endpoint_view(endpoint, secret=endpoints.secret_of(s, endpoint))
    emit(
        view,
        as_json=as_json,
        text=f"endpoint {view['id']} -> {view['url']} ({', '.join(view['event_types'])})\n"
        f"secret: {view['secret']}",
    )


@webhooks_app.command("list")
def webhooks_list(partner: int = PARTNER, as_json: bool = JSON_OPTION) -> None:
    """List the partner's webhook endpoints."""
    from creditline.notify import endpoints

    with session(reading=True) as s:
        views = [endpoint_view(e) for e in endpoints.list_endpoints(s, partner)]
    lines = [
        f"{v['id']:>6}  {'enabled ' if v['enabled'] else 'DISABLED'}  {v['url']}  "
        f"{', '.join(v['event_types'])}"
        for v in views
    ]
    emit(views, as_json=as_json, text="\n".join(lines) or "no endpoints")


@webhooks_app.command("remove")
def webhooks_remove(
    partner: int = PARTNER,
    endpoint_id: int = ENDPOINT,
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove an endpoint; its pending deliveries end as failed."""
    from creditline.notify import endpoints

    with session(audited=True) as s:
        endpoints.remove_endpoint(s, partner_id=partner, endpoint_id=endpoint_id)
    emit({"id": endpoint_id, "removed": True}, as_json=as_json, text=f"removed {endpoint_id}")


def _set_enabled(partner: int, endpoint_id: int, enabled: bool, as_json: bool) -> None:
    from creditline.notify import endpoints

    with session(audited=True) as s:
        endpoint = endpoints.update_endpoint(
            s, partner_id=partner, endpoint_id=endpoint_id, enabled=enabled
        )
        view = endpoint_view(endpoint)
    emit(
        view, as_json=as_json, text=f"endpoint {endpoint_id} {'enabled' if enabled else 'disabled'}"
    )


@webhooks_app.command("enable")
def webhooks_enable(
    partner: int = PARTNER,
    endpoint_id: int = ENDPOINT,
    as_json: bool = JSON_OPTION,
) -> None:
    """Enable an endpoint again (e.g. after it was disabled for failing)."""
    _set_enabled(partner, endpoint_id, True, as_json)


@webhooks_app.command("disable")
def webhooks_disable(
    partner: int = PARTNER,
    endpoint_id: int = ENDPOINT,
    as_json: bool = JSON_OPTION,
) -> None:
    """Stop sending to an endpoint without removing it."""
    _set_enabled(partner, endpoint_id, False, as_json)


@webhooks_app.command("rotate-secret")
def webhooks_rotate_secret(
    partner: int = PARTNER,
    endpoint_id: int = ENDPOINT,
    overlap_hours: float = typer.Option(
        24.0,
        "--overlap-hours",
        help="How many hours the old secret keeps signing beside the new one.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Give an endpoint a new secret; the old one stays valid for the overlap window."""
    from creditline.notify import endpoints

    with session(audited=True) as s:
        endpoint = endpoints.rotate_secret(
            s,
            partner_id=partner,
            endpoint_id=endpoint_id,
            overlap=timedelta(hours=overlap_hours),
        )
        view = endpoint_view(endpoint, secret=endpoints.secret_of(s, endpoint))
    emit(view, as_json=as_json, text=f"new secret: {view['secret']}")


@webhooks_app.command("test")
def webhooks_test(
    partner: int = PARTNER,
    endpoint_id: int = ENDPOINT,
    wait: bool = typer.Option(
        False, "--wait", help="Send it now from this command and print the outcome."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send a webhook.test event to one endpoint."""
    from creditline.notify import endpoints
    from creditline.notify.worker import Worker

    with session() as s:
        delivery_id = endpoints.send_test(s, partner_id=partner, endpoint_id=endpoint_id).id
    if wait:
        worker = Worker(state.engine())
        try:
            worker.run_once(delivery_ids=[delivery_id])
        finally:
            worker.close()
    with session() as s:
        view = delivery_view(endpoints.get_delivery(s, partner, delivery_id))
        view["log"] = [
            attempt_view(a)
            for a in endpoints.delivery_log(s, partner_id=partner, delivery_id=delivery_id)
        ]
    emit(view, as_json=as_json, text=f"test delivery {delivery_id}: {view['status']}")


@webhooks_app.command("redeliver")
def webhooks_redeliver(
    partner: int = PARTNER,
    delivery_id: int = typer.Option(
        ..., "--delivery", min=1, max=MAX_BIGINT, help="The delivery's id."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send a delivery again (the worker picks it up at once)."""
    from creditline.notify import endpoints

    with session() as s:
        view = delivery_view(endpoints.redeliver(s, partner_id=partner, delivery_id=delivery_id))
    emit(view, as_json=as_json, text=f"delivery {delivery_id} queued again")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    partner: int = PARTNER,
    endpoint_id: int | None = typer.Option(
        None, "--id", min=1, max=MAX_BIGINT, help="List only this endpoint's deliveries."
    ),
    status: str | None = typer.Option(
        None, "--status", help="List only deliveries in this state: pending, delivered or failed."
    ),
    limit: int = typer.Option(50, "--limit", help="List at most this many deliveries."),
    before: int | None = typer.Option(
        None,
        "--before",
        min=1,
        max=MAX_BIGINT,
        help="Continue with the deliveries older than this delivery id.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List deliveries, newest first."""
    from creditline.notify import endpoints

    with session(reading=True) as s:
        rows, more = endpoints.list_deliveries(
            s,
            partner_id=partner,
            endpoint_id=endpoint_id,
            status=status,
            limit=limit,
            before_id=before,
        )
        views = [delivery_view(d) for d in rows]
    lines = [
        f"{v['id']:>8}  {v['status']:<9} {v['channel']:<7} event {v['event_id']}  "
        f"attempts {v['attempts']}  {v['last_error'] or ''}"
        for v in views
    ]
    emit({"data": views, "has_more": more}, as_json=as_json, text="\n".join(lines) or "none")


@webhooks_app.command("log")
def webhooks_log(
    partner: int = PARTNER,
    delivery_id: int = typer.Option(
        ..., "--delivery", min=1, max=MAX_BIGINT, help="The delivery's id."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the delivery log of one delivery: time, status code, latency, error."""
    from creditline.notify import endpoints

    with session(reading=True) as s:
        views = [
            attempt_view(a)
            for a in endpoints.delivery_log(s, partner_id=partner, delivery_id=delivery_id)
        ]
    lines = [
        f"{v['attempted_at']}  {'ok ' if v['succeeded'] else 'ERR'}  {v['status_code'] or '-'}  "
        f"{v['latency_ms']} ms  {v['error'] or ''}"
        for v in views
    ]
    emit(views, as_json=as_json, text="\n".join(lines) or "no attempts yet")


@notify_app.command("settings")
def notify_settings(
    partner: int = PARTNER,
    recipient: list[str] = typer.Option(
        [], "--recipient", help="Replace the recipient list with these addresses (repeat)."
    ),
    add: list[str] = typer.Option([], "--add", help="Add a recipient (repeat)."),
    remove: list[str] = typer.Option([], "--remove", help="Remove a recipient (repeat)."),
    clear: bool = typer.Option(False, "--clear", help="Remove every recipient."),
    email_customer: bool | None = typer.Option(
        None,
        "--email-customer/--no-email-customer",
        help="Also email the customer's own address when it reaches a threshold.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show or change who is emailed when a customer reaches a threshold."""
    from creditline.notify import recipients

    changing = bool(recipient or add or remove or clear or email_customer is not None)
    with session(audited=changing) as s:
        if changing:
            current = recipients.update_email_settings(
                s,
                partner_id=partner,
                recipients=recipient if recipient or clear else None,
                add=add,
                remove=remove,
                email_customer=email_customer,
            )
        else:
            current = recipients.email_settings(s, partner)
    view = {
        "partner_id": current.partner_id,
        "recipients": current.recipients,
        "email_customer": current.email_customer,
    }
    emit(
        view,
        as_json=as_json,
        text=f"recipients: {', '.join(current.recipients) or '(none)'}\n"
        f"email the customer too: {'yes' if current.email_customer else 'no'}",
    )

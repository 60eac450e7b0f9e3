"""Settings > Notifications: who is emailed about alarms, and the partner's webhooks (add,
send a test, see the delivery log, rotate the signing secret, remove)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline.config import app_settings
from creditline.console.visit import PathId, Visit, visit
from creditline.db.tables import WebhookEndpoint
from creditline.errors import CreditlineError
from creditline.notify import endpoints, recipients

router = APIRouter(prefix="/settings")


def _page(
    v: Visit,
    *,
    status: int = 200,
    error: str = "",
    secret_of: WebhookEndpoint | None = None,
) -> Response:
    return v.render(
        "notifications.html",
        status=status,
        email=recipients.email_settings(v.s, v.partner_id),
        hooks=endpoints.list_endpoints(v.s, v.partner_id),
        error=error,
        secret_of=secret_of,
        secret=None if secret_of is None else endpoints.secret_of(v.s, secret_of),
    )


@router.get("/notifications")
def notifications(request: Request) -> Response:
    """Email recipients and webhooks."""
    with visit(request) as v:
        return _page(v)


@router.post("/notifications/email")
def email(request: Request, addresses: str = Form(""), email_customer: str = Form("")) -> Response:
    """Replace the alarm email recipients (one address a line)."""
    with visit(request) as v:
        v.require_manage()
        listed = [a.strip() for a in addresses.replace(",", "\n").splitlines() if a.strip()]
        try:
            recipients.update_email_settings(
                v.s, partner_id=v.partner_id, recipients=listed, email_customer=bool(email_customer)
            )
        except CreditlineError as exc:
            return _page(v, status=422, error=exc.message)
        v.notice("Email recipients saved.")
    return RedirectResponse("/settings/notifications", status_code=303)


@router.post("/webhooks")
def add_webhook(request: Request, url: str = Form(""), description: str = Form("")) -> Response:
    """Add an endpoint (every event type); its signing secret is shown once, now."""
    with visit(request) as v:
        v.require_manage()
        try:
            hook = endpoints.add_endpoint(
                v.s,
                partner_id=v.partner_id,
                url=url,
                description=description,
                allow_private_targets=app_settings(request.app).webhook_allow_private_targets,
            )
        except CreditlineError as exc:
            return _page(v, status=422, error=exc.message)
        response = _page(v, secret_of=hook)
        response.headers["Cache-Control"] = "no-store"
        return response


@router.post("/webhooks/{endpoint_id}/test")
def test_webhook(request: Request, endpoint_id: PathId) -> Response:
    """Queue a test event for one endpoint."""
    with visit(request) as v:
        v.require_manage()
        endpoints.send_test(v.s, partner_id=v.partner_id, endpoint_id=endpoint_id)
        v.notice("Test event queued; it appears in the delivery log once sent.")
    return RedirectResponse(f"/settings/webhooks/{endpoint_id}", status_code=303)


@router.post("/webhooks/{endpoint_id}/rotate")
def rotate(request: Request, endpoint_id: PathId) -> Response:
    """A new signing secret; the old one keeps signing beside it for 24 hours."""
    with visit(request) as v:
        v.require_manage()
        hook = endpoints.rotate_secret(v.s, partner_id=v.partner_id, endpoint_id=endpoint_id)
        response = _page(v, secret_of=hook)
        response.headers["Cache-Control"] = "no-store"
        return response


@router.post("/webhooks/{endpoint_id}/enabled")
def toggle(request: Request, endpoint_id: PathId, enabled: str = Form("")) -> Response:
    """Enable (clearing its failure streak) or disable an endpoint."""
    with visit(request) as v:
        v.require_manage()
        endpoints.update_endpoint(
            v.s, partner_id=v.partner_id, endpoint_id=endpoint_id, enabled=enabled == "1"
        )
    return RedirectResponse("/settings/notifications", status_code=303)


@router.post("/webhooks/{endpoint_id}/remove")
def remove(request: Request, endpoint_id: PathId) -> Response:
    """Remove an endpoint; its log stays."""
    with visit(request) as v:
        v.require_manage()
        endpoints.remove_endpoint(v.s, partner_id=v.partner_id, endpoint_id=endpoint_id)
        v.notice("Webhook endpoint removed.")
    return RedirectResponse("/settings/notifications", status_code=303)


@router.get("/webhooks/{endpoint_id}")
def delivery_log(request: Request, endpoint_id: PathId) -> Response:
    """One endpoint's deliveries, newest first, each with its attempts."""
    with visit(request) as v:
        hook = endpoints.get_endpoint(v.s, v.partner_id, endpoint_id)
        rows, _ = endpoints.list_deliveries(
            v.s, partner_id=v.partner_id, endpoint_id=endpoint_id, limit=50
        )
        attempts = {
            d.id: endpoints.delivery_log(v.s, partner_id=v.partner_id, delivery_id=d.id)
            for d in rows
        }
        return v.render("webhook.html", hook=hook, rows=rows, attempts=attempts)

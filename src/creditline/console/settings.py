"""Settings: the partner's default alarm thresholds and forecast alarm window, and its
console users."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline.auth import keys, users
from creditline.console.customers import _parse_thresholds, _thresholds_saved, parse_days
from creditline.console.visit import PathId, Visit, visit
from creditline.errors import CreditlineError
from creditline.ledger import alarms, customer_settings, forecast

router = APIRouter()


def _settings(
    v: Visit,
    *,
    status: int = 200,
    new_key: keys.ApiKey | None = None,
    typed_thresholds: str | None = None,
    typed_forecast_days: str | None = None,
    **errors: str,
) -> Response:
    return v.render(
        "settings.html",
        status=status,
        users=users.list_users(v.s, v.partner_id),
        roles=users.PARTNER_ROLES,
        # The partner's own keys; its customers' keys are theirs to see.
        keys=[k for k in keys.list_keys(v.s, partner_id=v.partner_id) if k.principal == "partner"],
        new_key=new_key,
        typed_thresholds=typed_thresholds,
        typed_forecast_days=typed_forecast_days,
        errors=errors,
        customer_side=customer_settings.customer_settings(v.s, v.partner_id),
    )


@router.get("/settings")
def settings_page(request: Request) -> Response:
    """Thresholds and users."""
    with visit(request) as v:
        return _settings(v)


@router.post("/settings/thresholds")
def default_thresholds(request: Request, thresholds: str = Form("")) -> Response:
    """The partner's default alarm thresholds (customers without their own list)."""
    with visit(request) as v:
        v.require_manage()
        typed = _parse_thresholds(thresholds)
        try:
            saved = alarms.set_thresholds(v.s, partner_id=v.partner_id, thresholds=typed)
        except CreditlineError as exc:
            # The list as typed stays in the field, beside what is wrong with it.
            return _settings(
                v,
                status=422,
                typed_thresholds=thresholds,
                thresholds=f"Not saved: {exc.message}.",
            )
        v.notice(
            "Default thresholds saved: "
            + ", ".join(f"{t}%" for t in saved)
            + _thresholds_saved(typed, saved)
            + "."
        )
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/forecast-alarm")
def default_forecast_alarm(request: Request, days: str = Form("")) -> Response:
    """The partner's default forecast alarm window (customers without their own)."""
    with visit(request) as v:
        v.require_manage()
        try:
            saved = forecast.set_alarm_days(v.s, partner_id=v.partner_id, days=parse_days(days))
        except CreditlineError as exc:
            return _settings(
                v, status=422, typed_forecast_days=days, forecast=f"Not saved: {exc.message}."
            )
        v.notice("Default forecast alarm saved: " + (f"within {saved} days." if saved else "off."))
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/users")
def add_user(
    request: Request, email: str = Form(""), password: str = Form(""), role: str = Form("")
) -> Response:
    """A partner admin adds a user of the same partner."""
    with visit(request) as v:
        v.require_manage()
        try:
            user = users.create_user(
                v.s, partner_id=v.partner_id, email=email, password=password, role=role
            )
        except CreditlineError as exc:
            return _settings(v, status=422, users=exc.message)
        v.notice(f"Added {user.email} as {user.role}.")
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/users/{user_id}/remove")
def remove_user(request: Request, user_id: PathId) -> Response:
    """A partner admin removes a user of the same partner (never the last admin)."""
    with visit(request) as v:
        v.require_manage()
        try:
            user = users.remove_user(v.s, partner_id=v.partner_id, user_id=user_id)
        except users.LastAdmin as exc:
            return _settings(v, status=409, users=exc.message)
        v.notice(f"Removed {user.email}.")
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/keys")
def create_key(request: Request, name: str = Form(""), role: str = Form("")) -> Response:
    """Create an API key for the partner; its secret is shown on this page, once."""
    with visit(request) as v:
        v.require_manage()
        try:
            key = keys.create(
                v.s, principal="partner", partner_id=v.partner_id, role=role, name=name
            )
        except CreditlineError as exc:
            return _settings(v, status=422, api_keys=exc.message)
        # Rendered, not redirected: the secret must never sit in a stored message.
        response = _settings(v, new_key=key)
        response.headers["Cache-Control"] = "no-store"
        return response


@router.post("/settings/keys/{secret_id}/revoke")
def revoke_key(request: Request, secret_id: str) -> Response:
    """Revoke one of the partner's API keys; it fails from the next request on."""
    with visit(request) as v:
        v.require_manage()
        key = keys.revoke(v.s, secret_id, partner_id=v.partner_id)
        v.notice(f"Revoked API key {key.name} ({key.secret_id}).")
    return RedirectResponse("/settings", status_code=303)

"""The customer view: what a customer's own user sees at ``/`` — its credit, its usage
chart, its allocation history as its partner allows, and the alarms it received. Nothing
of the partner's pool, pages or other customers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline.clock import utcnow
from creditline.console import charts
from creditline.console.visit import Visit, visit
from creditline.ledger import customer_settings, customer_view
from creditline.ledger.accounts import get_customer
from creditline.notify import customer_alarms

router = APIRouter()


def own(v: Visit) -> tuple[int, int]:
    """(partner, customer) of the logged-in customer's user."""
    uin = v.user.customer_uin
    assert uin is not None and v.user.partner_id is not None
    return v.user.partner_id, uin


def home(v: Visit) -> Response:
    """The customer view (``/`` for a customer's user)."""
    partner_id, uin = own(v)
    customer = get_customer(v.s, partner_id, uin)
    settings = customer_settings.customer_settings(v.s, partner_id)
    return v.render(
        "account.html",
        c=customer,
        contact=settings.contact,
        show_remarks=settings.show_remarks,
        history=customer_view.history(
            v.s, partner_id=partner_id, customer_uin=uin, remarks=settings.show_remarks
        ),
        receives_alarms=customer_settings.receives_alarms(
            v.s, partner_id=partner_id, customer_uin=uin
        ),
        alarms=customer_view.received_alarms(v.s, partner_id=partner_id, customer_uin=uin),
    )


@router.post("/account/alarms/read")
def own_alarms_read(request: Request) -> Response:
    """The customer has seen its alarms: mark them read."""
    with visit(request, customer=True) as v:
        partner_id, uin = own(v)
        customer_alarms.mark_read(v.s, partner_id=partner_id, customer_uin=uin, now=utcnow())
    return RedirectResponse("/", status_code=303)


@router.get("/account/usage-by-day.svg")
def own_usage_chart(request: Request) -> Response:
    """The customer's own usage by day (its burn chart), drawn on the server."""
    with visit(request, customer=True) as v:
        partner_id, uin = own(v)
        svg = charts.usage_by_day(v.s, partner_id=partner_id, uin=uin)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

"""The dashboard: the pool, the customers' credit, and what happened lately."""

from __future__ import annotations

from dataclasses import astuple

from fastapi import APIRouter, Request
from starlette.responses import Response

from creditline.console import account, charts
from creditline.console.visit import visit
from creditline.ledger import alarms, customers, forecast, records

router = APIRouter()

#: The dashboard lists the customers projected to run out within this many days.
SOON_DAYS = 7
SOON_LISTED = 10


@router.get("/")
def dashboard(request: Request) -> Response:
    """Pool total, allocated and remaining; customers' credit; alarm levels; recent events.
    A customer's user sees its own account here instead (the customer view)."""
    with visit(request, customer=None) as v:
        if v.role.is_customer:
            return account.home(v)
        pid = v.partner_id
        count, total_credit, available = astuple(customers.totals(v.s, pid))
        # The level of a customer is the highest threshold it has fired (and not re-armed):
        # exactly the alarm state the ledger keeps.
        levels = alarms.levels(v.s, partner_id=pid)
        recent_alarms = alarms.recent(v.s, partner_id=pid, limit=5)
        recent_records, _ = records.page(v.s, partner_id=pid, limit=5)
        running_out = forecast.running_out(
            v.s, partner_id=pid, within_days=SOON_DAYS, limit=SOON_LISTED + 1
        )
        assert v.partner is not None
        return v.render(
            "dashboard.html",
            customers=int(count),
            total_credit=int(total_credit),
            available=int(available),
            levels=sorted(levels.items()),
            recent_alarms=recent_alarms,
            soon_days=SOON_DAYS,
            running_out=running_out[:SOON_LISTED],
            more_running_out=len(running_out) > SOON_LISTED,
            soon=forecast.forecasts(v.s, partner_id=pid, customers=running_out[:SOON_LISTED]),
            recent_records=recent_records,
            names=records.names(v.s, partner_id=pid, rows=recent_records),
            # What of the allocated pool is not customers' credit went to sub-resellers
            # (pool allocations, net of what was taken back).
            to_sub_resellers=v.partner.pool_allocated - int(total_credit),
        )


@router.get("/usage-by-day.svg")
def chart_usage(request: Request) -> Response:
    """All customers' consumption by day, drawn on the server."""
    with visit(request) as v:
        svg = charts.partner_usage_by_day(v.s, partner_id=v.partner_id)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/pool-by-day.svg")
def chart_pool(request: Request) -> Response:
    """The pool's total and allocated credit by day, drawn on the server."""
    with visit(request) as v:
        svg = charts.pool_by_day(v.s, partner_id=v.partner_id)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

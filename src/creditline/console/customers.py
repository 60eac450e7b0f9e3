"""My Customers: the list with search, sorting and pages; the customer's detail; the
Setting Credit form; per-customer thresholds; usage charts."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline import audit, money
from creditline.auth import users
from creditline.console import charts
from creditline.console.visit import PathId, Visit, templates, visit
from creditline.errors import CreditlineError
from creditline.ledger import (
    alarms,
    credit,
    customer_settings,
    customers,
    forecast,
    purchases,
    records,
    top_ups,
)
from creditline.ledger.accounts import get_customer
from creditline.ledger.records import Origin, RecordFilter
from creditline.limits import MAX_PAGE_NUMBER

router = APIRouter()


def short_day(day: date) -> str:
    """A day in few characters, for a narrow column: "7 Dec", with the year when it is
    not this year's ("7 Jan 2027")."""
    text = f"{day.day} {day.strftime('%b')}"
    return text if day.year == forecast.today().year else f"{text} {day.year}"


templates.env.filters["short_day"] = short_day

PAGE_SIZE = 20
#: The console's sort names (short, for links) and the core's sort keys.
SORTS = {
    "associated": "associated_at",
    "uin": "uin",
    "name": "name",
    "total": "total_credit",
    "consumed": "consumed",
    "available": "available_credit",
    "utilisation": "utilization",
    "runs_out": "runs_out",
}


@router.get("/customers")
def customer_list(
    request: Request,
    q: str = "",
    sort: str = "associated",
    dir: str = "desc",
    page: int = Query(1, le=MAX_PAGE_NUMBER),
) -> Response:
    """My Customers: search by UIN, name, remark or email; sort; pages. A page says whether
    another follows it, without counting every match (a broad search of a large partner
    would read all of them for each page)."""
    with visit(request) as v:
        if sort not in SORTS:
            sort = "associated"
        descending = dir != "asc"
        q = q[:200]
        page = max(page, 1)
        found = customers.search(
            v.s,
            v.partner_id,
            text=q,
            sort=SORTS[sort],
            descending=descending,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            count=False,
        )
        return v.render(
            "customers.html",
            rows=found.rows,
            q=q,
            sort=sort,
            dir="desc" if descending else "asc",
            page=page,
            has_more=found.has_more and page < MAX_PAGE_NUMBER,
            first=(page - 1) * PAGE_SIZE + 1,
            policies=purchases.policies_of(v.s, v.partner_id, [c.uin for c in found.rows]),
            forecasts=forecast.forecasts(v.s, partner_id=v.partner_id, customers=found.rows),
        )


def _detail(
    v: Visit,
    uin: int,
    *,
    threshold_error: str = "",
    typed_thresholds: str | None = None,
    forecast_error: str = "",
    typed_forecast_days: str | None = None,
    status: int = 200,
) -> Response:
    customer = get_customer(v.s, v.partner_id, uin)
    projection = forecast.forecasts(v.s, partner_id=v.partner_id, customers=[customer])[uin]
    history, more = records.page(
        v.s, partner_id=v.partner_id, where=RecordFilter(customer_uin=uin), limit=20
    )
    customer_alarms = [
        alarm
        for alarm, _ in alarms.recent(v.s, partner_id=v.partner_id, customer_uin=uin, limit=20)
    ]
    effective = alarms.effective_thresholds(v.s, partner_id=v.partner_id, customer_uin=uin)
    return v.render(
        "customer.html",
        status=status,
        c=customer,
        history=history,
        names=records.names(v.s, partner_id=v.partner_id, rows=history),
        more_history=more,
        alarms=customer_alarms,
        thresholds=effective,
        own_thresholds=customer.thresholds is not None,
        threshold_error=threshold_error,
        typed_thresholds=typed_thresholds,
        f=projection,
        forecast_days=forecast.alarm_days(v.s, partner_id=v.partner_id, customer_uin=uin),
        own_forecast_days=customer.forecast_days is not None,
        forecast_error=forecast_error,
        typed_forecast_days=typed_forecast_days,
        max_withdrawable=credit.max_withdrawable(customer.total_credit, customer.consumed),
        purchase_policy=purchases.customer_policy(v.s, v.partner_id, uin),
        top_up=top_ups.customer_rule(v.s, partner_id=v.partner_id, customer_uin=uin),
        top_up_month=top_ups.this_month(v.s, partner_id=v.partner_id, customer_uin=uin),
        customer_users=users.list_users(v.s, v.partner_id, customer_uin=uin),
        alarm_override=customer_settings.customer_alarm_override(
            v.s, partner_id=v.partner_id, customer_uin=uin
        ),
        receives_alarms=customer_settings.receives_alarms(
            v.s, partner_id=v.partner_id, customer_uin=uin
        ),
    )


@router.get("/customers/{uin}")
def customer_detail(request: Request, uin: PathId) -> Response:
    """One customer: account, credit, usage charts, history, alarms, thresholds."""
    with visit(request) as v:
        return _detail(v, uin)


def _credit_form(
    v: Visit, uin: int, *, amount: str = "", remark: str = "", error: str = "", status: int = 200
) -> Response:
    customer = get_customer(v.s, v.partner_id, uin)
    assert v.partner is not None
    return v.render(
        "credit.html",
        status=status,
        c=customer,
        pool_remaining=v.partner.pool_remaining,
        max_withdrawable=credit.max_withdrawable(customer.total_credit, customer.consumed),
        f=forecast.forecasts(v.s, partner_id=v.partner_id, customers=[customer])[uin],
        amount=amount,
        remark=remark,
        error=error,
        purchase_policy=purchases.customer_policy(v.s, v.partner_id, uin),
        top_up=top_ups.customer_rule(v.s, partner_id=v.partner_id, customer_uin=uin),
        top_up_month=top_ups.this_month(v.s, partner_id=v.partner_id, customer_uin=uin),
    )


@router.get("/customers/{uin}/credit")
def credit_form(request: Request, uin: PathId) -> Response:
    """Setting Credit: the allocation form, with the pool's remaining and the most that can
    be withdrawn beside it."""
    with visit(request) as v:
        v.require_allocate()
        return _credit_form(v, uin)


@router.post("/customers/{uin}/credit")
def set_credit(
    request: Request, uin: PathId, amount: str = Form(""), remark: str = Form("")
) -> Response:
    """Allocate (positive) or withdraw (negative) credit; on refusal the form again, with
    the reason and nothing changed."""
    with visit(request) as v:
        v.require_allocate()
        get_customer(v.s, v.partner_id, uin)
        try:
            cents = money.parse_amount(amount, allow_negative=True)
            change = credit.allocate_credit(
                v.s,
                partner_id=v.partner_id,
                customer_uin=uin,
                amount=cents,
                origin=Origin(operator=v.operator, source="console", remark=remark),
            )
        except CreditlineError as exc:
            return _credit_form(v, uin, amount=amount, remark=remark, error=exc.message, status=422)
        audit.saw(v.s, change.changes)
        verb = "Allocated" if cents > 0 else "Withdrew"
        v.notice(
            f"{verb} {money.to_display(abs(cents))} USD for customer {uin}. "
            f"Total credit is now {money.to_display(change.total_credit)}, "
            f"available {money.to_display(change.available)}."
        )
        return RedirectResponse(f"/customers?q={uin}", status_code=303)


def _parse_thresholds(text: str) -> list[object]:
    values: list[object] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip().rstrip("%").strip()
        if part:
            # Short ASCII digits are a number; anything else goes to the core as given, to
            # be refused there by name (int() of a long or non-ASCII digit string raises).
            values.append(
                int(part) if part.isascii() and part.isdigit() and len(part) <= 9 else part
            )
    return values


def _thresholds_saved(typed: list[object], saved: list[int]) -> str:
    """What a notice adds when a list was stored otherwise than typed, such as
    `` (sorted and de-duplicated to 75, 90, 100)``; nothing when stored as typed."""
    distinct = list(dict.fromkeys(typed))
    changes = [
        word
        for word, changed in (
            ("sorted", distinct != saved),
            ("de-duplicated", len(distinct) != len(typed)),
        )
        if changed
    ]
    if not changes:
        return ""
    return f" ({' and '.join(changes)} to {', '.join(map(str, saved))})"


@router.post("/customers/{uin}/thresholds")
def customer_thresholds(
    request: Request, uin: PathId, thresholds: str = Form(""), use_default: str = Form("")
) -> Response:
    """Set the customer's own alarm thresholds, or return it to the partner's default."""
    with visit(request) as v:
        v.require_manage()
        get_customer(v.s, v.partner_id, uin)
        try:
            typed = [] if use_default else _parse_thresholds(thresholds)
            saved = alarms.set_thresholds(
                v.s,
                partner_id=v.partner_id,
                customer_uin=uin,
                thresholds=None if use_default else typed,
            )
        except CreditlineError as exc:
            return _detail(
                v,
                uin,
                threshold_error=f"Not saved: {exc.message}.",
                typed_thresholds=thresholds,
                status=422,
            )
        v.notice(
            "Thresholds saved" + ("" if use_default else _thresholds_saved(typed, saved)) + "."
        )
        return RedirectResponse(f"/customers/{uin}", status_code=303)


def parse_days(text: str) -> object:
    """A typed number of days: short ASCII digits as a number, anything else as given, for
    the core to refuse by name."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else text


@router.post("/customers/{uin}/forecast-alarm")
def customer_forecast_alarm(
    request: Request, uin: PathId, days: str = Form(""), use_default: str = Form("")
) -> Response:
    """Set the customer's own forecast alarm window, or return it to the partner's."""
    with visit(request) as v:
        v.require_manage()
        get_customer(v.s, v.partner_id, uin)
        try:
            saved = forecast.set_alarm_days(
                v.s,
                partner_id=v.partner_id,
                customer_uin=uin,
                days=None if use_default else parse_days(days),
            )
        except CreditlineError as exc:
            return _detail(
                v,
                uin,
                forecast_error=f"Not saved: {exc.message}.",
                typed_forecast_days=days,
                status=422,
            )
        v.notice(
            "Forecast alarm saved: "
            + (f"within {saved} days" if saved else "off")
            + (" (your default)." if use_default else ".")
        )
        return RedirectResponse(f"/customers/{uin}", status_code=303)


@router.get("/customers/{uin}/usage-by-day.svg")
def chart_by_day(request: Request, uin: PathId) -> Response:
    """The customer's usage by day, drawn on the server."""
    with visit(request) as v:
        get_customer(v.s, v.partner_id, uin)
        svg = charts.usage_by_day(v.s, partner_id=v.partner_id, uin=uin, projected=True)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/customers/{uin}/usage-by-product.svg")
def chart_by_product(request: Request, uin: PathId) -> Response:
    """The customer's usage by product, drawn on the server."""
    with visit(request) as v:
        get_customer(v.s, v.partner_id, uin)
        svg = charts.usage_by_product(v.s, partner_id=v.partner_id, uin=uin)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

"""``creditline customers``: a partner's customers and their credit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from creditline.cli import app
from creditline.cli.common import (
    JSON_OPTION,
    MAX_BIGINT,
    Column,
    cents,
    emit,
    out,
    print_table,
    refuse,
    session,
    shown,
)

if TYPE_CHECKING:
    from creditline.db.tables import Customer
    from creditline.ledger.forecast import Forecast

customers = typer.Typer(
    help="Create, list and show customers and their credit.", no_args_is_help=True
)
app.add_typer(customers, name="customers")

MAX_LIST = 500


def forecast_text(projection: Forecast) -> str:
    """A forecast in a few words: when the customer runs out, or why no date."""
    if projection.status == "not_enough_history":
        return "not enough history"
    if projection.runs_out_on is None or projection.days_left is None:
        return "not running out"
    if projection.days_left <= 0:
        return f"out since {projection.runs_out_on.isoformat()}"
    return f"{projection.runs_out_on.isoformat()} ({projection.days_left} d)"


def customer_payload(customer: Customer, projection: Forecast | None = None) -> dict[str, Any]:
    """A customer as ``--json`` prints it: amounts as plain decimal strings."""
    from creditline.ledger.alarms import utilization_basis_points
    from creditline.ledger.credit import max_withdrawable

    used = utilization_basis_points(total_credit=customer.total_credit, consumed=customer.consumed)
    return {
        "uin": customer.uin,
        "partner_id": customer.partner_id,
        "name": customer.name,
        "type": customer.type,
        "email": customer.email,
        "mobile": customer.mobile,
        "remark": customer.remark,
        "total_credit": cents(customer.total_credit),
        "consumed": cents(customer.consumed),
        "available": cents(customer.available),
        "max_withdrawable": cents(max_withdrawable(customer.total_credit, customer.consumed)),
        "used_percent": None if used is None else f"{used // 100}.{used % 100:02d}",
        "associated_at": customer.associated_at.isoformat(),
        **({} if projection is None else {"forecast": projection.as_payload()}),
    }


@customers.command("create")
def create(
    partner: int = typer.Option(
        ..., "--partner", min=1, max=MAX_BIGINT, help="The partner the customer belongs to."
    ),
    name: str = typer.Option(..., "--name", help="The customer's name."),
    email: str = typer.Option("", "--email", help="The customer's email address."),
    mobile: str = typer.Option("", "--mobile", help="The customer's mobile number."),
    type: str = typer.Option(
        "personal", "--type", help="The kind of customer: personal or company."
    ),
    remark: str = typer.Option("", "--remark", help="A remark kept with the customer."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Associate a new customer with a partner; it starts with no credit."""
    from creditline.ledger import accounts

    with session(audited=True) as s:
        customer = accounts.create_customer(
            s, partner_id=partner, name=name, type=type, email=email, mobile=mobile, remark=remark
        )
        data = customer_payload(customer)
    emit(data, as_json=as_json, text=f"customer {customer.uin} created: {customer.name}")


@customers.command("list")
def list_customers(
    partner: int = typer.Option(
        ..., "--partner", min=1, max=MAX_BIGINT, help="The partner whose customers to list."
    ),
    limit: int = typer.Option(
        50, "--limit", min=1, max=MAX_LIST, help="List at most this many customers."
    ),
    after: int | None = typer.Option(
        None, "--after", min=1, max=MAX_BIGINT, help="Continue with the customers after this UIN."
    ),
    sort: str = typer.Option(
        "uin",
        "--sort",
        help="uin, or runs-out: soonest projected exhaustion first (no projection last).",
    ),
    page_number: int = typer.Option(
        1, "--page", min=1, max=100_000, help="With --sort runs-out: the page to show."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List a partner's customers in UIN order, a page at a time, or by when they run out.

    For the next page, give ``--after`` the last UIN shown (``--page`` with runs-out)."""
    from creditline.ledger import accounts, customers, forecast, listings

    if sort not in ("uin", "runs-out"):
        refuse(f"--sort must be uin or runs-out, not {sort!r}")
    if sort == "runs-out" and after is not None:
        refuse("--after pages the UIN order; with --sort runs-out use --page")
    if sort == "uin" and page_number != 1:
        refuse("--page pages the runs-out order; in UIN order use --after")
    with session(reading=True) as s:
        accounts.get_partner(s, partner)
        if sort == "runs-out":
            searched = customers.search(
                s,
                partner,
                sort="runs_out",
                descending=False,
                offset=(page_number - 1) * limit,
                limit=limit,
            )
            page, has_more = searched.rows, searched.has_more
        else:
            found = listings.customers_after(s, partner, after=after, limit=limit + 1)
            page, has_more = found[:limit], len(found) > limit
        projections = forecast.forecasts(s, partner_id=partner, customers=page)
        rows = [customer_payload(c, projections[c.uin]) for c in page]
    if as_json:
        emit({"customers": rows, "has_more": has_more}, as_json=True)
        return
    print_table(
        [
            Column("uin", keep=True, number=True),
            Column("total credit", keep=True, number=True),
            Column("consumed", keep=True, number=True),
            Column("available", keep=True, number=True),
            Column("name"),
            Column("used %", number=True),
            Column("runs out"),
            Column("type"),
            Column("email"),
        ],
        [
            [
                str(c.uin),
                shown(c.total_credit),
                shown(c.consumed),
                shown(c.available),
                c.name,
                row["used_percent"] or "-",
                forecast_text(projections[c.uin]),
                c.type,
                c.email,
            ]
            for c, row in zip(page, rows, strict=True)
        ],
    )
    if has_more and sort == "runs-out":
        out.print(f"more: --sort runs-out --page {page_number + 1}", highlight=False)
    elif has_more:
        out.print(f"more: --after {rows[-1]['uin']}", highlight=False)


@customers.command("show")
def show(
    uin: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The customer's UIN."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one customer: credit, consumption, forecast, thresholds and the last alarm."""
    from creditline.ledger import accounts, forecast
    from creditline.ledger.alarms import effective_thresholds
    from creditline.ledger.credit import max_withdrawable

    with session(reading=True) as s:
        customer = accounts.get_customer(s, None, uin)
        projection = forecast.forecasts(s, partner_id=customer.partner_id, customers=[customer])[
            uin
        ]
        data = customer_payload(customer, projection)
        data["forecast_alarm_days"] = forecast.alarm_days(
            s, partner_id=customer.partner_id, customer_uin=uin
        )
        amounts = {
            "total": shown(customer.total_credit),
            "consumed": shown(customer.consumed),
            "available": shown(customer.available),
            "withdrawable": shown(max_withdrawable(customer.total_credit, customer.consumed)),
        }
        data["thresholds"] = effective_thresholds(
            s, partner_id=customer.partner_id, customer_uin=uin
        )
        data["own_thresholds"] = customer.thresholds is not None
        data["fired_thresholds"] = sorted(customer.fired_thresholds)
        data["last_alarm_threshold"] = customer.last_alarm_threshold
        data["last_alarm_at"] = (
            customer.last_alarm_at.isoformat() if customer.last_alarm_at else None
        )
    lines = [
        f"{data['name']} (UIN {uin}, {data['type']}) of partner {data['partner_id']}",
        f"credit: total {amounts['total']}, consumed {amounts['consumed']}, "
        f"available {amounts['available']} (withdrawable {amounts['withdrawable']})",
        _forecast_line(projection, data["forecast_alarm_days"]),
        f"thresholds: {', '.join(map(str, data['thresholds']))} %"
        + (" (its own)" if data["own_thresholds"] else " (partner default)"),
    ]
    if data["last_alarm_threshold"] is not None:
        lines.append(f"last alarm: {data['last_alarm_threshold']} % at {data['last_alarm_at']}")
    emit(data, as_json=as_json, text="\n".join(lines))


def _forecast_line(projection: Forecast, alarm_days: int) -> str:
    from creditline.money import to_display

    alarm = f"alarm within {alarm_days} days" if alarm_days else "forecast alarm off"
    if projection.burn_rate is None:
        return f"forecast: not enough history (needs 7 days of usage); {alarm}"
    month = (
        ""
        if projection.month_projected is None
        else f", this month {to_display(projection.month_to_date)} so far, "
        f"{to_display(projection.month_projected)} projected"
    )
    return (
        f"forecast: burns {to_display(projection.burn_rate)} a day, runs out "
        f"{forecast_text(projection)}{month}; {alarm}"
    )

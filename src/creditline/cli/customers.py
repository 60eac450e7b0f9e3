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
    session,
    shown,
)

if TYPE_CHECKING:
    from creditline.db.tables import Customer

customers = typer.Typer(
    help="Create, list and show customers and their credit.", no_args_is_help=True
)
app.add_typer(customers, name="customers")

MAX_LIST = 500


def customer_payload(customer: Customer) -> dict[str, Any]:
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
    as_json: bool = JSON_OPTION,
) -> None:
    """List a partner's customers in UIN order, a page at a time.

    For the next page, give ``--after`` the last UIN shown."""
    from creditline.ledger import accounts, listings

    with session(reading=True) as s:
        accounts.get_partner(s, partner)
        found = listings.customers_after(s, partner, after=after, limit=limit + 1)
        page = found[:limit]
        rows = [customer_payload(c) for c in page]
    has_more = len(found) > limit
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
                c.type,
                c.email,
            ]
            for c, row in zip(page, rows, strict=True)
        ],
    )
    if has_more:
        out.print(f"more: --after {rows[-1]['uin']}", highlight=False)


@customers.command("show")
def show(
    uin: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The customer's UIN."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one customer: credit, consumption, thresholds and the last alarm."""
    from creditline.ledger import accounts
    from creditline.ledger.alarms import effective_thresholds
    from creditline.ledger.credit import max_withdrawable

    with session(reading=True) as s:
        customer = accounts.get_customer(s, None, uin)
        data = customer_payload(customer)
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
        f"thresholds: {', '.join(map(str, data['thresholds']))} %"
        + (" (its own)" if data["own_thresholds"] else " (partner default)"),
    ]
    if data["last_alarm_threshold"] is not None:
        lines.append(f"last alarm: {data['last_alarm_threshold']} % at {data['last_alarm_at']}")
    emit(data, as_json=as_json, text="\n".join(lines))

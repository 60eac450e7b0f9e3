"""``creditline customers``: a partner's customers and their credit."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table
from sqlalchemy import select

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, cents, emit, out, session
from creditline.db.tables import MAX_BIGINT, Customer
from creditline.ledger import accounts
from creditline.ledger.alarms import effective_thresholds, utilization_basis_points
from creditline.ledger.credit import max_withdrawable

customers = typer.Typer(help="Customers and their credit.", no_args_is_help=True)
app.add_typer(customers, name="customers")

MAX_LIST = 500


def customer_payload(customer: Customer) -> dict[str, Any]:
    """A customer as the CLI prints it: amounts as decimal strings."""
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
    email: str = typer.Option("", "--email"),
    mobile: str = typer.Option("", "--mobile"),
    type: str = typer.Option("personal", "--type", help="personal or company."),
    remark: str = typer.Option("", "--remark"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Associate a new customer with a partner; it starts with no credit."""
    with session(audited=True) as s:
        customer = accounts.create_customer(
            s, partner_id=partner, name=name, type=type, email=email, mobile=mobile, remark=remark
        )
        data = customer_payload(customer)
    emit(data, as_json=as_json, text=f"customer {customer.uin} created: {customer.name}")


@customers.command("list")
def list_customers(
    partner: int = typer.Option(..., "--partner", min=1, max=MAX_BIGINT, help="Whose customers."),
    limit: int = typer.Option(50, "--limit", min=1, max=MAX_LIST, help="At most this many."),
    after: int | None = typer.Option(
        None, "--after", min=1, max=MAX_BIGINT, help="Continue after this UIN."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """A partner's customers in UIN order, a page at a time (``--after`` the last UIN)."""
    with session() as s:
        accounts.get_partner(s, partner)
        query = select(Customer).where(Customer.partner_id == partner)
        if after is not None:
            query = query.where(Customer.uin > after)
        found = list(s.execute(query.order_by(Customer.uin).limit(limit + 1)).scalars())
        rows = [customer_payload(c) for c in found[:limit]]
    has_more = len(found) > limit
    if as_json:
        emit({"customers": rows, "has_more": has_more}, as_json=True)
        return
    table = Table("uin", "name", "type", "email", "total credit", "consumed", "available", "used %")
    for row in rows:
        table.add_row(
            str(row["uin"]),
            row["name"],
            row["type"],
            row["email"],
            row["total_credit"],
            row["consumed"],
            row["available"],
            row["used_percent"] or "-",
        )
    out.print(table)
    if has_more:
        out.print(f"more: --after {rows[-1]['uin']}", highlight=False)


@customers.command("show")
def show(
    uin: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The customer's UIN."),
    as_json: bool = JSON_OPTION,
) -> None:
    """One customer: credit, consumption, thresholds and the last alarm."""
    with session() as s:
        customer = accounts.get_customer(s, None, uin)
        data = customer_payload(customer)
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
        f"credit: total {data['total_credit']}, consumed {data['consumed']}, "
        f"available {data['available']} (withdrawable {data['max_withdrawable']})",
        f"thresholds: {', '.join(map(str, data['thresholds']))} %"
        + (" (its own)" if data["own_thresholds"] else " (partner default)"),
    ]
    if data["last_alarm_threshold"] is not None:
        lines.append(f"last alarm: {data['last_alarm_threshold']} % at {data['last_alarm_at']}")
    emit(data, as_json=as_json, text="\n".join(lines))

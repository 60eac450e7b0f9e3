"""``creditline credit``: allocating and withdrawing a customer's credit."""

from __future__ import annotations

import typer

from creditline.cli import app
from creditline.cli.common import (
    JSON_OPTION,
    MAX_BIGINT,
    SIGNED_AMOUNT,
    cents,
    emit,
    session,
    shown,
)

credit_app = typer.Typer(help="Allocate and withdraw customer credit.", no_args_is_help=True)
app.add_typer(credit_app, name="credit")


@credit_app.command("allocate", context_settings=SIGNED_AMOUNT)
def allocate(
    uin: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The customer's UIN."),
    amount: str = typer.Argument(
        ..., help="The amount in decimal, such as 500.00; a negative amount withdraws."
    ),
    operator: str = typer.Option(
        ..., "--operator", help="Who allocates; the name is kept on the record."
    ),
    remark: str = typer.Option("", "--remark", help="A remark kept on the allocation record."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Allocate AMOUNT of the partner's pool to a customer, or withdraw a negative AMOUNT.

    A withdrawal takes at most the available credit. Either takes effect immediately."""
    from creditline.ledger import accounts, credit
    from creditline.ledger.records import Origin
    from creditline.money import parse_amount

    with session(audited=True) as s:
        cents_ = parse_amount(amount, allow_negative=True)
        customer = accounts.get_customer(s, None, uin)
        change = credit.allocate_credit(
            s,
            partner_id=customer.partner_id,
            customer_uin=uin,
            amount=cents_,
            origin=Origin(operator=operator, source="cli", remark=remark),
        )
        partner_id = customer.partner_id
    alarm = change.alarm
    data = {
        "uin": uin,
        "partner_id": partner_id,
        "record_id": change.record.id,
        "change": cents(cents_),
        "total_credit": cents(change.total_credit),
        "consumed": cents(change.consumed),
        "available": cents(change.available),
        "pool_remaining": cents(change.pool.remaining),
        "alarm": None if alarm is None else {"id": alarm.id, "threshold": alarm.threshold},
    }
    verb = "allocated" if cents_ > 0 else "withdrew"
    text = (
        f"{verb} {shown(abs(cents_))} for customer {uin}: total credit "
        f"{shown(change.total_credit)}, available {shown(change.available)}; "
        f"pool remaining {shown(change.pool.remaining)}"
    )
    if alarm is not None:
        text += f"\nalarm: {alarm.threshold} % of credit reached"
    emit(data, as_json=as_json, text=text)

"""``creditline thresholds``: the alarm thresholds of a partner and of its customers."""

from __future__ import annotations

from typing import Any

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, MAX_BIGINT, emit, session

thresholds = typer.Typer(
    help="Set, reset and show alarm thresholds (percents of credit).", no_args_is_help=True
)
app.add_typer(thresholds, name="thresholds")


def _describe(data: dict[str, Any]) -> str:
    listed = ", ".join(map(str, data["thresholds"]))
    if data["customer_uin"] is None:
        return f"partner {data['partner_id']} default thresholds: {listed} %"
    whose = "its own" if data["own"] else "partner default"
    return f"customer {data['customer_uin']} thresholds: {listed} % ({whose})"


def _state(
    partner_id: int, customer_uin: int | None, values: list[int], own: bool
) -> dict[str, Any]:
    return {
        "partner_id": partner_id,
        "customer_uin": customer_uin,
        "thresholds": values,
        "own": own,
    }


@thresholds.command("set")
def set_thresholds(
    partner_id: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The partner (its UIN)."),
    percents: list[int] = typer.Argument(
        ..., help="The thresholds: whole percents from 1 to 1000, at most 10 of them."
    ),
    customer: int | None = typer.Option(
        None,
        "--customer",
        min=1,
        max=MAX_BIGINT,
        help="Set this customer's own list instead of the default.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set a partner's default thresholds, or one customer's own (``--customer``)."""
    from creditline.ledger import alarms

    with session(audited=True) as s:
        values = alarms.set_thresholds(
            s, partner_id=partner_id, thresholds=percents, customer_uin=customer
        )
    data = _state(partner_id, customer, values, customer is not None)
    emit(data, as_json=as_json, text=_describe(data))


@thresholds.command("reset")
def reset(
    partner_id: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The partner (its UIN)."),
    customer: int = typer.Option(
        ..., "--customer", min=1, max=MAX_BIGINT, help="The customer to put back."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Put a customer back on its partner's default thresholds."""
    from creditline.ledger import alarms

    with session(audited=True) as s:
        values = alarms.set_thresholds(
            s, partner_id=partner_id, thresholds=None, customer_uin=customer
        )
    data = _state(partner_id, customer, values, False)
    emit(data, as_json=as_json, text=_describe(data))


@thresholds.command("show")
def show(
    partner_id: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The partner (its UIN)."),
    customer: int | None = typer.Option(
        None, "--customer", min=1, max=MAX_BIGINT, help="Show the list this customer uses."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the partner's default thresholds, or those a customer uses."""
    from creditline.ledger import accounts, alarms

    with session(reading=True) as s:
        partner = accounts.get_partner(s, partner_id)
        if customer is None:
            data = _state(partner_id, None, list(partner.thresholds), False)
        else:
            own = accounts.get_customer(s, partner_id, customer).thresholds is not None
            values = alarms.effective_thresholds(s, partner_id=partner_id, customer_uin=customer)
            data = _state(partner_id, customer, values, own)
    emit(data, as_json=as_json, text=_describe(data))

"""``creditline forecasts``: the forecast alarm window of a partner and of its customers,
and the daily refresh of forecasts."""

from __future__ import annotations

from typing import Any

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, MAX_BIGINT, emit, plural, refuse, session

forecasts = typer.Typer(
    help="Forecast alarm windows, and the daily refresh of burn-rate forecasts.",
    no_args_is_help=True,
)
app.add_typer(forecasts, name="forecasts")


def _describe(data: dict[str, Any]) -> str:
    days = data["days"]
    window = f"{days} days" if days else "off (0)"
    if data["customer_uin"] is None:
        return f"partner {data['partner_id']} forecast alarm: {window}"
    whose = "its own" if data["own"] else "partner default"
    return f"customer {data['customer_uin']} forecast alarm: {window} ({whose})"


@forecasts.command("alarm")
def alarm(
    partner_id: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The partner (its UIN)."),
    days: int | None = typer.Option(
        None,
        "--days",
        help="Alarm when exhaustion is projected this many days away or fewer (0-366, 0 off).",
    ),
    customer: int | None = typer.Option(
        None, "--customer", min=1, max=MAX_BIGINT, help="This customer's own window."
    ),
    default: bool = typer.Option(
        False, "--default", help="Put the customer back on the partner's window."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show or set the forecast alarm window: the partner's default, or (``--customer``)
    one customer's own. Without ``--days`` or ``--default`` it only shows."""
    from creditline.ledger import accounts, forecast

    if default and (customer is None or days is not None):
        refuse("--default needs --customer and no --days")
    if days is None and not default:
        with session(reading=True) as s:
            value = forecast.alarm_days(s, partner_id=partner_id, customer_uin=customer)
            own = (
                customer is not None
                and accounts.get_customer(s, partner_id, customer).forecast_days is not None
            )
    else:
        with session(audited=True) as s:
            value = forecast.set_alarm_days(
                s, partner_id=partner_id, days=days, customer_uin=customer
            )
        own = customer is not None and not default
    data = {"partner_id": partner_id, "customer_uin": customer, "days": value, "own": own}
    emit(data, as_json=as_json, text=_describe(data))


@forecasts.command("refresh")
def refresh(
    partner: int | None = typer.Option(
        None, "--partner", min=1, max=MAX_BIGINT, help="Only this partner (default: every one)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recompute every forecast computed before today and apply the forecast alarm rule to
    it: run once a day (e.g. from cron just after midnight UTC), so forecasts follow the
    calendar for customers without new usage. One transaction per partner."""
    from creditline.ledger import forecast, reports

    if partner is None:
        with session(reading=True) as s:
            partners = sorted(reports.partner_names(s))
    else:
        partners = [partner]
    total = 0
    for partner_id in partners:
        with session() as s:
            total += forecast.refresh(s, partner_id=partner_id)
    emit(
        {"partners": len(partners), "refreshed": total},
        as_json=as_json,
        text=f"{plural(total, 'forecast')} refreshed for {plural(len(partners), 'partner')}",
    )

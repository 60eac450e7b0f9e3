"""``creditline top-ups``: automatic top-up rules of a partner and of its customers."""

from __future__ import annotations

from typing import Any

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, MAX_BIGINT, emit, session

top_ups_app = typer.Typer(
    help="Set, remove and show automatic top-up rules (allocate from the pool when a "
    "customer's credit runs low).",
    no_args_is_help=True,
)
app.add_typer(top_ups_app, name="top-ups")

PARTNER = typer.Argument(..., min=1, max=MAX_BIGINT, help="The partner (its UIN).")


def _rule_text(rule: dict[str, Any] | None) -> str:
    if rule is None:
        return "no rule"
    trigger = (
        f"available below {rule['available_below']}"
        if rule["available_below"] is not None
        else f"utilisation reaches {rule['utilization_percent']} %"
    )
    ceiling = "" if rule["ceiling"] is None else f", ceiling {rule['ceiling']}"
    return (
        f"when {trigger}, allocate {rule['amount']} (at most {rule['monthly_cap']} a month"
        f"{ceiling})"
    )


def _partner_state(partner_id: int, rule: Any) -> dict[str, Any]:
    return {
        "partner_id": partner_id,
        "customer_uin": None,
        "mode": "default",
        "rule": None if rule is None else rule.as_payload(),
    }


def _customer_state(s: Any, partner_id: int, found: Any) -> dict[str, Any]:
    from creditline import money
    from creditline.ledger import top_ups

    month = top_ups.this_month(s, partner_id=partner_id, customer_uin=found.customer_uin)
    return {
        "partner_id": partner_id,
        "customer_uin": found.customer_uin,
        "mode": found.mode,
        "rule": None if found.rule is None else found.rule.as_payload(),
        "this_month": {
            "month": month.month,
            "topped_up": money.to_text(month.topped_up),
            "top_ups": month.top_ups,
        },
    }


def _describe(data: dict[str, Any]) -> str:
    if data["customer_uin"] is None:
        return f"partner {data['partner_id']} default top-up rule: {_rule_text(data['rule'])}"
    whose = {"own": "its own", "off": "top-ups off", "default": "partner default"}[data["mode"]]
    month = data["this_month"]
    return (
        f"customer {data['customer_uin']} top-up rule: {_rule_text(data['rule'])} ({whose}); "
        f"{month['month']}: {month['top_ups']} top-up(s), {month['topped_up']}"
    )


@top_ups_app.command("set")
def set_rule(
    partner_id: int = PARTNER,
    amount: str = typer.Option(..., "--amount", help="Allocated by each top-up, e.g. 100.00."),
    monthly_cap: str = typer.Option(
        ..., "--monthly-cap", help="At most this much topped up per customer a calendar month."
    ),
    below: str | None = typer.Option(
        None, "--below", help="Trigger: available credit falls below this amount."
    ),
    utilization: int | None = typer.Option(
        None, "--utilization", help="Trigger: consumption reaches this percent of credit."
    ),
    ceiling: str | None = typer.Option(
        None, "--ceiling", help="Never top up past this total credit."
    ),
    customer: int | None = typer.Option(
        None,
        "--customer",
        min=1,
        max=MAX_BIGINT,
        help="Set this customer's own rule instead of the partner's default.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set a partner's default rule, or one customer's own (``--customer``). Give exactly
    one trigger: ``--below`` or ``--utilization``."""
    from creditline import money
    from creditline.ledger import top_ups

    def cents(value: str | None, param: str) -> int | None:
        return None if value is None else money.parse_amount(value, param=param)

    with session(audited=True) as s:
        rule = top_ups.check_rule(
            below=cents(below, "available_below"),
            utilization_percent=utilization,
            amount=cents(amount, "amount"),
            monthly_cap=cents(monthly_cap, "monthly_cap"),
            ceiling=cents(ceiling, "ceiling"),
        )
        if customer is None:
            data = _partner_state(
                partner_id, top_ups.set_partner_rule(s, partner_id=partner_id, rule=rule)
            )
        else:
            found = top_ups.set_customer_rule(
                s, partner_id=partner_id, customer_uin=customer, mode="own", rule=rule
            )
            data = _customer_state(s, partner_id, found)
    emit(data, as_json=as_json, text=_describe(data))


@top_ups_app.command("off")
def turn_off(
    partner_id: int = PARTNER,
    customer: int = typer.Option(
        ..., "--customer", min=1, max=MAX_BIGINT, help="The customer never to top up."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """No automatic top-ups for this customer, whatever its partner's default."""
    _set_mode(partner_id, customer, "off", as_json=as_json)


@top_ups_app.command("reset")
def reset(
    partner_id: int = PARTNER,
    customer: int = typer.Option(
        ..., "--customer", min=1, max=MAX_BIGINT, help="The customer to put back."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Put a customer back on its partner's default rule."""
    _set_mode(partner_id, customer, "default", as_json=as_json)


def _set_mode(partner_id: int, customer: int, mode: str, *, as_json: bool) -> None:
    """A customer's rule set to ``mode`` (off, default), audited, and said."""
    from creditline.ledger import top_ups

    with session(audited=True) as s:
        found = top_ups.set_customer_rule(
            s, partner_id=partner_id, customer_uin=customer, mode=mode
        )
        data = _customer_state(s, partner_id, found)
    emit(data, as_json=as_json, text=_describe(data))


@top_ups_app.command("remove")
def remove(partner_id: int = PARTNER, as_json: bool = JSON_OPTION) -> None:
    """Remove the partner's default rule (customers with their own keep theirs)."""
    from creditline.ledger import top_ups

    with session(audited=True) as s:
        data = _partner_state(
            partner_id, top_ups.set_partner_rule(s, partner_id=partner_id, rule=None)
        )
    emit(data, as_json=as_json, text=_describe(data))


@top_ups_app.command("show")
def show(
    partner_id: int = PARTNER,
    customer: int | None = typer.Option(
        None, "--customer", min=1, max=MAX_BIGINT, help="Show the rule this customer uses."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the partner's default rule, or the rule a customer uses and its month."""
    from creditline.ledger import top_ups

    with session(reading=True) as s:
        if customer is None:
            data = _partner_state(partner_id, top_ups.partner_rule(s, partner_id))
        else:
            found = top_ups.customer_rule(s, partner_id=partner_id, customer_uin=customer)
            data = _customer_state(s, partner_id, found)
    emit(data, as_json=as_json, text=_describe(data))

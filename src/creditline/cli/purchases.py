"""``creditline purchases``: purchase policies (a partner's default, a customer's own), the
purchase check, and the decisions kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from creditline.cli import app
from creditline.cli.common import (
    JSON_OPTION,
    MAX_BIGINT,
    Column,
    cents,
    default_operator,
    emit,
    out,
    print_table,
    session,
    shown,
)
from creditline.limits import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from creditline.ledger.purchases import CustomerPolicy, Decision, PartnerDefault

purchases_app = typer.Typer(
    help="Purchase policies, the purchase check and its decisions.", no_args_is_help=True
)
app.add_typer(purchases_app, name="purchases")

POLICY_HELP = "notify_only (never refuse), block_at_limit, or block_all (a hold)."


def _default(d: PartnerDefault) -> tuple[dict[str, Any], str]:
    data = {
        "partner_id": d.partner_id,
        "customer_uin": None,
        "policy": d.policy,
        "tolerance": cents(d.tolerance),
    }
    return data, (
        f"partner {d.partner_id} default purchase policy: {d.policy}, "
        f"tolerance {shown(d.tolerance)}"
    )


def _customer(partner_id: int, p: CustomerPolicy) -> tuple[dict[str, Any], str]:
    data = {
        "partner_id": partner_id,
        "customer_uin": p.customer_uin,
        "policy": p.policy,
        "tolerance": cents(p.tolerance),
        "own": p.own,
        "own_tolerance": p.own_tolerance,
    }
    whose = "its own" if p.own else "partner default"
    tolerance_whose = "its own" if p.own_tolerance else "the partner's"
    return data, (
        f"customer {p.customer_uin} purchase policy: {p.policy} ({whose}), "
        f"tolerance {shown(p.tolerance)} ({tolerance_whose})"
    )


@purchases_app.command("policy")
def show_policy(
    partner_id: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The partner (its UIN)."),
    customer: int | None = typer.Option(
        None, "--customer", min=1, max=MAX_BIGINT, help="Show the policy this customer has."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the partner's default purchase policy, or the one a customer has."""
    from creditline.ledger import purchases

    with session(reading=True) as s:
        if customer is None:
            data, text = _default(purchases.partner_default(s, partner_id))
        else:
            data, text = _customer(partner_id, purchases.customer_policy(s, partner_id, customer))
    emit(data, as_json=as_json, text=text)


@purchases_app.command("set-policy")
def set_policy(
    partner_id: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The partner (its UIN)."),
    policy: str = typer.Argument(..., help=POLICY_HELP),
    tolerance: str | None = typer.Option(
        None,
        "--tolerance",
        help="How far below zero available credit may go under block_at_limit, such as "
        "10.00 (the default's: 0; a customer's: the partner's unless given).",
    ),
    customer: int | None = typer.Option(
        None,
        "--customer",
        min=1,
        max=MAX_BIGINT,
        help="Set this customer's own policy instead of the default.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set a partner's default purchase policy, or one customer's own (``--customer``)."""
    from creditline.ledger import purchases
    from creditline.money import parse_amount

    with session(audited=True) as s:
        amount = None if tolerance is None else parse_amount(tolerance, param="tolerance")
        if customer is None:
            data, text = _default(
                purchases.set_partner_default(
                    s, partner_id=partner_id, policy=policy, tolerance=amount or 0
                )
            )
        else:
            saved = purchases.set_customer_policy(
                s, partner_id=partner_id, uin=customer, policy=policy, tolerance=amount
            )
            data, text = _customer(partner_id, saved)
    emit(data, as_json=as_json, text=text)


@purchases_app.command("reset-policy")
def reset_policy(
    partner_id: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The partner (its UIN)."),
    customer: int = typer.Option(
        ..., "--customer", min=1, max=MAX_BIGINT, help="The customer to put back."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Put a customer back on its partner's default purchase policy and tolerance."""
    from creditline.ledger import purchases

    with session(audited=True) as s:
        saved = purchases.set_customer_policy(s, partner_id=partner_id, uin=customer, policy=None)
        data, text = _customer(partner_id, saved)
    emit(data, as_json=as_json, text=text)


def _decision(d: Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "partner_id": d.partner_id,
        "customer_uin": d.customer_uin,
        "amount": cents(d.amount),
        "product": d.product,
        "answer": d.answer,
        "reason": d.reason,
        "message": d.message,
        "policy": d.policy,
        "tolerance": cents(d.tolerance),
        "available": cents(d.available),
        "available_after": cents(d.available_after),
        "requested_by": d.requested_by,
        "decided_at": d.decided_at.isoformat(),
    }


@purchases_app.command("check")
def check(
    uin: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The customer's UIN."),
    amount: str = typer.Argument(..., help="The purchase's price, such as 25.00."),
    product: str = typer.Option("", "--product", help="The product, such as cvm."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Ask whether a customer may make a purchase, by its policy; the decision is kept.

    Exits 0 with the answer either way: a refusal is an answer, not an error."""
    from creditline.ledger import purchases
    from creditline.money import parse_amount

    with session(audited=True) as s:
        decision = purchases.check(
            s,
            partner_id=None,
            customer_uin=uin,
            amount=parse_amount(amount),
            product=product,
            requested_by=f"cli:{default_operator()}",
        )
    emit(_decision(decision), as_json=as_json, text=f"customer {uin}: {decision.message}")


@purchases_app.command("list")
def list_decisions(
    partner: int | None = typer.Option(
        None, "--partner", min=1, max=MAX_BIGINT, help="Only this partner's customers."
    ),
    customer: int | None = typer.Option(
        None, "--customer", min=1, max=MAX_BIGINT, help="Only this customer's decisions."
    ),
    answer: str | None = typer.Option(None, "--answer", help="Only allowed, or only refused."),
    limit: int = typer.Option(50, "--limit", min=1, max=MAX_PAGE_SIZE, help="At most this many."),
    before: int | None = typer.Option(
        None, "--before", min=1, max=MAX_BIGINT, help="Continue with those older than this id."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List the decisions of the purchase check, newest first.

    For the next page, give ``--before`` the last id shown."""
    from creditline.ledger import purchases

    with session(reading=True) as s:
        rows, has_more = purchases.page(
            s,
            partner_id=partner,
            customer_uin=customer,
            answer=answer,
            before_id=before,
            limit=limit,
        )
    if as_json:
        emit({"decisions": [_decision(d) for d in rows], "has_more": has_more}, as_json=True)
        return
    print_table(
        [
            Column("id", keep=True, number=True),
            Column("customer", keep=True, number=True),
            Column("amount", keep=True, number=True),
            Column("answer", keep=True),
            Column("available", keep=True, number=True),
            Column("policy"),
            Column("reason"),
            Column("product"),
            Column("time (UTC)"),
            Column("asked by"),
        ],
        [
            [
                str(d.id),
                str(d.customer_uin),
                shown(d.amount),
                d.answer,
                shown(d.available),
                d.policy,
                d.reason,
                d.product,
                d.decided_at.strftime("%Y-%m-%d %H:%M:%S"),
                d.requested_by,
            ]
            for d in rows
        ],
    )
    if has_more:
        out.print(f"More: --before {rows[-1].id}", highlight=False, markup=False)

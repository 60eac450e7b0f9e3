"""``creditline partners``: distributors, resellers and second-level resellers, and their
pools (the platform's grants and a distributor's pool allocations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from creditline.cli import app
from creditline.cli.common import (
    JSON_OPTION,
    MAX_BIGINT,
    SIGNED_AMOUNT,
    Column,
    cents,
    default_operator,
    emit,
    print_table,
    session,
    shown,
)

if TYPE_CHECKING:
    from creditline.db.tables import Partner

partners = typer.Typer(
    help="Create and show partners and manage their pools.", no_args_is_help=True
)
app.add_typer(partners, name="partners")


def partner_payload(partner: Partner, *, customers: int | None = None) -> dict[str, Any]:
    """A partner as ``--json`` prints it: amounts as plain decimal strings."""
    data: dict[str, Any] = {
        "id": partner.id,
        "name": partner.name,
        "kind": partner.kind,
        "parent_id": partner.parent_id,
        "total": cents(partner.pool_total),
        "allocated": cents(partner.pool_allocated),
        "remaining": cents(partner.pool_remaining),
        "thresholds": list(partner.thresholds),
        "created_at": partner.created_at.isoformat(),
    }
    if customers is not None:
        data["customers"] = customers
    return data


@partners.command("create")
def create(
    name: str = typer.Option(..., "--name", help="The partner's name."),
    kind: str = typer.Option(
        ..., "--kind", help="The kind of partner: distributor, reseller or sub-reseller."
    ),
    parent: int | None = typer.Option(
        None,
        "--parent",
        min=1,
        max=MAX_BIGINT,
        help="The distributor of a sub-reseller (its partner id).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a partner with an empty pool."""
    from creditline.ledger import accounts

    with session(audited=True) as s:
        partner = accounts.create_partner(s, name=name, kind=kind, parent_id=parent)
        data = partner_payload(partner)
    emit(data, as_json=as_json, text=f"partner {partner.id} created: {partner.name} ({kind})")


@partners.command("grant", context_settings=SIGNED_AMOUNT)
def grant(
    partner_id: int = typer.Argument(
        ..., min=1, max=MAX_BIGINT, help="The partner whose pool is granted."
    ),
    amount: str = typer.Argument(
        ..., help="The amount in decimal, such as 1000.00; a negative amount reduces the pool."
    ),
    remark: str = typer.Option("", "--remark", help="A remark kept on the allocation record."),
    operator: str | None = typer.Option(
        None, "--operator", help="Who grants; by default the login name."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Grant AMOUNT to a partner's pool from the platform, or reduce it by a negative AMOUNT.

    A reduction goes down to what remains unallocated, no further."""
    from creditline.ledger import pools
    from creditline.ledger.records import Origin
    from creditline.money import parse_amount

    with session(audited=True) as s:
        cents_ = parse_amount(amount, allow_negative=True)
        origin = Origin(operator=operator or default_operator(), source="cli", remark=remark)
        change = pools.grant(s, partner_id=partner_id, amount=cents_, origin=origin)
    pool = change.pool
    emit(
        {
            "partner_id": partner_id,
            "record_id": change.record.id,
            "change": cents(cents_),
            "total": cents(pool.total),
            "allocated": cents(pool.allocated),
            "remaining": cents(pool.remaining),
        },
        as_json=as_json,
        text=(
            f"partner {partner_id}: pool total {shown(pool.total)}, "
            f"allocated {shown(pool.allocated)}, remaining {shown(pool.remaining)}"
        ),
    )


@partners.command("allocate-pool", context_settings=SIGNED_AMOUNT)
def allocate_pool(
    distributor_id: int = typer.Argument(
        ..., min=1, max=MAX_BIGINT, help="The distributor that gives pool."
    ),
    sub_id: int = typer.Argument(
        ..., min=1, max=MAX_BIGINT, help="The distributor's second-level reseller."
    ),
    amount: str = typer.Argument(
        ..., help="The amount in decimal; a negative amount takes pool back."
    ),
    remark: str = typer.Option("", "--remark", help="A remark kept on the allocation record."),
    operator: str | None = typer.Option(
        None, "--operator", help="Who allocates; by default the login name."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Move AMOUNT of a distributor's pool to one of its second-level resellers."""
    from creditline.ledger import accounts, pools
    from creditline.ledger.records import Origin
    from creditline.money import parse_amount

    with session(audited=True) as s:
        cents_ = parse_amount(amount, allow_negative=True)
        origin = Origin(operator=operator or default_operator(), source="cli", remark=remark)
        change = pools.allocate_pool(
            s, distributor_id=distributor_id, sub_reseller_id=sub_id, amount=cents_, origin=origin
        )
        distributor = accounts.pool_state(s, distributor_id)
    pool = change.pool
    emit(
        {
            "distributor_id": distributor_id,
            "sub_reseller_id": sub_id,
            "record_id": change.record.id,
            "change": cents(cents_),
            "total": cents(pool.total),
            "allocated": cents(pool.allocated),
            "remaining": cents(pool.remaining),
            "distributor_remaining": cents(distributor.remaining),
        },
        as_json=as_json,
        text=(
            f"sub-reseller {sub_id}: pool total {shown(pool.total)}, remaining "
            f"{shown(pool.remaining)}; distributor {distributor_id} has "
            f"{shown(distributor.remaining)} remaining"
        ),
    )


@partners.command("list")
def list_partners(as_json: bool = JSON_OPTION) -> None:
    """List every partner with its pool and number of customers."""
    from creditline.ledger import reports

    with session(reading=True) as s:
        counts = reports.customer_counts(s)
        found = reports.partners(s)
        rows = [partner_payload(p, customers=int(counts.get(p.id, 0))) for p in found]
    if as_json:
        emit({"partners": rows}, as_json=True)
        return
    print_table(
        [
            Column("id", keep=True, number=True),
            Column("total", keep=True, number=True),
            Column("allocated", keep=True, number=True),
            Column("remaining", keep=True, number=True),
            Column("name"),
            Column("kind"),
            Column("customers", number=True),
            Column("parent", number=True),
        ],
        [
            [
                str(p.id),
                shown(p.pool_total),
                shown(p.pool_allocated),
                shown(p.pool_remaining),
                p.name,
                p.kind,
                str(row["customers"]),
                str(p.parent_id or ""),
            ]
            for p, row in zip(found, rows, strict=True)
        ],
    )


@partners.command("show")
def show(
    partner_id: int = typer.Argument(..., min=1, max=MAX_BIGINT, help="The partner (its UIN)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one partner: its pool, default thresholds, customers and sub-resellers."""
    from creditline.ledger import accounts, customers

    with session(reading=True) as s:
        partner = accounts.get_partner(s, partner_id)
        count = customers.totals(s, partner_id).count
        subs = [sub.id for sub in accounts.sub_resellers(s, partner_id)]
        data = partner_payload(partner, customers=int(count))
        data["sub_resellers"] = subs
    lines = [
        f"{data['name']} ({data['kind']}, id {data['id']})",
        f"pool: total {shown(partner.pool_total)}, allocated {shown(partner.pool_allocated)}, "
        f"remaining {shown(partner.pool_remaining)}",
        f"customers: {data['customers']}",
        f"default thresholds: {', '.join(map(str, data['thresholds']))} %",
    ]
    if data["parent_id"]:
        lines.append(f"distributor: {data['parent_id']}")
    if subs:
        lines.append(f"sub-resellers: {', '.join(map(str, subs))}")
    emit(data, as_json=as_json, text="\n".join(lines))

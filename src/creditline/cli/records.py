"""``creditline records``: the allocation records of a partner, newest first."""

from __future__ import annotations

import typer

from creditline.cli import app
from creditline.cli.common import (
    JSON_OPTION,
    MAX_BIGINT,
    Column,
    emit,
    out,
    print_table,
    session,
    shown,
)
from creditline.limits import MAX_PAGE_SIZE

records = typer.Typer(help="List allocation records.", no_args_is_help=True)
app.add_typer(records, name="records")


@records.command("list")
def list_records(
    partner: int = typer.Option(
        ..., "--partner", min=1, max=MAX_BIGINT, help="The partner whose records to list."
    ),
    customer: int | None = typer.Option(
        None,
        "--customer",
        min=1,
        max=MAX_BIGINT,
        help="List only this customer's records (its UIN).",
    ),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="List only records of this kind: grant, pool_allocation, allocation or withdrawal.",
    ),
    limit: int = typer.Option(
        50, "--limit", min=1, max=MAX_PAGE_SIZE, help="List at most this many records."
    ),
    before: int | None = typer.Option(
        None,
        "--before",
        min=1,
        max=MAX_BIGINT,
        help="Continue with the records older than this record id.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List a page of a partner's allocation records, newest first.

    For the next page, give ``--before`` the last id shown."""
    from creditline.ledger import records as ledger_records

    with session(reading=True) as s:
        rows, has_more = ledger_records.page(
            s,
            partner_id=partner,
            where=ledger_records.RecordFilter(customer_uin=customer, kind=kind),
            limit=limit,
            before_id=before,
        )
        data = [ledger_records.as_payload(r) for r in rows]
    if as_json:
        emit({"records": data, "has_more": has_more}, as_json=True)
        return
    print_table(
        [
            Column("id", keep=True, number=True),
            Column("customer / sub", keep=True, number=True),
            Column("change", keep=True, number=True),
            Column("total after", keep=True, number=True),
            Column("available after", keep=True, number=True),
            Column("time (UTC)"),
            Column("kind"),
            Column("operator"),
            Column("source"),
            Column("remark"),
        ],
        [
            [
                str(r.id),
                str(r.customer_uin or r.sub_partner_id or ""),
                shown(r.change),
                shown(r.total_after),
                shown(r.available_after),
                row["created_at"][:19].replace("T", " "),
                r.kind,
                r.operator,
                r.source,
                r.remark,
            ]
            for r, row in zip(rows, data, strict=True)
        ],
    )
    if has_more:
        out.print(f"more: --before {data[-1]['id']}", highlight=False)

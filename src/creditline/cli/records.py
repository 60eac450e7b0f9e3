"""``creditline records``: the allocation records of a partner, newest first."""

from __future__ import annotations

import typer
from rich.table import Table

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, emit, out, session
from creditline.db.tables import MAX_BIGINT
from creditline.ledger import records as ledger_records

records = typer.Typer(help="Allocation records.", no_args_is_help=True)
app.add_typer(records, name="records")


@records.command("list")
def list_records(
    partner: int = typer.Option(..., "--partner", min=1, max=MAX_BIGINT, help="Whose records."),
    customer: int | None = typer.Option(
        None, "--customer", min=1, max=MAX_BIGINT, help="Only this customer's."
    ),
    kind: str | None = typer.Option(
        None, "--kind", help="grant, pool_allocation, allocation or withdrawal."
    ),
    limit: int = typer.Option(
        50, "--limit", min=1, max=ledger_records.MAX_PAGE_SIZE, help="At most this many."
    ),
    before: int | None = typer.Option(
        None,
        "--before",
        help="Continue with records older than this record id.",
        min=1,
        max=MAX_BIGINT,
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """A page of a partner's allocation records, newest first (``--before`` the last id)."""
    with session() as s:
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
    table = Table(
        "id",
        "time (UTC)",
        "kind",
        "customer / sub",
        "change",
        "total after",
        "available after",
        "operator",
        "source",
        "remark",
    )
    for row in data:
        table.add_row(
            str(row["id"]),
            row["created_at"][:19].replace("T", " "),
            row["kind"],
            str(row["customer_uin"] or row["sub_partner_id"] or ""),
            row["change"],
            row["total_after"],
            row["available_after"],
            row["operator"],
            row["source"],
            row["remark"],
        )
    out.print(table)
    if has_more:
        out.print(f"more: --before {data[-1]['id']}", highlight=False)

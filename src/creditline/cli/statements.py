"""``creditline statements export``: a month's statements of a partner's customers."""

from __future__ import annotations

from pathlib import Path

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, MAX_BIGINT, emit, out, refuse, session

statements = typer.Typer(help="Monthly statements of customers.", no_args_is_help=True)
app.add_typer(statements, name="statements")

FORMATS = ("csv", "json", "pdf")


@statements.command("export")
def export(
    partner: int = typer.Option(
        ..., "--partner", min=1, max=MAX_BIGINT, help="The partner whose customers to export."
    ),
    month: str = typer.Option(..., "--month", help="The calendar month, YYYY-MM."),
    customer: int | None = typer.Option(
        None, "--customer", min=1, max=MAX_BIGINT, help="Only this customer (its UIN)."
    ),
    format: str = typer.Option(
        "csv",
        "--format",
        help="csv (one line per customer; with --customer the statement in detail), json, "
        "or pdf (one file per customer, into --output).",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        help="Write here instead of standard output: a file, or for pdf a directory "
        "(a file is allowed with --customer).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Export the month's statements (the partner's time zone cuts the month).

    A closed month's statements never change; late usage shows in the month it was
    recorded in, as a correction line."""
    from creditline import statement_files
    from creditline.ledger import customer_settings
    from creditline.ledger import statements as ledger_statements

    chosen = "json" if as_json else format
    if chosen not in FORMATS:
        refuse(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    if chosen == "pdf" and output is None:
        refuse("a PDF export needs --output (a directory, or a file with --customer)")
    with session(reading=True) as s:
        wanted = ledger_statements.Month.parse(month, param="month")
        made = ledger_statements.statements(
            s, partner_id=partner, month=wanted, customer_uin=customer
        )
        settings = customer_settings.customer_settings(s, partner)
    if chosen == "json":
        data = [statement_files.as_payload(m) for m in made]
        if output is None:
            emit({"statements": data}, as_json=True)
            return
        import json

        output.write_text(json.dumps({"statements": data}, indent=2) + "\n")
    elif chosen == "csv":
        text = (
            statement_files.detail_csv(made[0])
            if customer is not None
            else statement_files.summary_csv(made)
        )
        if output is None:
            typer.echo(text, nl=False)
            return
        output.write_text(text)
    else:
        assert output is not None
        if customer is not None and output.suffix.lower() == ".pdf":
            targets = [(made[0], output)]
        else:
            output.mkdir(parents=True, exist_ok=True)
            targets = [(m, output / f"statement-{m.customer_uin}-{m.month}.pdf") for m in made]
        for m, path in targets:
            path.write_bytes(
                statement_files.pdf(m, remarks=settings.show_remarks, contact=settings.contact)
            )
    out.print(f"wrote {output}", highlight=False, soft_wrap=True, markup=False)

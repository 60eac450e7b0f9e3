"""``creditline demo``: fill the database with a realistic demo."""

from __future__ import annotations

from dataclasses import asdict

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, emit, plural, refuse, session


@app.command("demo")
def demo_command(
    seed: int = typer.Option(2024, "--seed", help="The same seed makes the same demo."),
    customers: int = typer.Option(
        200, "--customers", min=8, max=5000, help="The number of customers to make."
    ),
    force: bool = typer.Option(
        False, "--force", help="Add the demo even though the database already holds partners."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fill the database with a demo partner network, its customers and their usage.

    It makes a distributor with two second-level resellers and a direct reseller.

    Three months of usage bring customers to every alarm level."""
    from creditline.demo import build_demo
    from creditline.ledger import reports

    with session() as s:
        partners = reports.partner_count(s)
        if partners and not force:
            refuse(
                f"the database already holds {plural(partners, 'partner')}; "
                "use --force to add the demo beside them"
            )
        summary = build_demo(s, seed=seed, customers=customers)
    data = asdict(summary)
    lines = ["demo ready:"]
    for p in summary.partners:
        parent = f", under {p.parent_id}" if p.parent_id else ""
        lines.append(f"  {p.id}  {p.name} ({p.kind}{parent}): {plural(p.customers, 'customer')}")
    lines += [
        f"{plural(summary.customers, 'customer')}, "
        f"{plural(summary.usage_events, 'usage event')}, "
        f"{plural(summary.allocation_records, 'allocation record')}, "
        f"{plural(summary.alarms, 'alarm')}",
        "customers by credit used: "
        + ", ".join(f"{level} %: {n}" for level, n in summary.levels.items()),
        f"customers with their own thresholds: {', '.join(map(str, summary.own_thresholds))}",
        f"look at partner {summary.look_at}: creditline partners show {summary.look_at}; "
        f"creditline customers list --partner {summary.look_at}",
    ]
    emit(data, as_json=as_json, text="\n".join(lines))

"""``creditline demo``: fill the database with a realistic demo."""

from __future__ import annotations

from dataclasses import asdict

import typer
from sqlalchemy import func, select

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, emit, refuse, session
from creditline.db.tables import Partner
from creditline.demo import build_demo


@app.command("demo")
def demo_command(
    seed: int = typer.Option(2024, "--seed", help="The same seed makes the same demo."),
    customers: int = typer.Option(200, "--customers", min=8, max=5000, help="How many."),
    force: bool = typer.Option(
        False, "--force", help="Add the demo even though the database already holds partners."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fill the database with a demo: a distributor with two second-level resellers, a
    direct reseller, their customers and three months of usage at every alarm level."""
    with session() as s:
        partners = s.execute(select(func.count()).select_from(Partner)).scalar_one()
        if partners and not force:
            refuse(
                f"the database already holds {partners} partners; "
                "use --force to add the demo beside them"
            )
        summary = build_demo(s, seed=seed, customers=customers)
    data = asdict(summary)
    lines = ["demo ready:"]
    for p in summary.partners:
        parent = f", under {p.parent_id}" if p.parent_id else ""
        lines.append(f"  {p.id}  {p.name} ({p.kind}{parent}): {p.customers} customers")
    lines += [
        f"{summary.customers} customers, {summary.usage_events} usage events, "
        f"{summary.allocation_records} allocation records, {summary.alarms} alarms",
        "customers by credit used: "
        + ", ".join(f"{level} %: {n}" for level, n in summary.levels.items()),
        f"customers with their own thresholds: {', '.join(map(str, summary.own_thresholds))}",
        f"look at partner {summary.look_at}: creditline partners show {summary.look_at}; "
        f"creditline customers list --partner {summary.look_at}",
    ]
    emit(data, as_json=as_json, text="\n".join(lines))

"""``creditline audit``: the audit log (every write and login), for the platform's staff."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from creditline import audit as audit_log
from creditline.cli import app
from creditline.cli.common import JSON_OPTION, emit, out, session
from creditline.db.tables import MAX_BIGINT

audit = typer.Typer(help="The audit log of writes and logins.", no_args_is_help=True)
app.add_typer(audit, name="audit")


@audit.command("list")
def list_audit(
    partner: int | None = typer.Option(
        None, "--partner", min=1, max=MAX_BIGINT, help="Only this partner's."
    ),
    principal: str | None = typer.Option(
        None, "--principal", help="Only principals containing this (an email, a secret id)."
    ),
    action: str | None = typer.Option(None, "--action", help="Only actions containing this."),
    limit: int = typer.Option(
        50, "--limit", min=1, max=audit_log.MAX_PAGE_SIZE, help="At most this many."
    ),
    before: int | None = typer.Option(
        None, "--before", min=1, max=MAX_BIGINT, help="Older than this event id."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Audit events, newest first (``--before`` the last id for the next page)."""
    with session() as s:
        rows = audit_log.list_events(
            s,
            partner_id=partner,
            principal=principal,
            action=action,
            before_id=before,
            limit=limit,
        )[:limit]
        data = [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "source": e.source,
                "principal": e.principal,
                "partner_id": e.partner_id,
                "source_ip": e.source_ip,
                "request_id": e.request_id,
                "action": e.action,
                "object": e.object,
                "outcome": e.outcome,
                "before": e.before,
                "after": e.after,
            }
            for e in rows
        ]
    if as_json:
        emit({"events": data}, as_json=True)
        return
    table = Table("id", "time (UTC)", "source", "principal", "ip", "action", "outcome", "after")
    for row in data:
        table.add_row(
            *(
                str(row[k])
                for k in ("id", "at", "source", "principal", "source_ip", "action", "outcome")
            ),
            json.dumps(row["after"])[:80],
        )
    out.print(table)

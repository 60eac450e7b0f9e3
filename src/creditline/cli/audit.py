"""``creditline audit``: the audit log (every write and login), for the platform's staff."""

from __future__ import annotations

import json

import typer

from creditline.cli import app
from creditline.cli.common import JSON_OPTION, MAX_BIGINT, Column, emit, print_table, session
from creditline.limits import MAX_PAGE_SIZE

audit = typer.Typer(help="Read the audit log of writes and logins.", no_args_is_help=True)
app.add_typer(audit, name="audit")


def _brief(text: str, most: int = 80) -> str:
    """The start of a long JSON document, marked as cut; --json has all of it."""
    return text if len(text) <= most else text[: most - 1] + "…"


@audit.command("list")
def list_audit(
    partner: int | None = typer.Option(
        None, "--partner", min=1, max=MAX_BIGINT, help="Show only this partner's events."
    ),
    principal: str | None = typer.Option(
        None,
        "--principal",
        help="Show only principals containing this text (an email, a secret id).",
    ),
    action: str | None = typer.Option(
        None, "--action", help="Show only actions containing this text."
    ),
    limit: int = typer.Option(
        50, "--limit", min=1, max=MAX_PAGE_SIZE, help="Show at most this many events."
    ),
    before: int | None = typer.Option(
        None, "--before", min=1, max=MAX_BIGINT, help="Show only events older than this event id."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List audit events, newest first (``--before`` the last id for the next page)."""
    from creditline import audit as audit_log

    with session(reading=True) as s:
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
    print_table(
        [
            Column("id", keep=True, number=True),
            Column("time (UTC)"),
            Column("action"),
            Column("outcome"),
            Column("principal"),
            Column("source"),
            Column("ip"),
            Column("after"),
        ],
        [
            [
                str(row["id"]),
                str(row["at"])[:19].replace("T", " "),
                str(row["action"]),
                str(row["outcome"]),
                str(row["principal"]),
                str(row["source"]),
                str(row["source_ip"] or ""),
                _brief(json.dumps(row["after"])),
            ]
            for row in data
        ],
    )

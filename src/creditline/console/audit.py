"""Platform admin: the audit log (every write and login through every door), filtered by
principal, action and days, newest first, in keyset pages."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from creditline import audit
from creditline.console.visit import BeforeId, day_range, visit

router = APIRouter(prefix="/platform")

PAGE_SIZE = 50


def _shown(value: Any) -> str:
    """A before/after value as indented JSON (already redacted when it was stored)."""
    return "" if value is None else json.dumps(value, indent=1, sort_keys=True, default=str)


@router.get("/audit")
def audit_log(
    request: Request,
    principal: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    before: BeforeId = None,
) -> Response:
    """The audit log for platform admins: who did what, from where, and what it changed."""
    with visit(request, platform=True) as v:
        start, end = day_range(since, until)
        rows = audit.list_events(
            v.s,
            principal=principal.strip() or None,
            action=action.strip() or None,
            since=start,
            until=end,
            before_id=before,
            limit=PAGE_SIZE + 1,
        )
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        filters = {"principal": principal, "action": action, "since": since, "until": until}
        query = urlencode({k: val for k, val in filters.items() if val})
        next_query = (
            urlencode({**{k: val for k, val in filters.items() if val}, "before": rows[-1].id})
            if more and rows
            else ""
        )
        return v.render(
            "platform_audit.html",
            rows=rows,
            filters=filters,
            query=query,
            next_query=next_query,
            first_page=before is None,
            shown=_shown,
        )

"""The audit log, for platform admins: every write and login, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from creditline import audit
from creditline.api.context import Call, call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import UtcTime
from creditline.db.tables import MAX_BIGINT, AuditEvent
from creditline.limits import MAX_REQUEST_PAGE_SIZE

router = APIRouter(prefix="/platform", tags=["platform"], responses=ERROR_RESPONSES)


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    source: str
    principal: str
    partner_id: int | None
    source_ip: str
    request_id: str
    action: str
    object: str
    outcome: str
    before: Any
    after: Any

    @classmethod
    def of(cls, e: AuditEvent) -> AuditEventOut:
        return cls(
            id=e.id,
            at=e.at,
            source=e.source,
            principal=e.principal,
            partner_id=e.partner_id,
            source_ip=e.source_ip,
            request_id=e.request_id,
            action=e.action,
            object=e.object,
            outcome=e.outcome,
            before=e.before,
            after=e.after,
        )


class AuditPage(BaseModel):
    data: list[AuditEventOut]
    has_more: bool
    next_before: int | None


@router.get("/audit", response_model=AuditPage)
def list_audit(
    partner_id: int | None = Query(None, ge=1, le=MAX_BIGINT),
    principal: str | None = Query(None, max_length=200),
    action: str | None = Query(None, max_length=200),
    since: UtcTime | None = Query(None, description="from this time (inclusive), with its offset"),
    before: int | None = Query(None, ge=1, le=MAX_BIGINT),
    limit: int = Query(50, ge=1, le=MAX_REQUEST_PAGE_SIZE),
    c: Call = Depends(call),
) -> AuditPage:
    """Audit events (writes and logins through every door), newest first; platform only."""
    c.principal.platform()
    with c.read() as s:
        rows = audit.list_events(
            s,
            partner_id=partner_id,
            principal=principal,
            action=action,
            since=since,
            before_id=before,
            limit=limit + 1,
        )
    page = rows[:limit]
    return AuditPage(
        data=[AuditEventOut.of(e) for e in page],
        has_more=len(rows) > limit,
        next_before=page[-1].id if len(rows) > limit and page else None,
    )

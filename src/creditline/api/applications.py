"""Credit applications: a partner asks for more pool; the platform (or, for a second-level
reseller, its distributor) approves — which grants — or rejects."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from creditline import money
from creditline.api.context import Call, call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Body, CreditAmount
from creditline.auth.principals import Principal
from creditline.db.tables import MAX_BIGINT, CreditApplication
from creditline.errors import NotFound
from creditline.ledger import applications
from creditline.limits import MAX_REQUEST_PAGE_SIZE

router = APIRouter(tags=["credit applications"], responses=ERROR_RESPONSES)

ApplicationId = Path(ge=1, le=MAX_BIGINT)


class ApplicationOut(BaseModel):
    id: int
    partner_id: int
    decided_by_partner: int | None = Field(
        description="the distributor that decides; null: the platform"
    )
    amount: str
    reason: str
    status: str
    requested_by: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str
    record_id: int | None = Field(description="the allocation record of the approval")

    @classmethod
    def of(cls, a: CreditApplication) -> ApplicationOut:
        return cls(
            id=a.id,
            partner_id=a.partner_id,
            decided_by_partner=a.decider_id,
            amount=money.to_text(a.amount),
            reason=a.reason,
            status=a.status,
            requested_by=a.requested_by,
            created_at=a.created_at,
            decided_by=a.decided_by,
            decided_at=a.decided_at,
            decision_note=a.decision_note,
            record_id=a.record_id,
        )


class ApplicationPage(BaseModel):
    data: list[ApplicationOut]
    has_more: bool
    next_before: int | None


class ApplicationIn(Body):
    amount: CreditAmount
    reason: str = Field("", max_length=500)


class DecisionIn(Body):
    note: str = Field("", max_length=500)


def _decider(principal: Principal) -> int | None:
    """None for the platform; a distributor's id when it decides its sub-resellers'."""
    if principal.kind == "platform":
        return None
    return principal.distributor("admin")


@router.post("/credit-applications", status_code=201, response_model=ApplicationOut)
def apply(body: ApplicationIn, c: Call = Depends(write_call)) -> Response:
    """Ask for more pool."""
    partner_id = c.principal.partner("admin")
    amount = money.parse_amount(body.amount)
    return c.write(
        lambda s: ApplicationOut.of(
            applications.apply(
                s,
                partner_id=partner_id,
                amount=amount,
                reason=body.reason,
                requested_by=c.principal.operator,
            )
        ),
        status_code=201,
    )


@router.get("/credit-applications", response_model=ApplicationPage)
def list_applications(
    c: Call = Depends(call),
    role: Literal["applicant", "decider"] = Query(
        "applicant", description="a distributor's own applications, or the ones it decides"
    ),
    status: Literal["pending", "approved", "rejected"] | None = Query(None),
    limit: int = Query(50, ge=1, le=MAX_REQUEST_PAGE_SIZE),
    before: int | None = Query(None, ge=1, le=MAX_BIGINT),
) -> ApplicationPage:
    """Applications, newest first: the platform sees the ones it decides; a partner its own
    (or, a distributor with ``role=decider``, its sub-resellers')."""
    p = c.principal
    with c.read() as s:
        if p.kind == "platform":
            rows, more = applications.listing(
                s, platform=True, status=status, limit=limit, before_id=before
            )
        elif role == "decider":
            rows, more = applications.listing(
                s, decider_id=p.distributor("viewer"), status=status, limit=limit, before_id=before
            )
        else:
            rows, more = applications.listing(
                s, partner_id=p.partner(), status=status, limit=limit, before_id=before
            )
        data = [ApplicationOut.of(a) for a in rows]
    return ApplicationPage(data=data, has_more=more, next_before=data[-1].id if more else None)


@router.get("/credit-applications/{application_id}", response_model=ApplicationOut)
def get_application(application_id: int = ApplicationId, c: Call = Depends(call)) -> ApplicationOut:
    """One application, seen by its applicant or its decider."""
    p = c.principal
    with c.read() as s:
        if p.kind == "platform":
            found = applications.get(s, application_id, partner_id=None, decider_id=None)
        else:
            partner_id = p.partner()
            try:
                found = applications.get(s, application_id, partner_id=partner_id, decider_id=None)
            except NotFound:
                found = applications.get(s, application_id, partner_id=None, decider_id=partner_id)
        return ApplicationOut.of(found)


@router.post("/credit-applications/{application_id}/approve", response_model=ApplicationOut)
def approve(
    body: DecisionIn, application_id: int = ApplicationId, c: Call = Depends(write_call)
) -> Response:
    """Approve: the platform grants the amount; a distributor allocates it from its pool."""
    decider = _decider(c.principal)
    return c.write(
        lambda s: ApplicationOut.of(
            applications.approve(
                s, application_id, decider_id=decider, origin=c.origin(), note=body.note
            )
        )
    )


@router.post("/credit-applications/{application_id}/reject", response_model=ApplicationOut)
def reject(
    body: DecisionIn, application_id: int = ApplicationId, c: Call = Depends(write_call)
) -> Response:
    """Reject: nothing changes but the application's status."""
    decider = _decider(c.principal)
    return c.write(
        lambda s: ApplicationOut.of(
            applications.reject(
                s,
                application_id,
                decider_id=decider,
                decided_by=c.principal.operator,
                note=body.note,
            )
        )
    )

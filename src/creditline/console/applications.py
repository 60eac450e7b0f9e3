"""Credit applications: a partner asks for more pool; whoever fills its pool decides (the
platform admin for resellers and distributors, the distributor for its sub-resellers)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline import money
from creditline.console.visit import PathId, Visit, visit
from creditline.db.tables import CreditApplication
from creditline.errors import CreditlineError
from creditline.ledger import applications, reports
from creditline.ledger.records import Origin

router = APIRouter()


def _names(v: Visit) -> dict[int, str]:
    return reports.partner_names(v.s)


def _partner_page(v: Visit, *, status: int = 200, error: str = "") -> Response:
    own, _ = applications.listing(v.s, partner_id=v.partner_id, limit=100)
    queue: list[CreditApplication] = []
    if v.partner is not None and v.partner.kind == "distributor":
        queue, _ = applications.listing(v.s, decider_id=v.partner_id, status="pending", limit=100)
    return v.render(
        "applications.html", status=status, own=own, queue=queue, names=_names(v), error=error
    )


@router.get("/applications")
def application_list(request: Request) -> Response:
    """The partner's applications (and, for a distributor, its sub-resellers' to decide)."""
    with visit(request) as v:
        return _partner_page(v)


@router.post("/applications")
def apply(request: Request, amount: str = Form(""), reason: str = Form("")) -> Response:
    """Ask for more pool."""
    with visit(request) as v:
        v.require_allocate()
        try:
            application = applications.apply(
                v.s,
                partner_id=v.partner_id,
                amount=money.parse_amount(amount),
                reason=reason,
                requested_by=v.operator,
            )
        except CreditlineError as exc:
            return _partner_page(v, status=422, error=exc.message)
        v.notice(
            f"Application {application.id} for {money.to_display(application.amount)} USD sent."
        )
    return RedirectResponse("/applications", status_code=303)


def _decide(v: Visit, application_id: int, decision: str, note: str, *, decider: int | None) -> str:
    if decision == "approve":
        applications.approve(
            v.s,
            application_id,
            decider_id=decider,
            origin=Origin(operator=v.operator, source="console"),
            note=note,
        )
        return f"Application {application_id} approved; the pool is credited."
    applications.reject(v.s, application_id, decider_id=decider, decided_by=v.operator, note=note)
    return f"Application {application_id} rejected."


@router.post("/applications/{application_id}/{decision}")
def distributor_decides(
    request: Request, application_id: PathId, decision: str, note: str = Form("")
) -> Response:
    """A distributor approves (allocating its own pool) or rejects a sub-reseller's ask."""
    with visit(request) as v:
        # Deciding is an admin's, as in the REST API (an operator may allocate pool, but
        # not answer a sub-reseller's application).
        v.require_manage()
        if decision not in ("approve", "reject"):
            return _partner_page(v, status=404, error="Unknown decision.")
        try:
            v.notice(_decide(v, application_id, decision, note, decider=v.partner_id))
        except CreditlineError as exc:
            if exc.kind == "not_found":
                raise
            return _partner_page(v, status=422, error=exc.message)
    return RedirectResponse("/applications", status_code=303)


def _platform_page(v: Visit, *, show: str, status: int = 200, error: str = "") -> Response:
    rows, _ = applications.listing(
        v.s, platform=True, status=None if show == "all" else "pending", limit=200
    )
    return v.render(
        "platform_applications.html",
        status=status,
        rows=rows,
        names=_names(v),
        show=show,
        error=error,
    )


@router.get("/platform/applications")
def platform_queue(request: Request, show: str = "pending") -> Response:
    """The platform's queue of applications (pending first; all on request)."""
    with visit(request, platform=True) as v:
        return _platform_page(v, show=show)


@router.post("/platform/applications/{application_id}/{decision}")
def platform_decides(
    request: Request, application_id: PathId, decision: str, note: str = Form("")
) -> Response:
    """The platform approves (a grant) or rejects an application."""
    with visit(request, platform=True) as v:
        if decision not in ("approve", "reject"):
            return _platform_page(v, show="pending", status=404, error="Unknown decision.")
        try:
            v.notice(_decide(v, application_id, decision, note, decider=None))
        except CreditlineError as exc:
            if exc.kind == "not_found":
                raise
            return _platform_page(v, show="pending", status=422, error=exc.message)
    return RedirectResponse("/platform/applications", status_code=303)

"""Platform admin: partners (list, create, view) and grants to their pools."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline import money
from creditline.auth import users
from creditline.console.visit import PathId, Visit, number_in, visit
from creditline.errors import CreditlineError, InvalidInput
from creditline.ledger import accounts, customers, pools, records, reports
from creditline.ledger.records import Origin

router = APIRouter(prefix="/platform")


def _list(v: Visit, *, status: int = 200, error: str = "") -> Response:
    partners = reports.partners(v.s)
    counts = reports.customer_counts(v.s)
    distributors = [p for p in partners if p.kind == "distributor"]
    return v.render(
        "platform_partners.html",
        status=status,
        partners=partners,
        counts=counts,
        distributors=distributors,
        error=error,
    )


@router.get("/partners")
def partner_list(request: Request) -> Response:
    """Every partner and its pool."""
    with visit(request, platform=True) as v:
        return _list(v)


@router.post("/partners")
def create_partner(
    request: Request, name: str = Form(""), kind: str = Form(""), parent: str = Form("")
) -> Response:
    """Create a partner (a sub-reseller names its distributor)."""
    with visit(request, platform=True) as v:
        try:
            parent_id = number_in(parent)
            if parent.strip() and parent_id is None:
                raise InvalidInput(f"parent {parent[:40]!r} is not a partner id")
            partner = accounts.create_partner(v.s, name=name, kind=kind, parent_id=parent_id)
        except CreditlineError as exc:
            return _list(v, status=422, error=exc.message)
        v.notice(f"Created partner {partner.name} ({partner.id}).")
    return RedirectResponse(f"/platform/partners/{partner.id}", status_code=303)


def _view(v: Visit, partner_id: int, *, status: int = 200, error: str = "") -> Response:
    partner = accounts.get_partner(v.s, partner_id)
    totals = customers.totals(v.s, partner_id)
    history, _ = records.page(v.s, partner_id=partner_id, limit=20)
    return v.render(
        "platform_partner.html",
        status=status,
        p=partner,
        customers=int(totals.count),
        held=int(totals.total_credit),
        history=history,
        names=records.names(v.s, partner_id=partner_id, rows=history),
        users=users.list_users(v.s, partner_id),
        roles=users.PARTNER_ROLES,
        error=error,
    )


@router.get("/partners/{partner_id}")
def partner_view(request: Request, partner_id: PathId) -> Response:
    """One partner: pool, customers, users, recent records; grant form."""
    with visit(request, platform=True) as v:
        return _view(v, partner_id)


@router.post("/partners/{partner_id}/grants")
def grant(
    request: Request, partner_id: PathId, amount: str = Form(""), remark: str = Form("")
) -> Response:
    """Grant to (or, negative, reduce) a partner's pool."""
    with visit(request, platform=True) as v:
        accounts.get_partner(v.s, partner_id)
        try:
            change = pools.grant(
                v.s,
                partner_id=partner_id,
                amount=money.parse_amount(amount, allow_negative=True),
                origin=Origin(operator=v.operator, source="console", remark=remark),
            )
        except CreditlineError as exc:
            return _view(v, partner_id, status=422, error=exc.message)
        v.notice(
            f"Pool is now {money.to_display(change.pool.total)} "
            f"({money.to_display(change.pool.remaining)} remaining)."
        )
    return RedirectResponse(f"/platform/partners/{partner_id}", status_code=303)


@router.post("/partners/{partner_id}/users")
def add_partner_user(
    request: Request,
    partner_id: PathId,
    email: str = Form(""),
    password: str = Form(""),
    role: str = Form("admin"),
) -> Response:
    """Give a partner its first (or another) console user."""
    with visit(request, platform=True) as v:
        try:
            user = users.create_user(
                v.s, partner_id=partner_id, email=email, password=password, role=role
            )
        except CreditlineError as exc:
            if exc.kind == "not_found":
                raise
            return _view(v, partner_id, status=422, error=exc.message)
        v.notice(f"Added {user.email} as {user.role}.")
    return RedirectResponse(f"/platform/partners/{partner_id}", status_code=303)

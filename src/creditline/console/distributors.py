"""Distributors: their second-level resellers, and pool allocation to them."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline import money
from creditline.console.visit import PageError, PathId, Visit, visit
from creditline.errors import CreditlineError
from creditline.ledger import accounts, pools
from creditline.ledger.records import Origin

router = APIRouter()


def _page(v: Visit, *, status: int = 200, error: str = "", target: int | None = None) -> Response:
    if v.partner is None or v.partner.kind != "distributor":
        raise PageError(404, "Not found", "Only a distributor has second-level resellers.")
    subs = accounts.sub_resellers(v.s, v.partner_id)
    return v.render("distributors.html", status=status, subs=subs, error=error, target=target)


@router.get("/distributors")
def sub_resellers(request: Request) -> Response:
    """The distributor's second-level resellers and their pools."""
    with visit(request) as v:
        return _page(v)


@router.post("/distributors/sub-resellers")
def add_sub_reseller(request: Request, name: str = Form("")) -> Response:
    """A distributor admin adds a second-level reseller (with an empty pool)."""
    with visit(request) as v:
        v.require_manage()
        _page(v)  # only a distributor gets this far
        try:
            sub = accounts.create_partner(
                v.s, name=name, kind="sub-reseller", parent_id=v.partner_id
            )
        except CreditlineError as exc:
            return _page(v, status=422, error=exc.message)
        v.notice(f"Added second-level reseller {sub.name} ({sub.id}).")
    return RedirectResponse("/distributors", status_code=303)


@router.post("/distributors/{sub_id}/pool")
def allocate_pool(
    request: Request, sub_id: PathId, amount: str = Form(""), remark: str = Form("")
) -> Response:
    """Move pool to a second-level reseller (negative: take back what it has remaining)."""
    with visit(request) as v:
        v.require_allocate()
        _page(v)
        try:
            change = pools.allocate_pool(
                v.s,
                distributor_id=v.partner_id,
                sub_reseller_id=sub_id,
                amount=money.parse_amount(amount, allow_negative=True),
                origin=Origin(operator=v.operator, source="console", remark=remark),
            )
        except CreditlineError as exc:
            if exc.kind == "not_found":
                raise
            return _page(v, status=422, error=exc.message, target=sub_id)
        v.notice(
            f"Pool of {sub_id} is now {money.to_display(change.pool.total)} "
            f"({money.to_display(change.pool.remaining)} remaining)."
        )
    return RedirectResponse("/distributors", status_code=303)

"""Purchase checks in the console: a customer's purchase policy (its own, or the
partner's default), the partner's default and tolerance, and the decisions kept."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline import money
from creditline.console.visit import PathId, Visit, number_in, templates, visit
from creditline.db.tables import MAX_BIGINT, PURCHASE_POLICIES
from creditline.errors import CreditlineError
from creditline.ledger import purchases
from creditline.ledger.accounts import get_customer

router = APIRouter()

#: How the console names each policy.
POLICY_NAMES = {
    "notify_only": "Notify only",
    "block_at_limit": "Block at limit",
    "block_all": "Hold all purchases",
}
templates.env.filters["policy"] = lambda name: POLICY_NAMES.get(name, name)
PAGE_SIZE = 50


def _tolerance(text: str) -> int | None:
    """The tolerance typed in a form: empty is none of its own."""
    text = text.strip()
    return None if not text else money.parse_amount(text, param="tolerance")


def _form(
    v: Visit,
    uin: int | None,
    *,
    error: str = "",
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    customer = None if uin is None else get_customer(v.s, v.partner_id, uin)
    return v.render(
        "purchase_policy.html",
        status=status,
        c=customer,
        policy=None if uin is None else purchases.customer_policy(v.s, v.partner_id, uin),
        default=purchases.partner_default(v.s, v.partner_id),
        policies=PURCHASE_POLICIES,
        error=error,
        typed=typed,
    )


@router.get("/customers/{uin}/purchase-policy")
def customer_policy_form(request: Request, uin: PathId) -> Response:
    """The customer's purchase policy: its own, or the partner's default."""
    with visit(request) as v:
        return _form(v, uin)


@router.post("/customers/{uin}/purchase-policy")
def set_customer_policy(
    request: Request, uin: PathId, policy: str = Form(""), tolerance: str = Form("")
) -> Response:
    """Give the customer its own policy (``default``: back to the partner's); on refusal
    the form again, with the reason and nothing changed."""
    with visit(request) as v:
        v.require_allocate()
        get_customer(v.s, v.partner_id, uin)
        try:
            chosen = None if policy in ("", "default") else purchases.check_policy(policy)
            own = None if chosen is None else _tolerance(tolerance)
            saved = purchases.set_customer_policy(
                v.s, partner_id=v.partner_id, uin=uin, policy=chosen, tolerance=own
            )
        except CreditlineError as exc:
            typed = {"policy": policy, "tolerance": tolerance}
            return _form(v, uin, error=f"Not saved: {exc.message}.", typed=typed, status=422)
        whose = "its own" if saved.own else "your default"
        v.notice(
            f"Purchase policy of customer {uin}: {POLICY_NAMES[saved.policy]} ({whose}), "
            f"tolerance {money.to_display(saved.tolerance)} USD."
        )
        return RedirectResponse(f"/customers/{uin}", status_code=303)


@router.get("/settings/purchase-policy")
def default_policy_form(request: Request) -> Response:
    """The partner's default purchase policy and tolerance."""
    with visit(request) as v:
        return _form(v, None)


@router.post("/settings/purchase-policy")
def set_default_policy(
    request: Request, policy: str = Form(""), tolerance: str = Form("")
) -> Response:
    """Set the partner's default policy and tolerance (admin)."""
    with visit(request) as v:
        v.require_manage()
        try:
            saved = purchases.set_partner_default(
                v.s,
                partner_id=v.partner_id,
                policy=purchases.check_policy(policy),
                tolerance=_tolerance(tolerance) or 0,
            )
        except CreditlineError as exc:
            typed = {"policy": policy, "tolerance": tolerance}
            return _form(v, None, error=f"Not saved: {exc.message}.", typed=typed, status=422)
        v.notice(
            f"Default purchase policy: {POLICY_NAMES[saved.policy]}, tolerance "
            f"{money.to_display(saved.tolerance)} USD."
        )
    return RedirectResponse("/settings/purchase-policy", status_code=303)


@router.get("/purchase-checks")
def decisions(
    request: Request,
    customer: str = Query("", max_length=40),
    answer: str = Query("", max_length=16),
    before: int | None = Query(None, ge=1, le=MAX_BIGINT),
) -> Response:
    """The decisions of the purchase check, newest first, by customer and answer."""
    with visit(request) as v:
        problems: dict[str, str] = {}
        uin = None
        if customer.strip():
            uin = number_in(customer)
            if uin is None:
                problems["customer"] = f"{customer[:40]!r} is not a customer UIN."
        if answer not in ("", *purchases.ANSWERS):
            problems["answer"] = "The answer is allowed or refused."
        rows: list[purchases.Decision] = []
        more = False
        if not problems:
            rows, more = purchases.page(
                v.s,
                partner_id=v.partner_id,
                customer_uin=uin,
                answer=answer or None,
                before_id=before,
                limit=PAGE_SIZE,
            )
        filters = {k: val for k, val in (("customer", customer), ("answer", answer)) if val}
        return v.render(
            "purchase_checks.html",
            status=422 if problems else 200,
            rows=rows,
            problems=problems,
            filters={"customer": customer, "answer": answer},
            query=urlencode(filters),
            first_page=before is None,
            next_query=urlencode({**filters, "before": rows[-1].id}) if more and rows else "",
        )

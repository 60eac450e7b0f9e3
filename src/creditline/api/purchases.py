"""The purchase check and the partner's purchase policies: ``POST
/v1/customers/{uin}/purchase-checks`` (the vendor's order pipeline, with the platform key;
or a partner operator for its own customers), the decisions kept, and the policies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditline import money
from creditline.api.context import Call, call, credit_call, write_call
from creditline.api.customers import Uin
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Amount, Body, CreditAmount
from creditline.auth.principals import Principal
from creditline.db.tables import MAX_BIGINT
from creditline.errors import NotPermitted
from creditline.ledger import purchases
from creditline.ledger.credit import Requirement
from creditline.limits import MAX_REQUEST_PAGE_SIZE

router = APIRouter(tags=["purchase checks"], responses=ERROR_RESPONSES)

PolicyName = Literal["notify_only", "block_at_limit", "block_all"]


def checker(principal: Principal) -> int | None:
    """Whose customers the caller may check: any (the platform key: the vendor's order
    pipeline), or a partner's own (an operator or admin key: a check keeps a decision)."""
    if principal.kind == "platform":
        return None
    if principal.kind != "partner":
        raise NotPermitted("a purchase check needs the platform key or a partner operator key")
    return principal.partner("operator")


def _reader(principal: Principal) -> int | None:
    """Whose decisions the caller may list: every partner's (platform), or its own."""
    if principal.kind == "platform":
        return None
    return principal.partner()


class PurchaseCheckIn(Body):
    amount: CreditAmount = Field(description="the purchase's price: USD, more than 0")
    product: str = Field("", max_length=purchases.MAX_PRODUCT, description="e.g. cvm")


class PurchaseCheckOut(BaseModel):
    id: int
    customer_uin: int
    partner_id: int
    amount: str
    product: str
    answer: Literal["allowed", "refused"]
    allowed: bool
    reason: Literal["not_restricted", "within_limit", "below_limit", "on_hold"]
    message: str = Field(description="the decision in a sentence, for people")
    policy: PolicyName
    tolerance: str
    available: str = Field(description="available credit when checked, before the purchase")
    available_after: str = Field(description="available credit were the purchase made")
    requested_by: str
    decided_at: datetime

    @classmethod
    def of(cls, d: purchases.Decision) -> PurchaseCheckOut:
        return cls(
            id=d.id,
            customer_uin=d.customer_uin,
            partner_id=d.partner_id,
            amount=money.to_text(d.amount),
            product=d.product,
            answer=d.answer,
            allowed=d.allowed,
            reason=d.reason,
            message=d.message,
            policy=d.policy,
            tolerance=money.to_text(d.tolerance),
            available=money.to_text(d.available),
            available_after=money.to_text(d.available_after),
            requested_by=d.requested_by,
            decided_at=d.decided_at,
        )


def _check(
    s: Session, c: Call, owner: int | None, uin: int, amount: int, product: str, r: Requirement
) -> PurchaseCheckOut:
    decision = purchases.check(
        s,
        partner_id=owner,
        customer_uin=uin,
        amount=amount,
        product=product,
        requested_by=c.principal.operator,
        require=r,
    )
    return PurchaseCheckOut.of(decision)


@router.post("/customers/{uin}/purchase-checks", response_model=PurchaseCheckOut)
def purchase_check(uin: Uin, body: PurchaseCheckIn, c: Call = Depends(credit_call)) -> Response:
    """May the customer make this purchase? Allowed or refused, with the reason, by the
    customer's purchase policy; the decision is kept. A refusal is an answer (200), not an
    error."""
    owner = checker(c.principal)
    amount = money.parse_amount(body.amount)
    product = purchases.check_product(body.product)
    return c.credit_write(lambda s, r: _check(s, c, owner, uin, amount, product, r))


class PurchaseCheckPage(BaseModel):
    data: list[PurchaseCheckOut]
    has_more: bool
    next_before: int | None


@router.get("/purchase-checks", response_model=PurchaseCheckPage)
def list_purchase_checks(
    c: Call = Depends(call),
    customer_uin: int | None = Query(None, ge=1, le=MAX_BIGINT),
    answer: Literal["allowed", "refused"] | None = Query(None),
    before: int | None = Query(None, ge=1, le=MAX_BIGINT, description="next_before of a page"),
    limit: int = Query(50, ge=1, le=MAX_REQUEST_PAGE_SIZE),
) -> PurchaseCheckPage:
    """The decisions of the purchase check, newest first."""
    owner = _reader(c.principal)
    with c.read() as s:
        rows, more = purchases.page(
            s,
            partner_id=owner,
            customer_uin=customer_uin,
            answer=answer,
            before_id=before,
            limit=limit,
        )
    return PurchaseCheckPage(
        data=[PurchaseCheckOut.of(d) for d in rows],
        has_more=more,
        next_before=rows[-1].id if more and rows else None,
    )


class DefaultPolicy(BaseModel):
    policy: PolicyName
    tolerance: str = Field(description="how far below zero available credit may go")


class DefaultPolicyIn(Body):
    policy: PolicyName
    tolerance: Amount = Field("0", description="USD, 0 or more; default 0")


def _default_out(d: purchases.PartnerDefault) -> DefaultPolicy:
    return DefaultPolicy(policy=d.policy, tolerance=money.to_text(d.tolerance))


@router.get("/purchase-policy", response_model=DefaultPolicy)
def default_policy(c: Call = Depends(call)) -> DefaultPolicy:
    """The partner's default purchase policy and tolerance."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return _default_out(purchases.partner_default(s, partner_id))


@router.put("/purchase-policy", response_model=DefaultPolicy)
def set_default_policy(body: DefaultPolicyIn, c: Call = Depends(write_call)) -> Response:
    """Set the partner's default purchase policy and tolerance."""
    partner_id = c.principal.partner("admin")
    tolerance = money.parse_amount(body.tolerance, param="tolerance")
    return c.write(
        lambda s: _default_out(
            purchases.set_partner_default(
                s, partner_id=partner_id, policy=body.policy, tolerance=tolerance
            )
        )
    )


class CustomerPolicyOut(BaseModel):
    customer_uin: int
    policy: PolicyName
    tolerance: str
    own: bool = Field(description="false when the partner's default policy applies")
    own_tolerance: bool = Field(description="false when the partner's tolerance applies")


class CustomerPolicyIn(Body):
    policy: PolicyName | None = Field(description="null: back to the partner's default")
    tolerance: Annotated[Amount | None, Field(description="null: the partner's")] = None


def _customer_out(p: purchases.CustomerPolicy) -> CustomerPolicyOut:
    return CustomerPolicyOut(
        customer_uin=p.customer_uin,
        policy=p.policy,
        tolerance=money.to_text(p.tolerance),
        own=p.own,
        own_tolerance=p.own_tolerance,
    )


@router.get("/customers/{uin}/purchase-policy", response_model=CustomerPolicyOut)
def customer_policy(uin: Uin, c: Call = Depends(call)) -> CustomerPolicyOut:
    """The purchase policy and tolerance that apply to the customer."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return _customer_out(purchases.customer_policy(s, partner_id, uin))


@router.put("/customers/{uin}/purchase-policy", response_model=CustomerPolicyOut)
def set_customer_policy(
    uin: Uin, body: CustomerPolicyIn, c: Call = Depends(write_call)
) -> Response:
    """Give the customer its own purchase policy (and tolerance), or null: the default."""
    partner_id = c.principal.partner("operator")
    tolerance = (
        None if body.tolerance is None else money.parse_amount(body.tolerance, param="tolerance")
    )
    return c.write(
        lambda s: _customer_out(
            purchases.set_customer_policy(
                s, partner_id=partner_id, uin=uin, policy=body.policy, tolerance=tolerance
            )
        )
    )


__all__ = ["router"]

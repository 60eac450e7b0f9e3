"""A customer key's one view: its own credit (QueryCustomerBillingQuota)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from creditline import money
from creditline.api.context import Call, call
from creditline.api.errors import ERROR_RESPONSES
from creditline.ledger import accounts

router = APIRouter(tags=["customer"], responses=ERROR_RESPONSES)


class OwnCredit(BaseModel):
    uin: int
    total_credit: str
    consumed: str
    available_credit: str


@router.get("/me/credit", response_model=OwnCredit)
def own_credit(c: Call = Depends(call)) -> OwnCredit:
    """The calling customer's credit: total, consumed and available."""
    partner_id, uin = c.principal.customer()
    with c.read() as s:
        customer = accounts.get_customer(s, partner_id, uin)
        return OwnCredit(
            uin=customer.uin,
            total_credit=money.to_text(customer.total_credit),
            consumed=money.to_text(customer.consumed),
            available_credit=money.to_text(customer.available),
        )

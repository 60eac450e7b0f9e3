"""The platform (vendor's channel staff): partners and the grants that fill their pools."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditline import money
from creditline.api.context import Call, call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Body, Pool, RecordOut, Remark, SignedAmount
from creditline.db.tables import MAX_BIGINT, Partner
from creditline.ledger import accounts, pools, reports
from creditline.ledger.accounts import PoolState
from creditline.limits import MAX_REQUEST_PAGE_SIZE

router = APIRouter(prefix="/partners", tags=["platform"], responses=ERROR_RESPONSES)

PartnerId = Path(ge=1, le=MAX_BIGINT)


class PartnerOut(BaseModel):
    id: int
    name: str
    kind: str
    parent_id: int | None
    pool: Pool
    default_thresholds: list[int]
    created_at: datetime

    @classmethod
    def of(cls, p: Partner) -> PartnerOut:
        return cls(
            id=p.id,
            name=p.name,
            kind=p.kind,
            parent_id=p.parent_id,
            pool=Pool.of(PoolState(p.id, p.pool_total, p.pool_allocated)),
            default_thresholds=list(p.thresholds),
            created_at=p.created_at,
        )


class PartnerPage(BaseModel):
    data: list[PartnerOut]
    has_more: bool
    next_after: int | None


class PartnerIn(Body):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["distributor", "reseller", "sub-reseller"] = "reseller"
    parent_id: int | None = Field(None, ge=1, le=MAX_BIGINT, description="a sub-reseller's")


class GrantIn(Body):
    amount: SignedAmount = Field(
        description="positive grants, negative reduces (down to the pool's remaining)",
    )
    remark: Remark = ""


class GrantOut(BaseModel):
    record: RecordOut
    pool: Pool


@router.post("", status_code=201, response_model=PartnerOut)
def create_partner(body: PartnerIn, c: Call = Depends(write_call)) -> Response:
    """Create a partner with an empty pool."""
    c.principal.platform()
    return c.write(
        lambda s: PartnerOut.of(
            accounts.create_partner(s, name=body.name, kind=body.kind, parent_id=body.parent_id)
        ),
        status_code=201,
    )


@router.get("", response_model=PartnerPage)
def list_partners(
    c: Call = Depends(call),
    limit: int = Query(50, ge=1, le=MAX_REQUEST_PAGE_SIZE),
    after: int | None = Query(
        None, ge=1, le=MAX_BIGINT, description="next_after of the previous page"
    ),
) -> PartnerPage:
    """Every partner, by id."""
    c.principal.platform()
    with c.read() as s:
        rows = reports.partners(s, after=after, limit=limit + 1)
        data = [PartnerOut.of(p) for p in rows[:limit]]
    more = len(rows) > limit
    return PartnerPage(data=data, has_more=more, next_after=data[-1].id if more else None)


@router.get("/{partner_id}", response_model=PartnerOut)
def get_partner(partner_id: int = PartnerId, c: Call = Depends(call)) -> PartnerOut:
    """One partner and its pool."""
    c.principal.platform()
    with c.read() as s:
        return PartnerOut.of(accounts.get_partner(s, partner_id))


def _grant(s: Session, c: Call, partner_id: int, amount: int, remark: str) -> GrantOut:
    change = pools.grant(s, partner_id=partner_id, amount=amount, origin=c.origin(remark))
    return GrantOut(record=RecordOut.of(change.record), pool=Pool.of(change.pool))


@router.post("/{partner_id}/grants", response_model=GrantOut)
def grant(body: GrantIn, partner_id: int = PartnerId, c: Call = Depends(write_call)) -> Response:
    """Grant pool to a partner (negative: reduce it, down to what remains)."""
    c.principal.platform()
    amount = money.parse_amount(body.amount, allow_negative=True)
    return c.write(lambda s: _grant(s, c, partner_id, amount, body.remark))

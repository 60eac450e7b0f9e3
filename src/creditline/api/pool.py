"""The partner's pool summary, and the amount and record shapes every area shares."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from creditline import money
from creditline.api.context import Call, call
from creditline.api.errors import ERROR_RESPONSES
from creditline.db.tables import AllocationRecord
from creditline.ledger.accounts import PoolState, get_partner

#: An amount in USD as decimal text, at most two decimals: "12.50".
Amount = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$",
        examples=["12.50"],
        description="USD as decimal text with at most two decimals",
    ),
]
Remark = Annotated[str, Field(max_length=500, description="Free text kept on the record")]

router = APIRouter(tags=["pool"], responses=ERROR_RESPONSES)


class Pool(BaseModel):
    partner_id: int
    total: str
    allocated: str
    remaining: str

    @classmethod
    def of(cls, state: PoolState) -> Pool:
        return cls(
            partner_id=state.partner_id,
            total=money.to_text(state.total),
            allocated=money.to_text(state.allocated),
            remaining=money.to_text(state.remaining),
        )


class PartnerSummary(BaseModel):
    partner_id: int
    name: str
    kind: str
    parent_id: int | None
    pool: Pool
    default_thresholds: list[int]


class RecordOut(BaseModel):
    """One allocation record: a grant, pool allocation, allocation or withdrawal."""

    id: int
    partner_id: int
    kind: str
    customer_uin: int | None
    sub_partner_id: int | None
    operator: str
    change: str
    total_after: str
    available_after: str
    remark: str
    source: str
    idempotency_key: str | None
    created_at: datetime

    @classmethod
    def of(cls, record: AllocationRecord) -> RecordOut:
        return cls(
            id=record.id,
            partner_id=record.partner_id,
            kind=record.kind,
            customer_uin=record.customer_uin,
            sub_partner_id=record.sub_partner_id,
            operator=record.operator,
            change=money.to_text(record.change),
            total_after=money.to_text(record.total_after),
            available_after=money.to_text(record.available_after),
            remark=record.remark,
            source=record.source,
            idempotency_key=record.idempotency_key,
            created_at=record.created_at,
        )


@router.get("/pool", response_model=PartnerSummary)
def pool_summary(c: Call = Depends(call)) -> PartnerSummary:
    """The calling partner's pool: total, allocated and remaining."""
    partner_id = c.principal.partner()
    with c.read() as s:
        partner = get_partner(s, partner_id)
        return PartnerSummary(
            partner_id=partner.id,
            name=partner.name,
            kind=partner.kind,
            parent_id=partner.parent_id,
            pool=Pool.of(PoolState(partner.id, partner.pool_total, partner.pool_allocated)),
            default_thresholds=list(partner.thresholds),
        )

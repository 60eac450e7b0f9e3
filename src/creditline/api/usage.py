"""Usage batches from the vendor's billing feed (platform key)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditline.api.context import Call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Amount
from creditline.ledger import usage

router = APIRouter(tags=["usage"], responses=ERROR_RESPONSES)


class UsageIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=128)
    customer_uin: Annotated[int, Field(ge=1, le=2**63 - 1)]
    product: str = Field(min_length=1, max_length=100)
    list_amount: Amount
    voucher_amount: Amount = "0"
    occurred_at: datetime
    kind: Literal["charge", "refund"] = "charge"


class UsageBatchIn(BaseModel):
    records: list[UsageIn] = Field(min_length=1, max_length=usage.MAX_BATCH)


class UsageBatchOut(BaseModel):
    accepted: int
    duplicates: int
    alarm_ids: list[int]


def _ingest(s: Session, body: UsageBatchIn) -> UsageBatchOut:
    raws = [(n, r.model_dump(mode="json")) for n, r in enumerate(body.records, start=1)]
    batch = usage.parse_batch(raws)
    result = usage.ingest(s, batch)
    return UsageBatchOut(
        accepted=result.accepted,
        duplicates=result.duplicates,
        alarm_ids=[a.id for a in result.alarms],
    )


@router.post("/usage-batches", response_model=UsageBatchOut)
def post_usage(body: UsageBatchIn, c: Call = Depends(write_call)) -> Response:
    """Count a batch of charges and refunds: all or nothing; seen event ids are skipped."""
    c.principal.platform()
    return c.write(lambda s: _ingest(s, body))

"""Usage batches from the vendor's billing feed (platform key).

The raw body is decoded by a compiled schema and checked by the ledger's own rules
(:func:`creditline.ledger.usage_json.decode_batch`) rather than by a model per record, so
that one answer names every fault of every bad record — field errors, unknown customers, a
voucher above its list price — each with its record's 1-based position in ``records``.
The models below are the published schema of that body.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from creditline.api.context import Call, kept_write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Amount
from creditline.ledger import usage, usage_json

router = APIRouter(tags=["usage"], responses=ERROR_RESPONSES)


class UsageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    event_id: str = Field(min_length=1, max_length=128)
    customer_uin: Annotated[int, Field(ge=1, le=2**63 - 1)]
    product: str = Field(min_length=1, max_length=100)
    list_amount: Amount
    voucher_amount: Amount = "0"
    occurred_at: datetime = Field(
        description="ISO 8601 with its UTC offset (2026-01-03T10:00:00Z); none is refused"
    )
    kind: Literal["charge", "refund"] = "charge"


class UsageBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    records: list[UsageIn] = Field(min_length=1, max_length=usage.MAX_BATCH)


class TopUpOut(BaseModel):
    customer_uin: int
    record_id: int | None = Field(description="the top-up's allocation record; null: refused")
    refused: str | None = Field(description="pool_short, monthly_cap or ceiling; null: made")


class UsageBatchOut(BaseModel):
    accepted: int
    duplicates: int
    alarm_ids: list[int]
    top_ups: list[TopUpOut] = Field(
        default_factory=list, description="the automatic top-ups the batch triggered"
    )


def _body_schema() -> dict[str, Any]:
    schema = UsageBatchIn.model_json_schema()
    record = schema.pop("$defs")["UsageIn"]
    schema["properties"]["records"]["items"] = record
    return schema


def _ingest(s: Session, checked: usage.Checked) -> UsageBatchOut:
    result = usage.ingest(s, checked.records, lines=checked.lines, faults=checked.faults)
    return UsageBatchOut(
        accepted=result.accepted,
        duplicates=result.duplicates,
        alarm_ids=[a.id for a in result.alarms],
        top_ups=[
            TopUpOut(
                customer_uin=t.customer_uin,
                record_id=None if t.change is None else t.change.record.id,
                refused=t.refused,
            )
            for t in result.top_ups
        ],
    )


@router.post(
    "/usage-batches",
    response_model=UsageBatchOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _body_schema()}},
        }
    },
)
def post_usage(c: Call = Depends(kept_write_call)) -> Response:
    """Count a batch of charges and refunds: all or nothing; seen event ids are skipped.
    A refused batch answers 400 ``invalid_batch`` whose ``details`` name every fault:
    ``line`` is the record's 1-based position in ``records``, ``field`` the field."""
    c.principal.platform()
    checked = usage_json.decode_batch(c.body)
    writers: threading.BoundedSemaphore | None = getattr(c.request.app.state, "usage_writers", None)
    if writers is None:
        return c.write(lambda s: _ingest(s, checked), pipeline=True)
    with writers:
        return c.write(lambda s: _ingest(s, checked), pipeline=True)

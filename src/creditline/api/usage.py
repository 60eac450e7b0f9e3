"""Usage batches from the vendor's billing feed (platform key).

The body is validated by the ledger's own rules (:func:`creditline.ledger.usage.parse_batch`)
rather than by a model, so that one answer names every fault of every bad record — field
errors, unknown customers, a voucher above its list price — each with its record's 1-based
position in ``records``. The models below are the published schema of that body.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from creditline.api.context import Call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Amount
from creditline.errors import InvalidBatch, InvalidInput, LineError
from creditline.ledger import usage

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


class UsageBatchOut(BaseModel):
    accepted: int
    duplicates: int
    alarm_ids: list[int]


def _body_schema() -> dict[str, Any]:
    schema = UsageBatchIn.model_json_schema()
    record = schema.pop("$defs")["UsageIn"]
    schema["properties"]["records"]["items"] = record
    return schema


def _records(body: bytes) -> list[tuple[int, dict[str, object]]]:
    """The body's records numbered from 1; its shape refused with the field named."""
    try:
        value = json.loads(body)
    except ValueError:
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object with records")
    unknown = sorted(name for name in value if name != "records")
    if unknown:
        raise InvalidInput(f"unknown field {', '.join(unknown)}", param=unknown[0])
    records = value.get("records")
    if not isinstance(records, list):
        raise InvalidInput("records must be a list of usage records", param="records")
    if not 1 <= len(records) <= usage.MAX_BATCH:
        raise InvalidInput(f"records must hold 1-{usage.MAX_BATCH} records", param="records")
    not_objects = [
        LineError(n, "a record must be a JSON object")
        for n, record in enumerate(records, start=1)
        if not isinstance(record, dict)
    ]
    if not_objects:
        raise InvalidBatch(not_objects)
    return list(enumerate(records, start=1))


def _ingest(s: Session, raws: list[tuple[int, dict[str, object]]]) -> UsageBatchOut:
    batch = usage.parse_batch(raws, session=s, strict=True)
    result = usage.ingest(s, batch)
    return UsageBatchOut(
        accepted=result.accepted,
        duplicates=result.duplicates,
        alarm_ids=[a.id for a in result.alarms],
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
def post_usage(c: Call = Depends(write_call)) -> Response:
    """Count a batch of charges and refunds: all or nothing; seen event ids are skipped.
    A refused batch answers 400 ``invalid_batch`` whose ``details`` name every fault:
    ``line`` is the record's 1-based position in ``records``, ``field`` the field."""
    c.principal.platform()
    raws = _records(c.body)
    return c.write(lambda s: _ingest(s, raws))

"""Allocation records: filtered keyset pages, and a streamed CSV export."""

from __future__ import annotations

from enum import StrEnum

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from creditline.api.context import Call, call, json_answer
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import RecordOut, UtcTime, record_fields
from creditline.db.tables import MAX_BIGINT
from creditline.ledger import records
from creditline.ledger.accounts import get_partner
from creditline.limits import MAX_REQUEST_PAGE_SIZE

router = APIRouter(tags=["allocation records"], responses=ERROR_RESPONSES)

RecordKind = StrEnum("RecordKind", {k: k for k in records.RECORD_KINDS})  # type: ignore[misc]


class RecordPage(BaseModel):
    data: list[RecordOut]
    has_more: bool
    next_before: int | None


def _filter(
    customer_uin: int | None = Query(None, ge=1, le=MAX_BIGINT),
    operator: str | None = Query(None, max_length=200),
    kind: RecordKind | None = Query(None),
    since: UtcTime | None = Query(None, description="from this time (inclusive), with its offset"),
    until: UtcTime | None = Query(None, description="up to this time (exclusive), with its offset"),
) -> records.RecordFilter:
    return records.RecordFilter(
        customer_uin=customer_uin,
        operator=operator,
        kind=None if kind is None else kind.value,
        since=since,
        until=until,
    )


@router.get("/allocation-records", response_model=RecordPage)
def list_records(
    c: Call = Depends(call),
    where: records.RecordFilter = Depends(_filter),
    limit: int = Query(50, ge=1, le=MAX_REQUEST_PAGE_SIZE),
    before: int | None = Query(
        None, ge=1, le=MAX_BIGINT, description="next_before of the previous page"
    ),
) -> Response:
    """The partner's allocation records, newest first."""
    partner_id = c.principal.partner()
    with c.read() as s:
        rows, more = records.page(
            s, partner_id=partner_id, where=where, limit=limit, before_id=before
        )
        data = [record_fields(r) for r in rows]
    # A RecordPage, answered without a model per record.
    return json_answer(
        {"data": data, "has_more": more, "next_before": data[-1]["id"] if more else None}
    )


@router.get(
    "/allocation-records.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export_records(
    c: Call = Depends(call), where: records.RecordFilter = Depends(_filter)
) -> StreamingResponse:
    """The same records as CSV, streamed (amounts as decimal text)."""
    partner_id = c.principal.partner()
    with c.read() as s:
        get_partner(s, partner_id)  # refuse before the stream starts
        # Check the filter before the 200 is sent: a refusal after it could not be answered.
        records.page(s, partner_id=partner_id, where=where, limit=1)

    return StreamingResponse(
        records.csv_chunks(c.engine, partner_id=partner_id, where=where),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="allocation-records.csv"'},
    )

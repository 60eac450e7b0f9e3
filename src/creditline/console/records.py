"""Allocation Records: every record, filtered, in keyset pages, and as a CSV download."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from creditline.console.visit import BeforeId, PageError, day_range, engine_of, number_in, visit
from creditline.db import transaction
from creditline.ledger import records
from creditline.ledger.records import RecordFilter

router = APIRouter()

PAGE_SIZE = 50


def _filter(customer: str, since: str, until: str, operator: str, kind: str) -> RecordFilter:
    uin: int | None = None
    if customer.strip():
        uin = number_in(customer)
        if uin is None:
            raise PageError(400, "Refused", f"customer {customer[:40]!r} is not a UIN")
    start, end = day_range(since, until)
    return RecordFilter(
        customer_uin=uin,
        operator=operator.strip() or None,
        kind=kind or None,
        since=start,
        until=end,
    )


@router.get("/records")
def record_list(
    request: Request,
    customer: str = "",
    since: str = "",
    until: str = "",
    operator: str = "",
    kind: str = "",
    before: BeforeId = None,
) -> Response:
    """Allocation Records, newest first: filters, next pages, CSV download."""
    with visit(request) as v:
        where = _filter(customer, since, until, operator, kind)
        rows, more = records.page(
            v.s, partner_id=v.partner_id, where=where, limit=PAGE_SIZE, before_id=before
        )
        filters = {
            "customer": customer,
            "since": since,
            "until": until,
            "operator": operator,
            "kind": kind,
        }
        query = urlencode({k: val for k, val in filters.items() if val})
        next_query = (
            urlencode({**{k: val for k, val in filters.items() if val}, "before": rows[-1].id})
            if more and rows
            else ""
        )
        return v.render(
            "records.html",
            rows=rows,
            filters=filters,
            kinds=records.RECORD_KINDS,
            query=query,
            next_query=next_query,
            first_page=before is None,
        )


@router.get("/records.csv")
def record_csv(
    request: Request,
    customer: str = "",
    since: str = "",
    until: str = "",
    operator: str = "",
    kind: str = "",
) -> Response:
    """Every matching record as CSV, streamed in keyset chunks (amounts as decimal text)."""
    with visit(request) as v:
        where = _filter(customer, since, until, operator, kind)
        partner_id = v.partner_id
        # Refuse a bad filter now, while an error page can still be shown.
        records.page(v.s, partner_id=partner_id, where=where, limit=1)
    engine = engine_of(request)

    def lines() -> Iterator[str]:
        # One read transaction for the whole download, so it is one consistent snapshot.
        with transaction(engine) as s:
            yield from records.csv_chunks(s, partner_id=partner_id, where=where)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="allocation-records-{stamp}.csv"'},
    )

"""Allocation Records: every record, filtered, in keyset pages, and as a CSV download."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from creditline.console.visit import BeforeId, PageError, engine_of, number_in, visit
from creditline.ledger import records
from creditline.ledger.records import RecordFilter

router = APIRouter()

PAGE_SIZE = 50


class FilterRefused(Exception):
    """Filters no record can be looked up by; each problem in the form's own words."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def _day(text: str, label: str, problems: dict[str, str], field: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        problems[field] = f"{label} takes a date such as 2026-01-31, not “{text.strip()}”."
        return None


def _filter(customer: str, since: str, until: str, operator: str, kind: str) -> RecordFilter:
    """The filters as the ledger takes them, or :class:`FilterRefused` naming what is
    wrong with each bad one (letters in a UIN, a date that is not one, From after To)."""
    problems: dict[str, str] = {}
    uin: int | None = None
    typed = customer.strip()
    if typed:
        uin = number_in(typed)
        if uin is None:
            problems["customer"] = (
                f"Customer UIN takes digits only, such as 100000000123, not “{typed}”."
            )
    start = _day(since, "From", problems, "since")
    last = _day(until, "To", problems, "until")
    if start is not None and last is not None and start > last:
        problems["until"] = (
            f"From ({since.strip()}) is after To ({until.strip()}): no record can match. "
            "Swap the dates or clear one."
        )
    if last is not None and last.date() == date.max:
        # "To" names a whole day; the day after the last one there is cannot be reckoned.
        problems["until"] = f"To takes a day before 9999-12-31, not “{until.strip()}”."
    if kind and kind not in records.RECORD_KINDS:
        problems["kind"] = f"Kind must be one of {', '.join(records.RECORD_KINDS)}."
    if problems:
        raise FilterRefused(problems)
    return RecordFilter(
        customer_uin=uin,
        operator=operator.strip() or None,
        kind=kind or None,
        since=start,
        until=None if last is None else last + timedelta(days=1),
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
    filters = {
        "customer": customer,
        "since": since,
        "until": until,
        "operator": operator,
        "kind": kind,
    }
    with visit(request) as v:
        try:
            where = _filter(customer, since, until, operator, kind)
        except FilterRefused as refused:
            # The page itself, the filters as typed, and what to change: not an error page.
            return v.render(
                "records.html",
                status=400,
                rows=[],
                filters=filters,
                kinds=records.RECORD_KINDS,
                query="",
                next_query="",
                first_page=True,
                problems=refused.problems,
            )
        rows, more = records.page(
            v.s, partner_id=v.partner_id, where=where, limit=PAGE_SIZE, before_id=before
        )
        query = urlencode({k: val for k, val in filters.items() if val})
        next_query = (
            urlencode({**{k: val for k, val in filters.items() if val}, "before": rows[-1].id})
            if more and rows
            else ""
        )
        return v.render(
            "records.html",
            rows=rows,
            names=records.names(v.s, partner_id=v.partner_id, rows=rows),
            filters=filters,
            kinds=records.RECORD_KINDS,
            query=query,
            next_query=next_query,
            first_page=before is None,
            problems={},
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
        try:
            where = _filter(customer, since, until, operator, kind)
        except FilterRefused as refused:
            raise PageError(400, "Refused", str(refused)) from None
        partner_id = v.partner_id
        # Refuse a bad filter now, while an error page can still be shown.
        records.page(v.s, partner_id=partner_id, where=where, limit=1)
    engine = engine_of(request)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        # Each page of records is read in a short transaction of its own (records.pages):
        # a download stopped part-way holds nothing.
        records.csv_chunks(engine, partner_id=partner_id, where=where),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="allocation-records-{stamp}.csv"'},
    )

"""Bulk allocation: a CSV of (customer_uin, amount, remark) rows, previewed with every row
checked by the ledger itself, then applied all-or-nothing in one transaction.

The preview runs the very allocations in a savepoint and rolls them back, so it gives the
verdict the ledger would give, in order (a withdrawal after an allocation in the same file
sees that allocation), without a second copy of the rules here.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from fastapi import APIRouter, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from creditline import money
from creditline.console.visit import Visit, number_in, visit
from creditline.errors import CreditlineError
from creditline.ledger import credit
from creditline.ledger.accounts import get_customer
from creditline.ledger.records import Origin

router = APIRouter()

MAX_ROWS = 1000
MAX_BYTES = 1_000_000
HEADER = ("customer_uin", "amount", "remark")


@dataclass
class Row:
    """One line of the file and the ledger's verdict on it."""

    line: int
    customer_uin: str
    amount: str
    remark: str
    name: str = ""
    total_after: int | None = None
    available_after: int | None = None
    error: str = ""


def _read(text: str) -> tuple[list[Row], str]:
    """The rows of the file, or why the file as a whole is unusable."""
    reader = csv.reader(io.StringIO(text))
    lines = [(n, row) for n, row in enumerate(reader, start=1) if any(c.strip() for c in row)]
    if not lines:
        return [], "The file is empty."
    header = tuple(c.strip().lower() for c in lines[0][1])
    if header[:2] != HEADER[:2]:
        return [], "The first line must be the header: customer_uin,amount,remark"
    rows = []
    for n, cells in lines[1:]:
        uin, amount, remark = [*cells, "", "", ""][:3]
        rows.append(
            Row(line=n, customer_uin=uin.strip(), amount=amount.strip(), remark=remark.strip())
        )
    if not rows:
        return [], "The file has a header but no rows."
    if len(rows) > MAX_ROWS:
        return [], f"At most {MAX_ROWS} rows per file; this one has {len(rows)}."
    return rows, ""


def _checked(v: Visit, text: str, *, apply: bool) -> tuple[list[Row], str]:
    """The rows of the file with the ledger's verdict on each; applied only when ``apply``
    and every row is accepted (the core's all-or-nothing batch)."""
    rows, problem = _read(text)
    if problem:
        return rows, problem
    items: list[credit.BatchItem] = []
    for row in rows:
        uin = number_in(row.customer_uin)
        if uin is None:
            row.error = f"customer_uin {row.customer_uin[:40]!r} is not a UIN"
            continue
        try:
            amount = money.parse_amount(row.amount, allow_negative=True)
        except CreditlineError as exc:
            row.error = exc.message
            continue
        items.append(credit.BatchItem(row.line, uin, amount, row.remark))
    by_line = {row.line: row for row in rows}

    def show(item: credit.BatchItem, change: credit.CreditChange) -> None:
        row = by_line[item.line]
        row.name = get_customer(v.s, v.partner_id, item.customer_uin).name
        row.total_after, row.available_after = change.total_credit, change.available

    outcome = credit.allocate_batch(
        v.s,
        partner_id=v.partner_id,
        items=items,
        origin=Origin(operator=v.operator, source="bulk"),
        apply=apply and len(items) == len(rows),
        inspect=show,
    )
    for error in outcome.errors:
        by_line[error.line].error = error.message
    return rows, ""


@router.get("/bulk")
def bulk_form(request: Request) -> Response:
    """The upload form."""
    with visit(request) as v:
        v.require_allocate()
        return v.render("bulk.html", rows=None, problem="", text="", applied=False)


@router.post("/bulk/preview")
async def bulk_preview(request: Request, file: UploadFile) -> Response:
    """Every row of the uploaded file checked by the ledger; nothing changed yet."""
    raw = await file.read(MAX_BYTES + 1)
    return await _respond(request, raw, apply=False)


@router.post("/bulk/apply")
async def bulk_apply(request: Request, text: str = Form("")) -> Response:
    """Apply the previewed file: every row, or (if any row is refused now) none."""
    return await _respond(request, text.encode(), apply=True)


async def _respond(request: Request, raw: bytes, *, apply: bool) -> Response:
    return await run_in_threadpool(_page, request, raw, apply)


def _page(request: Request, raw: bytes, apply: bool) -> Response:
    with visit(request) as v:
        v.require_allocate()
        if len(raw) > MAX_BYTES:
            rows: list[Row] = []
            problem, text = f"The file is larger than {MAX_BYTES:,} bytes.", ""
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = ""
                rows, problem = [], "The file is not UTF-8 text."
            else:
                rows, problem = _checked(v, text, apply=apply)
        refused = sum(1 for r in rows if r.error)
        applied = apply and not problem and not refused
        return v.render(
            "bulk.html",
            status=422 if (problem or refused) else 200,
            rows=rows,
            problem=problem,
            text=text,
            refused=refused,
            applied=applied,
            net=sum(money.parse_amount(r.amount, allow_negative=True) for r in rows if not r.error),
        )

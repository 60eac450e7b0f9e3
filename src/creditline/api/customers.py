"""Customers: list (search, sort, pages), one, create, change remark, allocate and withdraw
credit, per-customer thresholds, and batch allocation."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session

from creditline import money
from creditline.api.context import MAX_PAGE_SIZE, Call, call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Amount, Pool, RecordOut, Remark
from creditline.db.tables import Customer
from creditline.errors import CreditlineError, InvalidBatch, LineError
from creditline.ledger import accounts, alarms, credit
from creditline.ledger.credit import max_withdrawable

router = APIRouter(tags=["customers"], responses=ERROR_RESPONSES)

Uin = Annotated[int, Path(ge=1, le=2**63 - 1, description="The customer's UIN")]
MAX_BATCH = 1000


class CustomerOut(BaseModel):
    uin: int
    name: str
    type: str
    email: str
    mobile: str
    remark: str
    identity_status: int
    associated_at: datetime
    total_credit: str
    consumed: str
    available_credit: str
    max_withdrawable: str
    utilization_percent: str | None = Field(description="consumed / total credit, null when 0")
    thresholds: list[int] | None = Field(description="the customer's own list; null: default")

    @classmethod
    def of(cls, c: Customer) -> CustomerOut:
        bp = alarms.utilization_basis_points(total_credit=c.total_credit, consumed=c.consumed)
        return cls(
            uin=c.uin,
            name=c.name,
            type=c.type,
            email=c.email,
            mobile=c.mobile,
            remark=c.remark,
            identity_status=c.identity_status,
            associated_at=c.associated_at,
            total_credit=money.to_text(c.total_credit),
            consumed=money.to_text(c.consumed),
            available_credit=money.to_text(c.total_credit - c.consumed),
            max_withdrawable=money.to_text(max_withdrawable(c.total_credit, c.consumed)),
            utilization_percent=None if bp is None else money.to_text(bp),
            thresholds=None if c.thresholds is None else list(c.thresholds),
        )


class CustomerPage(BaseModel):
    data: list[CustomerOut]
    page: int
    page_size: int
    total: int
    has_more: bool


class SortKey(StrEnum):
    associated_at = "associated_at"
    available_credit = "available_credit"
    utilization = "utilization"


class Order(StrEnum):
    asc = "asc"
    desc = "desc"


def _search(query: Select[tuple[Customer]], q: str) -> Select[tuple[Customer]]:
    text = q.strip()
    if not text:
        return query
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    matches: list[ColumnElement[bool]] = [
        Customer.name.ilike(pattern, escape="\\"),
        Customer.remark.ilike(pattern, escape="\\"),
        Customer.email.ilike(pattern, escape="\\"),
    ]
    if text.isascii() and text.isdigit() and len(text) < 19:
        matches.append(Customer.uin == int(text))
    return query.where(or_(*matches))


def customers_query(
    partner_id: int, q: str, sort: SortKey, order: Order
) -> tuple[Select[tuple[Customer]], Select[tuple[int]]]:
    """The customers page's query (ordered, not yet paged) and its total count."""
    query = _search(select(Customer).where(Customer.partner_id == partner_id), q)
    key = {
        SortKey.associated_at: Customer.associated_at,
        SortKey.available_credit: Customer.total_credit - Customer.consumed,
        # No credit at all sorts as the fullest: any consumption has passed every threshold.
        SortKey.utilization: case(
            (Customer.total_credit == 0, case((Customer.consumed > 0, 1e18), else_=0.0)),
            else_=Customer.consumed * 1.0 / Customer.total_credit,
        ),
    }[sort]
    ordered = [key.desc(), Customer.uin.desc()] if order is Order.desc else [key, Customer.uin]
    count = select(func.count()).select_from(query.subquery())
    return query.order_by(*ordered), count


@router.get("/customers", response_model=CustomerPage)
def list_customers(
    c: Call = Depends(call),
    q: str = Query("", max_length=200, description="UIN, or part of name, remark or email"),
    sort: SortKey = Query(SortKey.associated_at),
    order: Order = Query(Order.desc),
    page: int = Query(1, ge=1, le=100_000),
    page_size: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
) -> CustomerPage:
    """The partner's customers, searched, sorted and paged."""
    partner_id = c.principal.partner()
    query, count = customers_query(partner_id, q, sort, order)
    with c.read() as s:
        total = s.execute(count).scalar_one()
        rows = s.execute(query.limit(page_size).offset((page - 1) * page_size)).scalars()
        data = [CustomerOut.of(row) for row in rows]
    return CustomerPage(
        data=data,
        page=page,
        page_size=page_size,
        total=total,
        has_more=page * page_size < total,
    )


@router.get("/customers/{uin}", response_model=CustomerOut)
def get_customer(uin: Uin, c: Call = Depends(call)) -> CustomerOut:
    """One customer and its credit."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return CustomerOut.of(accounts.get_customer(s, partner_id, uin))


class CustomerIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    type: str = Field("personal", pattern="^(personal|company)$")
    email: str = Field("", max_length=320)
    mobile: str = Field("", max_length=40)
    remark: str = Field("", max_length=500)
    identity_status: int = Field(0, ge=0, le=2)


@router.post("/customers", status_code=201, response_model=CustomerOut)
def create_customer(body: CustomerIn, c: Call = Depends(write_call)) -> Response:
    """Associate a new customer with the partner; it starts with no credit."""
    partner_id = c.principal.partner("operator")
    return c.write(
        lambda s: CustomerOut.of(
            accounts.create_customer(s, partner_id=partner_id, **body.model_dump())
        ),
        status_code=201,
    )


class CustomerPatch(BaseModel):
    remark: str = Field(max_length=500)


@router.patch("/customers/{uin}", response_model=CustomerOut)
def change_remark(uin: Uin, body: CustomerPatch, c: Call = Depends(write_call)) -> Response:
    """Change a customer's remark."""
    partner_id = c.principal.partner("operator")
    return c.write(
        lambda s: CustomerOut.of(
            accounts.set_remark(s, partner_id=partner_id, uin=uin, remark=body.remark)
        )
    )


class CreditIn(BaseModel):
    amount: Amount
    remark: Remark = ""


class CreditChangeOut(BaseModel):
    record: RecordOut
    customer: CustomerOut
    pool: Pool
    alarm_id: int | None


def _change(
    s: Session, c: Call, partner_id: int, uin: int, amount: int, remark: str
) -> CreditChangeOut:
    change = credit.allocate_credit(
        s, partner_id=partner_id, customer_uin=uin, amount=amount, origin=c.origin(remark)
    )
    return CreditChangeOut(
        record=RecordOut.of(change.record),
        customer=CustomerOut.of(accounts.get_customer(s, partner_id, uin)),
        pool=Pool.of(change.pool),
        alarm_id=None if change.alarm is None else change.alarm.id,
    )


@router.post("/customers/{uin}/allocate", response_model=CreditChangeOut)
def allocate(uin: Uin, body: CreditIn, c: Call = Depends(write_call)) -> Response:
    """Allocate credit from the pool to the customer (needs amount <= pool remaining)."""
    partner_id = c.principal.partner("operator")
    amount = money.parse_amount(body.amount)
    return c.write(lambda s: _change(s, c, partner_id, uin, amount, body.remark))


@router.post("/customers/{uin}/withdraw", response_model=CreditChangeOut)
def withdraw(uin: Uin, body: CreditIn, c: Call = Depends(write_call)) -> Response:
    """Withdraw credit back to the pool (at most the customer's available credit)."""
    partner_id = c.principal.partner("operator")
    amount = money.parse_amount(body.amount)
    return c.write(lambda s: _change(s, c, partner_id, uin, -amount, body.remark))


class ThresholdsOut(BaseModel):
    thresholds: list[int]
    own: bool = Field(description="false when the partner's default list applies")


class ThresholdsIn(BaseModel):
    thresholds: list[int] | None = Field(
        max_length=10, description="1-1000 percent, at most 10; null returns to the default"
    )


@router.get("/customers/{uin}/thresholds", response_model=ThresholdsOut)
def customer_thresholds(uin: Uin, c: Call = Depends(call)) -> ThresholdsOut:
    """The alarm thresholds that apply to the customer."""
    partner_id = c.principal.partner()
    with c.read() as s:
        own = accounts.get_customer(s, partner_id, uin).thresholds
        values = alarms.effective_thresholds(s, partner_id=partner_id, customer_uin=uin)
    return ThresholdsOut(thresholds=values, own=own is not None)


@router.put("/customers/{uin}/thresholds", response_model=ThresholdsOut)
def set_customer_thresholds(
    uin: Uin, body: ThresholdsIn, c: Call = Depends(write_call)
) -> Response:
    """Set the customer's own thresholds (null: back to the partner's default)."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: ThresholdsOut(
            thresholds=alarms.set_thresholds(
                s, partner_id=partner_id, customer_uin=uin, thresholds=body.thresholds
            ),
            own=body.thresholds is not None,
        )
    )


class BatchItem(BaseModel):
    customer_uin: int = Field(ge=1, le=2**63 - 1)
    amount: str = Field(
        pattern=r"^-?[0-9]{1,10}(\.[0-9]{1,2})?$",
        description="positive allocates, negative withdraws",
    )
    remark: Remark = ""


class BatchIn(BaseModel):
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)
    dry_run: bool = Field(False, description="check and compute, change nothing")


class BatchOut(BaseModel):
    dry_run: bool
    applied: bool
    results: list[CreditChangeOut]
    pool: Pool


class _DryRun(Exception):
    """Unwinds the savepoint of a dry run, whose results are kept."""


def _batch(s: Session, c: Call, partner_id: int, body: BatchIn) -> BatchOut:
    errors: list[LineError] = []
    results: list[CreditChangeOut] = []
    amounts: list[int] = []
    for line, item in enumerate(body.items, start=1):
        try:
            amounts.append(money.parse_amount(item.amount, allow_negative=True))
        except CreditlineError as exc:
            errors.append(LineError(line, exc.message, "amount"))
    if errors:
        raise InvalidBatch(errors, what="item")
    try:
        with s.begin_nested():
            for line, (item, amount) in enumerate(zip(body.items, amounts, strict=True), 1):
                try:
                    results.append(
                        _change(s, c, partner_id, item.customer_uin, amount, item.remark)
                    )
                except CreditlineError as exc:
                    # The refused item changed nothing; go on so every bad item is named.
                    errors.append(LineError(line, exc.message, exc.param))
            if errors:
                raise InvalidBatch(errors, what="item")
            if body.dry_run:
                pool = accounts.pool_state(s, partner_id)
                raise _DryRun()
    except _DryRun:
        return BatchOut(dry_run=True, applied=False, results=results, pool=Pool.of(pool))
    return BatchOut(
        dry_run=False,
        applied=True,
        results=results,
        pool=Pool.of(accounts.pool_state(s, partner_id)),
    )


@router.post("/allocation-batches", response_model=BatchOut)
def allocate_batch(body: BatchIn, c: Call = Depends(write_call)) -> Response:
    """Allocate or withdraw for many customers at once: all or nothing. With ``dry_run``
    every item is checked and its outcome computed, and nothing changes."""
    partner_id = c.principal.partner("operator")
    return c.write(lambda s: _batch(s, c, partner_id, body))


__all__ = ["router"]

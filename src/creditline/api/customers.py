"""Customers: list (search, sort, pages), one, create, change remark, allocate and withdraw
credit, per-customer thresholds, and batch allocation."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditline import audit, money
from creditline.api.context import Call, call, credit_call, json_answer, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Body, CreditAmount, Pool, RecordOut, Remark, SignedAmount
from creditline.db.tables import MAX_BIGINT, Customer
from creditline.errors import CreditlineError, InvalidBatch, LineError
from creditline.ledger import accounts, alarms, credit, customers, forecast
from creditline.ledger.credit import max_withdrawable
from creditline.ledger.forecast import Forecast
from creditline.limits import MAX_PAGE_NUMBER, MAX_REQUEST_PAGE_SIZE

router = APIRouter(tags=["customers"], responses=ERROR_RESPONSES)

Uin = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="The customer's UIN")]
MAX_BATCH = 1000


class ForecastOut(BaseModel):
    status: str = Field(description="runs_out, not_running_out or not_enough_history")
    burn_rate: str | None = Field(description="counted usage per day; null: too little history")
    as_of: str | None = Field(description="the day the burn rate was computed for")
    runs_out_on: str | None = Field(description="the projected day available credit reaches 0")
    days_left: int | None = Field(description="days from today to runs_out_on")
    month_to_date: str = Field(description="counted usage this calendar month so far")
    month_projected: str | None = Field(description="projected counted usage of the month")


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
    forecast: ForecastOut | None = Field(
        None, description="burn rate and projections (docs/ledger.md); null in write answers"
    )

    @classmethod
    def of(cls, c: Customer, projection: Forecast | None = None) -> CustomerOut:
        return cls(**customer_fields(c, projection))


def customer_fields(c: Customer, projection: Forecast | None = None) -> dict[str, Any]:
    """The fields of :class:`CustomerOut`, for a page that answers many customers without
    a model each (see :func:`creditline.api.context.json_answer`)."""
    bp = alarms.utilization_basis_points(total_credit=c.total_credit, consumed=c.consumed)
    return {
        "uin": c.uin,
        "name": c.name,
        "type": c.type,
        "email": c.email,
        "mobile": c.mobile,
        "remark": c.remark,
        "identity_status": c.identity_status,
        "associated_at": c.associated_at,
        "total_credit": money.to_text(c.total_credit),
        "consumed": money.to_text(c.consumed),
        "available_credit": money.to_text(c.total_credit - c.consumed),
        "max_withdrawable": money.to_text(max_withdrawable(c.total_credit, c.consumed)),
        "utilization_percent": None if bp is None else money.to_text(bp),
        "thresholds": None if c.thresholds is None else list(c.thresholds),
        "forecast": None if projection is None else projection.as_payload(),
    }


class CustomerPage(BaseModel):
    data: list[CustomerOut]
    page: int
    page_size: int
    total: int | None = Field(
        description="how many customers match in all; null unless include_total=true"
    )
    has_more: bool


class SortKey(StrEnum):
    associated_at = "associated_at"
    available_credit = "available_credit"
    utilization = "utilization"
    runs_out = "runs_out"


class Order(StrEnum):
    asc = "asc"
    desc = "desc"


@router.get("/customers", response_model=CustomerPage)
def list_customers(
    c: Call = Depends(call),
    q: str = Query("", max_length=200, description="UIN, or part of name, remark or email"),
    sort: SortKey = Query(SortKey.associated_at),
    order: Order = Query(Order.desc),
    page: int = Query(1, ge=1, le=MAX_PAGE_NUMBER),
    page_size: int = Query(20, ge=1, le=MAX_REQUEST_PAGE_SIZE),
    include_total: bool = Query(
        False,
        description="also count every match (`total`): a broad search at 100,000 "
        "customers makes that a scan, so it is asked for, not given by default",
    ),
) -> Response:
    """The partner's customers, searched, sorted and paged."""
    partner_id = c.principal.partner()
    with c.read() as s:
        found = customers.search(
            s,
            partner_id,
            text=q,
            sort=sort.value,
            descending=order is Order.desc,
            offset=(page - 1) * page_size,
            limit=page_size,
            count=include_total,
        )
        projections = forecast.forecasts(s, partner_id=partner_id, customers=found.rows)
        data = [customer_fields(row, projections[row.uin]) for row in found.rows]
    # A CustomerPage, answered without a model per customer.
    return json_answer(
        {
            "data": data,
            "page": page,
            "page_size": page_size,
            "total": found.total,
            "has_more": found.has_more,
        }
    )


@router.get("/customers/{uin}", response_model=CustomerOut)
def get_customer(uin: Uin, c: Call = Depends(call)) -> CustomerOut:
    """One customer, its credit and its forecast."""
    partner_id = c.principal.partner()
    with c.read() as s:
        customer = accounts.get_customer(s, partner_id, uin)
        projection = forecast.forecasts(s, partner_id=partner_id, customers=[customer])
        return CustomerOut.of(customer, projection[uin])


class CustomerIn(Body):
    name: str = Field(min_length=1, max_length=200)
    type: str = Field("personal", pattern="^(personal|company)$")
    email: str = Field("", max_length=320)
    mobile: str = Field("", max_length=40)
    remark: str = Field("", max_length=500)
    identity_status: int = Field(0, ge=0, le=2)


def _links_to_customer(uin: str) -> dict[str, Any]:
    """OpenAPI links from an answer naming a customer (``uin``: where its UIN is) to what
    may follow, for stateful clients and fuzzers."""
    target = {"uin": uin}
    return {
        "GetCustomer": {"operationId": "get_customer_v1_customers__uin__get", "parameters": target},
        "ChangeRemark": {
            "operationId": "change_remark_v1_customers__uin__patch",
            "parameters": target,
        },
        "Allocate": {
            "operationId": "allocate_v1_customers__uin__allocate_post",
            "parameters": target,
        },
        "Withdraw": {
            "operationId": "withdraw_v1_customers__uin__withdraw_post",
            "parameters": target,
        },
        "SetThresholds": {
            "operationId": "set_customer_thresholds_v1_customers__uin__thresholds_put",
            "parameters": target,
        },
    }


@router.post(
    "/customers",
    status_code=201,
    response_model=CustomerOut,
    responses={201: {"links": _links_to_customer("$response.body#/uin")}},
)
def create_customer(body: CustomerIn, c: Call = Depends(write_call)) -> Response:
    """Associate a new customer with the partner; it starts with no credit."""
    partner_id = c.principal.partner("operator")
    return c.write(
        lambda s: CustomerOut.of(
            accounts.create_customer(s, partner_id=partner_id, **body.model_dump())
        ),
        status_code=201,
    )


class CustomerPatch(Body):
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


class CreditIn(Body):
    amount: CreditAmount
    remark: Remark = ""


class CreditChangeOut(BaseModel):
    record: RecordOut
    customer: CustomerOut
    pool: Pool
    alarm_id: int | None


def _change(
    s: Session,
    c: Call,
    partner_id: int,
    uin: int,
    amount: int,
    remark: str,
    require: credit.Requirement,
) -> CreditChangeOut:
    change = credit.allocate_credit(
        s,
        partner_id=partner_id,
        customer_uin=uin,
        amount=amount,
        origin=c.origin(remark),
        require=require,
    )
    audit.saw(s, change.changes)
    return _change_out(change, change.customer)


def _change_out(change: credit.CreditChange, customer: Customer) -> CreditChangeOut:
    return CreditChangeOut(
        record=RecordOut.of(change.record),
        customer=CustomerOut.of(customer),
        pool=Pool.of(change.pool),
        alarm_id=None if change.alarm is None else change.alarm.id,
    )


@router.post(
    "/customers/{uin}/allocate",
    response_model=CreditChangeOut,
    responses={200: {"links": _links_to_customer("$request.path.uin")}},
)
def allocate(uin: Uin, body: CreditIn, c: Call = Depends(credit_call)) -> Response:
    """Allocate credit from the pool to the customer (needs amount <= pool remaining)."""
    partner_id = c.principal.partner("operator")
    amount = money.parse_amount(body.amount)
    return c.credit_write(lambda s, r: _change(s, c, partner_id, uin, amount, body.remark, r))


@router.post(
    "/customers/{uin}/withdraw",
    response_model=CreditChangeOut,
    responses={200: {"links": _links_to_customer("$request.path.uin")}},
)
def withdraw(uin: Uin, body: CreditIn, c: Call = Depends(credit_call)) -> Response:
    """Withdraw credit back to the pool (at most the customer's available credit)."""
    partner_id = c.principal.partner("operator")
    amount = money.parse_amount(body.amount)
    return c.credit_write(lambda s, r: _change(s, c, partner_id, uin, -amount, body.remark, r))


class ForecastAlarmOut(BaseModel):
    days: int = Field(description="alarm when exhaustion is projected this many days away or fewer")
    own: bool = Field(description="false when the partner's default applies")


class ForecastAlarmIn(Body):
    days: int | None = Field(
        ge=0, le=forecast.MAX_ALARM_DAYS, description="0-366 days, 0 off; null: the default"
    )


@router.get("/customers/{uin}/forecast-alarm", response_model=ForecastAlarmOut)
def customer_forecast_alarm(uin: Uin, c: Call = Depends(call)) -> ForecastAlarmOut:
    """The forecast alarm window that applies to the customer."""
    partner_id = c.principal.partner()
    with c.read() as s:
        own = accounts.get_customer(s, partner_id, uin).forecast_days
        days = forecast.alarm_days(s, partner_id=partner_id, customer_uin=uin)
    return ForecastAlarmOut(days=days, own=own is not None)


@router.put("/customers/{uin}/forecast-alarm", response_model=ForecastAlarmOut)
def set_customer_forecast_alarm(
    uin: Uin, body: ForecastAlarmIn, c: Call = Depends(write_call)
) -> Response:
    """Set the customer's own forecast alarm window (null: back to the partner's)."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: ForecastAlarmOut(
            days=forecast.set_alarm_days(
                s, partner_id=partner_id, customer_uin=uin, days=body.days
            ),
            own=body.days is not None,
        )
    )


class ThresholdsOut(BaseModel):
    thresholds: list[int]
    own: bool = Field(description="false when the partner's default list applies")


class ThresholdsIn(Body):
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


class BatchItem(Body):
    customer_uin: int = Field(ge=1, le=MAX_BIGINT)
    amount: SignedAmount = Field(
        description="positive allocates, negative withdraws",
    )
    remark: Remark = ""


class BatchIn(Body):
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)
    dry_run: bool = Field(False, description="check and compute, change nothing")


class BatchOut(BaseModel):
    dry_run: bool
    applied: bool
    results: list[CreditChangeOut]
    pool: Pool


def _batch(s: Session, c: Call, partner_id: int, body: BatchIn) -> BatchOut:
    errors: list[LineError] = []
    items: list[credit.BatchItem] = []
    for line, entry in enumerate(body.items, start=1):
        try:
            amount = money.parse_amount(entry.amount, allow_negative=True)
        except CreditlineError as exc:
            errors.append(LineError(line, exc.message, "amount"))
            continue
        items.append(credit.BatchItem(line, entry.customer_uin, amount, entry.remark))
    if errors:
        # Name the other items' faults (unknown customers, limits) in the same answer,
        # as the ledger would find them: a preview of the readable items changes nothing.
        preview = credit.allocate_batch(
            s, partner_id=partner_id, items=items, origin=c.origin(""), apply=False
        )
        raise InvalidBatch(sorted([*errors, *preview.errors], key=lambda e: e.line), what="item")
    results: list[CreditChangeOut] = []

    def show(item: credit.BatchItem, change: credit.CreditChange) -> None:
        # Shown now, while the item's effect is visible: a dry run rolls it back afterwards,
        # and a later item for the same customer updates the same object.
        results.append(_change_out(change, change.customer))

    outcome = credit.allocate_batch(
        s,
        partner_id=partner_id,
        items=items,
        origin=c.origin(""),
        apply=not body.dry_run,
        inspect=show,
    )
    if outcome.errors:
        raise InvalidBatch(outcome.errors, what="item")
    if outcome.applied:
        for change in outcome.changes.values():
            audit.saw(s, change.changes)
    # The pool after the batch, or, on a dry run, as the batch would leave it.
    last = outcome.changes[items[-1].line]
    return BatchOut(
        dry_run=body.dry_run, applied=outcome.applied, results=results, pool=Pool.of(last.pool)
    )


@router.post("/allocation-batches", response_model=BatchOut)
def allocate_batch(body: BatchIn, c: Call = Depends(write_call)) -> Response:
    """Allocate or withdraw for many customers at once: all or nothing. With ``dry_run``
    every item is checked and its outcome computed, and nothing changes."""
    partner_id = c.principal.partner("operator")
    return c.write(lambda s: _batch(s, c, partner_id, body))


__all__ = ["router"]

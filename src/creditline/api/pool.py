"""The partner's pool summary, and the amount and record shapes every area shares."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from creditline import money
from creditline.api.context import Call, call
from creditline.api.errors import ERROR_RESPONSES
from creditline.db.tables import AllocationRecord
from creditline.ledger import records
from creditline.ledger.accounts import PoolState, get_partner
from creditline.ledger.records import RecordRow

AMOUNT_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
SIGNED_AMOUNT_PATTERN = r"^-?[0-9]{1,10}(\.[0-9]{1,2})?$"
_AMOUNT = re.compile(AMOUNT_PATTERN, re.ASCII)
_SIGNED_AMOUNT = re.compile(SIGNED_AMOUNT_PATTERN, re.ASCII)


def _amount(text: str) -> str:
    # The published pattern, checked here so the refusal says what an amount is (and, for
    # an endpoint whose direction is in its name, that the amount is given positive).
    if len(text) <= money.MAX_AMOUNT_TEXT and _AMOUNT.match(text):
        return text
    if _SIGNED_AMOUNT.match(text[: money.MAX_AMOUNT_TEXT + 1]):
        raise PydanticCustomError(
            "positive_amount",
            "must be positive, such as 12.50: the endpoint names the direction "
            "(withdraw takes the amount to take back, not a negative one)",
        )
    raise PydanticCustomError(
        "amount", "must be USD as decimal text with at most two decimals, such as 12.50"
    )


def _signed_amount(text: str) -> str:
    if len(text) <= money.MAX_AMOUNT_TEXT and _SIGNED_AMOUNT.match(text):
        return text
    raise PydanticCustomError(
        "amount",
        "must be USD as decimal text with at most two decimals, such as 12.50 or -12.50",
    )


#: An amount in USD as decimal text, at most two decimals: "12.50".
Amount = Annotated[
    str,
    Field(
        pattern=AMOUNT_PATTERN,
        examples=["12.50"],
        description="USD as decimal text with at most two decimals",
    ),
]
#: The positive amount of a credit endpoint whose name gives the direction (allocate,
#: withdraw, apply): the same shape as :data:`Amount`, refused with a message that says so.
CreditAmount = Annotated[
    str,
    AfterValidator(_amount),
    Field(
        json_schema_extra={"pattern": AMOUNT_PATTERN},
        examples=["12.50"],
        description="USD as decimal text with at most two decimals, given positive",
    ),
]


#: An amount that may be negative ("-12.50"); each endpoint describes what the sign means.
SignedAmount = Annotated[
    str,
    AfterValidator(_signed_amount),
    Field(json_schema_extra={"pattern": SIGNED_AMOUNT_PATTERN}, examples=["12.50"]),
]


def _with_offset(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise PydanticCustomError(
            "time_without_offset",
            "must carry a UTC offset, such as 2026-01-31T00:00:00Z or "
            "2026-01-31T08:00:00+08:00: a time without one is refused, not guessed",
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "time_out_of_range", "must fall within the years 1 to 9999 in UTC"
        ) from None


#: A moment in time: ISO 8601 with its UTC offset ("Z" or "+08:00"), never without.
UtcTime = Annotated[datetime, AfterValidator(_with_offset)]


class Body(BaseModel):
    """A request body: exactly the published fields, each of its published type. Nothing
    is coerced ("12" is not an integer, 1 is not text) and an unknown field is refused by
    name (``additionalProperties: false`` in the OpenAPI document)."""

    model_config = ConfigDict(strict=True, extra="forbid")


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
        return cls(**record_fields(record))


def record_fields(record: RecordRow) -> dict[str, Any]:
    """The fields of :class:`RecordOut`, for a page that answers many records without a
    model each (see :func:`creditline.api.context.json_answer`): the record's payload, its
    time left a datetime for the answer's own format."""
    return {**records.as_payload(record), "created_at": record.created_at}


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

"""Monthly statements of a customer (JSON, CSV or PDF), and the partner's settings for
what its customers see and receive (issue 17)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditline import statement_files
from creditline.api.context import Call, call, write_call
from creditline.api.customers import Uin
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Body
from creditline.ledger import customer_settings, statements
from creditline.ledger.statements import Month

router = APIRouter(tags=["statements"], responses=ERROR_RESPONSES)

MonthText = Annotated[
    str, Path(pattern=r"^\d{4}-\d{2}$", description="The calendar month, YYYY-MM")
]


class StatementFormat(StrEnum):
    json = "json"
    csv = "csv"
    pdf = "pdf"


_MEDIA = {"text/csv": StatementFormat.csv, "application/pdf": StatementFormat.pdf}


def _format(request: Request, asked: StatementFormat | None) -> StatementFormat:
    # The format parameter wins; else the first of CSV or PDF the Accept header names.
    if asked is not None:
        return asked
    for part in request.headers.get("accept", "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in _MEDIA:
            return _MEDIA[media]
    return StatementFormat.json


@router.get(
    "/customers/{uin}/statements/{month}",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
def customer_statement(
    request: Request,
    uin: Uin,
    month: MonthText,
    format: StatementFormat | None = Query(
        None, description="json, csv or pdf; without it, the Accept header chooses (JSON)"
    ),
    c: Call = Depends(call),
) -> Response:
    """A customer's statement of one calendar month (the partner's time zone)."""
    partner_id = c.principal.partner()
    with c.read() as s:
        found = statements.statement(
            s, partner_id=partner_id, customer_uin=uin, month=Month.parse(month)
        )
        settings = customer_settings.customer_settings(s, partner_id)
    name = f"statement-{uin}-{month}"
    chosen = _format(request, format)
    if chosen is StatementFormat.csv:
        return Response(
            statement_files.detail_csv(found),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if chosen is StatementFormat.pdf:
        return Response(
            statement_files.pdf(found, remarks=settings.show_remarks, contact=settings.contact),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )
    payload: dict[str, Any] = statement_files.as_payload(found)
    return Response(content=json.dumps(payload), media_type="application/json")


class CustomerSettingsOut(BaseModel):
    time_zone: str = Field(description="IANA time zone that statements cut months in")
    show_remarks: bool = Field(description="customers see allocation remarks, not amounts only")
    customer_alarms: bool = Field(description="customers receive their own threshold alarms")
    contact: str = Field(description="how customers reach the partner, shown with alarms")

    @classmethod
    def of(cls, s: customer_settings.CustomerSettings) -> CustomerSettingsOut:
        return cls(
            time_zone=s.time_zone,
            show_remarks=s.show_remarks,
            customer_alarms=s.customer_alarms,
            contact=s.contact,
        )


class CustomerSettingsPatch(Body):
    time_zone: str | None = Field(
        None,
        max_length=64,
        description=(
            "IANA name (UTC, Asia/Singapore) the statements' months are cut in; refused once "
            "a month with changes in it has closed"
        ),
    )
    show_remarks: bool | None = None
    customer_alarms: bool | None = None
    contact: str | None = Field(None, max_length=320)


@router.get("/customer-settings", response_model=CustomerSettingsOut)
def get_customer_settings(c: Call = Depends(call)) -> CustomerSettingsOut:
    """What the partner's customers see and receive, and its statements' time zone."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return CustomerSettingsOut.of(customer_settings.customer_settings(s, partner_id))


@router.patch("/customer-settings", response_model=CustomerSettingsOut)
def change_customer_settings(
    body: CustomerSettingsPatch, c: Call = Depends(write_call)
) -> Response:
    """Change the given settings; the rest stay."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: CustomerSettingsOut.of(
            customer_settings.update_customer_settings(
                s,
                partner_id=partner_id,
                time_zone=body.time_zone,
                show_remarks=body.show_remarks,
                customer_alarms=body.customer_alarms,
                contact=body.contact,
            )
        )
    )


class CustomerAlarmsIn(Body):
    enabled: bool | None = Field(
        description="true or false for this customer; null: as the partner's setting says"
    )


class CustomerAlarmsOut(BaseModel):
    customer_uin: int
    enabled: bool | None = Field(description="this customer's own setting; null: the partner's")
    receives_alarms: bool = Field(description="whether the customer receives its alarms now")


@router.get("/customers/{uin}/customer-alarms", response_model=CustomerAlarmsOut)
def get_customer_alarms(uin: Uin, c: Call = Depends(call)) -> CustomerAlarmsOut:
    """Whether this customer receives its own threshold alarms, and why."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return _alarms_out(s, partner_id, uin)


@router.put("/customers/{uin}/customer-alarms", response_model=CustomerAlarmsOut)
def set_customer_alarms(
    uin: Uin, body: CustomerAlarmsIn, c: Call = Depends(write_call)
) -> Response:
    """Set whether this customer receives its own alarms (null: as the partner's setting)."""
    partner_id = c.principal.partner("admin")

    def change(s: Session) -> CustomerAlarmsOut:
        customer_settings.set_customer_alarms(
            s, partner_id=partner_id, customer_uin=uin, enabled=body.enabled
        )
        return _alarms_out(s, partner_id, uin)

    return c.write(change)


def _alarms_out(s: Session, partner_id: int, uin: int) -> CustomerAlarmsOut:
    return CustomerAlarmsOut(
        customer_uin=uin,
        enabled=customer_settings.customer_alarm_override(
            s, partner_id=partner_id, customer_uin=uin
        ),
        receives_alarms=customer_settings.receives_alarms(
            s, partner_id=partner_id, customer_uin=uin
        ),
    )

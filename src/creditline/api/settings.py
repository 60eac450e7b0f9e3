"""Partner settings (admin role): the default alarm thresholds and forecast alarm window,
and the partner's API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditline.api.context import Call, call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Body
from creditline.auth import keys
from creditline.db.tables import MAX_BIGINT
from creditline.ledger import alarms, forecast
from creditline.ledger.accounts import get_partner

router = APIRouter(tags=["settings"], responses=ERROR_RESPONSES)


class DefaultThresholds(Body):
    thresholds: list[int] = Field(
        min_length=1, max_length=10, description="1-1000 percent of total credit, at most 10"
    )


@router.get("/thresholds", response_model=DefaultThresholds)
def default_thresholds(c: Call = Depends(call)) -> DefaultThresholds:
    """The partner's default alarm thresholds."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return DefaultThresholds(thresholds=list(get_partner(s, partner_id).thresholds))


@router.put("/thresholds", response_model=DefaultThresholds)
def set_default_thresholds(body: DefaultThresholds, c: Call = Depends(write_call)) -> Response:
    """Replace the partner's default alarm thresholds."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: DefaultThresholds(
            thresholds=alarms.set_thresholds(s, partner_id=partner_id, thresholds=body.thresholds)
        )
    )


class DefaultForecastAlarm(Body):
    days: int = Field(
        ge=0,
        le=forecast.MAX_ALARM_DAYS,
        description="alarm when a customer's exhaustion is projected this many days away "
        "or fewer (0-366; 0 turns forecast alarms off)",
    )


@router.get("/forecast-alarm", response_model=DefaultForecastAlarm)
def default_forecast_alarm(c: Call = Depends(call)) -> DefaultForecastAlarm:
    """The partner's default forecast alarm window."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return DefaultForecastAlarm(days=forecast.alarm_days(s, partner_id=partner_id))


@router.put("/forecast-alarm", response_model=DefaultForecastAlarm)
def set_default_forecast_alarm(
    body: DefaultForecastAlarm, c: Call = Depends(write_call)
) -> Response:
    """Set the partner's default forecast alarm window."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: DefaultForecastAlarm(
            days=forecast.set_alarm_days(s, partner_id=partner_id, days=body.days)
        )
    )


class KeyOut(BaseModel):
    secret_id: str
    principal: str
    partner_id: int | None
    customer_uin: int | None
    role: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: keys.ApiKey) -> KeyOut:
        return cls(
            secret_id=key.secret_id,
            principal=key.principal,
            partner_id=key.partner_id,
            customer_uin=key.customer_uin,
            role=key.role,
            name=key.name,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


class NewKeyOut(KeyOut):
    secret_key: str | None = Field(
        description="shown only in the first answer; null when an idempotent request replays"
    )


class KeyIn(Body):
    role: Literal["admin", "operator", "viewer"] | None = Field(
        None, description="a partner key's role; omit with customer_uin"
    )
    customer_uin: int | None = Field(
        None, ge=1, le=MAX_BIGINT, description="a key that reads only this customer's credit"
    )
    name: str = Field("", max_length=200)


class KeyList(BaseModel):
    data: list[KeyOut]


@router.get("/api-keys", response_model=KeyList)
def list_keys(c: Call = Depends(call)) -> KeyList:
    """The partner's keys and its customers' keys (never their secrets)."""
    partner_id = c.principal.partner("admin")
    with c.read() as s:
        return KeyList(data=[KeyOut.of(k) for k in keys.list_keys(s, partner_id=partner_id)])


@router.post("/api-keys", status_code=201, response_model=NewKeyOut)
def create_key(body: KeyIn, c: Call = Depends(write_call)) -> Response:
    """Create a partner key with a role, or a key for one of the partner's customers."""
    partner_id = c.principal.partner("admin")

    def action(s: Session) -> NewKeyOut:
        key = keys.create(
            s,
            principal="customer" if body.customer_uin is not None else "partner",
            partner_id=partner_id,
            role=body.role,
            customer_uin=body.customer_uin,
            name=body.name or None,
        )
        return NewKeyOut(**KeyOut.of(key).model_dump(), secret_key=key.secret_key)

    # The secret must never rest in plain text, so a replay answers without it.
    return c.write(
        action, status_code=201, stored=lambda out: out.model_copy(update={"secret_key": None})
    )


@router.delete("/api-keys/{secret_id}", response_model=KeyOut)
def revoke_key(secret_id: str = Path(max_length=64), c: Call = Depends(write_call)) -> Response:
    """Revoke one of the partner's keys; it fails from the next request."""
    partner_id = c.principal.partner("admin")
    return c.write(lambda s: KeyOut.of(keys.revoke(s, secret_id, partner_id=partner_id)))

"""Automatic top-up rules (issue 16.4): the partner's default (``/v1/top-up-rule``, admin)
and each customer's own rule or "off" (``/v1/customers/{uin}/top-up-rule``, operator), with
the customer's top-ups of the current month. The rules themselves: ledger.top_ups."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditline import money
from creditline.api.context import Call, call, write_call
from creditline.api.customers import Uin
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Amount, Body
from creditline.ledger import top_ups

router = APIRouter(tags=["top-ups"], responses=ERROR_RESPONSES)


class TopUpRuleIn(Body):
    """Exactly one trigger: ``available_below`` or ``utilization_percent``."""

    available_below: Annotated[
        Amount | None, Field(description="USD: top up when available credit falls below it")
    ] = None
    utilization_percent: Annotated[
        int | None,
        Field(ge=1, le=1000, description="top up when consumption reaches this % of credit"),
    ] = None
    amount: Amount = Field(description="USD allocated from the pool by each top-up")
    monthly_cap: Amount = Field(
        description="USD: at most this much topped up per customer a calendar month (UTC)"
    )
    ceiling: Annotated[
        Amount | None, Field(description="USD: never top up past this total credit")
    ] = None

    def rule(self) -> top_ups.Rule:
        def cents(value: str | None, param: str) -> int | None:
            return None if value is None else money.parse_amount(value, param=param)

        return top_ups.check_rule(
            below=cents(self.available_below, "available_below"),
            utilization_percent=self.utilization_percent,
            amount=cents(self.amount, "amount"),
            monthly_cap=cents(self.monthly_cap, "monthly_cap"),
            ceiling=cents(self.ceiling, "ceiling"),
        )


class TopUpRuleOut(BaseModel):
    available_below: str | None
    utilization_percent: int | None
    amount: str
    monthly_cap: str
    ceiling: str | None

    @classmethod
    def of(cls, rule: top_ups.Rule) -> TopUpRuleOut:
        return cls.model_validate(rule.as_payload())


class DefaultRuleOut(BaseModel):
    rule: TopUpRuleOut | None = Field(description="null: the partner has no default rule")


class MonthOut(BaseModel):
    month: str = Field(description="the calendar month, UTC: YYYY-MM")
    topped_up: str
    top_ups: int


class CustomerRuleOut(BaseModel):
    customer_uin: int
    mode: Literal["own", "off", "default"] = Field(
        description="own: its own rule; off: no top-ups; default: its partner's default"
    )
    rule: TopUpRuleOut | None = Field(description="the rule that applies; null: none")
    this_month: MonthOut


class CustomerRuleIn(Body):
    mode: Literal["own", "off", "default"]
    rule: TopUpRuleIn | None = Field(None, description="the customer's own rule (mode own)")


def _default_out(rule: top_ups.Rule | None) -> DefaultRuleOut:
    return DefaultRuleOut(rule=None if rule is None else TopUpRuleOut.of(rule))


@router.get("/top-up-rule", response_model=DefaultRuleOut)
def default_rule(c: Call = Depends(call)) -> DefaultRuleOut:
    """The partner's default automatic top-up rule."""
    partner_id = c.principal.partner()
    with c.read() as s:
        return _default_out(top_ups.partner_rule(s, partner_id))


@router.put("/top-up-rule", response_model=DefaultRuleOut)
def set_default_rule(body: TopUpRuleIn, c: Call = Depends(write_call)) -> Response:
    """Set the partner's default automatic top-up rule (from the next usage batch)."""
    partner_id = c.principal.partner("admin")
    rule = body.rule()
    return c.write(
        lambda s: _default_out(top_ups.set_partner_rule(s, partner_id=partner_id, rule=rule))
    )


@router.delete("/top-up-rule", response_model=DefaultRuleOut)
def remove_default_rule(c: Call = Depends(write_call)) -> Response:
    """Remove the partner's default rule: only customers with their own are topped up."""
    partner_id = c.principal.partner("admin")
    return c.write(
        lambda s: _default_out(top_ups.set_partner_rule(s, partner_id=partner_id, rule=None))
    )


def _customer_out(s: Session, partner_id: int, found: top_ups.CustomerRule) -> CustomerRuleOut:
    month = top_ups.this_month(s, partner_id=partner_id, customer_uin=found.customer_uin)
    return CustomerRuleOut(
        customer_uin=found.customer_uin,
        mode=found.mode,
        rule=None if found.rule is None else TopUpRuleOut.of(found.rule),
        this_month=MonthOut(
            month=month.month, topped_up=money.to_text(month.topped_up), top_ups=month.top_ups
        ),
    )


@router.get("/customers/{uin}/top-up-rule", response_model=CustomerRuleOut)
def customer_rule(uin: Uin, c: Call = Depends(call)) -> CustomerRuleOut:
    """The top-up rule that applies to the customer, and its top-ups this month."""
    partner_id = c.principal.partner()
    with c.read() as s:
        found = top_ups.customer_rule(s, partner_id=partner_id, customer_uin=uin)
        return _customer_out(s, partner_id, found)


@router.put("/customers/{uin}/top-up-rule", response_model=CustomerRuleOut)
def set_customer_rule(uin: Uin, body: CustomerRuleIn, c: Call = Depends(write_call)) -> Response:
    """Give the customer its own rule (mode ``own`` with ``rule``), no top-ups (``off``),
    or its partner's default again (``default``)."""
    partner_id = c.principal.partner("operator")
    rule = None if body.rule is None else body.rule.rule()
    return c.write(
        lambda s: _customer_out(
            s,
            partner_id,
            top_ups.set_customer_rule(
                s, partner_id=partner_id, customer_uin=uin, mode=body.mode, rule=rule
            ),
        )
    )


__all__ = ["router"]

"""Automatic top-up rules in the console: a customer's rule (its own, off, or the
partner's default) from its page and its Setting Credit page, and the partner's default
from Settings. The rules themselves: ledger.top_ups."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline import money
from creditline.console.visit import PathId, Visit, templates, visit
from creditline.errors import CreditlineError, InvalidInput
from creditline.ledger import top_ups
from creditline.ledger.accounts import get_customer

router = APIRouter()


def describe(rule: top_ups.Rule | None) -> str:
    """A rule in a sentence, as the console shows it."""
    if rule is None:
        return "none"
    trigger = (
        f"available below {money.to_display(rule.below)} USD"
        if rule.below is not None
        else f"utilisation reaches {rule.utilization_percent}%"
    )
    ceiling = "" if rule.ceiling is None else f", never past {money.to_display(rule.ceiling)} USD"
    return (
        f"when {trigger}, allocate {money.to_display(rule.amount)} USD "
        f"(at most {money.to_display(rule.monthly_cap)} USD a month{ceiling})"
    )


templates.env.filters["top_up"] = describe

_FIELDS = ("mode", "trigger", "below", "utilization_percent", "amount", "monthly_cap", "ceiling")


def _typed_of(rule: top_ups.Rule | None, mode: str) -> dict[str, str]:
    """The form's fields for a rule as stored."""
    if rule is None:
        return {"mode": mode, "trigger": "below"}
    return {
        "mode": mode,
        "trigger": "below" if rule.below is not None else "utilization",
        "below": "" if rule.below is None else money.to_text(rule.below),
        "utilization_percent": ""
        if rule.utilization_percent is None
        else str(rule.utilization_percent),
        "amount": money.to_text(rule.amount),
        "monthly_cap": money.to_text(rule.monthly_cap),
        "ceiling": "" if rule.ceiling is None else money.to_text(rule.ceiling),
    }


def _rule_of(typed: dict[str, str]) -> top_ups.Rule:
    """The rule the form describes, or a refusal naming its field."""

    def cents(name: str, *, required: bool = False) -> int | None:
        text = typed.get(name, "").strip()
        if not text:
            if required:
                raise InvalidInput(f"{name.replace('_', ' ')} is needed", param=name)
            return None
        return money.parse_amount(text, param=name)

    below = cents("below", required=True) if typed.get("trigger") != "utilization" else None
    percent: int | None = None
    if typed.get("trigger") == "utilization":
        text = typed.get("utilization_percent", "").strip()
        if not text.isdigit():
            raise InvalidInput(
                "utilisation must be a whole percent 1-1000", param="utilization_percent"
            )
        percent = int(text)
    return top_ups.check_rule(
        below=below,
        utilization_percent=percent,
        amount=cents("amount", required=True),
        monthly_cap=cents("monthly_cap", required=True),
        ceiling=cents("ceiling"),
    )


def _form(
    v: Visit,
    uin: int | None,
    *,
    error: str = "",
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    default = top_ups.partner_rule(v.s, v.partner_id)
    if uin is None:
        found = None
        month = None
        customer = None
        shown = typed or _typed_of(default, "set")
    else:
        customer = get_customer(v.s, v.partner_id, uin)
        found = top_ups.customer_rule(v.s, partner_id=v.partner_id, customer_uin=uin)
        month = top_ups.this_month(v.s, partner_id=v.partner_id, customer_uin=uin)
        shown = typed or _typed_of(found.rule if found.mode == "own" else None, found.mode)
    return v.render(
        "top_up_rule.html",
        status=status,
        c=customer,
        found=found,
        month=month,
        default=default,
        typed=shown,
        error=error,
    )


@router.get("/customers/{uin}/top-up-rule")
def customer_rule_form(request: Request, uin: PathId) -> Response:
    """The customer's automatic top-up rule: its own, off, or the partner's default."""
    with visit(request) as v:
        return _form(v, uin)


@router.post("/customers/{uin}/top-up-rule")
def set_customer_rule(
    request: Request,
    uin: PathId,
    mode: str = Form(""),
    trigger: str = Form("below"),
    below: str = Form(""),
    utilization_percent: str = Form(""),
    amount: str = Form(""),
    monthly_cap: str = Form(""),
    ceiling: str = Form(""),
) -> Response:
    """Save the customer's rule (operator); on refusal the form again, with the reason and
    nothing changed."""
    typed = dict(
        zip(
            _FIELDS,
            (mode, trigger, below, utilization_percent, amount, monthly_cap, ceiling),
            strict=True,
        )
    )
    with visit(request) as v:
        v.require_allocate()
        get_customer(v.s, v.partner_id, uin)
        try:
            rule = _rule_of(typed) if mode == "own" else None
            saved = top_ups.set_customer_rule(
                v.s, partner_id=v.partner_id, customer_uin=uin, mode=mode, rule=rule
            )
        except CreditlineError as exc:
            return _form(v, uin, error=f"Not saved: {exc.message}.", typed=typed, status=422)
        whose = {"own": "its own", "off": "off", "default": "your default"}[saved.mode]
        v.notice(f"Automatic top-up of customer {uin}: {describe(saved.rule)} ({whose}).")
        return RedirectResponse(f"/customers/{uin}", status_code=303)


@router.get("/settings/top-up-rule")
def default_rule_form(request: Request) -> Response:
    """The partner's default automatic top-up rule."""
    with visit(request) as v:
        return _form(v, None)


@router.post("/settings/top-up-rule")
def set_default_rule(
    request: Request,
    mode: str = Form("set"),
    trigger: str = Form("below"),
    below: str = Form(""),
    utilization_percent: str = Form(""),
    amount: str = Form(""),
    monthly_cap: str = Form(""),
    ceiling: str = Form(""),
) -> Response:
    """Set or remove the partner's default rule (admin)."""
    typed = dict(
        zip(
            _FIELDS,
            (mode, trigger, below, utilization_percent, amount, monthly_cap, ceiling),
            strict=True,
        )
    )
    with visit(request) as v:
        v.require_manage()
        try:
            rule = None if mode == "remove" else _rule_of(typed)
            saved = top_ups.set_partner_rule(v.s, partner_id=v.partner_id, rule=rule)
        except CreditlineError as exc:
            return _form(v, None, error=f"Not saved: {exc.message}.", typed=typed, status=422)
        v.notice(f"Default automatic top-up: {describe(saved)}.")
    return RedirectResponse("/settings/top-up-rule", status_code=303)

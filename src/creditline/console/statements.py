"""A partner's pages for its customers' side: monthly statements (page, CSV, PDF), its
customers' logins, whether a customer receives its own alarms, and the settings that
decide what customers see."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline import statement_files
from creditline.auth import users
from creditline.console.visit import PageError, PathId, Visit, visit
from creditline.errors import CreditlineError
from creditline.ledger import customer_settings, statements
from creditline.ledger.accounts import get_customer
from creditline.ledger.statements import Month

router = APIRouter()


def _statement(v: Visit, uin: int, month: str) -> statements.Statement:
    try:
        wanted = Month.parse(month) if month.strip() else statements.month_now(v.s, v.partner_id)
        return statements.statement(v.s, partner_id=v.partner_id, customer_uin=uin, month=wanted)
    except CreditlineError as exc:
        if exc.kind == "not_found":
            raise
        raise PageError(400, "Refused", exc.message) from exc


@router.get("/customers/{uin}/statements")
def statement_page(request: Request, uin: PathId, month: str = "") -> Response:
    """A customer's statement of one month (the current month by default)."""
    with visit(request) as v:
        found = _statement(v, uin, month)
        return v.render(
            "statement.html",
            st=found,
            previous=_previous(found.month),
            following=None if not found.closed else found.month.next(),
        )


def _previous(month: Month) -> Month | None:
    if month.month == 1:
        return None if month.year <= 2000 else Month(month.year - 1, 12)
    return Month(month.year, month.month - 1)


@router.get("/customers/{uin}/statement.csv")
def statement_csv(request: Request, uin: PathId, month: str = "") -> Response:
    """The statement as CSV."""
    with visit(request) as v:
        found = _statement(v, uin, month)
    return Response(
        statement_files.detail_csv(found),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{uin}-{found.month}.csv"'
        },
    )


@router.get("/customers/{uin}/statement.pdf")
def statement_pdf(request: Request, uin: PathId, month: str = "") -> Response:
    """The statement as a PDF to send to the customer as is."""
    with visit(request) as v:
        found = _statement(v, uin, month)
        settings = customer_settings.customer_settings(v.s, v.partner_id)
    return Response(
        statement_files.pdf(found, remarks=settings.show_remarks, contact=settings.contact),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{uin}-{found.month}.pdf"'
        },
    )


@router.post("/customers/{uin}/users")
def invite_customer_user(
    request: Request, uin: PathId, email: str = Form(""), password: str = Form("")
) -> Response:
    """A partner admin invites a login for the customer: it sees only its own account."""
    with visit(request) as v:
        v.require_manage()
        get_customer(v.s, v.partner_id, uin)
        try:
            user = users.create_user(
                v.s,
                partner_id=v.partner_id,
                email=email,
                password=password,
                role=users.CUSTOMER_ROLE,
                customer_uin=uin,
            )
        except CreditlineError as exc:
            raise PageError(422, "Not invited", exc.message) from exc
        v.notice(f"Invited {user.email}: they log in to see this customer's own account.")
    return RedirectResponse(f"/customers/{uin}", status_code=303)


@router.post("/customers/{uin}/customer-alarms")
def customer_alarms(request: Request, uin: PathId, setting: str = Form("")) -> Response:
    """Whether this customer receives its own alarms: on, off, or as the partner's setting."""
    with visit(request) as v:
        v.require_manage()
        choices = {"on": True, "off": False, "default": None}
        if setting not in choices:
            raise PageError(422, "Refused", "choose on, off or default")
        now = customer_settings.set_customer_alarms(
            v.s, partner_id=v.partner_id, customer_uin=uin, enabled=choices[setting]
        )
        v.notice(f"Customer {uin} {'now receives' if now else 'does not receive'} its own alarms.")
    return RedirectResponse(f"/customers/{uin}", status_code=303)


@router.post("/settings/customers")
def customer_side_settings(
    request: Request,
    time_zone: str = Form("UTC"),
    show_remarks: str = Form(""),
    customer_alarms: str = Form(""),
    contact: str = Form(""),
) -> Response:
    """What customers see and receive, and the time zone of their statements."""
    with visit(request) as v:
        v.require_manage()
        try:
            customer_settings.update_customer_settings(
                v.s,
                partner_id=v.partner_id,
                time_zone=time_zone,
                show_remarks=bool(show_remarks),
                customer_alarms=bool(customer_alarms),
                contact=contact,
            )
        except CreditlineError as exc:
            raise PageError(422, "Not saved", exc.message) from exc
        v.notice("Customer settings saved.")
    return RedirectResponse("/settings", status_code=303)

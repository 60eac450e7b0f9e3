"""One console request: its transaction, the logged-in user, and what it may do.

Every page opens exactly one transaction with :func:`visit` and does all its reading and
writing in it. Refusals leave the request as :class:`PageError`, which the console turns
into its own error page; the REST API's handlers never see them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Path as PathParam
from fastapi import Query, Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.responses import Response

from creditline import audit, money
from creditline.auth import sessions
from creditline.auth.users import Role
from creditline.db import read_transaction, transaction
from creditline.db.tables import MAX_BIGINT, Partner, User
from creditline.errors import CreditlineError
from creditline.ledger import accounts
from creditline.notify import inbox

SESSION_COOKIE = "creditline_session"
#: Carries the CSRF basis of the login form, before there is a session.
VISITOR_COOKIE = "creditline_visitor"

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["money"] = money.to_display
templates.env.filters["amount"] = money.to_text


def _time(moment: datetime | None, shown: str) -> Markup:
    # Every moment the console shows is UTC and written one way: 2026-01-31 14:05 UTC (a
    # day alone as 2026-01-31); the exact instant is in the element's datetime and title.
    if moment is None:
        return Markup("")
    exact = moment.isoformat(timespec="seconds")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(
        exact, moment.strftime(shown)
    )


def when(moment: datetime | None) -> Markup:
    """A moment as the console shows it: ``2026-01-31 14:05 UTC``."""
    return _time(moment, "%Y-%m-%d %H:%M UTC")


def day(moment: datetime | None) -> Markup:
    """The day of a moment: ``2026-01-31``."""
    return _time(moment, "%Y-%m-%d")


def level(threshold: int | None) -> str:
    """The CSS class of an alarm level: one colour each for below 75 %, 75 %, 90 %, 100 %
    and above 100 % (a partner's own thresholds fall into the band they reach)."""
    if threshold is None or threshold < 75:
        return "lv-low"
    if threshold < 90:
        return "lv-75"
    if threshold < 100:
        return "lv-90"
    return "lv-100" if threshold == 100 else "lv-over"


#: An alarm's cause, in words.
CAUSES = {
    "usage": "new usage was counted",
    "refund": "a refund was counted",
    "allocation": "credit was allocated",
    "withdrawal": "credit was withdrawn",
}


def cause(code: str) -> str:
    """What made an alarm fire, as a sentence part."""
    return CAUSES.get(code, code)


templates.env.filters["when"] = when
templates.env.filters["day"] = day
templates.env.filters["level"] = level
templates.env.filters["cause"] = cause


#: An id or UIN in a page's path: a positive BIGINT; anything else is answered with a page
#: saying what was wrong (see :func:`creditline.console.site.invalid_request_page`).
PathId = Annotated[int, PathParam(ge=1, le=MAX_BIGINT)]
#: The "older than this id" of a page's next link.
BeforeId = Annotated[int | None, Query(ge=1, le=MAX_BIGINT)]


def number_in(text: str) -> int | None:
    """The positive BIGINT written in ``text`` (ASCII digits), or None if it is not one."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_BIGINT)):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_BIGINT else None


class PageError(Exception):
    """A request the console refuses as a whole: shown as an error page with a status."""

    def __init__(self, status: int, title: str, message: str = "") -> None:
        super().__init__(message or title)
        self.status = status
        self.title = title
        self.message = message


class LoginRequired(Exception):
    """No live session: the browser goes to the login page."""


@dataclass
class Visit:
    """What a page knows about the request it serves."""

    request: Request
    s: Session
    user: User
    role: Role
    partner: Partner | None
    token_hash: str
    csrf: str
    flash: str | None
    unread: int
    #: Set when a form is answered with an error page: (code, message) for the audit log.
    refused: tuple[str, str] | None = None

    @property
    def partner_id(self) -> int:
        """The partner every query of this page is scoped to."""
        if self.partner is None:
            raise PageError(404, "Not found")
        return self.partner.id

    @property
    def operator(self) -> str:
        """How this user is named on allocation records."""
        return self.user.email

    def require_allocate(self) -> None:
        if not self.role.can_allocate:
            raise PageError(403, "Not permitted", "Your role can only view.")

    def require_manage(self) -> None:
        if not self.role.can_manage:
            raise PageError(403, "Not permitted", "Only a partner admin changes settings.")

    def notice(self, message: str) -> None:
        """A one-time message shown on the next page (after a redirect)."""
        sessions.set_flash(self.s, self.token_hash, message)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        if status >= 400:
            # A form answered with its own error page was refused: it is audited as such
            # and whatever it did is rolled back (see visit()).
            message = context.get("error")
            self.refused = (_REFUSAL_CODES.get(status, "refused"), str(message or ""))
        return templates.TemplateResponse(
            self.request, template, {"v": self, **context}, status_code=status
        )


_REFUSAL_CODES = {403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid"}


def actor(request: Request, user: User | None, email: str = "") -> audit.Actor:
    """The audit log's view of a console request: the user, their address, the request id."""
    return audit.Actor(
        source="console",
        principal=f"user:{user.email if user is not None else email}",
        partner_id=user.partner_id if user is not None else None,
        source_ip=request.client.host if request.client else "",
        request_id=str(getattr(request.state, "request_id", "")),
    )


def _form_fields(request: Request) -> dict[str, Any] | None:
    # The form was read (and kept by Starlette) when the CSRF check ran.
    form = getattr(request, "_form", None)
    fields = (
        {k: v if isinstance(v, str) else getattr(v, "filename", "") for k, v in form.items()}
        if form is not None
        else None
    )
    if fields is not None:
        fields.pop("csrf_token", None)
    return fields


def _form_action(request: Request) -> str:
    route = request.scope.get("route")
    return f"POST {getattr(route, 'path', request.url.path)}"


def _refused(request: Request, who: audit.Actor | None, code: str, message: str) -> None:
    if who is None or request.method != "POST":
        return
    audit.refused(
        engine_of(request),
        who,
        action=_form_action(request),
        object=request.url.path,
        code=code,
        message=message,
        request={"form": _form_fields(request)},
    )


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@contextmanager
def visit(
    request: Request, *, platform: bool = False, customer: bool | None = False
) -> Iterator[Visit]:
    """The logged-in request in its one transaction. ``platform``: a platform admin's page;
    ``customer``: a customer user's page (None: a page both a partner's user and a
    customer's user open, each seeing their own); otherwise a partner's page. Anyone else
    finds the page missing (a platform admin works in the platform pages)."""
    token = request.cookies.get(SESSION_COOKIE)
    who: audit.Actor | None = None
    # A page (GET) reads in a read-only transaction: no write lock, and a write slipped
    # into it fails loudly. Only a form (POST) takes a writing transaction.
    reading = request.method != "POST"
    shown: tuple[str, str] | None = None
    try:
        with (read_transaction if reading else transaction)(engine_of(request)) as s:
            logged = sessions.load_session(s, token, consume_flash=not reading)
            if logged is None or token is None:
                raise LoginRequired()
            who = actor(request, logged.user)
            role = Role(logged.user.role)
            if platform and not role.is_platform:
                raise PageError(404, "Not found")
            if not platform and role.is_platform:
                raise PageError(404, "Not found", "Platform admins work in the Platform pages.")
            # A customer's user sees its own account and nothing of its partner's.
            if customer is not None and customer != role.is_customer:
                raise PageError(404, "Not found")
            partner = None
            unread = 0
            if logged.user.partner_id is not None:
                partner = accounts.get_partner(s, logged.user.partner_id)
                if not role.is_customer:
                    unread = inbox.unread_counts(s, logged.user.partner_id).total
            page = Visit(
                request=request,
                s=s,
                user=logged.user,
                role=role,
                partner=partner,
                token_hash=logged.token_hash,
                csrf=sessions.csrf_token(token),
                flash=logged.flash,
                unread=unread,
            )
            if reading:
                yield page
                if logged.flash is not None:
                    shown = (logged.token_hash, logged.flash)
            else:
                audit.watch(s)
                # The form's work runs in a savepoint, so an error page can undo all of it.
                work = s.begin_nested()
                yield page
                if page.refused is not None:
                    work.rollback()
                    code, message = page.refused
                    audit.record(
                        s,
                        who,
                        action=_form_action(request),
                        object=request.url.path,
                        outcome="refused",
                        after={
                            "error": {"code": code, "message": message},
                            "form": _form_fields(request),
                        },
                    )
                else:
                    work.commit()
                    # In the form's own transaction: the row exists exactly when the write does.
                    audit.record(
                        s,
                        who,
                        action=_form_action(request),
                        object=request.url.path,
                        after={"form": _form_fields(request)},
                    )
        if shown is not None:
            # The one-time message was shown: consumed in a short write of its own.
            with transaction(engine_of(request)) as w:
                sessions.clear_flash(w, *shown)
    except PageError as exc:
        _refused(request, who, _REFUSAL_CODES.get(exc.status, "refused"), exc.message)
        raise
    except CreditlineError as exc:
        # Refusals not handled by the page itself: another partner's object is a missing one.
        _refused(request, who, exc.code, exc.message)
        if exc.kind == "not_found":
            raise PageError(404, "Not found", exc.message) from exc
        if exc.kind == "forbidden":
            raise PageError(403, "Not permitted", exc.message) from exc
        raise PageError(400, "Refused", exc.message) from exc


def day_range(since: str, until: str) -> tuple[datetime | None, datetime | None]:
    """A form's "from day" and "to day" (``YYYY-MM-DD``, either may be empty) as UTC
    moments; "to" names a whole day, so the range ends at the next midnight."""

    def day(text: str, name: str) -> datetime | None:
        if not text.strip():
            return None
        try:
            return datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise PageError(
                400, "Refused", f"{name} {text!r} is not a date such as 2026-01-31"
            ) from None

    start, end = day(since, "since"), day(until, "until")
    if end is None:
        return start, None
    try:
        return start, end + timedelta(days=1)
    except OverflowError:
        raise PageError(400, "Refused", f"until {until!r} is past the last day there is") from None

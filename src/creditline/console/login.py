"""Login and logout."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from creditline import audit
from creditline.auth import sessions
from creditline.auth.users import LoginThrottled, Role, authenticate
from creditline.console.visit import (
    SESSION_COOKIE,
    VISITOR_COOKIE,
    actor,
    engine_of,
    templates,
)
from creditline.db import transaction

router = APIRouter()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(
    request: Request, *, error: str = "", email: str = "", status: int = 200
) -> Response:
    visitor = request.cookies.get(VISITOR_COOKIE) or sessions.new_token()
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"v": None, "csrf": sessions.csrf_token(visitor), "error": error, "email": email},
        status_code=status,
    )
    response.set_cookie(
        VISITOR_COOKIE,
        visitor,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        max_age=60 * 60 * 24,
    )
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    """The login page."""
    return _login_page(request)


@router.post("/login")
def login(request: Request, email: str = Form(""), password: str = Form("")) -> Response:
    """Check the address and password; start a session or say why not."""
    client = request.client.host if request.client else "unknown"
    with transaction(engine_of(request)) as s:
        try:
            user = authenticate(s, email=email, password=password, client=client)
        except LoginThrottled as exc:
            audit.record(s, actor(request, None, email), action="login", outcome="refused")
            return _login_page(
                request, error=exc.message.capitalize() + ".", email=email, status=429
            )
        if user is None:
            audit.record(s, actor(request, None, email), action="login", outcome="refused")
            # The same words whether the address or the password was wrong.
            return _login_page(request, error="Wrong email or password.", email=email, status=401)
        audit.record(s, actor(request, user), action="login")
        token = sessions.start_session(s, user)
        home = "/platform/partners" if Role(user.role).is_platform else "/"
    response = RedirectResponse(home, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session and forget its cookie."""
    with transaction(engine_of(request)) as s:
        sessions.end_session(s, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=_secure(request))
    return response

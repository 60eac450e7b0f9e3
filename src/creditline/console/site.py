"""How the console joins an application: its pages, its static files, its error pages
and its security headers, in one call."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from creditline.console import (
    account,
    applications,
    audit,
    bulk,
    customers,
    dashboard,
    distributors,
    login,
    messages,
    notifications,
    platform,
    purchases,
    records,
    settings,
    statements,
    top_ups,
)
from creditline.console.security import SecurityHeaders, check_csrf
from creditline.console.visit import LoginRequired, PageError, templates

STATIC = Path(__file__).parent / "static"


def router() -> APIRouter:
    """Every console page, each unsafe request checked for its CSRF token first."""
    pages = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
    for area in (
        login,
        account,
        dashboard,
        customers,
        purchases,
        records,
        messages,
        settings,
        bulk,
        distributors,
        platform,
        applications,
        audit,
        notifications,
        statements,
        top_ups,
    ):
        pages.include_router(area.router)
    return pages


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    return templates.TemplateResponse(
        request,
        "error.html",
        {"v": None, "title": exc.title, "message": exc.message, "status": exc.status},
        status_code=exc.status,
    )


def unavailable_page(request: Request) -> Response:
    """The page shown when the database cannot be reached (503; the form may be resent)."""
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "v": None,
            "title": "Service unavailable",
            "message": "The database cannot be reached right now. Try again in a moment; "
            "if you were saving a form, check whether the change was made before sending "
            "it again.",
            "status": 503,
        },
        status_code=503,
        headers={"Retry-After": "1"},
    )


def conflict_page(request: Request) -> Response:
    """The page shown when the database rolled the request back over a concurrent one
    (409; nothing was changed, the form may be resent)."""
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "v": None,
            "title": "Conflict",
            "message": "Another change to the same records got in the way, and nothing was "
            "changed. Try again.",
            "status": 409,
        },
        status_code=409,
    )


def invalid_request_page(request: Request, exc: RequestValidationError) -> Response:
    """A page address or form the console cannot read (an id beyond any there is, a page
    number too large, text where a number goes): 422, naming each part that was wrong."""
    wrong = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
        wrong.append(f"{where}: {error.get('msg', 'invalid')}")
    return templates.TemplateResponse(
        request,
        "error.html",
        {"v": None, "title": "Refused", "message": "; ".join(wrong), "status": 422},
        status_code=422,
    )


def _favicon() -> Response:
    # Browsers that ask for /favicon.ico before reading the page's <link rel="icon">.
    return RedirectResponse("/static/favicon.svg", status_code=308)


async def _login_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


def install(app: FastAPI) -> None:
    """Add the console to ``app`` (whose ``state.engine`` is the database)."""
    app.include_router(router())
    app.add_api_route("/favicon.ico", _favicon, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_middleware(SecurityHeaders)

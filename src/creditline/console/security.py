"""The console's defences that apply to every request: CSRF on every form and the
security headers on every page."""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditline.auth import sessions
from creditline.console.visit import SESSION_COOKIE, VISITOR_COOKIE, PageError

CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: No inline script or style anywhere: everything comes from /static on this origin.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: A chart is an SVG image drawn by the server; its own styles are inline by nature.
IMAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
#: The API's interactive documentation loads its own assets; it is no console page.
_NOT_CONSOLE = ("/docs", "/redoc")


async def check_csrf(request: Request) -> None:
    """Refuse any unsafe request whose form lacks this browser's CSRF token.

    The token is bound to the session cookie (or, on the login form, to the visitor
    cookie), so a forged form from another site, or one replayed from another session,
    is refused before any handler runs.
    """
    if request.method not in UNSAFE_METHODS:
        return
    basis_cookie = VISITOR_COOKIE if request.url.path == "/login" else SESSION_COOKIE
    form = await request.form()
    submitted = form.get(CSRF_FIELD)
    if not sessions.csrf_matches(
        request.cookies.get(basis_cookie), submitted if isinstance(submitted, str) else None
    ):
        raise PageError(
            403,
            "Form expired or forged",
            "The form was not sent from this session. Reload the page and try again.",
        )


class SecurityHeaders:
    """Adds the headers every response of the console carries (pure ASGI, so streamed
    downloads pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(_NOT_CONSOLE):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = b""
                for name, value in headers:
                    if name.lower() == b"content-type":
                        content_type = value
                policy = IMAGE_POLICY if content_type.startswith(b"image/svg") else PAGE_POLICY
                headers += [
                    (b"content-security-policy", policy.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

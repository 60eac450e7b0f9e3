"""One error shape for every refusal: ``{"error": {"type", "code", "message", "param"}}``
(plus ``details`` naming each bad record of a batch), with the HTTP status the refusal's
kind calls for."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from creditline.api.context import audit_refusal, confirm_refused
from creditline.auth.rate_limit import RateLimited
from creditline.errors import CreditlineError

#: Domain error kind -> (HTTP status, error type).
KINDS: dict[str, tuple[int, str]] = {
    "invalid": (400, "invalid_request_error"),
    "unauthenticated": (401, "authentication_error"),
    "forbidden": (403, "permission_error"),
    "not_found": (404, "not_found_error"),
    "conflict": (409, "conflict_error"),
    "rate_limited": (429, "rate_limit_error"),
}
STATUS_TYPES = dict(KINDS.values()) | {
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    503: "api_error",
}

#: Seconds a client is told to wait before retrying when the database is unreachable.
RETRY_AFTER_UNAVAILABLE = 1


class ErrorDetail(BaseModel):
    type: str
    code: str
    message: str
    param: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


#: What every endpoint may answer besides success, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    param: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error answer in the one shape."""
    detail = ErrorDetail(
        type=STATUS_TYPES.get(status, "api_error"),
        code=code,
        message=message,
        param=param,
        details=details or None,
    )
    return JSONResponse(
        ErrorResponse(error=detail).model_dump(mode="json"), status_code=status, headers=headers
    )


def from_domain(exc: CreditlineError) -> JSONResponse:
    """Map a refusal of the core (or of authentication) to its answer."""
    status, _ = KINDS.get(exc.kind, (500, "api_error"))
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    message = exc.message if status != 500 else "internal error"
    return error_response(
        status, exc.code, message, param=exc.param, details=exc.details(), headers=headers
    )


def unavailable() -> JSONResponse:
    """The answer when the database is unreachable: 503, retriable, nothing applied."""
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable right now; retry the request (a write retried with "
        "the same Idempotency-Key is never applied twice)",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
    )


def transaction_conflict() -> JSONResponse:
    """The answer when the database rolled the request's transaction back over a
    concurrent one (a deadlock, a serialization failure): 409, nothing applied, retry."""
    return error_response(
        409,
        "transaction_conflict",
        "the request ran into a concurrent one and was rolled back: nothing was applied; "
        "retry the request (a write retried with the same Idempotency-Key is never "
        "applied twice)",
    )


def _audited(request: Request, answer: JSONResponse) -> JSONResponse:
    if answer.status_code not in (401, 429, 503):
        error = json.loads(bytes(answer.body))["error"]
        audit_refusal(request, error["code"], error["message"])
    return answer


def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """A request whose path, query or body does not fit the published schema: 422 naming
    each field (401 if its key was revoked since the key cache kept it)."""
    assert isinstance(exc, RequestValidationError)
    revoked = confirm_refused(request)
    if revoked is not None:
        return from_domain(revoked)
    return _audited(request, _validation_answer(exc))


def _validation_answer(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    details = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or None,
            "message": str(e.get("msg", "")),
        }
        for e in errors
    ]
    first = details[0] if details else {"field": None, "message": "invalid request"}
    where = f"{first['field']}: " if first["field"] else ""
    return error_response(
        422, "invalid_request", f"{where}{first['message']}", param=first["field"], details=details
    )


def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
        exc.status_code, "http_error"
    )
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CreditlineError)
    if exc.kind != "unauthenticated":
        # A refusal of a read whose key came from the key cache, before its transaction
        # confirmed it: a key revoked since is refused as such.
        revoked = confirm_refused(request)
        if revoked is not None:
            exc = revoked
    return _audited(request, from_domain(exc))


def install(app: FastAPI) -> None:
    """Answer every refusal of ``app`` in the one shape."""
    app.add_exception_handler(CreditlineError, _domain)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, _http)

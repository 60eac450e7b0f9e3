"""What every request gets, whichever layer answers it: an ``X-Request-Id`` (the caller's,
if sane) and one structured JSON log line, never a secret."""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import Any

access_log = logging.getLogger("creditline.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def request_id(given: str) -> str:
    """The request's id: the caller's ``X-Request-Id`` if sane, else a new one."""
    return given if _REQUEST_ID.match(given) else secrets.token_hex(16)


def log_request(
    *, request_id: str, method: str, path: str, status: int, seconds: float, state: Any
) -> None:
    """The request's log line (``state``: the request's ASGI state, for its key's id)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    access_log.info(
        json.dumps(
            {
                "event": "request",
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "secret_id": state.get("secret_id"),
            }
        )
    )

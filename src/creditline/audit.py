"""The audit log: one row for every write and every login, through any door (REST,
Tencent-compatible, console), appended in the same transaction as the write it describes.

Who (principal, source IP, request id), what (action, object, outcome) and the change
(``before``/``after``). Nothing that could be a secret is kept: every field named like a
password, secret, token or signature is replaced by ``[redacted]``, and so is any text that
looks like a webhook secret (``whsec_…``). Only platform admins read it
(``GET /v1/platform/audit``, ``creditline audit list``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import AuditEvent

REDACTED = "[redacted]"
#: Parts of a field name that mark its value as secret (``secret_id`` is a public id).
_SECRET_NAMES = ("password", "secret", "token", "signature", "authorization", "cookie")
_PUBLIC_NAMES = frozenset({"secret_id"})
#: The longest JSON kept for ``before`` or ``after``; a larger value is cut to a summary.
MAX_CHANGE_CHARS = 20_000
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where: what every audit row of a request shares."""

    source: str  # api, tc3, console, cli
    principal: str
    partner_id: int | None
    source_ip: str = ""
    request_id: str = ""


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered not in _PUBLIC_NAMES and any(part in lowered for part in _SECRET_NAMES)


def redact(value: Any) -> Any:
    """``value`` as JSON-ready data with every secret replaced by ``[redacted]``."""
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _secret_name(str(k)) and v is not None else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return REDACTED if value.startswith("whsec_") else value
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _bounded(value: Any) -> Any:
    if value is None:
        return None
    kept = redact(value)
    text = json.dumps(kept, default=str)
    if len(text) > MAX_CHANGE_CHARS:
        return {"truncated": True, "chars": len(text), "start": text[:1000]}
    return kept


def record(
    session: Session,
    actor: Actor,
    *,
    action: str,
    object: str = "",
    outcome: str = "ok",
    before: Any = None,
    after: Any = None,
) -> None:
    """Append one audit row in the caller's transaction (redacted, bounded)."""
    session.execute(
        insert(AuditEvent).values(
            at=utcnow(),
            source=actor.source,
            principal=actor.principal[:400],
            partner_id=actor.partner_id,
            source_ip=actor.source_ip[:64],
            request_id=actor.request_id[:100],
            action=action[:200],
            object=object[:500],
            outcome=outcome,
            before=_bounded(before),
            after=_bounded(after),
        )
    )


def list_events(
    session: Session,
    *,
    partner_id: int | None = None,
    principal: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """Audit rows, newest first, filtered; ``before_id`` pages back (keyset)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(min(limit, MAX_PAGE_SIZE + 1))
    if partner_id is not None:
        query = query.where(AuditEvent.partner_id == partner_id)
    if principal:
        query = query.where(AuditEvent.principal.contains(principal, autoescape=True))
    if action:
        query = query.where(AuditEvent.action.contains(action, autoescape=True))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(session.execute(query).scalars())

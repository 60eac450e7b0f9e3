"""What every endpoint is handed: the caller, its database, and the one transaction of the
request — with idempotency for writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from creditline.auth import idempotency, keys
from creditline.auth.principals import Principal, Unauthenticated
from creditline.auth.rate_limit import RateLimiter
from creditline.db import transaction
from creditline.ledger.records import Origin

#: The largest page any list answers.
MAX_PAGE_SIZE = 100

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer <secret_id>:<secret_key>` (from `creditline keys create`)",
)


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """The caller, from ``Authorization: Bearer <secret_id>:<secret_key>``; 401 otherwise."""
    if credentials is None or ":" not in credentials.credentials:
        raise Unauthenticated(
            "send Authorization: Bearer <secret_id>:<secret_key>", param="Authorization"
        )
    secret_id, _, secret_key = credentials.credentials.partition(":")
    with transaction(_engine(request)) as session:
        key = keys.authenticate(session, secret_id.strip(), secret_key.strip())
    request.state.secret_id = key.secret_id
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.take(key.secret_id)
    return Principal(
        key_id=key.id,
        secret_id=key.secret_id,
        kind=key.principal,
        name=key.name,
        partner_id=key.partner_id,
        partner_kind=key.partner_kind,
        role=key.role,
        customer_uin=key.customer_uin,
    )


async def _raw_body(request: Request) -> bytes:
    return await request.body()


class _KeyTaken(Exception):
    """A concurrent request holds the same idempotency key; its answer is read next."""


@dataclass
class Call:
    """One request: the caller, the database, and (for writes) the idempotency key."""

    request: Request
    principal: Principal
    engine: Engine
    idempotency_key: str | None
    body: bytes

    def origin(self, remark: str = "") -> Origin:
        """Who and which door, for the allocation records this request appends."""
        return Origin(
            operator=self.principal.operator,
            source="api",
            remark=remark,
            idempotency_key=self.idempotency_key,
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        """The request's one transaction, for reading."""
        with transaction(self.engine) as session:
            yield session

    def write(
        self,
        action: Callable[[Session], BaseModel],
        *,
        status_code: int = 200,
        stored: Callable[[BaseModel], BaseModel] | None = None,
    ) -> Response:
        """Run ``action`` in the request's one transaction and answer its result.

        With an ``Idempotency-Key``, the key's row is inserted in that same transaction:
        the same key and request within 24 hours replays the stored answer (marked
        ``Idempotent-Replayed: true``), the same key with another request is 409.
        ``stored`` gives the form of the answer kept for replays, when it must differ.
        """
        if self.idempotency_key is None:
            with transaction(self.engine) as session:
                body = _dump(action(session))
            return _answer(status_code, body)
        key = idempotency.check_key(self.idempotency_key)
        fingerprint = idempotency.request_hash(
            self.request.method, self.request.url.path, self.request.url.query, self.body
        )
        for _attempt in range(3):
            try:
                with transaction(self.engine) as session:
                    row_id = self._claim(session, key, fingerprint)
                    if isinstance(row_id, idempotency.StoredAnswer):
                        return _answer(row_id.status_code, row_id.body, replayed=True)
                    result = action(session)
                    body = _dump(result)
                    kept = body if stored is None else _dump(stored(result))
                    idempotency.store(session, row_id, status_code=status_code, body=kept)
                return _answer(status_code, body)
            except _KeyTaken:
                # Another request took the key between our look and our claim; the next
                # round finds and replays its answer.
                continue
        raise idempotency.IdempotencyConflict(
            "a request with this Idempotency-Key is still in progress", param="Idempotency-Key"
        )

    def _claim(
        self, session: Session, key: str, fingerprint: str
    ) -> int | idempotency.StoredAnswer:
        """The key's fresh row in this transaction, or the answer stored under it.

        The claim comes first: a fresh key (the common case) costs one statement. Only
        when the key already has a row is it read — to replay, to refuse another request
        under the same key (409), or to clear a row older than 24 hours and claim anew.
        """
        key_id, partner_id = self.principal.key_id, self.principal.partner_id
        row_id = idempotency.claim(
            session, api_key_id=key_id, partner_id=partner_id, key=key, fingerprint=fingerprint
        )
        if row_id is not None:
            return row_id
        earlier = idempotency.recall(session, api_key_id=key_id, key=key, fingerprint=fingerprint)
        if earlier is not None:
            return earlier
        idempotency.clear_expired(session, api_key_id=key_id, key=key)
        row_id = idempotency.claim(
            session, api_key_id=key_id, partner_id=partner_id, key=key, fingerprint=fingerprint
        )
        if row_id is None:
            raise _KeyTaken()
        return row_id


def _dump(result: BaseModel) -> str:
    return json.dumps(result.model_dump(mode="json"), separators=(",", ":"))


def _answer(status_code: int, body: str, *, replayed: bool = False) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


def call(request: Request, principal: Principal = Depends(authenticate)) -> Call:
    """The dependency every reading endpoint takes."""
    return Call(request, principal, _engine(request), None, b"")


def write_call(
    request: Request,
    principal: Principal = Depends(authenticate),
    body: bytes = Depends(_raw_body),
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        description="Makes a write safe to retry: same key and body within 24 h replays "
        "the stored answer; same key with another body is 409.",
        max_length=255,
    ),
) -> Call:
    """The dependency every writing endpoint takes."""
    return Call(request, principal, _engine(request), idempotency_key, body)


__all__ = ["MAX_PAGE_SIZE", "Call", "JSONResponse", "call", "write_call"]

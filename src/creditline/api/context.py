"""What every endpoint is handed: the caller, its database, and the one transaction of the
request — with idempotency for writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from creditline import audit, json_text
from creditline.auth import idempotency, keys
from creditline.auth.principals import Principal, Unauthenticated
from creditline.auth.rate_limit import RateLimiter
from creditline.db import pipelined, read_transaction, transaction
from creditline.ledger.credit import Requirement, Unconfirmed
from creditline.ledger.records import Origin

#: The largest page any list answers.

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
    with read_transaction(_engine(request)) as session:
        key = keys.authenticate(session, secret_id.strip(), secret_key.strip())
    return _principal(request, key)


def authenticate_kept(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """:func:`authenticate` from the key cache, with no statement of its own: only for
    writes that confirm the key is live in their own statement (:meth:`Call.credit_write`)."""
    return _kept(request, credentials)[0]


def _kept(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> tuple[Principal, bool]:
    if credentials is None or ":" not in credentials.credentials:
        raise Unauthenticated(
            "send Authorization: Bearer <secret_id>:<secret_key>", param="Authorization"
        )
    secret_id, _, secret_key = credentials.credentials.partition(":")
    key, kept = keys.authenticate_kept(_engine(request), secret_id.strip(), secret_key.strip())
    return _principal(request, key), kept


def _principal(request: Request, key: keys.ApiKey) -> Principal:
    request.state.secret_id = key.secret_id
    # For the audit row of a write refused after this point (creditline.api.errors).
    request.state.audit_principal = f"api-key:{key.secret_id} ({key.name})"
    request.state.audit_partner_id = key.partner_id
    limiter: RateLimiter = request.app.state.rate_limiter
    if not getattr(request.state, "creditline.rate_taken", False):
        limiter.take(key.secret_id)
    return principal_of(key)


def principal_of(key: keys.ApiKey) -> Principal:
    """The caller an API key makes (the fast path asks the endpoints' own questions of it)."""
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
    #: The body as ``json.loads`` reads it, read once for both the request's fingerprint
    #: and its audit row (see :meth:`parsed_body`).
    _parsed: Any = field(default=idempotency.UNREAD, init=False, repr=False)
    #: Whether :mod:`creditline.json_text` read it: its texts are then written there too.
    _plain: bool = field(default=False, init=False, repr=False)

    def parsed_body(self) -> Any:
        """The body read as JSON (``idempotency.NOT_JSON`` when it is not JSON)."""
        if self._parsed is idempotency.UNREAD:
            plain = json_text.read(self.body)
            if plain is not json_text.NOT_PLAIN:
                self._parsed, self._plain = plain, True
                return plain
            try:
                self._parsed = json.loads(self.body)
            except ValueError:
                self._parsed = idempotency.NOT_JSON
        return self._parsed

    def _fingerprint(self) -> str:
        parsed = self.parsed_body()
        return idempotency.request_hash(
            self.request.method,
            self.request.url.path,
            self.request.url.query,
            self.body,
            parsed=parsed,
            canonical=json_text.sorted_compact(parsed) if self._plain else None,
        )

    def origin(self, remark: str = "") -> Origin:
        """Who and which door, for the allocation records this request appends."""
        return Origin(
            operator=self.principal.operator,
            source="api",
            remark=remark,
            idempotency_key=self.idempotency_key,
        )

    def _audit(self, session: Session, answer: str) -> None:
        # In the write's own transaction: the audit row exists exactly when the write does.
        parsed = self.parsed_body()
        answered = json.loads(answer)
        # json.dumps of the row's "after", when the body's own text can be written by
        # json_text (a usage batch's: its summary is cut from that text).
        request = json_text.spaced(parsed) if self._plain else None
        text = None
        if request is not None:
            text = f'{{"request": {request}, "answer": {json.dumps(answered)}}}'
        audit.record(
            session,
            audit_actor(self.request),
            action=audit_action(self.request),
            object=self.request.url.path,
            after={
                # What asked() makes of the body: None for an empty or non-JSON body.
                "request": None if parsed is idempotency.NOT_JSON else parsed,
                "answer": answered,
            },
            after_parsed=True,
            after_text=text,
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        """The request's one transaction, for reading: read-only, no write lock. A key
        taken from the key cache is confirmed live in it first: a key revoked since it was
        kept is refused (401) and forgotten, on its very next request."""
        with read_transaction(self.engine) as session:
            self.confirm(session)
            yield session

    def confirm(self, session: Session) -> None:
        """Refuse the request (401) if its key, taken from the key cache, has been revoked
        since: one statement in ``session``'s transaction, none for a key already
        confirmed in this request."""
        key_id = getattr(self.request.state, "unconfirmed_key", None)
        if key_id is None:
            return
        if not keys.is_live(session, {"require_key_id": key_id}):
            raise self._revoked()
        self.request.state.unconfirmed_key = None

    def write(
        self,
        action: Callable[[Session], BaseModel],
        *,
        status_code: int = 200,
        stored: Callable[[BaseModel], BaseModel] | None = None,
        pipeline: bool = False,
    ) -> Response:
        """Run ``action`` in the request's one transaction and answer its result.

        With an ``Idempotency-Key``, the key's row is inserted in that same transaction:
        the same key and request within 24 hours replays the stored answer (marked
        ``Idempotent-Replayed: true``), the same key with another request is 409.
        ``stored`` gives the form of the answer kept for replays, when it must differ.
        ``pipeline``: the transaction is :func:`creditline.db.pipelined` (PostgreSQL: a
        statement with no rows to read goes with the next one that has, or the COMMIT).
        """
        begin = pipelined if pipeline else transaction
        if self.idempotency_key is None:
            with begin(self.engine) as session:
                self.confirm(session)
                audit.watch(session)
                body = dump(action(session))
                self._audit(session, body)
            return _answer(status_code, body)
        key = idempotency.check_key(self.idempotency_key)
        fingerprint = self._fingerprint()
        for _attempt in range(3):
            try:
                with begin(self.engine) as session:
                    self.confirm(session)
                    row_id = self._claim(session, key, fingerprint)
                    if isinstance(row_id, idempotency.StoredAnswer):
                        return _answer(row_id.status_code, row_id.body, replayed=True)
                    audit.watch(session)
                    result = action(session)
                    body = dump(result)
                    kept = body if stored is None else dump(stored(result))
                    idempotency.store(
                        session,
                        row_id,
                        partner_id=self.principal.partner_id,
                        status_code=status_code,
                        body=kept,
                    )
                    self._audit(session, kept)
                return _answer(status_code, body)
            except _KeyTaken:
                # Another request took the key between our look and our claim; the next
                # round finds and replays its answer.
                continue
        raise idempotency.IdempotencyConflict(
            "a request with this Idempotency-Key is still in progress", param="Idempotency-Key"
        )

    def credit_write(self, action: Callable[[Session, Requirement], BaseModel]) -> Response:
        """:meth:`write` for an operation that takes the caller's :class:`Requirement`
        into its own first statement: the key is live (it may come from the key cache)
        and, with an ``Idempotency-Key``, the key's row is this request's. On PostgreSQL
        the claim and the operation go in one round trip, the answer, the audit row and
        the COMMIT in a second. The operation reports its changes for the audit row."""
        key_id = self.principal.key_id
        if self.idempotency_key is None:
            require = Requirement(keys.LIVE_KEY, {"require_key_id": key_id})
            with pipelined(self.engine) as session:
                audit.watch(session, listen=False)
                try:
                    body = dump(action(session, require))
                except Unconfirmed:
                    raise self._revoked() from None
                self._audit(session, body)
            return _answer(200, body)
        key = idempotency.check_key(self.idempotency_key)
        fingerprint = self._fingerprint()
        require = Requirement(
            idempotency.LIVE_KEY_AND_CLAIM,
            {
                "require_key_id": key_id,
                "require_partner_id": self.principal.partner_id,
                "require_idempotency_key": key,
            },
        )
        with pipelined(self.engine) as session:
            audit.watch(session, listen=False)
            for _attempt in range(2):
                idempotency.claim_pending(
                    session,
                    api_key_id=key_id,
                    partner_id=self.principal.partner_id,
                    key=key,
                    fingerprint=fingerprint,
                )
                try:
                    result = action(session, require)
                except Unconfirmed:
                    # Revoked, or the key has a row already: replay it, refuse another
                    # request under it (409), or clear it past 24 hours and claim again.
                    if not keys.is_live(session, require.params):
                        raise self._revoked() from None
                    earlier = idempotency.recall(
                        session,
                        api_key_id=key_id,
                        partner_id=self.principal.partner_id,
                        key=key,
                        fingerprint=fingerprint,
                    )
                    if earlier is not None:
                        return _answer(earlier.status_code, earlier.body, replayed=True)
                    idempotency.clear_expired(
                        session,
                        api_key_id=key_id,
                        partner_id=self.principal.partner_id,
                        key=key,
                    )
                    continue
                body = dump(result)
                idempotency.store_claimed(
                    session,
                    api_key_id=key_id,
                    partner_id=self.principal.partner_id,
                    key=key,
                    status_code=200,
                    body=body,
                )
                self._audit(session, body)
                return _answer(200, body)
        raise idempotency.IdempotencyConflict(
            "a request with this Idempotency-Key is still in progress", param="Idempotency-Key"
        )

    def _revoked(self) -> keys.UnknownKey:
        """The key was revoked since it was kept: forgotten, and refused as an unknown key
        is (before authentication: no audit row)."""
        return _forget(self.request, self.principal.secret_id)

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
        earlier = idempotency.recall(
            session, api_key_id=key_id, partner_id=partner_id, key=key, fingerprint=fingerprint
        )
        if earlier is not None:
            return earlier
        idempotency.clear_expired(session, api_key_id=key_id, partner_id=partner_id, key=key)
        row_id = idempotency.claim(
            session, api_key_id=key_id, partner_id=partner_id, key=key, fingerprint=fingerprint
        )
        if row_id is None:
            raise _KeyTaken()
        return row_id


#: The ``Idempotency-Key`` header every writing endpoint takes.
IDEMPOTENCY_KEY: Any = Header(
    None,
    alias="Idempotency-Key",
    description="Makes a write safe to retry: same key and body within 24 h replays "
    "the stored answer; same key with another body is 409.",
    max_length=255,
)


def credit_call(
    request: Request,
    principal: Principal = Depends(authenticate_kept),
    body: bytes = Depends(_raw_body),
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> Call:
    """The dependency of the credit writes (:meth:`Call.credit_write`): the key from the
    key cache, confirmed live by the write's own statement."""
    request.state.audit_body = body
    return Call(request, principal, _engine(request), idempotency_key, body)


def audit_actor(request: Request) -> audit.Actor:
    """The audit log's view of an authenticated request: its key, address and request id."""
    client = request.client
    return audit.Actor(
        source="api",
        principal=str(getattr(request.state, "audit_principal", "")),
        partner_id=getattr(request.state, "audit_partner_id", None),
        source_ip=client.host if client else "",
        request_id=str(getattr(request.state, "request_id", "")),
    )


def audit_action(request: Request) -> str:
    """``POST /v1/customers/{uin}/allocate``: the method and the route's path template."""
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    if not template.startswith("/v1/"):
        template = "/v1" + template  # the route's own path lacks the mount's prefix
    return f"{request.method} {template}"


def asked(body: bytes) -> Any:
    """A request's body as the audit row keeps it: its JSON, None when empty or not JSON."""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def dump(result: BaseModel) -> str:
    """An answer's JSON text, as written and as stored for an idempotent replay."""
    return json.dumps(result.model_dump(mode="json"), separators=(",", ":"))


def json_answer(content: Any) -> Response:
    """``content`` (plain dicts and lists, amounts as text, times as datetimes) as JSON,
    exactly as FastAPI would answer the response model of the same fields: for a page of
    many rows, answered without a pydantic model per row."""
    return Response(pydantic_core.to_json(content), media_type="application/json")


def _answer(status_code: int, body: str, *, replayed: bool = False) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


def call(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Call:
    """The dependency every reading endpoint takes: :func:`authenticate` from the key
    cache, with no statement of its own. A key taken from the cache is confirmed live in
    the request's read transaction (:meth:`Call.read`), or by :func:`confirm_refused` when
    the request is refused before it. (One dependency, not two: each costs every request.)"""
    principal, kept = _kept(request, credentials)
    if kept:
        request.state.unconfirmed_key = principal.key_id
    return Call(request, principal, _engine(request), None, b"")


def _forget(request: Request, secret_id: str) -> keys.UnknownKey:
    """The refusal of a key revoked since it was kept, which is forgotten; refused as an
    unknown key is (before authentication: no audit row)."""
    keys.CACHE.forget(_engine(request), secret_id)
    request.state.unconfirmed_key = None
    request.state.audit_principal = ""
    return keys.UnknownKey("the API key is unknown or revoked")


def confirm_refused(request: Request) -> keys.UnknownKey | None:
    """For a request refused before its read transaction confirmed its key (a parameter
    out of range, a role too low): the refusal of its key instead, when that key was taken
    from the key cache and has been revoked since, so that a revoked key is answered 401
    whatever else is wrong with the request. None otherwise."""
    key_id = getattr(request.state, "unconfirmed_key", None)
    if key_id is None:
        return None
    with read_transaction(_engine(request)) as session:
        live = keys.is_live(session, {"require_key_id": key_id})
    if live:
        request.state.unconfirmed_key = None
        return None
    return _forget(request, str(request.state.secret_id))


def write_call(
    request: Request,
    principal: Principal = Depends(authenticate),
    body: bytes = Depends(_raw_body),
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> Call:
    """The dependency every writing endpoint takes."""
    request.state.audit_body = body  # for the audit row, should the write be refused
    return Call(request, principal, _engine(request), idempotency_key, body)


def kept_write_call(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    body: bytes = Depends(_raw_body),
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> Call:
    """:func:`write_call` with the key from the key cache, no transaction of its own: a key
    taken from the cache is confirmed live by the write's first statement
    (:meth:`Call.write`, :meth:`Call.confirm`), or by :func:`confirm_refused` when the
    request is refused before it."""
    principal, kept = _kept(request, credentials)
    if kept:
        request.state.unconfirmed_key = principal.key_id
    request.state.audit_body = body  # for the audit row, should the write be refused
    return Call(request, principal, _engine(request), idempotency_key, body)


def audit_refusal(request: Request, code: str, message: str) -> None:
    """Record an authenticated caller's refused write (in its own transaction: the write's
    was rolled back). Reads, unauthenticated and throttled requests are not recorded: a
    flood of them must not become a flood of writes."""
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    if not getattr(request.state, "audit_principal", ""):
        return
    audit.refused(
        _engine(request),
        audit_actor(request),
        action=audit_action(request),
        object=request.url.path,
        code=code,
        message=message,
        request=asked(getattr(request.state, "audit_body", b"")),
    )


__all__ = [
    "Call",
    "JSONResponse",
    "audit_refusal",
    "call",
    "confirm_refused",
    "credit_call",
    "kept_write_call",
    "principal_of",
    "write_call",
]

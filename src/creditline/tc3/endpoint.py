"""The Tencent Cloud API 3.0-compatible endpoint: ``POST /`` or ``GET /`` carrying
``X-TC-Action``.

It sits in front of the rest of the application as ASGI middleware, because ``/`` is
shared: a request to ``/`` with ``X-TC-Action`` is Tencent's, anything else (the console)
passes through untouched. Each request is one transaction: the key is looked up, the
signature verified, the role and rate limit checked, and the action run; any refusal
rolls it back. Every answer is HTTP 200 with ``Content-Type: application/json`` (the SDK
reads errors only from that content type).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from creditline import audit
from creditline.auth import keys
from creditline.auth.rate_limit import BucketStore, LeasePending, SharedBuckets
from creditline.db import (
    is_conflict,
    is_unavailable,
    pipelined,
    read_transaction,
    sqlstate,
    transaction,
)
from creditline.errors import CreditlineError
from creditline.ledger.credit import Unconfirmed
from creditline.tc3 import replay, signature
from creditline.tc3.actions import ACTIONS, authorize, resolve
from creditline.tc3.callers import ApiKeyStore, Caller, KeyStore
from creditline.tc3.envelope import failure, new_request_id, success
from creditline.tc3.errors import (
    FAILED_OPERATION,
    INTERNAL_ERROR,
    INVALID_AUTHORIZATION,
    INVALID_PARAMETER,
    INVALID_PARAMETER_VALUE,
    MISSING_PARAMETER,
    REPLAY_ATTACK,
    REQUEST_LIMIT_EXCEEDED,
    SECRET_ID_NOT_FOUND,
    TencentError,
    from_domain,
)
from creditline.tc3.limits import RateLimiter, Tc3Settings, parse_limits
from creditline.tc3.params import Params, decode_json, unflatten

VERSION = "2022-09-28"
#: A Tencent request body is a few fields; anything near this is not one.
MAX_BODY_BYTES = 1_000_000

log = logging.getLogger(__name__)
#: Runs of one request that may each find the key's leased tokens taken by other requests.
_LEASE_TRIES = 3


@dataclass(frozen=True)
class TencentRequest:
    """What the endpoint needs of one HTTP request, header names lower-cased."""

    method: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    #: The caller's address, for the audit log.
    client: str = ""
    #: Whether the rate limit has counted the call already (the fast path did, then
    #: handed the call over: creditline.tc3.fast).
    admitted: bool = False


#: Request state: the rate limit counted this call already (creditline.tc3.fast).
ADMITTED = "creditline.tc3_admitted"


class TencentEndpoint:
    """ASGI middleware answering Tencent-compatible calls, passing everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: Engine,
        keys: KeyStore,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        hosts: Collection[str] = (),
    ) -> None:
        self.app = app
        #: The signed ``Host`` values accepted (lower case); empty: any.
        self.hosts = frozenset(host.strip().lower() for host in hosts if host.strip())
        self.engine = engine
        self.keys = keys
        self.limiter = limiter or RateLimiter(SharedBuckets(BucketStore(engine)))
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_tencent(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        incoming = TencentRequest(
            method=request.method,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            client=request.client.host if request.client else "",
            admitted=bool(scope.get("state", {}).get(ADMITTED)),
        )
        answer = await run_in_threadpool(self.answer, incoming)
        await Response(answer, media_type="application/json")(scope, receive, send)

    def answer(self, request: TencentRequest) -> bytes:
        """The response body for one request: success or a Tencent error, never a raise."""
        request_id = new_request_id()
        seen: dict[str, Any] = {}
        try:
            fields = self._admitted(request, request_id, seen)
        except TencentError as error:
            if "actor" in seen and error.code != REQUEST_LIMIT_EXCEEDED:
                # A signed write refused: recorded once its transaction is rolled back.
                audit.refused(
                    self.engine,
                    seen["actor"],
                    action=seen["action"],
                    code=error.code,
                    message=error.message,
                    request=asked_of(request),
                )
            self._remember_refused(seen, error.code)
            return failure(error.code, error.message, request_id)
        except Exception as error:
            conflict = is_conflict(error)
            if conflict or is_unavailable(error):
                # Lock timeouts, a lost or unreachable database, or a transaction rolled
                # back over a concurrent one (deadlock, serialization failure): it did not
                # commit, a retry may pass. Logged with the class and the SQLSTATE only,
                # never the statement's parameters, which could hold a secret. The
                # signature is not remembered: the database is what failed, and a claim
                # would wait on it.
                log.warning(
                    "tc3 request %s: %s (%s, SQLSTATE %s)",
                    request_id,
                    "transaction conflict" if conflict else "database unavailable",
                    type(getattr(error, "orig", None) or error).__name__,
                    sqlstate(error),
                )
                return failure(
                    FAILED_OPERATION,
                    "the request ran into a concurrent one and was not applied; retry the request"
                    if conflict
                    else "the database is unavailable right now; retry the request",
                    request_id,
                )
            log.exception("tc3 request %s failed", request_id)
            self._remember_refused(seen, "")
            return failure(
                INTERNAL_ERROR, f"internal error; quote RequestId {request_id}", request_id
            )
        return success(fields, request_id)

    def _admitted(
        self, request: TencentRequest, request_id: str, seen: dict[str, Any]
    ) -> dict[str, Any]:
        """:meth:`_handle`; when (on SQLite) the rate limit must first lease tokens from the
        shared bucket, the lease is awaited outside the request's transaction (rolled back
        with nothing done) and the request runs again."""
        for _ in range(_LEASE_TRIES):
            try:
                return self._handle(request, request_id, seen)
            except LeasePending as pending:
                seen.clear()
                pending.wait()
        raise TencentError(REQUEST_LIMIT_EXCEEDED, "the key has passed the request rate limit")

    def _remember_refused(self, seen: dict[str, Any], code: str) -> None:
        # The first verified use of a write's signature claims it, whatever its outcome
        # (creditline.tc3.replay); a refused write's claim was rolled back with it.
        if "signature" in seen and code != REPLAY_ATTACK:
            replay.claim_after_refusal(self.engine, seen["signature"], now=self.clock())

    def _handle(
        self, request: TencentRequest, request_id: str = "", seen: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = request.headers
        authorization = signature.parse_authorization(headers.get("authorization"))
        timestamp = signature.request_time(headers, now=self.clock())
        signature.check_scope(authorization, timestamp)
        # Only a writing action takes a writing transaction; the rest read without a lock.
        known = ACTIONS.get(headers.get("x-tc-action", "").strip())
        opener = transaction if known is not None and known.writes else read_transaction
        # The allocation, the hot write, takes its key from the key cache (its own statement
        # confirms the key is live) in a pipelined transaction: fewer round trips.
        kept = isinstance(self.keys, ApiKeyStore) and known is not None
        kept = kept and known is not None and known.name in KEPT_KEY_ACTIONS
        with (pipelined if kept else opener)(self.engine) as session:
            if isinstance(self.keys, ApiKeyStore) and kept:
                match = self.keys.kept(self.engine, session, authorization.secret_id)
            else:
                match = self.keys.lookup(session, authorization.secret_id)
            if match is None:
                raise TencentError(
                    SECRET_ID_NOT_FOUND, "the SecretId is not found or has been revoked"
                )
            check_signed(request, authorization, match.secret_key, self.hosts)
            action = resolve(headers["x-tc-action"].strip())
            signed = replay.Signed(authorization.secret_id, authorization.signature, timestamp)
            if action.writes and seen is not None:
                seen["signature"] = signed
            actor = actor_of(request, authorization, match.caller, request_id)
            if action.writes:
                audit.watch(session)
                if seen is not None:
                    seen.update(actor=actor, action=action.name)
            authorize(action, match.caller)
            # A lease of the rate limit's tokens, when one is needed, is waited for here on
            # PostgreSQL (its own connection, one statement). On SQLite this transaction may
            # hold the file's write lock, which the lease needs: it is taken after the
            # transaction ends instead, and the request runs again (_admitted).
            wait = self.engine.dialect.name != "sqlite"
            if not request.admitted and not self.limiter.admit(
                authorization.secret_id, action.name, wait=wait
            ):
                raise TencentError(
                    REQUEST_LIMIT_EXCEEDED,
                    f"the key has passed the request rate limit of {action.name}",
                )
            if action.writes:
                # In the action's transaction: claimed exactly when the write commits.
                replay.refuse_repeat(session, signed, now=self.clock())
            params = params_of(request)
            try:
                result = action.handler(session, match.caller, params)
            except Unconfirmed:
                # The key was revoked since it was kept: refused as an unknown key is
                # (before authentication: no audit row, no signature claimed).
                keys.CACHE.forget(self.engine, authorization.secret_id)
                if seen is not None:
                    seen.clear()
                raise TencentError(
                    SECRET_ID_NOT_FOUND, "the SecretId is not found or has been revoked"
                ) from None
            except CreditlineError as error:
                raise from_domain(error) from None
            if action.writes:
                # In the action's own transaction: the row exists exactly when the write does.
                audit.record(
                    session,
                    actor,
                    action=action.name,
                    after={"request": asked_of(request), "answer": json.loads(_json(result))},
                )
            return result


#: Actions whose key comes from the key cache: their handlers confirm the key in the
#: write's own statement (``Caller.key_id``).
KEPT_KEY_ACTIONS = frozenset({"AllocateCustomerCredit"})


def check_signed(
    request: TencentRequest,
    authorization: signature.Authorization,
    secret_key: str,
    hosts: frozenset[str],
) -> None:
    """The request's signature by ``secret_key``, its signed host (one of ``hosts``, if
    any) and its API version: each refused as Tencent refuses it."""
    signature.verify(
        authorization,
        secret_key=secret_key,
        method=request.method,
        query=request.query,
        headers=request.headers,
        body=request.body,
    )
    _check_host(request.headers, hosts)
    _check_version(request.headers)


def actor_of(
    request: TencentRequest, authorization: signature.Authorization, caller: Caller, request_id: str
) -> audit.Actor:
    """Who a signed call's audit row names."""
    return audit.Actor(
        source="tc3",
        principal=f"api-key:{authorization.secret_id}",
        partner_id=caller.partner_id,
        source_ip=request.client,
        request_id=request_id,
    )


def asked_of(request: TencentRequest) -> Any:
    if request.method == "GET":
        return dict(parse_qsl(request.query, keep_blank_values=True))
    try:
        return decode_json(request.body or b"{}")
    except ValueError:
        return None


def _json(result: dict[str, Any]) -> str:
    return json.dumps(result, default=str)


def _is_tencent(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["path"] != "/" or scope["method"] not in ("GET", "POST"):
        return False
    return any(name.lower() == b"x-tc-action" for name, _ in scope["headers"])


def _check_host(headers: Mapping[str, str], hosts: frozenset[str]) -> None:
    # The Host header is always signed (signature.REQUIRED_SIGNED_HEADERS), so it cannot be
    # changed in transit; with CREDITLINE_TC3_HOSTS set it must also name this server.
    host = headers.get("host", "").strip().lower()
    if hosts and host not in hosts:
        raise TencentError(
            INVALID_AUTHORIZATION,
            f"the request was signed for host {host!r}, which this server does not answer for",
        )


def _check_version(headers: Mapping[str, str]) -> None:
    version = headers.get("x-tc-version")
    if not version:
        raise TencentError(MISSING_PARAMETER, "the X-TC-Version header is missing")
    if version != VERSION:
        raise TencentError(INVALID_PARAMETER_VALUE, f"X-TC-Version must be {VERSION}")


def params_of(request: TencentRequest) -> Params:
    if request.method == "GET":
        return Params(unflatten(parse_qsl(request.query, keep_blank_values=True)), textual=True)
    if len(request.body) > MAX_BODY_BYTES:
        raise TencentError(INVALID_PARAMETER, "the request body is too large")
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise TencentError(INVALID_PARAMETER, "a POST body must be application/json")
    try:
        values = decode_json(request.body or b"{}")
    except ValueError:
        raise TencentError(INVALID_PARAMETER, "the request body is not valid JSON") from None
    if not isinstance(values, dict):
        raise TencentError(INVALID_PARAMETER, "the request body must be a JSON object")
    return Params(values)


def install(
    app: Starlette, engine: Engine, buckets: SharedBuckets | None = None
) -> tuple[RateLimiter, frozenset[str]]:
    """Put the Tencent-compatible endpoint in front of ``app``, with the API keys of
    :mod:`creditline.auth.keys` and the rate limits of ``CREDITLINE_TC3_RATE_LIMITS``
    (counted in ``buckets``, the app's shared ones; default: new ones on ``engine``).
    Returns its rate limiter and its signed hosts, for the fast path (creditline.tc3.fast)."""
    settings = Tc3Settings()
    buckets = buckets or SharedBuckets(BucketStore(engine))
    limiter = RateLimiter(buckets, parse_limits(settings.rate_limits))
    hosts = settings.host_list()
    app.add_middleware(
        TencentEndpoint,
        engine=engine,
        keys=ApiKeyStore(),
        limiter=limiter,
        hosts=hosts,
    )
    return limiter, frozenset(host.strip().lower() for host in hosts if host.strip())

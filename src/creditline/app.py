"""The one ASGI app: the REST API under ``/v1`` (OpenAPI at ``/openapi.json``), with ``/``
kept for the web console and the Tencent-compatible endpoint (``POST /``)."""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditline.api import (
    access,
    alarms,
    applications,
    audit,
    customers,
    fast_sqlite,
    me,
    notifications,
    platform,
    pool,
    purchases,
    records,
    statements,
    sub_resellers,
    top_ups,
    usage,
)
from creditline.api import fast as api_fast
from creditline.api import (
    settings as partner_settings,
)
from creditline.api.errors import (
    error_response,
    install,
    invalid_request,
    transaction_conflict,
    unavailable,
)
from creditline.auth.rate_limit import BucketStore, RateLimiter, SharedBuckets
from creditline.config import Settings, get_settings
from creditline.db import is_conflict, is_unavailable, make_engine, sqlstate
from creditline.db.migrate import upgrade
from creditline.db.outage import wait_for
from creditline.notify.worker import Worker
from creditline.tc3 import endpoint as tc3_endpoint
from creditline.tc3 import fast as tc3_fast

access_log = access.access_log
log = logging.getLogger("creditline.app")


class RequestContext:
    """ASGI middleware: an ``X-Request-Id`` on every answer (the caller's, if sane), a
    body-size cap, and one structured JSON log line per request — never a secret."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = access.request_id(headers.get("x-request-id", ""))
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = 0
        try:
            if length > self.max_body:
                await self._too_large(scope, receive, send_with_id)
                return
            if "content-length" not in headers and scope["method"] not in ("GET", "HEAD"):
                # A body of unannounced length is read (up to the cap) before the app runs,
                # so an oversized one is refused with 413 rather than half-parsed.
                buffered = await self._buffer(receive)
                if buffered is None:
                    await self._too_large(scope, receive, send_with_id)
                    return
                receive = buffered
            await self.app(scope, receive, send_with_id)
        finally:
            access.log_request(
                request_id=request_id,
                method=scope["method"],
                path=scope["path"],
                status=status,
                seconds=time.perf_counter() - started,
                state=scope.get("state", {}),
            )

    async def _buffer(self, receive: Receive) -> Receive | None:
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.max_body:
                return None
            if not message.get("more_body", False):
                break
        return api_fast.replaying(body, receive)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large", f"the request body is larger than {self.max_body} bytes"
        )
        await response(scope, receive, send)


def _database_fault(request: Request, exc: Exception) -> Response:
    """A lost or unreachable database answers 503 (JSON for the API, a page for the
    console) instead of a 500; a transaction the database rolled back over a concurrent
    one (a deadlock, a serialization failure) answers 409, nothing applied, retry; any
    other database error stays a 500."""
    conflict = is_conflict(exc)
    if not conflict and not is_unavailable(exc):
        raise exc
    # The class names and the SQLSTATE, never the message: it can quote the statement's
    # parameters, which could hold a secret.
    cause = getattr(exc, "orig", None)
    access_log.warning(
        json.dumps(
            {
                "event": "database_conflict" if conflict else "database_unavailable",
                "request_id": getattr(request.state, "request_id", None),
                "path": request.url.path,
                "error": type(exc).__name__,
                "cause": type(cause).__name__ if cause is not None else None,
                "sqlstate": sqlstate(exc),
            }
        )
    )
    if request.url.path.startswith("/v1"):
        return transaction_conflict() if conflict else unavailable()
    from creditline.console.site import conflict_page, unavailable_page

    return conflict_page(request) if conflict else unavailable_page(request)


def _unreadable(request: Request, exc: Exception) -> Response:
    """A request that does not fit its route's parameters: the API's error shape under
    ``/v1``, a page naming what was wrong in the console."""
    if request.url.path.startswith("/v1"):
        return invalid_request(request, exc)
    from creditline.console.site import invalid_request_page

    assert isinstance(exc, RequestValidationError)
    return invalid_request_page(request, exc)


def v1_router() -> APIRouter:
    """Every REST endpoint, to be mounted at ``/v1``."""
    router = APIRouter()
    for area in (
        pool,
        customers,
        purchases,
        records,
        usage,
        alarms,
        partner_settings,
        notifications,
        sub_resellers,
        applications,
        platform,
        me,
        audit,
        statements,
        top_ups,
    ):
        router.include_router(area.router)
    return router


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, *, worker: bool = True
) -> FastAPI:
    """The creditline ASGI app on ``engine`` (default: the configured database)."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine.dialect.name == "sqlite":
            # The embedded database creates and upgrades its own schema; while another
            # process holds its write lock past the busy timeout, the start waits.
            wait_for(lambda: upgrade(engine), log=log, what="creditline serve")
        else:
            # Endpoints run in a thread pool; more threads than pooled connections only
            # queue inside the pool (or open and close overflow connections per request),
            # so requests wait in the event loop instead. REST and the Tencent endpoint
            # share these threads; the overflow is left for the delivery worker.
            to_thread.current_default_thread_limiter().total_tokens = settings.pool_size
        delivery: Worker | None = None
        if worker:
            # The outbox delivery worker runs in-process, so the embedded default delivers
            # alarms with nothing else started; ``creditline serve --no-worker`` skips it
            # (for deployments that run ``creditline worker`` processes instead).
            delivery = Worker(engine, settings)
            delivery.start_in_thread()
        app.state.worker = delivery
        if fast is not None:
            await fast.open()
        try:
            yield
        finally:
            if fast is not None:
                await fast.close()
            if delivery is not None:
                delivery.stop()
                delivery.close()

    app = CreditlineApp(
        title="creditline",
        version="1",
        summary="Customer credit for cloud resellers: pools, allocations, usage and alarms.",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    # Usage batches written at once by this process (config.Settings.usage_writers).
    app.state.usage_writers = (
        threading.BoundedSemaphore(settings.usage_writers) if settings.usage_writers > 0 else None
    )
    # Per-key rate limits (REST and Tencent), counted in the database so that every server
    # process behind a load balancer spends one allowance; leased in chunks, spent here.
    buckets = SharedBuckets(BucketStore(engine))
    app.state.rate_limiter = RateLimiter(settings.api_rate_limit_per_minute, buckets)
    install(app)
    app.include_router(v1_router(), prefix="/v1")
    # The allocation's fast path (PostgreSQL's or SQLite's), in front of the ordinary routes.
    fast: api_fast.FastCredit | fast_sqlite.FastSqliteCredit | None = api_fast.install(
        app, engine, size=settings.pool_size
    ) or fast_sqlite.install(app, engine, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    app.state.fast_credit = fast
    # (its middleware goes in front of every other layer: see the end)
    # --- Tencent Cloud API 3.0-compatible endpoint (tc3): POST / and GET / carrying
    # X-TC-Action are answered in front of the app; every other request passes through.
    tc3_limiter, tc3_hosts = tc3_endpoint.install(app, engine, buckets)
    # --- end of the Tencent-compatible endpoint ---
    app.add_middleware(RequestContext, max_body=settings.api_max_body_bytes)
    # --- Console: the partner console's pages at /, static files, security headers ---
    from creditline import console

    console.install(app)
    # --- end console ---
    # --- Database faults: 503 (or 409) for the API and the console (tc3: its own shape) ---
    app.add_exception_handler(DBAPIError, _database_fault)
    app.add_exception_handler(PoolTimeout, _database_fault)
    app.add_exception_handler(RequestValidationError, _unreadable)
    if fast is not None:
        # The allocation's and the purchase check's fast path first, in front of every
        # other layer, FastAPI's own included: what it does not answer passes through them
        # all; what it answers gets their request id, log line and body cap from it.
        app.in_front.append(
            Middleware(api_fast.FastPath, fast=fast, max_body=settings.api_max_body_bytes)
        )
    if isinstance(fast, api_fast.FastCredit):
        # The Tencent action's on PostgreSQL, in front of the endpoint it hands over to.
        app.in_front.append(
            Middleware(
                tc3_fast.TencentFastPath,
                fast=fast,
                limiter=tc3_limiter,
                hosts=tc3_hosts,
                clock=time.time,
            )
        )
    return app


class CreditlineApp(FastAPI):
    """FastAPI, with layers that run in front of all of its own (its error, telemetry
    and body-limit middleware, and its entry itself, included): :attr:`in_front`, the
    outermost last. The fast paths answer there, so that a request they answer pays for
    no other layer; what they answer is not seen by FastAPI's own OpenTelemetry
    instrumentation (their log line carries its request id, as every request's does)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.in_front: list[Middleware] = []
        self._front: ASGIApp | None = None

    def front(self) -> ASGIApp:
        """The app as the server calls it: :attr:`in_front`'s layers around FastAPI's
        own entry (built once, at the first request)."""
        if self._front is None:

            async def fastapi(scope: Scope, receive: Receive, send: Send) -> None:
                await FastAPI.__call__(self, scope, receive, send)

            front: ASGIApp = fastapi
            for layer in self.in_front:
                front = layer.cls(front, *layer.args, **layer.kwargs)
            self._front = front
        return self._front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.front()(scope, receive, send)


def settled(app: FastAPI) -> FastAPI:
    """``app`` as a server process keeps it for its life, what was built to start it moved
    out of the garbage collector's way (``gc.freeze``): otherwise every full collection
    walks the loaded modules and the app, some 200,000 objects (114 ms, measured), while
    every request in flight waits — a tail latency of its own, however fast the requests.
    The objects made since are collected as before. And its log records as lean as the
    logging HOWTO's "Optimization" allows (every request writes one)."""
    gc.collect()
    gc.freeze()
    # Its log records carry what its log lines print (the message): not where each call
    # was made from (a walk of the stack per record), nor its thread's or process's names.
    logging._srcfile = None  # logging's documented switch
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    return app


def app_from_environment() -> FastAPI:
    """The app of one ``creditline serve --workers N`` process, configured from the
    environment (``CREDITLINE_*``) as the parent process left it."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return settled(create_app(worker=os.environ.get("CREDITLINE_SERVE_DELIVERY", "1") != "0"))

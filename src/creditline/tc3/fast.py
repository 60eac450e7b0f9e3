"""``AllocateCustomerCredit`` on the allocation's fast path (PostgreSQL): answered on the
event loop with the key from the key cache, as one statement that claims the request's
signature with its write (creditline.fast_write), written by the REST fast path's writer
(:class:`creditline.api.fast.FastCredit`).

It checks what the endpoint checks (the signature, its time and scope, the signed host,
the version, the key's role, the rate limit, the parameters) with the endpoint's own
functions, and answers exactly what the endpoint would. Whatever is not the plain case —
a key not kept yet, a refusal of any kind, a used signature, an alarm to raise, a database
error — is handed, untouched, to :class:`creditline.tc3.endpoint.TencentEndpoint`, which
answers it in full (and audits a refused write, and claims its signature)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from creditline import audit
from creditline.api import access
from creditline.api.fast import FastCredit, Write, read_body, replaying, send_json
from creditline.auth import keys, signatures
from creditline.errors import CreditlineError
from creditline.ledger import credit
from creditline.tc3 import signature
from creditline.tc3.actions import ACTIONS, authorize, origin_of
from creditline.tc3.callers import match_of
from creditline.tc3.endpoint import (
    ADMITTED,
    TencentRequest,
    actor_of,
    check_signed,
    params_of,
)
from creditline.tc3.envelope import Cents, new_request_id, success
from creditline.tc3.limits import RateLimiter
from creditline.tc3.signature import MAX_SKEW_SECONDS

log = logging.getLogger(__name__)
ACTION = "AllocateCustomerCredit"
#: The largest body read here (a UIN, an amount and a remark).
_MAX_BODY = 4096


class TencentFastPath:
    """ASGI middleware answering plain ``AllocateCustomerCredit`` calls; everything else
    passes through to the app (the Tencent endpoint and the rest)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        fast: FastCredit,
        limiter: RateLimiter,
        hosts: frozenset[str],
        clock: Callable[[], float],
    ) -> None:
        self.app = app
        self.fast = fast
        self.limiter = limiter
        self.hosts = hosts
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._ours(scope):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body = await read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        request = TencentRequest(
            method="POST",
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            client=client[0] if client else "",
        )
        try:
            answer = await self._answer(scope, request)
        except Exception:  # the endpoint answers it, and logs what it must
            log.debug("tc3 fast path fell back", exc_info=True)
            answer = None
        if answer is None:
            await self.app(scope, replaying(body, receive), send)
            return
        # What the layers it passes by give every other answer: its X-Request-Id, its line.
        request_id = access.request_id(headers.get("x-request-id", ""))
        await send_json(send, answer, (b"x-request-id", request_id.encode()))
        access.log_request(
            request_id=request_id,
            method="POST",
            path="/",
            status=200,
            seconds=time.perf_counter() - started,
            state={"secret_id": scope.get("state", {}).get("secret_id")},
        )

    def _ours(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/":
            return False
        if not self.fast.is_open():
            return False
        length = action = None
        for name, value in scope["headers"]:
            if name == b"x-tc-action":
                action = value.strip()
            elif name == b"content-length":
                length = value
        return (
            action == ACTION.encode()
            and length is not None
            and length.isdigit()
            and int(length) <= _MAX_BODY
        )

    async def _answer(self, scope: Scope, request: TencentRequest) -> bytes | None:
        headers = request.headers
        authorization = signature.parse_authorization(headers.get("authorization"))
        now = self.clock()
        timestamp = signature.request_time(headers, now=now)
        signature.check_scope(authorization, timestamp)
        key = keys.CACHE.get(self.fast.engine, authorization.secret_id)
        if key is None or key.secret_key is None:
            return None  # the endpoint looks it up (and keeps it)
        match = match_of(key)
        check_signed(request, authorization, match.secret_key, self.hosts)
        action = ACTIONS[ACTION]
        authorize(action, match.caller)
        caller = match.caller
        if caller.partner_id is None or caller.key_id is None:
            return None
        params = params_of(request)
        uin = params.uin("ClientUin")
        amount = params.amount("AddedCredit")
        origin = credit.check(
            amount, origin_of(caller, params.text("Remark", required=False) or "")
        )
        # What asked_of reads from a POST's body (this path takes POSTs only), read once.
        asked = params.values
        if audit.hides(asked):
            return None  # the audit row hides part of it: the endpoint writes that
        asked = audit.redact(asked)  # as the row keeps it: numbers with a fraction as text
        if not self.limiter.admit(authorization.secret_id, ACTION, wait=False):
            return None  # over the limit: the endpoint refuses it, and says so
        scope.setdefault("state", {})[ADMITTED] = True  # counted once, here
        request_id = new_request_id()
        actor = actor_of(request, authorization, caller, request_id)
        base = audit.statement_row(actor, action=ACTION)
        claim = signatures.claim_params(
            secret_id=authorization.secret_id,
            signature=authorization.signature,
            # After this moment the timestamp check refuses the request by itself.
            expires_at=datetime.fromtimestamp(timestamp + MAX_SKEW_SECONDS, UTC),
            now=datetime.fromtimestamp(now, UTC),
        )
        written = await self.fast.write(
            Write(
                claims="signature",
                claim=claim,
                key_id=caller.key_id,
                partner_id=caller.partner_id,
                uin=uin,
                amount=amount,
                origin=origin,
                request=asked,
                audit=base,
                answer=_no_answer,
                shape="tencent",
            )
        )
        if written is None:
            return None
        fields: dict[str, Any] = json.loads(written)
        scope.setdefault("state", {})["secret_id"] = authorization.secret_id
        return success({name: Cents(value) for name, value in fields.items()}, request_id)


def _no_answer(change: credit.CreditChange) -> str:
    raise CreditlineError("the Tencent action's answer is built by its statement")

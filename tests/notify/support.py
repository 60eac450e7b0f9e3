"""Test doubles that are real servers: an HTTP receiver that verifies every Standard
Webhooks signature, and an SMTP server (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from creditline.db import transaction
from creditline.db.tables import Delivery
from creditline.ledger import accounts, credit, pools, usage
from creditline.ledger.records import Origin
from creditline.notify.worker import Worker

OPERATOR = Origin(operator="ops@example.com", source="cli")


@dataclass
class Received:
    """One request the receiver accepted or refused."""

    webhook_id: str
    status: int
    body: dict[str, Any] | None
    verified: bool
    host: str = ""


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 and a random port.

    ``secrets``: every request must verify with at least one (checked with
    ``standardwebhooks.Webhook.verify``). ``fail_first``: answer 503 to that many requests
    first. ``delay``: seconds each request takes. ``answer``: when set, every request is
    answered with this (status, headers, body) instead. It notes any webhook-id that
    arrives while another request with the same id is still being worked on.
    """

    secrets: list[str] = field(default_factory=list)
    fail_first: int = 0
    delay: float = 0.0
    answer: tuple[int, dict[str, str], bytes] | None = None
    received: list[Received] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    bad_signatures: list[str] = field(default_factory=list)
    _in_flight: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def successes(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.status == 200]

    def handle(self, headers: dict[str, str], raw: bytes) -> int:
        webhook_id = headers.get("webhook-id", "")
        with self._lock:
            if webhook_id in self._in_flight:
                self.overlaps.append(webhook_id)
            self._in_flight.add(webhook_id)
            refuse = self.fail_first > 0
            if refuse:
                self.fail_first -= 1
        try:
            if self.delay:
                time.sleep(self.delay)
            body: dict[str, Any] | None = None
            for secret in self.secrets:
                try:
                    body = Webhook(secret).verify(raw, headers)
                    break
                except WebhookVerificationError:
                    continue
            verified = body is not None
            status = 503 if refuse else (200 if verified else 400)
            if self.answer is not None:
                status = self.answer[0]
            with self._lock:
                if not verified:
                    self.bad_signatures.append(webhook_id)
                self.received.append(
                    Received(webhook_id, status, body, verified, headers.get("host", ""))
                )
            return status
        finally:
            with self._lock:
                self._in_flight.discard(webhook_id)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, raw)
                _, extra, content = receiver.answer or (status, {}, b"")
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _free_port() -> int:
    # aiosmtpd's controller checks its server by connecting to the port it was given, so
    # it needs a real port number rather than 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it is handed."""

    def __init__(self, port: int | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.port = port or _free_port()
        self.running = False
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.controller.stop()


class FakeClock:
    """A clock the test moves by hand, for retry windows of hours and days."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def customer_with_credit(
    engine: Engine, *, credit_cents: int = 10_000, email: str = "", name: str = "Cust"
) -> tuple[int, int]:
    """A reseller with a pool and one customer holding ``credit_cents``; (partner, uin)."""
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme Cloud", kind="reseller")
        customer = accounts.create_customer(s, partner_id=partner.id, name=name, email=email)
        pools.grant(s, partner_id=partner.id, amount=1_000_000, origin=OPERATOR)
        credit.allocate_credit(
            s,
            partner_id=partner.id,
            customer_uin=customer.uin,
            amount=credit_cents,
            origin=OPERATOR,
        )
        return partner.id, customer.uin


_counter = iter(range(1, 10**9))


def consume(engine: Engine, uin: int, amount: str, *, kind: str = "charge") -> list[int]:
    """Import one usage record for ``uin``; returns the thresholds of any alarms raised."""
    record = usage.parse_record(
        {
            "event_id": f"ev-{uin}-{next(_counter)}",
            "customer_uin": uin,
            "product": "cvm",
            "list_amount": amount,
            "voucher_amount": "0",
            "occurred_at": "2026-01-01T00:00:00Z",
            "kind": kind,
        }
    )
    with transaction(engine) as s:
        return [a.threshold for a in usage.ingest(s, [record]).alarms]


def pending_deliveries(engine: Engine) -> int:
    with transaction(engine) as s:
        return int(
            s.execute(
                select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
            ).scalar_one()
        )


def drain(worker: Worker, *, until: Callable[[], bool] | None = None, rounds: int = 500) -> None:
    """Run the worker round after round until it is idle (or ``until`` holds). Rounds are
    bounded so a bug fails the test instead of hanging it."""
    for _ in range(rounds):
        busy = worker.run_once()
        done = until() if until is not None else pending_deliveries(worker.engine) == 0
        if done and (until is not None or not busy):
            return
        if not busy:
            time.sleep(0.01)
    raise AssertionError("the worker did not finish")

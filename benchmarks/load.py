"""Load from separate processes (never the server's): each process runs a few threads,
each thread one keep-alive HTTP connection sending requests back to back until its
deadline or its request budget runs out. Latencies are timed per request in the client.

The connection is :class:`Connection`, not ``http.client``: the load shares the machine's
two cores with the server and PostgreSQL, and ``http.client`` (which parses every answer's
headers with the ``email`` package) spent more than half as much CPU on an allocation as
the server did; this one spends less than half of what it spent (docs/benchmarks.md,
run 22). The requests on the wire are the same."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchmarks.seed import Key
from creditline.tc3 import signature

Request = tuple[str, str, bytes, dict[str, str]]


@dataclass(frozen=True)
class Workload:
    """What to send: ``kind`` is rest_allocate, tc3_allocate, usage, customers_page,
    records_page, purchase_check (the order pipeline's question, with the platform key),
    rest_pool (an authenticated read) or bare (``GET /``, no key).
    ``clients`` connections in total, spread over ``processes``."""

    kind: str
    port: int
    keys: list[Key]
    #: Customers per key (same order as ``keys``); for usage, every customer.
    customers: list[list[int]]
    clients: int = 16
    processes: int = 2
    seconds: float = 30.0
    max_requests: int = 1_000_000
    batch: int = 1000
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    ok: int = 0
    failed: int = 0
    items: int = 0
    seconds: float = 0.0
    #: CPU the load processes themselves used (all their threads), in seconds.
    client_cpu_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def items_rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile latency in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000


class Client:
    """One thread's requests of one workload."""

    def __init__(self, work: Workload, index: int) -> None:
        self.work = work
        self.index = index
        self.random = random.Random(index)
        self.key = work.keys[index % len(work.keys)] if work.keys else Key("", "")
        self.customers = work.customers[index % len(work.customers)]
        self.before: int | None = None
        self.sequence = 0

    def _rest(self, method: str, path: str, body: Any = None, **extra: str) -> Request:
        headers = {"authorization": f"Bearer {self.key.secret_id}:{self.key.secret_key}", **extra}
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        return method, path, data, headers

    def next(self) -> tuple[Request, int]:
        """The next request, and how many items (usage events) it carries."""
        kind = self.work.kind
        self.sequence += 1
        if kind == "rest_allocate":
            uin = self.random.choice(self.customers)
            return self._rest(
                "POST",
                f"/v1/customers/{uin}/allocate",
                {"amount": "1.00", "remark": "bench"},
                **{"idempotency-key": uuid.uuid4().hex},
            ), 1
        if kind == "purchase_check":
            # Prices from 0.01 to 2,000.00 against 1,000.00 of credit: under block_at_limit
            # about half are refused, and a refusal is an answer (200) like an allowance.
            uin = self.random.choice(self.customers)
            price = self.random.randint(1, 200_000)
            return self._rest(
                "POST",
                f"/v1/customers/{uin}/purchase-checks",
                {"amount": f"{price // 100}.{price % 100:02d}", "product": "cvm"},
            ), 1
        if kind == "rest_pool":
            return self._rest("GET", "/v1/pool"), 1
        if kind == "bare":
            return ("GET", "/", b"", {}), 1
        if kind == "tc3_allocate":
            uin = self.random.choice(self.customers)
            # A remark of its own: two identical writes signed in one second would carry
            # one signature, and the second would be refused as a replay.
            remark = f"bench-{self.index}-{self.sequence}"
            body = json.dumps({"ClientUin": uin, "AddedCredit": 1.0, "Remark": remark})
            return self._tc3("AllocateCustomerCredit", body.encode()), 1
        if kind == "usage":
            tag = f"{self.work.params.get('run', 'u')}-{self.index}-{self.sequence}"
            method, path, _, headers = self._rest(
                "POST", "/v1/usage-batches", **{"idempotency-key": tag}
            )
            headers["content-type"] = "application/json"
            return (method, path, self.usage_body(tag), headers), self.work.batch
        if kind == "customers_page":
            words = self.work.params["words"]
            q = urllib.parse.quote(self.random.choice(words))
            sort = self.random.choice(["available_credit", "utilization", "associated_at"])
            order = self.random.choice(["asc", "desc"])
            page = self.random.randint(1, 5)
            return self._rest(
                "GET", f"/v1/customers?q={q}&sort={sort}&order={order}&page={page}&page_size=20"
            ), 1
        if kind == "records_page":
            query = "limit=50"
            if self.before is not None:
                query += f"&before={self.before}"
            if self.sequence % 3 == 0:
                query += f"&customer_uin={self.random.choice(self.customers)}"
                self.before = None
            elif self.sequence % 3 == 1:
                query += "&kind=withdrawal"
            return self._rest("GET", f"/v1/allocation-records?{query}"), 1
        raise ValueError(f"unknown workload {kind}")

    def usage_body(self, tag: str) -> bytes:
        """A usage batch: ``{"records": [...]}`` of ``work.batch`` charges of 0.35 less a
        0.05 voucher, each of a random customer, as ``json.dumps`` writes it — written
        from a template: the load's CPU per batch is a third of what the records' dicts
        and ``json.dumps`` took (its ids and times need no escaping; a test holds the
        text to ``json.dumps``)."""
        stamp = datetime.now(UTC).isoformat()
        rest = (
            ', "product": "cvm", "list_amount": "0.35", "voucher_amount": "0.05", '
            f'"occurred_at": "{stamp}"}}'
        )
        choice, customers = self.random.choice, self.customers
        records = ", ".join(
            f'{{"event_id": "{tag}-{n}", "customer_uin": {choice(customers)}{rest}'
            for n in range(self.work.batch)
        )
        return f'{{"records": [{records}]}}'.encode()

    def _tc3(self, action: str, body: bytes) -> Request:
        now = int(time.time())
        date = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        headers = {
            "content-type": "application/json",
            "host": f"127.0.0.1:{self.work.port}",
            "x-tc-action": action,
            "x-tc-version": "2022-09-28",
            "x-tc-timestamp": str(now),
        }
        signed = ("content-type", "host")
        canonical = signature.canonical_request(
            method="POST",
            query="",
            headers=headers,
            signed_headers=signed,
            payload_hash=hashlib.sha256(body).hexdigest(),
        )
        scope = f"{date}/{signature.SERVICE}/{signature.TERMINATOR}"
        message = signature.string_to_sign(
            timestamp=str(now), credential_scope=scope, canonical=canonical
        )
        mac = signature.sign(
            self.key.secret_key, date=date, service=signature.SERVICE, message=message
        )
        headers["authorization"] = (
            f"{signature.ALGORITHM} Credential={self.key.secret_id}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={mac}"
        )
        return "POST", "/", body, headers

    def succeeded(self, status: int, body: bytes) -> bool:
        if status != 200:
            return False
        if self.work.kind == "tc3_allocate":
            return b'"Error"' not in body
        if self.work.kind == "records_page":
            self.before = json.loads(body).get("next_before")
        return True


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 this client reads."""


class Connection:
    """One keep-alive HTTP/1.1 connection to the server under test: a request written as
    one buffer, its answer read with no more parsing than the status, ``Content-Length``
    or chunked framing, and ``Connection: close`` need (after which it reconnects)."""

    def __init__(self, host: str, port: int, *, timeout: float = 60.0) -> None:
        self.address = (host, port)
        self.host_header = f"{host}:{port}"
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = bytearray()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buffer.clear()

    def _socket(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.sock

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """Send one request and read its whole answer: (status, body)."""
        lines = [f"{method} {path} HTTP/1.1"]
        if "host" not in headers:
            lines.append(f"host: {self.host_header}")
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"content-length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._socket().sendall(head + body if body else head)
        return self._response()

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ProtocolError("the server closed the connection")
        self.buffer += chunk

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _response(self) -> tuple[int, bytes]:
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = close = False
        while line := self._line():
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            pieces = []
            while size := int(self._line().split(b";", 1)[0], 16):
                pieces.append(self._exactly(size))
                self._line()
            while self._line():  # trailers, up to the empty line
                pass
            body = b"".join(pieces)
        elif length is not None:
            body = self._exactly(length)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # no framing: the body runs to the end of the connection
            assert self.sock is not None
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
            body, close = bytes(self.buffer), True
            self.buffer.clear()
        if close:
            self.close()
        return status, body


def _thread(work: Workload, index: int, deadline: float, budget: int, out: Result) -> None:
    client = Client(work, index)
    connection = Connection("127.0.0.1", work.port)
    sent = 0
    while time.monotonic() < deadline and sent < budget:
        (method, path, body, headers), items = client.next()
        started = time.perf_counter()
        try:
            status, answer = connection.request(method, path, body, headers)
        except (OSError, ValueError, ProtocolError) as exc:
            out.failed += 1
            out.errors.append(repr(exc))
            connection.close()
            continue
        elapsed = time.perf_counter() - started
        sent += 1
        if client.succeeded(status, answer):
            out.ok += 1
            out.items += items
            out.latencies.append(elapsed)
        else:
            out.failed += 1
            if len(out.errors) < 5:
                out.errors.append(f"{status} {answer[:300]!r}")
    connection.close()


def _process(work: Workload, first: int, threads: int, start_at: float, queue: Any) -> None:
    results = [Result() for _ in range(threads)]
    # Every process starts at the same wall-clock moment, after its interpreter is warm.
    time.sleep(max(0.0, start_at - time.time()))
    began = time.monotonic()
    cpu_before = time.process_time()
    deadline = began + work.seconds
    budget = max(1, work.max_requests // work.clients)
    workers = [
        threading.Thread(target=_thread, args=(work, first + n, deadline, budget, results[n]))
        for n in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    total = Result(
        seconds=time.monotonic() - began, client_cpu_seconds=time.process_time() - cpu_before
    )
    for r in results:
        total.ok += r.ok
        total.failed += r.failed
        total.items += r.items
        total.latencies += r.latencies
        total.errors += r.errors[:3]
    queue.put(total)


def run(work: Workload) -> Result:
    """Run ``work`` from ``work.processes`` fresh processes; the combined result."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = min(work.processes, work.clients)
    start_at = time.time() + 2.0
    spawned = []
    first = 0
    for n in range(processes):
        threads = work.clients // processes + (1 if n < work.clients % processes else 0)
        p = context.Process(target=_process, args=(work, first, threads, start_at, queue))
        p.start()
        spawned.append(p)
        first += threads
    parts = [queue.get(timeout=work.seconds + 600) for _ in spawned]
    for p in spawned:
        p.join(60)
    total = Result(seconds=max(r.seconds for r in parts))
    for r in parts:
        total.ok += r.ok
        total.failed += r.failed
        total.items += r.items
        total.client_cpu_seconds += r.client_cpu_seconds
        total.latencies += r.latencies
        total.errors += r.errors
    return total

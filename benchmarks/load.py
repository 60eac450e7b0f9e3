"""Load from separate processes (never the server's): each process runs a few threads,
each thread one keep-alive HTTP connection sending requests back to back until its
deadline or its request budget runs out. Latencies are timed per request in the client."""

from __future__ import annotations

import hashlib
import http.client
import json
import multiprocessing
import random
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
            stamp = datetime.now(UTC).isoformat()
            tag = f"{self.work.params.get('run', 'u')}-{self.index}-{self.sequence}"
            records = [
                {
                    "event_id": f"{tag}-{n}",
                    "customer_uin": self.random.choice(self.customers),
                    "product": "cvm",
                    "list_amount": "0.35",
                    "voucher_amount": "0.05",
                    "occurred_at": stamp,
                }
                for n in range(self.work.batch)
            ]
            return self._rest(
                "POST",
                "/v1/usage-batches",
                {"records": records},
                **{"idempotency-key": tag},
            ), self.work.batch
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


def _thread(work: Workload, index: int, deadline: float, budget: int, out: Result) -> None:
    client = Client(work, index)
    connection = http.client.HTTPConnection("127.0.0.1", work.port, timeout=60)
    sent = 0
    while time.monotonic() < deadline and sent < budget:
        (method, path, body, headers), items = client.next()
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            out.failed += 1
            out.errors.append(repr(exc))
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", work.port, timeout=60)
            continue
        elapsed = time.perf_counter() - started
        sent += 1
        if client.succeeded(response.status, answer):
            out.ok += 1
            out.items += items
            out.latencies.append(elapsed)
        else:
            out.failed += 1
            if len(out.errors) < 5:
                out.errors.append(f"{response.status} {answer[:300]!r}")
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

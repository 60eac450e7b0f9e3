"""Mixed client load for the reliability tests: allocations and withdrawals with
idempotency keys, usage batches (some deliberately invalid) and record queries, each
retried with the same key until it gets a definite answer, and a tally of what the client
saw, to be checked against the database afterwards."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from creditline import money
from creditline.auth import keys
from creditline.db import transaction
from creditline.db.tables import AllocationRecord, Customer, IdempotentRequest, UsageEvent
from creditline.ledger import accounts, pools
from creditline.ledger.records import Origin
from creditline.notify import endpoints


@dataclass
class World:
    """A reseller with a pool and customers, an operator key and the billing feed's key."""

    partner_id: int
    customers: list[int]
    operator: dict[str, str]
    platform: dict[str, str]


def make_world(engine: Engine, *, customers: int, pool: int, webhook_url: str | None) -> World:
    """Set up the reseller the load runs against (``pool`` in cents)."""
    origin = Origin(operator="setup", source="cli")
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Crash Cloud", kind="reseller")
        uins = [
            accounts.create_customer(s, partner_id=partner.id, name=f"Customer {n}").uin
            for n in range(customers)
        ]
        if webhook_url is not None:
            # The receiver listens on 127.0.0.1: private targets are let through here
            # (and in the processes, by the environment they are given). Added first: an
            # endpoint receives the events recorded once it exists (the grant's, too).
            endpoints.add_endpoint(
                s, partner_id=partner.id, url=webhook_url, allow_private_targets=True
            )
        pools.grant(s, partner_id=partner.id, amount=pool, origin=origin)
        operator = keys.create(
            s, name="load operator", principal="partner", partner_id=partner.id, role="operator"
        )
        platform = keys.create(s, name="billing feed", principal="platform")
        partner_id = partner.id
    return World(
        partner_id=partner_id,
        customers=uins,
        operator={"Authorization": f"Bearer {operator.secret_id}:{operator.secret_key}"},
        platform={"Authorization": f"Bearer {platform.secret_id}:{platform.secret_key}"},
    )


@dataclass
class Operation:
    """One request the client means to make, and what finally became of it."""

    key: str
    kind: str  # credit, usage, query
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    #: credit: the signed change in cents; usage: per customer, the counted cents.
    change: int = 0
    counted: dict[int, int] = field(default_factory=dict)
    customer: int = 0
    event_ids: list[str] = field(default_factory=list)
    status: int | None = None
    answer: dict[str, Any] | None = None
    lost: int = 0
    replayed: bool = False


def _amount(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low, high)


def next_operation(rng: random.Random, world: World, number: int, seed: int) -> Operation:
    """A random request: 50 % credit changes, 35 % usage batches, 15 % record queries."""
    key = f"crash-{seed}-{number}"
    roll = rng.random()
    if roll < 0.5:
        uin = rng.choice(world.customers)
        amount = _amount(rng, 1, 10_000)
        withdraw = rng.random() < 0.35
        verb = "withdraw" if withdraw else "allocate"
        return Operation(
            key=key,
            kind="credit",
            method="POST",
            path=f"/v1/customers/{uin}/{verb}",
            headers={**world.operator, "Idempotency-Key": key},
            body={"amount": money.to_text(amount), "remark": key},
            change=-amount if withdraw else amount,
            customer=uin,
        )
    if roll < 0.85:
        invalid = rng.random() < 0.1
        records: list[dict[str, Any]] = []
        counted: dict[int, int] = {}
        for n in range(rng.randint(1, 5)):
            uin = rng.choice(world.customers)
            listed = _amount(rng, 0, 3_000)
            voucher = rng.randint(0, listed)
            if invalid and n == 0:
                voucher = listed + 1  # a voucher above the list price: the batch is refused
            refund = rng.random() < 0.1
            records.append(
                {
                    "event_id": f"{key}-e{n}",
                    "customer_uin": uin,
                    "product": "cvm",
                    "list_amount": money.to_text(listed),
                    "voucher_amount": money.to_text(voucher),
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "kind": "refund" if refund else "charge",
                }
            )
            value = listed - voucher
            counted[uin] = counted.get(uin, 0) + (-value if refund else value)
        return Operation(
            key=key,
            kind="usage",
            method="POST",
            path="/v1/usage-batches",
            headers={**world.platform, "Idempotency-Key": key},
            body={"records": records},
            counted=counted,
            event_ids=[r["event_id"] for r in records],
        )
    return Operation(
        key=key,
        kind="query",
        method="GET",
        path="/v1/allocation-records?limit=20",
        headers=world.operator,
    )


@dataclass
class Tally:
    """What the client saw across the whole run."""

    operations: list[Operation] = field(default_factory=list)
    lost: int = 0
    unreachable: int = 0
    server_errors: list[str] = field(default_factory=list)
    unavailable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def perform(base_url: Callable[[], str], op: Operation, tally: Tally) -> None:
    """Send ``op`` until it gets a definite answer (2xx or 4xx), with the same
    Idempotency-Key each time: a lost answer or a 503 is retried, a 500 is noted."""
    with httpx.Client(timeout=10) as client:
        while True:
            try:
                response = client.request(
                    op.method, base_url() + op.path, headers=op.headers, json=op.body
                )
            except httpx.ConnectError:
                # Nobody listening (the server is down): the request was never sent.
                with tally.lock:
                    tally.unreachable += 1
                time.sleep(0.05)
                continue
            except httpx.TransportError:
                # Sent, but the answer never came: it may or may not have been applied.
                op.lost += 1
                with tally.lock:
                    tally.lost += 1
                time.sleep(0.05)
                continue
            if response.status_code >= 500:
                with tally.lock:
                    if _clean_unavailable(response):
                        tally.unavailable += 1
                    else:
                        tally.server_errors.append(
                            f"{op.path}: {response.status_code} {response.text[:300]}"
                        )
                time.sleep(0.05)
                continue
            op.status = response.status_code
            op.answer = response.json()
            op.replayed = response.headers.get("Idempotent-Replayed") == "true"
            return


def _clean_unavailable(response: httpx.Response) -> bool:
    """A 503 in the one error shape, saying to retry, with Retry-After and no stack trace."""
    if response.status_code != 503 or "Retry-After" not in response.headers:
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return (
        error.get("code") == "database_unavailable"
        and "retry" in error.get("message", "")
        and "Traceback" not in response.text
    )


def check_database(engine: Engine, world: World, tally: Tally) -> dict[str, int]:
    """Every operation the client saw succeed is present exactly once; no refused one left
    a trace; each customer's credit and consumption is exactly what the client was told."""
    credit = [op for op in tally.operations if op.kind == "credit"]
    usage = [op for op in tally.operations if op.kind == "usage"]
    expected_total = dict.fromkeys(world.customers, 0)
    expected_consumed = dict.fromkeys(world.customers, 0)
    figures = {"acknowledged": 0, "refused": 0, "queries": 0}
    with transaction(engine) as s:
        for op in credit:
            assert op.status is not None
            records = s.scalars(
                select(AllocationRecord).where(AllocationRecord.idempotency_key == op.key)
            ).all()
            stored = s.scalar(
                select(func.count())
                .select_from(IdempotentRequest)
                .where(IdempotentRequest.key == op.key)
            )
            if op.status == 200:
                figures["acknowledged"] += 1
                assert len(records) == 1, f"{op.key}: {len(records)} records for one success"
                assert records[0].change == op.change
                assert records[0].customer_uin == op.customer
                assert op.answer is not None and op.answer["record"]["id"] == records[0].id
                assert stored == 1
                expected_total[op.customer] += op.change
            else:
                figures["refused"] += 1
                assert op.status in (400, 409), f"{op.key}: unexpected {op.status} {op.answer}"
                assert records == [], f"{op.key} was refused but left a record"
                assert stored == 0, f"{op.key} was refused but its key was kept"
        for op in usage:
            found = s.scalars(select(UsageEvent).where(UsageEvent.event_id.in_(op.event_ids))).all()
            if op.status == 200:
                figures["acknowledged"] += 1
                assert op.answer is not None
                assert op.answer["accepted"] == len(op.event_ids), op.answer
                assert sorted(e.event_id for e in found) == sorted(op.event_ids)
                for uin, value in op.counted.items():
                    expected_consumed[uin] += value
            else:
                figures["refused"] += 1
                assert op.status == 400, f"{op.key}: unexpected {op.status} {op.answer}"
                assert found == [], f"{op.key} was refused but left usage"
        figures["queries"] = sum(1 for op in tally.operations if op.kind == "query")
        assert all(op.status == 200 for op in tally.operations if op.kind == "query"), (
            "a record query was refused"
        )
        for customer in s.scalars(
            select(Customer).where(Customer.partner_id == world.partner_id)
        ).all():
            assert customer.total_credit == expected_total[customer.uin], customer.uin
            assert customer.consumed == expected_consumed[customer.uin], customer.uin
    return figures

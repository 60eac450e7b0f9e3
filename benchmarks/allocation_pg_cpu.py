"""PostgreSQL's CPU per allocation of the one-statement write, without HTTP:
``python -m benchmarks.allocation_pg_cpu [--clients N] [--allocations N] [--tencent]``.

``--clients`` asyncio connections (api/fast.py's ``FastCredit``, its pool, its compiled
statements and its queue, which batches the allocations in flight, as ``creditline serve``
runs them) each allocate 1.00 to random customers of one of 10 resellers (the suite's
allocation load: 1,000 customers, client ``i`` on reseller ``i mod 10``, an idempotency
key each; ``--tencent``: the Tencent action's form, a signature each), on a fresh
PostgreSQL database (``creditline_bench_allocation_pg_cpu_*``, dropped at the end). The
customers start with nothing consumed, so that every allocation is the statement's plain
case (none is handed to the ordinary path to raise an alarm). It prints the allocations
per second, the batches the queue made, the CPU that the database's own backends spent
per allocation (from ``/proc``): what the statement costs PostgreSQL at that concurrency,
apart from the HTTP server and the load generator, and whether ``verify`` still finds the
ledger in agreement with its records. CPU time, unlike a rate, hardly moves with the
machine's other work: compare two versions of the statement with it, runs alternated.
Run it from the repository root."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from benchmarks import databases, seed
from benchmarks.server import _cpu_seconds, postgres_processes

PARTNERS = 10
CUSTOMERS = 1_000
WARM_UP = 50


def _backends(database: str) -> list[int]:
    """The process ids of ``database``'s backends ("postgres: user database ...")."""
    return [
        pid
        for pid, command in postgres_processes()
        if command.startswith(b"postgres:") and f" {database} ".encode() in command
    ]


async def _allocate(
    engine: Engine, world: seed.World, clients: int, allocations: int, tencent: bool
) -> dict:
    from creditline import audit
    from creditline.api import fast
    from creditline.auth import idempotency, signatures
    from creditline.ledger.records import Origin

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT secret_id, id FROM api_keys"))
        key_ids = dict(rows.tuples().all())
    writer = fast.FastCredit(None, engine, clients)  # type: ignore[arg-type]  # no app needed
    await writer.open()
    refused = 0

    async def client(index: int, count: int) -> None:
        nonlocal refused
        partner = world.partners[index % len(world.partners)]
        chosen = random.Random(index)
        key_id = key_ids[partner.key.secret_id]
        for _ in range(count):
            uin = chosen.choice(partner.customers)
            actor = audit.Actor(
                source="api",
                principal=f"api-key:{partner.key.secret_id} (bench)",
                partner_id=partner.id,
                source_ip="127.0.0.1",
                request_id=uuid.uuid4().hex,
            )
            base = audit.statement_row(
                actor,
                action="POST /v1/customers/{uin}/allocate",
                object=f"/v1/customers/{uin}/allocate",
            )
            idempotency_key = uuid.uuid4().hex
            if tencent:  # the Tencent action's form: its signature claimed, its answer
                now = datetime.now(UTC)
                claims: fast.Write = fast.Write(
                    key_id=key_id,
                    partner_id=partner.id,
                    uin=uin,
                    amount=100,
                    origin=Origin(operator="bench", source="tc3", remark="bench"),
                    claims="signature",
                    claim=signatures.claim_params(
                        secret_id=partner.key.secret_id,
                        signature=idempotency_key,
                        expires_at=now + timedelta(minutes=5),
                        now=now,
                    ),
                    request={"ClientUin": uin, "AddedCredit": "1.0", "Remark": "bench"},
                    audit=base,
                    answer=lambda change: "",
                    shape="tencent",
                )
            else:
                claims = fast.Write(
                    key_id=key_id,
                    partner_id=partner.id,
                    uin=uin,
                    amount=100,
                    origin=Origin(
                        operator="bench",
                        source="api",
                        remark="bench",
                        idempotency_key=idempotency_key,
                    ),
                    claims="idempotency",
                    claim=idempotency.claimed(
                        api_key_id=key_id,
                        partner_id=partner.id,
                        key=idempotency_key,
                        fingerprint=idempotency_key,
                    ),
                    request={"amount": "1.00", "remark": "bench"},
                    audit=base,
                    answer=lambda change: "",
                )
            answer = await writer.write(claims)
            refused += answer is None

    try:
        await asyncio.gather(*(client(i, WARM_UP) for i in range(clients)))
        database = engine.url.database or ""
        before = {pid: _cpu_seconds(pid) for pid in _backends(database)}
        started = time.perf_counter()
        await asyncio.gather(*(client(i, allocations // clients) for i in range(clients)))
        seconds = time.perf_counter() - started
        after = {pid: _cpu_seconds(pid) for pid in _backends(database)}
    finally:
        await writer.close()
    done = allocations // clients * clients
    spent = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    return {
        "clients": clients,
        "form": "tencent" if tencent else "rest",
        "allocations": done,
        "refused": refused,
        # Statements that wrote several allocations, and how many allocations they wrote.
        "batches": writer.batches,
        "batched": writer.batched,
        "per_second": round(done / seconds, 1),
        "postgres_cpu_ms_per_allocation": round(spent * 1000 / done, 3),
        "load_average": round(os.getloadavg()[0], 2),
    }


def measure(clients: int, allocations: int, tencent: bool = False) -> dict:
    """Seed, allocate, and drop the database; the figures."""
    os.environ.setdefault("CREDITLINE_SECRET_KEY", "benchmark-server-key-" + "b" * 32)
    from creditline.db import make_engine, transaction
    from creditline.db.migrate import upgrade
    from creditline.ledger.verify import verify

    url = databases.create_database(f"allocation_pg_cpu_{os.getpid()}")
    engine = make_engine(url)
    try:
        upgrade(engine)
        world = seed.build_world(engine, partners=PARTNERS, customers=CUSTOMERS, credit=100_000)
        with engine.begin() as connection:
            connection.execute(text("UPDATE customers SET consumed = 0"))
        figures = asyncio.run(_allocate(engine, world, clients, allocations, tencent))
        with transaction(engine) as session:
            # The ledger still agrees with its records (what verify checks), or the figures
            # are of a broken write.
            figures["ledger_agrees"] = verify(session) == []
        return figures
    finally:
        engine.dispose()
        databases.drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.allocation_pg_cpu", description=__doc__
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--allocations", type=int, default=10_000)
    parser.add_argument(
        "--tencent", action="store_true", help="the Tencent action's form (its signature claimed)"
    )
    args = parser.parse_args()
    print(json.dumps(measure(args.clients, args.allocations, args.tencent)))


if __name__ == "__main__":
    main()

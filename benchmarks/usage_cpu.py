"""CPU per REST usage batch: ``python -m benchmarks.usage_cpu [--batches N] [--grow N]
[--rules [--top-up CENTS]] [--served [--seconds S] [--clients C] [--workers W]]``.

In-process (the default), one client posts batches of 1,000 events (shaped as
``benchmarks/load.py``'s usage load: random customers of 1,000 customers of 10 resellers)
to the app in this process (FastAPI's test client, the delivery worker running in-process
as under ``creditline serve``), one after another, on a fresh PostgreSQL database
(``creditline_bench_usage_cpu_*``, dropped at the end). It prints the CPU each batch cost
this process (user + system, every thread: decoding, authentication, the ledger, the audit
row, the answer, the worker, and the test client's small share) and the database's
backends (from ``/proc``: every PostgreSQL process serving this database). CPU time,
unlike a rate, hardly moves with the machine's other work: compare two versions of the
code with it, runs alternated. ``--grow N``: first post N batches unmeasured, so that the
batches measured meet a database grown as the suite's usage row grows it (about 300
batches in 30 s; PostgreSQL's cost per batch rises with the dead row versions its updates
leave). ``--rules``: every partner's default top-up rule on, as the suite's "top-up rules
on" row (:func:`benchmarks.seed.top_up_rules`), ``--top-up 100`` with a top-up of 1.00
instead of 100.00 (a few dozen top-ups in every batch); the answer then also gives the
top-ups made per measured batch.

``--served``: the suite's usage load itself (``creditline serve``, one process as the
suite's, or ``--workers``; 4 clients in 2 load processes, ``--seconds`` long) on a fresh
database (with ``--rules``, the rules on), and the CPU per batch of the server's
processes and of this database's backends (concurrent batches queue on their customers'
row locks, which the in-process client never meets).

Run it from the repository root, as the suite."""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime

from benchmarks import databases, load, seed
from benchmarks.server import Server, _cpu_seconds, postgres_processes

BATCH = 1_000
WARM_UP = 5


def _backends_cpu(database: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL process serving ``database`` (a backend
    names its database in its command line), by process id."""
    name = f" {database} ".encode()
    return {pid: _cpu_seconds(pid) for pid, command in postgres_processes() if name in command}


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """The backends' CPU between two readings: a backend started since counts whole (a
    connection closed since is not seen: the pool keeps its connections open)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _body(world: seed.World, rnd: random.Random, tag: str, stamp: str) -> bytes:
    return json.dumps(
        {
            "records": [
                {
                    "event_id": f"{tag}-{k}",
                    "customer_uin": rnd.choice(world.customers),
                    "product": "cvm",
                    "list_amount": "0.35",
                    "voucher_amount": "0.05",
                    "occurred_at": stamp,
                }
                for k in range(BATCH)
            ]
        }
    ).encode()


def measure(
    batches: int, *, rules: bool = False, top_up: int = 100_00, grow: int = 0
) -> dict[str, float]:
    """Post ``grow`` + ``WARM_UP`` + ``batches`` batches; CPU milliseconds per measured
    batch (with ``rules``, every partner's default top-up rule on, of ``top_up`` cents)."""
    os.environ.setdefault("CREDITLINE_SECRET_KEY", "benchmark-server-key-" + "b" * 32)
    from fastapi.testclient import TestClient

    from creditline.app import create_app, settled
    from creditline.config import Settings
    from creditline.db import make_engine
    from creditline.db.migrate import upgrade

    url = databases.create_database(f"usage_cpu_{os.getpid()}")
    database = url.rsplit("/", 1)[-1]
    engine = make_engine(url)
    try:
        upgrade(engine)
        world = seed.build_world(engine, partners=10, customers=1_000, credit=100_000)
        if rules:
            seed.top_up_rules(engine, world, amount=top_up)
        # As `creditline serve` keeps it (app.settled): without it, a full collection of
        # the garbage collector walks some 200,000 start-up objects (120 ms measured)
        # every few dozen batches, which the served process never does.
        app = settled(create_app(Settings(database_url=url, api_rate_limit_per_minute=0), engine))
        rnd = random.Random(7)
        stamp = datetime.now(UTC).isoformat()
        first = grow + WARM_UP
        bodies = [_body(world, rnd, f"cpu-{n}", stamp) for n in range(first + batches)]
        secret = f"{world.platform.secret_id}:{world.platform.secret_key}"
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        with TestClient(app) as client:
            python, backends, top_ups = 0.0, {}, 0
            for n, body in enumerate(bodies):
                if n == first:
                    time.sleep(0.5)  # the worker's share of the warm-up done
                    python, backends = time.process_time(), _backends_cpu(database)
                answer = client.post(
                    "/v1/usage-batches",
                    content=body,
                    headers={**headers, "Idempotency-Key": f"cpu-{n}"},
                )
                assert answer.status_code == 200, answer.text
                if n >= first:
                    top_ups += sum(t["refused"] is None for t in answer.json()["top_ups"])
            time.sleep(0.5)  # the worker hands the last batches' events over
            python = time.process_time() - python
            postgres = _spent(backends, _backends_cpu(database))
        return {
            "batches": batches,
            "grown_by": grow,
            "python_cpu_ms_per_batch": round(python * 1000 / batches, 1),
            "postgres_cpu_ms_per_batch": round(postgres * 1000 / batches, 1),
            "top_ups_per_batch": round(top_ups / batches, 1),
            "load_average": round(os.getloadavg()[0], 2),
        }
    finally:
        engine.dispose()
        databases.drop_database(url)


def measure_served(
    seconds: float, *, clients: int = 4, workers: int = 1, rules: bool = False
) -> dict[str, float]:
    """The suite's usage load for ``seconds`` against ``creditline serve``; CPU
    milliseconds per batch of the server's processes and of the database's backends
    (``rules``: every partner's default top-up rule on, as the suite's row)."""
    os.environ.setdefault("CREDITLINE_SECRET_KEY", "benchmark-server-key-" + "b" * 32)
    os.environ.setdefault("CREDITLINE_API_RATE_LIMIT_PER_MINUTE", "0")
    from creditline.db import make_engine
    from creditline.db.migrate import upgrade

    url = databases.create_database(f"usage_cpu_{os.getpid()}")
    database = url.rsplit("/", 1)[-1]
    engine = make_engine(url)
    try:
        upgrade(engine)
        world = seed.build_world(engine, partners=10, customers=1_000, credit=100_000)
        if rules:
            seed.top_up_rules(engine, world)
        engine.dispose()
        with Server(url, workers=workers) as server:
            work = load.Workload(
                "usage",
                server.port,
                [world.platform],
                [world.customers],
                clients=clients,
                processes=min(2, clients),
                seconds=seconds,
                params={"run": f"cpu{int(time.time())}"},
            )
            server_before, backends = server.cpu_seconds(), _backends_cpu(database)
            result = load.run(work)
            server_cpu = server.cpu_seconds() - server_before
            postgres = _spent(backends, _backends_cpu(database))
        done = max(result.ok, 1)
        return {
            "batches": result.ok,
            "failed": result.failed,
            "events_per_second": round(result.items_rate, 1),
            "p50_ms": round(result.percentile(50), 1),
            "server_cpu_ms_per_batch": round(server_cpu * 1000 / done, 1),
            "postgres_cpu_ms_per_batch": round(postgres * 1000 / done, 1),
            "load_average": round(os.getloadavg()[0], 2),
        }
    finally:
        engine.dispose()
        databases.drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.usage_cpu", description=__doc__)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--grow", type=int, default=0, help="batches posted before measuring")
    parser.add_argument("--rules", action="store_true", help="every partner's top-up rule on")
    parser.add_argument("--top-up", type=int, default=100_00, help="its amount in cents")
    parser.add_argument("--served", action="store_true", help="the suite's load on a server")
    parser.add_argument("--seconds", type=float, default=20.0, help="--served: load length")
    parser.add_argument("--clients", type=int, default=4, help="--served: clients")
    parser.add_argument("--workers", type=int, default=1, help="--served: server processes")
    args = parser.parse_args()
    if args.served:
        print(
            json.dumps(
                measure_served(
                    args.seconds, clients=args.clients, workers=args.workers, rules=args.rules
                )
            )
        )
        return
    print(json.dumps(measure(args.batches, rules=args.rules, top_up=args.top_up, grow=args.grow)))


if __name__ == "__main__":
    main()

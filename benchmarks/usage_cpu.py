"""CPU per REST usage batch, in-process: ``python -m benchmarks.usage_cpu [--batches N]
[--rules [--top-up CENTS]]``.

One client posts batches of 1,000 events (shaped as ``benchmarks/load.py``'s usage load:
random customers of 1,000 customers of 10 resellers) to the app in this process (FastAPI's test
client, the delivery worker running in-process as under ``creditline serve``), one after
another, on a fresh PostgreSQL database (``creditline_bench_usage_cpu_*``, dropped at the
end). It prints the CPU each batch cost this process (user + system, every thread:
decoding, authentication, the ledger, the audit row, the answer, the worker, and the test
client's small share) and the database's backends (from ``/proc``). CPU time, unlike a
rate, hardly moves with the machine's other work: compare two versions of the code with
it, runs alternated. ``--rules``: every partner's default top-up rule on, as the suite's
"top-up rules on" row (:func:`benchmarks.seed.top_up_rules`), ``--top-up 100`` with a top-up
of 1.00 instead of 100.00 (a few dozen top-ups in every batch); the answer then also gives
the top-ups made per measured batch. Run it from the repository root, as the suite."""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from benchmarks import databases, seed
from benchmarks.server import _cpu_seconds

BATCH = 1_000
WARM_UP = 5


def _backends_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds used so far by each of the database's backends (this process's
    connections), by process id."""
    with engine.connect() as connection:
        pids = connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalars()
        return {pid: _cpu_seconds(pid) for pid in pids}


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """The backends' CPU between two readings: a backend started since counts whole (a
    connection closed since is not seen: the pool keeps its connections open)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def measure(batches: int, *, rules: bool = False, top_up: int = 100_00) -> dict[str, float]:
    """Post ``WARM_UP`` + ``batches`` batches; CPU milliseconds per measured batch (with
    ``rules``, every partner's default top-up rule on, of ``top_up`` cents)."""
    os.environ.setdefault("CREDITLINE_SECRET_KEY", "benchmark-server-key-" + "b" * 32)
    from fastapi.testclient import TestClient

    from creditline.app import create_app
    from creditline.config import Settings
    from creditline.db import make_engine
    from creditline.db.migrate import upgrade

    url = databases.create_database(f"usage_cpu_{os.getpid()}")
    engine = make_engine(url)
    try:
        upgrade(engine)
        world = seed.build_world(engine, partners=10, customers=1_000, credit=100_000)
        if rules:
            seed.top_up_rules(engine, world, amount=top_up)
        app = create_app(Settings(database_url=url, api_rate_limit_per_minute=0), engine)
        rnd = random.Random(7)
        stamp = datetime.now(UTC).isoformat()
        bodies = [
            json.dumps(
                {
                    "records": [
                        {
                            "event_id": f"cpu-{n}-{k}",
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
            for n in range(WARM_UP + batches)
        ]
        secret = f"{world.platform.secret_id}:{world.platform.secret_key}"
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        with TestClient(app) as client:
            python, backends, top_ups = 0.0, {}, 0
            for n, body in enumerate(bodies):
                if n == WARM_UP:
                    time.sleep(0.5)  # the worker's share of the warm-up done
                    python, backends = time.process_time(), _backends_cpu(engine)
                answer = client.post(
                    "/v1/usage-batches",
                    content=body,
                    headers={**headers, "Idempotency-Key": f"cpu-{n}"},
                )
                assert answer.status_code == 200, answer.text
                if n >= WARM_UP:
                    top_ups += sum(t["refused"] is None for t in answer.json()["top_ups"])
            time.sleep(0.5)  # the worker hands the last batches' events over
            python = time.process_time() - python
            postgres = _spent(backends, _backends_cpu(engine))
        return {
            "batches": batches,
            "python_cpu_ms_per_batch": round(python * 1000 / batches, 1),
            "postgres_cpu_ms_per_batch": round(postgres * 1000 / batches, 1),
            "top_ups_per_batch": round(top_ups / batches, 1),
            "load_average": round(os.getloadavg()[0], 2),
        }
    finally:
        engine.dispose()
        databases.drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.usage_cpu", description=__doc__)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rules", action="store_true", help="every partner's top-up rule on")
    parser.add_argument("--top-up", type=int, default=100_00, help="its amount in cents")
    args = parser.parse_args()
    print(json.dumps(measure(args.batches, rules=args.rules, top_up=args.top_up)))


if __name__ == "__main__":
    main()

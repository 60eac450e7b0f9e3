"""Latency from a usage batch's commit to its alarm webhook being received (DESIGN §6:
p99 <= 2 s), with the worker in-process (as ``creditline serve`` runs it) and standalone
(``creditline worker``).

    python benchmarks/alarm_latency.py [--alarms 200] [--database-url URL] [--mode both]

``python -m benchmarks run`` runs this script as its alarm row and reads its output.

Without ``--database-url`` a fresh SQLite file in a temporary directory is used. Each
alarm is one customer's usage crossing 75 %; the webhook receiver is a local HTTP server.
"""

from __future__ import annotations

import argparse
import functools
import json
import operator
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from creditline.config import get_settings
from creditline.db import make_engine, transaction
from creditline.db.migrate import upgrade
from creditline.ledger import accounts, credit, pools, usage
from creditline.ledger.records import Origin
from creditline.notify import endpoints
from creditline.notify.worker import Worker

OPERATOR = Origin(operator="bench@example.com", source="cli")


class Arrivals:
    """When each alarm's webhook arrived, by customer UIN."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def serve(self) -> ThreadingHTTPServer:
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if body["type"] == "credit.threshold_reached":
                    with arrivals.changed:
                        arrivals.at.setdefault(body["data"]["customer_uin"], time.monotonic())
                        arrivals.changed.notify_all()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def prepare(engine: Engine, url: str, count: int) -> tuple[int, list[int]]:
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Bench", kind="reseller")
        pools.grant(s, partner_id=partner.id, amount=count * 10_000, origin=OPERATOR)
        uins = []
        for i in range(count):
            uin = accounts.create_customer(s, partner_id=partner.id, name=f"c{i}").uin
            credit.allocate_credit(
                s, partner_id=partner.id, customer_uin=uin, amount=10_000, origin=OPERATOR
            )
            uins.append(uin)
        endpoints.add_endpoint(
            s,
            partner_id=partner.id,
            url=url,
            event_types=["credit.threshold_reached"],
            allow_private_targets=True,  # the receiver is on this machine's loopback
        )
    return partner.id, uins


def measure(engine: Engine, uins: list[int], arrivals: Arrivals, label: str) -> list[float]:
    latencies = []
    for n, uin in enumerate(uins):
        record = usage.parse_record(
            {
                "event_id": f"{label}-{n}",
                "customer_uin": uin,
                "product": "cvm",
                "list_amount": "80.00",
                "voucher_amount": "0",
                "occurred_at": "2026-01-01T00:00:00Z",
            }
        )
        with transaction(engine) as s:
            usage.ingest(s, [record])
        committed = time.monotonic()
        with arrivals.changed:
            arrived = functools.partial(operator.contains, arrivals.at, uin)
            if not arrivals.changed.wait_for(arrived, timeout=30):
                raise SystemExit(f"{label}: alarm for {uin} never arrived")
            latencies.append(arrivals.at[uin] - committed)
        time.sleep(0.01)
    return latencies


def report(label: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{label:<12} n={len(ordered)}  p50={statistics.median(ordered) * 1000:.0f} ms  "
        f"p99={p99 * 1000:.0f} ms  max={ordered[-1] * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=200)
    parser.add_argument("--database-url")
    parser.add_argument("--mode", choices=["in-process", "standalone", "both"], default="both")
    args = parser.parse_args()
    # The webhook receiver listens on loopback, which webhooks may not reach unless the
    # deployment says so (both workers below read the setting from the environment).
    os.environ["CREDITLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
    get_settings.cache_clear()
    workdir = Path(tempfile.mkdtemp(prefix="alarm-latency-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as c:  # start from an empty queue
            c.execute(text("UPDATE outbox_events SET delivered_at = now()"))
    arrivals = Arrivals()
    server = arrivals.serve()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    modes = ["in-process", "standalone"] if args.mode == "both" else [args.mode]
    for mode in modes:
        _, uins = prepare(engine, hook, args.alarms)
        if mode == "in-process":
            worker = Worker(engine)
            worker.start_in_thread()
            try:
                report(mode, measure(engine, uins, arrivals, mode))
            finally:
                worker.stop()
                worker.close()
        else:
            env = dict(os.environ)
            src = str(Path(__file__).resolve().parents[1] / "src")
            env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from creditline.cli import app, notify; app()",
                    "--database-url",
                    url,
                    "worker",
                ],
                env=env,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(3)  # measure delivery, not the interpreter starting
            try:
                report(mode, measure(engine, uins, arrivals, mode))
            finally:
                process.terminate()
                process.wait(30)
    server.shutdown()


if __name__ == "__main__":
    main()

"""The DESIGN §6 suite: baselines, creditline's workloads, the scaling table and the query
plans behind it, as one report (printed as a table, optionally saved as JSON)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from benchmarks import databases, load, seed
from benchmarks.server import ROOT, Server, postgres_cpu_seconds
from creditline.db import make_engine
from creditline.db.migrate import upgrade
from creditline.db.tables import AllocationRecord
from creditline.ledger.customers import search_queries


@dataclass(frozen=True)
class Sizes:
    """How much of everything one run does."""

    pgbench_seconds: int
    load_seconds: float
    scaling_seconds: float
    customer_steps: tuple[int, ...]
    record_steps: tuple[int, ...]
    page_requests: int
    alarms: int
    usage_clients: int = 4


FULL = Sizes(
    pgbench_seconds=30,
    load_seconds=30,
    scaling_seconds=12,
    customer_steps=(1_000, 10_000, 100_000),
    record_steps=(100_000, 1_000_000, 5_000_000),
    page_requests=600,
    alarms=200,
)
QUICK = Sizes(
    pgbench_seconds=6,
    load_seconds=6,
    scaling_seconds=4,
    customer_steps=(1_000, 10_000),
    record_steps=(50_000, 100_000),
    page_requests=100,
    alarms=20,
)
#: The ASGI application of the bare floor (benchmarks/floor_app.py).
FLOOR_WRITE_APP = "benchmarks.floor_write:app"
FLOOR_APP = "benchmarks.floor_app:app"
#: Allocations: 1,000 customers over as many resellers as pgbench's scale has branches.
PARTNERS = 10
CUSTOMERS = 1_000
CLIENTS = 16
CREDIT = 100_000  # cents each seeded customer holds


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip()
    postgres = ""
    try:
        engine = make_engine(databases.ADMIN_URL)
        with engine.connect() as c:
            postgres = c.execute(text("SHOW server_version")).scalar_one()
            # Settings the figures depend on: autovacuum off (as on machines set up for
            # tests) leaves each load's dead row versions to the next (seed.vacuum).
            postgres += "; " + ", ".join(
                f"{name}={setting}"
                for name, setting in c.execute(
                    text(
                        "SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', "
                        "'shared_buffers', 'synchronous_commit', 'fsync') ORDER BY name"
                    )
                )
            )
        engine.dispose()
    except Exception as exc:  # the report says so instead of failing
        postgres = f"unreachable: {exc.__class__.__name__}"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "postgresql": postgres,
        "load_average_at_start": os.getloadavg(),
    }


class Databases:
    """Fresh databases of the chosen engine, dropped (or deleted) at the end."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.directory = Path(tempfile.mkdtemp(prefix="creditline-bench-"))
        self.made: list[str] = []

    def new(self, name: str) -> tuple[str, Engine]:
        # Named for this run: a second run on the same server would otherwise drop (and
        # recreate) this one's database under its running server.
        url = (
            databases.create_database(f"{name}_{os.getpid()}")
            if self.engine == "postgresql"
            else databases.sqlite_url(self.directory, name)
        )
        self.made.append(url)
        engine = make_engine(url)
        upgrade(engine)
        return url, engine

    def drop_all(self) -> None:
        for url in self.made:
            if url.startswith("postgresql"):
                databases.drop_database(url)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _summary(result: load.Result) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "failed": result.failed,
        "seconds": round(result.seconds, 2),
        "per_second": round(result.rate, 1),
        "items_per_second": round(result.items_rate, 1),
        "p50_ms": round(result.percentile(50), 2),
        "p95_ms": round(result.percentile(95), 2),
        "p99_ms": round(result.percentile(99), 2),
        "errors": result.errors[:5],
    }


def insert_select_rate(engine: Engine, rows: int) -> dict[str, Any]:
    """The usage baseline: one server-side ``INSERT ... SELECT`` of ``rows`` usage events
    shaped as the workload's (same table, same indexes, customers spread the same way)."""
    series = seed._series(engine)
    now = seed._now(engine)
    sql = text(
        f"{series}, c AS (SELECT uin, partner_id, "
        "ROW_NUMBER() OVER (ORDER BY uin) - 1 AS k FROM customers), "
        "n AS (SELECT COUNT(*) AS total FROM customers) "
        "INSERT INTO usage_events (event_id, partner_id, customer_uin, product, kind, "
        "list_amount, voucher_amount, counted, occurred_at, ingested_at) "
        "SELECT 'baseline-' || g.i, c.partner_id, c.uin, 'cvm', 'charge', 35, 5, 30, :now, :now "
        "FROM g, n, c WHERE c.k = g.i % n.total"
    )
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(sql, {"n": rows, "now": now})
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds, 1)}


def _explain(
    connection: Connection, prefix: str, statement: Any, values: dict[str, Any] | None = None
) -> Sequence[Any]:
    """``prefix`` + the statement as the driver receives it, with its parameters (and
    ``values`` for those it leaves open)."""
    compiled = statement.compile(dialect=connection.dialect)
    params = compiled.construct_params(values)
    if compiled.positiontup is not None:
        return connection.exec_driver_sql(
            prefix + str(compiled), tuple(params[name] for name in compiled.positiontup)
        ).all()
    return connection.exec_driver_sql(prefix + str(compiled), params).all()


def query_plans(engine: Engine, partner: seed.Partner) -> dict[str, str]:
    """EXPLAIN ANALYZE of the queries the two pages run, as the endpoints build them."""
    # Page 5 (rows 80-100 and one past them), as the load asks for it.
    broad = search_queries(partner.id, text="harbor", sort="available_credit", offset=80)
    rare = search_queries(partner.id, text="key account", sort="available_credit", offset=80)
    by_use = search_queries(partner.id, text="cedar", sort="utilization", offset=80)
    # Matches bunched at the oldest customers: the walk from the newest gives way.
    bunched = search_queries(partner.id, text="billing1", sort="associated_at", offset=80)
    newest = (
        select(AllocationRecord)
        .where(AllocationRecord.partner_id == partner.id)
        .order_by(AllocationRecord.id.desc())
        .limit(51)
    )
    one_customer = newest.where(AllocationRecord.customer_uin == partner.customers[7])
    withdrawals = newest.where(AllocationRecord.kind == "withdrawal")
    grants = newest.where(AllocationRecord.kind == "grant")
    statements: dict[str, tuple[Any, dict[str, Any] | None]] = {
        "customers page (q=harbor, sort=available_credit desc, page 5), walk": (
            broad.walk,
            broad.values,
        ),
        "customers page (q=key account, sort=available_credit desc, page 5), collect": (
            rare.collect,
            rare.values,
        ),
        "customers page (q=billing1, sort=associated_at desc, page 5), walk": (
            bunched.walk,
            bunched.values,
        ),
        "customers page (q=billing1, sort=associated_at desc, page 5), collect": (
            bunched.collect,
            bunched.values,
        ),
        "customers page (q=cedar, sort=utilization desc, page 5), walk": (
            by_use.walk,
            by_use.values,
        ),
        "customers page (q=harbor), total count (REST include_total, Tencent)": (
            broad.count,
            broad.values,
        ),
        "records page, newest": (newest, None),
        "records page, one customer": (one_customer, None),
        "records page, kind=withdrawal": (withdrawals, None),
        "records page, kind=grant (rare)": (grants, None),
    }
    explain = (
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
        if engine.dialect.name == "postgresql"
        else "EXPLAIN QUERY PLAN "
    )
    plans = {}
    with engine.connect() as c:
        for name, (statement, values) in statements.items():
            lines = _explain(c, explain, statement, values)
            plans[name] = "\n".join(" | ".join(str(v) for v in line) for line in lines)
    return plans


def alarm_latency(url: str, alarms: int) -> dict[str, Any]:
    """benchmarks/alarm_latency.py on its own database: commit to webhook received."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "alarm_latency.py"),
            "--alarms",
            str(alarms),
            "--database-url",
            url,
            "--mode",
            "both",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    if run.returncode != 0:
        # Reported as the row's failure, with what the script said; the rest of the report
        # (every row measured before it) is kept.
        _log(f"alarm latency failed (exit {run.returncode}): {run.stderr.strip()[-500:]}")
        return {}
    modes = {}
    for line in run.stdout.splitlines():
        found = re.match(r"(\S+)\s+n=(\d+)\s+p50=(\d+) ms\s+p99=(\d+) ms\s+max=(\d+) ms", line)
        if found:
            modes[found.group(1)] = {
                "n": int(found.group(2)),
                "p50_ms": int(found.group(3)),
                "p99_ms": int(found.group(4)),
                "max_ms": int(found.group(5)),
            }
    return modes


def measured(
    server: Server, work: load.Workload, *, database: Engine | None = None
) -> tuple[load.Result, dict[str, float]]:
    """Run ``work`` against ``server`` (on ``database``, vacuumed first: see
    :func:`seed.vacuum`); the result and where the CPU went, per request:
    milliseconds of the server's processes and of PostgreSQL's, and the request rate the
    machine's cores could carry at that cost (``cores / CPU per request``). The load
    generator's own CPU is left out of that rate, as pgbench's client is, but shown: it
    runs on the same cores."""
    if database is not None:
        seed.vacuum(database)
    server_before, postgres_before = server.cpu_seconds(), postgres_cpu_seconds()
    result = load.run(work)
    server_ms = (server.cpu_seconds() - server_before) * 1000 / max(result.ok, 1)
    postgres_ms = (postgres_cpu_seconds() - postgres_before) * 1000 / max(result.ok, 1)
    client_ms = result.client_cpu_seconds * 1000 / max(result.ok, 1)
    return result, cpu_per_request(server_ms, postgres_ms, client_ms)


def cpu_per_request(server_ms: float, postgres_ms: float, client_ms: float) -> dict[str, float]:
    """The CPU columns of the request-path table, and the rate the machine's cores could
    carry at the server's and PostgreSQL's cost."""
    cores = os.cpu_count() or 1
    total = server_ms + postgres_ms
    return {
        "server_cpu_ms_per_request": round(server_ms, 2),
        "postgres_cpu_ms_per_request": round(postgres_ms, 2),
        "client_cpu_ms_per_request": round(client_ms, 2),
        "cpu_bound_requests_per_second": round(cores * 1000 / total, 1) if total > 0 else 0.0,
    }


def _cost(
    what: str, result: load.Result, cpu: dict[str, float], pg_tps: float | None
) -> dict[str, Any]:
    """One line of the request-path table: the rate, its ratio to pgbench, and the CPU
    each request cost. The two floors bound the allocation rows from above: what the
    serving stack allows before an endpoint does any work of its own."""
    return {
        "what": what,
        **_summary(result),
        **cpu,
        "ratio_to_pgbench": None if not pg_tps else round(result.rate / pg_tps, 3),
    }


def _row(
    figure: str, measured: float, unit: str, *, baseline: float | None, target: str, ok: bool
) -> dict[str, Any]:
    ratio = None if not baseline else measured / baseline
    return {
        "figure": figure,
        "measured": round(measured, 2),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 1),
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "pass": ok,
    }


@contextmanager
def _part(report: dict[str, Any], name: str) -> Iterator[None]:
    """One part of the run: an error in it (a server that would not start, a database
    error, a load that could not connect) is the part's failed row, with its traceback
    kept in the report's ``errors`` and logged, and the run goes on to the next part
    instead of losing every row measured before it."""
    try:
        yield
    except Exception as exc:
        detail = traceback.format_exc()
        _log(f"{name} failed:\n{detail}")
        report.setdefault("errors", {})[name] = detail
        report["rows"].append(
            _row(
                f"{name}: stopped by {type(exc).__name__}: {exc}"[:88],
                float("nan"),
                "",
                baseline=None,
                target="runs to the end",
                ok=False,
            )
        )


def run(*, engine: str, quick: bool, workers: int, only: list[str] | None) -> dict[str, Any]:
    """Everything, in order; the report."""
    sizes = QUICK if quick else FULL
    # One, as `creditline serve` by default: docs/benchmarks.md, "Serving and the
    # connection pool" (runs 18 and 19).
    workers = workers or 1
    wanted = set(
        only or ["pgbench", "floors", "allocations", "purchase_checks", "usage", "pages", "alarms"]
    )
    report: dict[str, Any] = {
        "engine": engine,
        "quick": quick,
        "workers": workers,
        "machine": machine(),
        "rows": [],
        "request_path": [],
        "scaling": [],
        "plans": {},
        "raw": {},
    }
    rows: list[dict[str, Any]] = report["rows"]
    raw: dict[str, Any] = report["raw"]
    made = Databases(engine)
    peak_rss: dict[str, float] = {}
    log = made.directory / "serve.log"
    try:
        pg_tps = None
        if "pgbench" in wanted:
            with _part(report, "pgbench"):
                pg_tps = _pgbench(sizes, report)
        if "floors" in wanted:
            with _part(report, "floors"):
                _floors(made, sizes, workers, log, report, pg_tps)
        if wanted & {"allocations", "usage", "purchase_checks"}:
            with _part(report, "allocations, purchase checks and usage"):
                _loads(made, sizes, workers, log, report, peak_rss, pg_tps, wanted)
        if "usage" in wanted:
            with _part(report, "usage with top-up rules"):
                _usage_with_rules(made, sizes, workers, log, report)
        if wanted & {"pages", "customers", "records"}:
            with _part(report, "pages"):
                parts = {"customers", "records"} if "pages" in wanted else wanted
                _pages(made, sizes, workers, log, report, peak_rss, parts)
        if "alarms" in wanted:
            with _part(report, "alarms"):
                _alarms(made, sizes, report)

        if peak_rss:
            raw["peak_rss_mb"] = {k: round(v, 1) for k, v in peak_rss.items()}
            worst_rss = max(peak_rss.values())
            rows.append(
                _row(
                    f"serve peak RSS per process ({workers} worker(s))",
                    worst_rss,
                    "MB",
                    baseline=None,
                    target="<= 300 MB",
                    ok=worst_rss <= 300,
                )
            )
    finally:
        made.drop_all()
    return report


def _pgbench(sizes: Sizes, report: dict[str, Any]) -> float:
    """pgbench's TPC-B, the allocations' baseline; its transactions per second."""
    raw, paths = report["raw"], report["request_path"]
    _log("pgbench TPC-B, scale 10, 16 clients")
    pg = databases.pgbench(scale=10, clients=CLIENTS, seconds=sizes.pgbench_seconds)
    raw["pgbench"] = pg.__dict__
    paths.append(
        {
            "what": "baseline: pgbench TPC-B (server ms: pgbench's own C client)",
            "per_second": pg.tps,
            "ratio_to_pgbench": 1.0,
            "p50_ms": float("nan"),  # pgbench reports only the mean latency
            "p99_ms": float("nan"),
            **cpu_per_request(pg.client_cpu_ms, pg.postgres_cpu_ms, pg.client_cpu_ms),
        }
    )
    return pg.tps


def _floors(
    made: Databases,
    sizes: Sizes,
    workers: int,
    log: Path,
    report: dict[str, Any],
    pg_tps: float | None,
) -> None:
    """The request path's floors: an empty ASGI app, and (PostgreSQL) the smallest
    one-statement allocation."""
    paths = report["request_path"]
    _log(f"floor: an empty ASGI app on uvicorn, {CLIENTS} clients")
    with Server("", workers=workers, log=log, asgi_app=FLOOR_APP) as bare:
        result, cpu = measured(
            bare, load.Workload("bare", bare.port, [], [[]], seconds=sizes.load_seconds)
        )
    paths.append(_cost("floor: empty ASGI app on uvicorn", result, cpu, pg_tps))
    if made.engine == "postgresql":  # the floor is PostgreSQL's statement
        _log(f"floor: the smallest one-statement allocation, {CLIENTS} clients")
        url, db = made.new("floor_write")
        world = seed.build_world(db, partners=PARTNERS, customers=CUSTOMERS, credit=CREDIT)
        os.environ["CREDITLINE_FLOOR_DATABASE_URL"] = url
        with Server("", workers=workers, log=log, asgi_app=FLOOR_WRITE_APP) as floor:
            result, cpu = measured(
                floor,
                load.Workload(
                    "rest_allocate",
                    floor.port,
                    [p.key for p in world.partners],
                    [p.customers for p in world.partners],
                    seconds=sizes.load_seconds,
                ),
                database=db,
            )
        paths.append(_cost("floor: smallest one-statement allocation", result, cpu, pg_tps))


def _loads(
    made: Databases,
    sizes: Sizes,
    workers: int,
    log: Path,
    report: dict[str, Any],
    peak_rss: dict[str, float],
    pg_tps: float | None,
    wanted: set[str],
) -> None:
    """On one seeded database and one server: the pool read's floor, the allocations
    through REST and Tencent, the purchase checks and the usage ingestion (those of them
    ``wanted``)."""
    rows, raw, paths = report["rows"], report["raw"], report["request_path"]
    url, db = made.new("load")
    _log(f"seeding {PARTNERS} resellers with {CUSTOMERS} customers")
    world = seed.build_world(db, partners=PARTNERS, customers=CUSTOMERS, credit=CREDIT)
    if "purchase_checks" in wanted:
        seed.purchase_policies(db, world)
    with Server(url, workers=workers, log=log) as server:
        keys = [p.key for p in world.partners]
        customers = [p.customers for p in world.partners]
        if "floors" in wanted:
            _log(f"floor: GET /v1/pool through REST, {CLIENTS} clients")
            result, cpu = measured(
                server,
                load.Workload(
                    "rest_pool",
                    server.port,
                    keys,
                    customers,
                    seconds=sizes.load_seconds,
                ),
                database=db,
            )
            paths.append(
                _cost("floor: GET /v1/pool (authenticate + one read)", result, cpu, pg_tps)
            )
        for kind, label in (("rest_allocate", "REST"), ("tc3_allocate", "Tencent")):
            if "allocations" not in wanted:
                break
            _log(f"allocations through {label}, {CLIENTS} clients")
            result, cpu = measured(
                server,
                load.Workload(kind, server.port, keys, customers, seconds=sizes.load_seconds),
                database=db,
            )
            raw[kind] = _summary(result)
            paths.append(_cost(f"allocation through {label}", result, cpu, pg_tps))
            ok = pg_tps is not None and result.rate >= 0.45 * pg_tps
            rows.append(
                _row(
                    f"allocations/s through {label}, {CLIENTS} clients, {CUSTOMERS:,} customers",
                    result.rate,
                    "tps",
                    baseline=pg_tps,
                    target=">= 0.45 x pgbench tps",
                    ok=ok and result.failed == 0,
                )
            )
            p50 = result.percentile(50)
            rows.append(
                _row(
                    f"allocation p99 through {label} (p50 {p50:.1f} ms)",
                    result.percentile(99),
                    "ms",
                    baseline=None,
                    target="<= 50 ms",
                    ok=result.percentile(99) <= 50,
                )
            )
        if "purchase_checks" in wanted:
            _purchase_checks(server, db, world, sizes, report, pg_tps)
        if "usage" in wanted:
            _log(f"usage ingestion, batches of 1,000, {sizes.usage_clients} clients")
            result, cpu = measured(server, _usage_load(server, world, sizes, "u"), database=db)
            raw["usage"] = _summary(result)
            paths.append(_cost("usage batch of 1,000 events", result, cpu, None))
        peak_rss.update({f"load {k}": v for k, v in server.peak_rss_mb().items()})
    if "usage" in wanted:
        base = insert_select_rate(db, max(result.items, 100_000))
        raw["usage_baseline"] = base
        ratio_ok = result.items_rate >= 0.30 * base["rows_per_second"]
        rows.append(
            _row(
                "usage events/s through REST, batches of 1,000, alarms on",
                result.items_rate,
                "events/s",
                baseline=base["rows_per_second"],
                target=">= 0.30 x INSERT ... SELECT rows/s",
                ok=ratio_ok and result.failed == 0,
            )
        )
    db.dispose()


def _alarms(made: Databases, sizes: Sizes, report: dict[str, Any]) -> None:
    """The alarm webhook's latency after a usage commit."""
    rows, raw = report["rows"], report["raw"]
    url, db = made.new("alarms")
    db.dispose()
    _log(f"alarm webhook latency, {sizes.alarms} alarms per mode")
    modes = alarm_latency(url, sizes.alarms)
    raw["alarm_latency"] = modes
    worst = max((m["p99_ms"] for m in modes.values()), default=float("nan"))
    rows.append(
        _row(
            "alarm webhook after usage commit, p99 (worse of in-process and standalone worker)",
            worst,
            "ms",
            baseline=None,
            target="<= 2000 ms",
            ok=worst <= 2000,
        )
    )


def _usage_load(server: Server, world: seed.World, sizes: Sizes, run: str) -> load.Workload:
    """The usage load: the platform's batches of 1,000 events for every customer (event
    ids of their own for ``run``)."""
    return load.Workload(
        "usage",
        server.port,
        [world.platform],
        [world.customers],
        clients=sizes.usage_clients,
        processes=2,
        seconds=sizes.load_seconds,
        params={"run": f"{run}{int(time.time())}"},
    )


def _usage_with_rules(
    made: Databases, sizes: Sizes, workers: int, log: Path, report: dict[str, Any]
) -> None:
    """The usage workload with every partner's top-up rule on (issue 16.5), against the
    same workload without: each on a database of its own, seeded alike and fresh, with a
    server of its own, so that neither runs on a database the other has grown."""
    measured_rate: dict[bool, load.Result] = {}
    for rules in (False, True):
        _log(f"usage ingestion, top-up rules {'on' if rules else 'off'}, a fresh database")
        url, db = made.new("usage_rules" if rules else "usage_no_rules")
        world = seed.build_world(db, partners=PARTNERS, customers=CUSTOMERS, credit=CREDIT)
        if rules:
            seed.top_up_rules(db, world)
        db.dispose()
        with Server(url, workers=workers, log=log) as server:
            result, cpu = measured(server, _usage_load(server, world, sizes, "r" if rules else "n"))
        measured_rate[rules] = result
        report["raw"]["usage_top_ups" if rules else "usage_no_top_ups"] = _summary(result)
        report["request_path"].append(
            _cost(
                f"usage batch of 1,000 events, top-up rules {'on' if rules else 'off'} "
                "(fresh database)",
                result,
                cpu,
                None,
            )
        )
    with_rules, without = measured_rate[True], measured_rate[False]
    report["rows"].append(
        _row(
            "usage events/s through REST, batches of 1,000, top-up rules on (fresh database)",
            with_rules.items_rate,
            "events/s",
            baseline=without.items_rate,
            target=">= 0.90 x the same row without rules",
            ok=with_rules.items_rate >= 0.90 * without.items_rate
            and with_rules.failed == 0
            and without.failed == 0,
        )
    )


def _purchase_checks(
    server: Server,
    database: Engine,
    world: seed.World,
    sizes: Sizes,
    report: dict[str, Any],
    pg_tps: float | None,
) -> None:
    """The vendor's order pipeline asking before purchases (platform key, every customer,
    half of the partners on block_at_limit): p99 at 16 clients against its target."""
    _log(f"purchase checks through REST, {CLIENTS} clients")
    result, cpu = measured(
        server,
        load.Workload(
            "purchase_check",
            server.port,
            [world.platform],
            [world.customers],
            seconds=sizes.load_seconds,
        ),
        database=database,
    )
    report["raw"]["purchase_check"] = _summary(result)
    report["request_path"].append(_cost("purchase check through REST", result, cpu, pg_tps))
    p99 = result.percentile(99)
    report["rows"].append(
        _row(
            f"purchase check p99 through REST, {CLIENTS} clients "
            f"({result.rate:,.0f}/s, p50 {result.percentile(50):.1f} ms)",
            p99,
            "ms",
            baseline=None,
            target="<= 20 ms",
            ok=p99 <= 20 and result.failed == 0,
        )
    )


def _pages(
    made: Databases,
    sizes: Sizes,
    workers: int,
    log: Path,
    report: dict[str, Any],
    peak_rss: dict[str, float],
    parts: set[str],
) -> None:
    """One partner growing through the customer steps, then the record steps: the
    scaling table, the two page targets at the largest size, and the query plans.
    ``parts`` may leave out the customers page or the records page (not their data)."""
    url, db = made.new("pages")
    partner = seed.new_partner(db, name="Bench pages", pool=10**11)
    rows: list[dict[str, Any]] = report["rows"]
    scaling: list[dict[str, Any]] = report["scaling"]
    with Server(url, workers=workers, log=log) as server:
        have = 0
        customers_page = load.Result()
        for step in sizes.customer_steps:
            _log(f"customers: {step:,}")
            seed.add_customers(db, partner, step - have, credit=CREDIT)
            seed.analyze(db)
            have = step
            if "customers" not in parts:
                continue
            customers_page = load.run(
                load.Workload(
                    "customers_page",
                    server.port,
                    [partner.key],
                    [partner.customers],
                    clients=2,
                    processes=2,
                    seconds=120,
                    max_requests=sizes.page_requests,
                    params={"words": [*seed.WORDS, "key account", "billing1"]},
                )
            )
            allocations = load.run(
                load.Workload(
                    "rest_allocate",
                    server.port,
                    [partner.key],
                    [partner.customers],
                    seconds=sizes.scaling_seconds,
                )
            )
            scaling.append(
                {
                    "what": "customers of one partner",
                    "n": step,
                    "customers_page": _summary(customers_page),
                    "rest_allocations_one_partner": _summary(allocations),
                }
            )
        largest = sizes.customer_steps[-1]
        if "customers" in parts:
            rows.append(
                _row(
                    f"customers page (search + sort), {largest:,} customers, p95 "
                    f"(p50 {customers_page.percentile(50):.1f} ms)",
                    customers_page.percentile(95),
                    "ms",
                    baseline=None,
                    target="<= 25 ms",
                    ok=customers_page.percentile(95) <= 25 and customers_page.failed == 0,
                )
            )
        if "records" in parts:
            _records(db, server, partner, sizes, report)
        peak_rss.update({f"pages {k}": v for k, v in server.peak_rss_mb().items()})
    report["plans"] = query_plans(db, partner)
    db.dispose()


def _records(
    db: Engine, server: Server, partner: seed.Partner, sizes: Sizes, report: dict[str, Any]
) -> None:
    """The records steps: seed up to each size, then page through them."""
    rows: list[dict[str, Any]] = report["rows"]
    scaling: list[dict[str, Any]] = report["scaling"]
    records_page = load.Result()
    with db.connect() as c:
        have = c.execute(
            text("SELECT COUNT(*) FROM allocation_records WHERE partner_id = :p"),
            {"p": partner.id},
        ).scalar_one()
    for step in sizes.record_steps:
        _log(f"allocation records: {step:,}")
        if step > have:
            seed.add_records(db, partner, step - have)
            have = step
        records_page = load.run(
            load.Workload(
                "records_page",
                server.port,
                [partner.key],
                [partner.customers],
                clients=2,
                processes=2,
                seconds=120,
                max_requests=sizes.page_requests,
            )
        )
        scaling.append(
            {
                "what": "allocation records of one partner",
                "n": step,
                "records_page": _summary(records_page),
            }
        )
    largest = sizes.record_steps[-1]
    rows.append(
        _row(
            f"allocation records page (keyset), {largest:,} records, p95 "
            f"(p50 {records_page.percentile(50):.1f} ms)",
            records_page.percentile(95),
            "ms",
            baseline=None,
            target="<= 25 ms",
            ok=records_page.percentile(95) <= 25 and records_page.failed == 0,
        )
    )


def render(report: dict[str, Any]) -> str:
    """The report as the one table (and the scaling table) for a terminal."""
    lines = [
        f"creditline benchmarks — engine {report['engine']}, "
        f"{'quick' if report['quick'] else 'full'} run, {report['workers']} server worker(s), "
        f"{report['machine']['nproc']} CPUs ({report['machine']['cpu']})",
        "",
        f"{'figure':<88} {'measured':>14} {'baseline':>12} {'ratio':>7} {'target':<36} result",
    ]
    for row in report["rows"]:
        measured = f"{row['measured']:,.1f} {row['unit']}"
        baseline = "" if row["baseline"] is None else f"{row['baseline']:,.1f}"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.3f}"
        lines.append(
            f"{row['figure']:<88} {measured:>14} {baseline:>12} {ratio:>7} {row['target']:<36} "
            f"{'pass' if row['pass'] else 'FAIL'}"
        )
    if report.get("request_path"):
        lines += [
            "",
            "request path: rate, and CPU per request (server processes, PostgreSQL, the load "
            "generator); 'CPU-bound' is cores / (server + PostgreSQL CPU per request)",
            f"{'what':<52} {'per s':>9} {'x pgbench':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'server ms':>9} {'pg ms':>7} {'client ms':>9} {'CPU-bound/s':>11}",
        ]
        for path in report["request_path"]:
            ratio = "" if path["ratio_to_pgbench"] is None else f"{path['ratio_to_pgbench']:.3f}"
            lines.append(
                f"{path['what']:<52} {path['per_second']:>9,.1f} {ratio:>9} "
                f"{path['p50_ms']:>8.1f} {path['p99_ms']:>8.1f} "
                f"{path['server_cpu_ms_per_request']:>9.2f} "
                f"{path['postgres_cpu_ms_per_request']:>7.2f} "
                f"{path['client_cpu_ms_per_request']:>9.2f} "
                f"{path['cpu_bound_requests_per_second']:>11,.1f}"
            )
    if report["scaling"]:
        lines += ["", "scaling", f"{'what':<36} {'n':>10}  figures"]
        for step in report["scaling"]:
            parts = []
            for name, figures in step.items():
                if isinstance(figures, dict):
                    parts.append(
                        f"{name}: {figures['per_second']:.0f}/s p50 {figures['p50_ms']:.1f} ms "
                        f"p95 {figures['p95_ms']:.1f} ms p99 {figures['p99_ms']:.1f} ms"
                    )
            lines.append(f"{step['what']:<36} {step['n']:>10,}  " + "; ".join(parts))
    return "\n".join(lines)

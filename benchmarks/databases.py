"""Benchmark databases (created and dropped here, never the tests' ones) and the
``pgbench`` TPC-B baseline of the machine."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks.server import postgres_cpu_seconds
from creditline.db import make_engine

#: The server the benchmark databases are created on (its maintenance database).
ADMIN_URL = os.environ.get(
    "CREDITLINE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/postgres"
)
PREFIX = "creditline_bench_"


def create_database(name: str) -> str:
    """A fresh, empty PostgreSQL database ``creditline_bench_<name>``; its URL."""
    full = PREFIX + name
    admin = make_engine(ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{full}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{full}"'))
    admin.dispose()
    return make_url(ADMIN_URL).set(database=full).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database this module created."""
    name = make_url(url).database or ""
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a benchmark database")
    admin = make_engine(ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def sqlite_url(directory: Path, name: str) -> str:
    """A fresh SQLite file in ``directory``."""
    path = directory / f"{name}.db"
    for leftover in directory.glob(f"{name}.db*"):
        leftover.unlink()
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    latency_ms: float
    clients: int
    scale: int
    seconds: int
    #: CPU per transaction of PostgreSQL's processes and of pgbench itself (the client).
    postgres_cpu_ms: float = 0.0
    client_cpu_ms: float = 0.0


def _libpq_args(url: str) -> list[str]:
    parsed = make_url(url)
    args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)]
    if parsed.username:
        args += ["-U", parsed.username]
    return [*args, parsed.database or ""]


def pgbench(*, scale: int = 10, clients: int = 16, seconds: int = 30) -> PgbenchResult:
    """TPC-B (pgbench's default script) at ``scale`` with ``clients``: the machine's
    transaction rate, the baseline the allocation target is a ratio of."""
    binary = shutil.which("pgbench") or "/usr/bin/pgbench"
    url = create_database("pgbench")
    env = {**os.environ, "PGPASSWORD": make_url(url).password or ""}
    try:
        subprocess.run(
            [binary, "-i", "-q", "-s", str(scale), *_libpq_args(url)],
            check=True,
            capture_output=True,
            env=env,
            timeout=600,
        )
        postgres_before = postgres_cpu_seconds()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        client_before = children.ru_utime + children.ru_stime
        run = subprocess.run(
            [binary, "-c", str(clients), "-j", "2", "-T", str(seconds), *_libpq_args(url)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=seconds + 120,
        )
        postgres_cpu = postgres_cpu_seconds() - postgres_before
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        client_cpu = children.ru_utime + children.ru_stime - client_before
    finally:
        drop_database(url)
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", run.stdout)
    latency = re.search(r"latency average = ([0-9.]+) ms", run.stdout)
    if tps is None or latency is None:
        raise RuntimeError(f"pgbench printed no tps:\n{run.stdout}\n{run.stderr}")
    transactions = float(tps.group(1)) * seconds
    return PgbenchResult(
        float(tps.group(1)),
        float(latency.group(1)),
        clients,
        scale,
        seconds,
        postgres_cpu_ms=round(postgres_cpu * 1000 / transactions, 3),
        client_cpu_ms=round(client_cpu * 1000 / transactions, 3),
    )

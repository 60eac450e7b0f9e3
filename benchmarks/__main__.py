"""``python -m benchmarks run --engine postgresql|sqlite [--quick] [--json FILE]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the DESIGN §6 suite and print its table")
    run.add_argument("--engine", choices=["postgresql", "sqlite"], default="postgresql")
    run.add_argument("--quick", action="store_true", help="a smoke run, under 3 minutes")
    run.add_argument("--json", type=Path, help="also write every figure to this file")
    run.add_argument("--workers", type=int, default=0, help="server processes (0: one)")
    run.add_argument(
        "--only", nargs="*", default=None, help="run only these parts (see benchmarks.suite)"
    )
    args = parser.parse_args(argv)
    # The server and this process must share the key that encrypts the API secrets.
    os.environ.setdefault("CREDITLINE_SECRET_KEY", "benchmark-server-key-" + "b" * 32)
    # The per-key request limits protect a shared server from one caller; here the caller
    # is the benchmark, whose whole point is to find the server's own limit.
    os.environ.setdefault("CREDITLINE_API_RATE_LIMIT_PER_MINUTE", "0")
    os.environ.setdefault(
        "CREDITLINE_TC3_RATE_LIMITS", "AllocateCustomerCredit=1000000/1,*=1000000/1"
    )
    from benchmarks import suite

    report = suite.run(engine=args.engine, quick=args.quick, workers=args.workers, only=args.only)
    print(suite.render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if all(row["pass"] for row in report["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())

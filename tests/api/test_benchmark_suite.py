"""A part of the benchmark run that raises is reported as a failed row, with its
traceback kept, and the run goes on: the rows measured before it are not lost."""

from __future__ import annotations

import math
from typing import Any

from benchmarks import suite


def test_a_failing_part_is_a_failed_row_and_the_run_goes_on() -> None:
    report: dict[str, Any] = {"rows": [], "raw": {}, "request_path": [], "scaling": []}
    ran_after = False
    with suite._part(report, "pages"):
        raise RuntimeError("creditline serve exited with 1")
    with suite._part(report, "alarms"):
        ran_after = True
    assert ran_after
    [row] = report["rows"]
    assert row["figure"] == "pages: stopped by RuntimeError: creditline serve exited with 1"
    assert row["pass"] is False and math.isnan(row["measured"])
    assert "RuntimeError" in report["errors"]["pages"]
    assert "pages: stopped by RuntimeError" in suite.render({**report, **_header()})


def _header() -> dict[str, Any]:
    return {
        "engine": "postgresql",
        "quick": True,
        "workers": 1,
        "machine": {"nproc": 2, "cpu": "x"},
    }

"""``creditline statements export --month``: a partner's month as CSV, JSON and PDFs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pypdf
from sqlalchemy import Engine
from tests.cli.conftest import Cli
from tests.ledger.scenario import charge, ingest, reseller

from creditline.clock import utcnow


def test_export_a_month(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(100_00, 20_00))
    ingest(engine, charge(acme.customers[0], "12.50", occurred_at=utcnow().isoformat()))
    month = utcnow().strftime("%Y-%m")
    summary = cli("statements", "export", "--partner", acme.id, "--month", month).stdout
    rows = list(csv.DictReader(io.StringIO(summary)))
    assert [(int(r["customer_uin"]), r["closing_available"]) for r in rows] == [
        (acme.customers[0], "87.50"),
        (acme.customers[1], "20.00"),
    ]
    data = cli("statements", "export", "--partner", acme.id, "--month", month, "--json").json()
    assert [s["closing"]["available"] for s in data["statements"]] == ["87.50", "20.00"]
    cli(
        "statements",
        "export",
        "--partner",
        acme.id,
        "--month",
        month,
        "--format",
        "pdf",
        "--output",
        tmp_path / "pdfs",
    )
    made = sorted((tmp_path / "pdfs").iterdir())
    assert [p.name for p in made] == [
        f"statement-{uin}-{month}.pdf" for uin in sorted(acme.customers)
    ]
    text = pypdf.PdfReader(made[0]).pages[0].extract_text()
    assert "Acme Cloud" in text and "87.50" in text and "12.50" in text


def test_export_refusals(cli: Cli, engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(0,))
    bad = cli("statements", "export", "--partner", acme.id, "--month", "2026-1", expect=3)
    assert "not a month" in bad.stderr
    pdf = cli(
        "statements",
        "export",
        "--partner",
        acme.id,
        "--month",
        "2026-01",
        "--format",
        "pdf",
        expect=3,
    )
    assert "--output" in pdf.stderr

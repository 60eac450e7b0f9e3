"""What the command line shows people and scripts: tables that fit 80 columns without cutting
a UIN or an amount, amounts with thousands separators in text (plain in JSON), one JSON
error object for a refusal under ``--json``, help in whole sentences, counts that agree in
number, and a ``--help`` that loads none of the database machinery."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import click
import pytest
import typer

from creditline.cli import _register, app, common

#: Generous limits for the subprocesses below: the machine may be busy.
SUBPROCESS_TIMEOUT = 120


@pytest.fixture
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text output as an 80-column terminal gets it."""
    monkeypatch.setattr(common.out, "_width", 80)


def make_reseller(cli: Any, pool: str) -> int:
    made = cli("partners", "create", "--name", "Northwind Cloud Services", "--kind", "reseller")
    partner_id = int(made.stdout.split()[1])
    cli("partners", "grant", partner_id, pool)
    return partner_id


def make_customer(cli: Any, partner_id: int, name: str, email: str = "") -> int:
    made = cli(
        "customers", "create", "--partner", partner_id, "--name", name, "--email", email, "--json"
    )
    return int(made.json()["uin"])


def assert_intact(table: str, *cells: str) -> None:
    """Each cell stands whole on one line of ``table``, right-aligned against its rule."""
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines), table
    for cell in cells:
        assert any(re.search(rf"(│| ){re.escape(cell)} │", line) for line in lines), (cell, table)


# --- --help is cheap ---------------------------------------------------------------------


def test_help_imports_no_database_machinery() -> None:
    """``creditline --help`` must not import SQLAlchemy, Alembic, FastAPI or the tables."""
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "creditline", "--help"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env={**os.environ, "COLUMNS": "80"},
        check=True,
    )
    assert "Usage" in ran.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in ran.stderr.splitlines()}
    assert "creditline.cli" in imported
    heavy = {
        name
        for name in imported
        if name.split(".")[0] in {"sqlalchemy", "alembic", "fastapi", "uvicorn", "argon2"}
        or name.startswith(("creditline.db", "creditline.ledger", "creditline.app"))
    }
    assert heavy == set()


def test_head_read_from_the_scripts_is_alembics() -> None:
    from creditline.db.migrate import head_from_scripts, head_revision

    assert head_from_scripts() == head_revision()


def test_a_short_command_does_not_load_alembic(tmp_path: Path) -> None:
    """Every command checks that the schema is at head; that check needs no Alembic."""
    url = f"sqlite:///{tmp_path / 'short.db'}"
    base = [sys.executable, "-X", "importtime", "-m", "creditline", "--database-url", url]
    run: dict[str, Any] = {"capture_output": True, "text": True, "timeout": SUBPROCESS_TIMEOUT}
    subprocess.run([*base, "db", "upgrade"], check=True, **run)
    ran = subprocess.run([*base, "partners", "list", "--json"], check=True, **run)
    assert ran.stdout.strip() == '{"partners": []}'
    imported = {line.rsplit("|", 1)[-1].strip() for line in ran.stderr.splitlines()}
    assert "sqlalchemy" in imported
    assert not {name for name in imported if name.split(".")[0] in {"alembic", "fastapi"}}


def test_names_agree_with_the_core() -> None:
    """The commands keep a few of the core's names so as not to import it at start (page
    limits they share with it: creditline.limits)."""
    from creditline.auth import users
    from creditline.cli import notify as cli_notify
    from creditline.cli import users as cli_users
    from creditline.notify.outbox import EVENT_TYPES

    assert cli_users.PLATFORM_ROLE == users.PLATFORM_ROLE
    event_help = next(
        p.help
        for p in typer.main.get_command(cli_notify.webhooks_app).commands["add"].params  # type: ignore[attr-defined]
        if p.name == "event"
    )
    assert all(event_type in str(event_help) for event_type in EVENT_TYPES)


# --- help in whole sentences ---------------------------------------------------------------


def _walk(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _walk(sub, f"{path} {name}")
    return found


def _sentences(text: str) -> bool:
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return bool(paragraphs) and all(
        p[0].isupper() and p.endswith((".", ".)")) and " " in p for p in paragraphs
    )


def test_every_help_text_is_whole_sentences() -> None:
    _register()
    root = typer.main.get_command(app)
    unlike: list[str] = []
    for path, command in _walk(root, "creditline"):
        if not _sentences(command.help or ""):
            unlike.append(f"{path}: {command.help!r}")
        for param in command.params:
            text = getattr(param, "help", None)
            if not _sentences(text or ""):
                unlike.append(f"{path} {param.name}: {text!r}")
    assert unlike == []


# --- refusals ------------------------------------------------------------------------------


def test_refusal_shows_amounts_with_separators_in_text_and_json(cli: Any) -> None:
    partner_id = make_reseller(cli, "5000.00")
    first = make_customer(cli, partner_id, "Cedar Labs")
    second = make_customer(cli, partner_id, "Birch Ltd")
    cli("credit", "allocate", first, "2049.34", "--operator", "ops")

    text = cli("credit", "allocate", second, "3000", "--operator", "ops", expect=3)
    assert text.stdout == ""
    assert text.stderr.strip() == (
        "error: the pool has 2,950.66 remaining; cannot allocate 3,000.00"
    )

    as_json = cli("credit", "allocate", second, "3000", "--operator", "ops", "--json", expect=3)
    assert as_json.stderr == ""
    assert as_json.stdout.count("\n") == 1
    assert as_json.json() == {
        "error": {
            "code": "insufficient_pool",
            "message": "the pool has 2,950.66 remaining; cannot allocate 3,000.00",
            "param": "amount",
        }
    }


def test_json_refusal_before_any_database_work(cli: Any) -> None:
    """A command's own checks refuse in the same JSON shape."""
    ran = cli("keys", "create", "--json", expect=3)
    assert ran.stderr == ""
    error = ran.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("give exactly one of --partner")
    not_found = cli("customers", "show", "999", "--json", expect=3).json()["error"]
    assert (not_found["code"], not_found["message"]) == ("not_found", "no customer 999")


def test_usage_errors_stay_text_with_status_two(cli: Any) -> None:
    ran = cli("customers", "show", "not-a-uin", "--json", expect=2)
    assert ran.stdout == ""
    assert "Usage: creditline customers show" in ran.stderr


# --- tables at 80 columns ------------------------------------------------------------------


def test_customers_table_keeps_uins_and_amounts_whole(cli: Any, eighty_columns: None) -> None:
    partner_id = make_reseller(cli, "1000000000.00")
    long_name = "Blue Mountain Observatory Data Processing and Archival Services Co."
    big = make_customer(cli, partner_id, long_name, "accounts.payable@blue-mountain.example")
    small = make_customer(cli, partner_id, "Ivy", "ivy@example.com")
    cli("credit", "allocate", big, "987654321.09", "--operator", "ops")
    cli("credit", "allocate", small, "12.50", "--operator", "ops")

    table = cli("customers", "list", "--partner", partner_id).stdout
    assert_intact(table, str(big), str(small), "987,654,321.09", "12.50", "0.00")
    assert "Blue Mountain" in table  # the name folds, it is not dropped
    assert "Not shown at 80 columns: used %, runs out, type, email" in table
    # JSON keeps plain decimal text.
    listed = cli("customers", "list", "--partner", partner_id, "--json").json()["customers"]
    assert listed[0]["total_credit"] == "987654321.09"


def test_records_and_partners_tables_fit_80_columns(cli: Any, eighty_columns: None) -> None:
    partner_id = make_reseller(cli, "250000000.00")
    uin = make_customer(cli, partner_id, "Harbor Freight Analytics")
    cli("credit", "allocate", uin, "123456789.01", "--operator", "operations-team-east")
    cli("credit", "allocate", uin, "-0.01", "--operator", "ops", "--remark", "rounding fix")

    records = cli("records", "list", "--partner", partner_id).stdout
    assert_intact(records, str(uin), "123,456,789.01", "-0.01", "250,000,000.00", "123,456,789.00")
    partners = cli("partners", "list").stdout
    assert_intact(partners, str(partner_id), "250,000,000.00", "123,456,789.00", "126,543,211.00")


def test_text_lines_show_amounts_with_separators(cli: Any) -> None:
    partner_id = make_reseller(cli, "5000.00")
    uin = make_customer(cli, partner_id, "Cedar Labs")
    given = cli("credit", "allocate", uin, "1234.5", "--operator", "ops").stdout
    assert given.strip() == (
        f"allocated 1,234.50 for customer {uin}: total credit 1,234.50, "
        "available 1,234.50; pool remaining 3,765.50"
    )
    shown = cli("customers", "show", uin).stdout
    assert "credit: total 1,234.50, consumed 0.00, available 1,234.50" in shown
    assert "pool: total 5,000.00, allocated 1,234.50, remaining 3,765.50" in (
        cli("partners", "show", partner_id).stdout
    )


# --- counts --------------------------------------------------------------------------------


def test_counts_agree_in_number(cli: Any, tmp_path: Path) -> None:
    partner_id = make_reseller(cli, "100.00")
    uin = make_customer(cli, partner_id, "Cedar Labs")
    header = "event_id,customer_uin,product,list_amount,voucher_amount,occurred_at,kind"
    one = tmp_path / "one.csv"
    one.write_text(f"{header}\ne1,{uin},cvm,1.00,0,2026-01-01T00:00:00Z,charge\n")
    assert cli("usage", "import", one).stdout.startswith(
        "1 record: 1 accepted, 0 duplicates, 1 alarm raised"
    )
    assert cli("usage", "import", one).stdout.startswith(
        "1 record: 0 accepted, 1 duplicate, 0 alarms raised"
    )
    assert common.plural(2, "record") == "2 records"
    assert common.plural(1, "usage event") == "1 usage event"


# --- serve ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_its_url_and_no_alembic_chatter(tmp_path: Path) -> None:
    port = _free_port()
    url = f"sqlite:///{tmp_path / 'served.db'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "creditline", "--database-url", url, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        while not any("Uvicorn running" in line for line in seen):
            try:
                seen.append(lines.get(timeout=SUBPROCESS_TIMEOUT))
            except queue.Empty:
                break
    finally:
        server.terminate()
        server.wait(timeout=SUBPROCESS_TIMEOUT)
    output = "".join(seen)
    assert f"Serving creditline at http://127.0.0.1:{port}/" in output, output
    # Alembic's narration ("Context impl SQLiteImpl.", "setup plugin alembic...") stays out.
    assert "Context impl" not in output and "transactional DDL" not in output, output
    assert "alembic" not in output.lower(), output


def test_served_url_brackets_ipv6() -> None:
    from creditline.cli.serve import served_url

    assert served_url("::", 8000) == "http://[::]:8000/"
    assert served_url("0.0.0.0", 80) == "http://0.0.0.0:80/"

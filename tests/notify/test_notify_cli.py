"""The CLI: webhooks add/list/test/rotate-secret/redeliver/remove and notify settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from tests.notify.support import Receiver, customer_with_credit
from typer.testing import CliRunner

from creditline.cli import app, notify  # noqa: F401  (registers the commands)
from creditline.cli.common import state
from creditline.config import get_settings


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    runner = CliRunner()
    # The receivers listen on 127.0.0.1: these commands opt in to private targets.
    monkeypatch.setenv("CREDITLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS", "1")
    get_settings.cache_clear()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, ["--database-url", database_url, *args])
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if "--json" in args and code == 0 else result

    state._engine = None  # each test its own database
    yield run
    if state._engine is not None:
        state._engine.dispose()
    state._engine = None


def test_webhooks_through_the_cli(engine: Engine, cli: Any, receiver: Receiver) -> None:
    partner_id, _ = customer_with_credit(engine)
    other_id, _ = customer_with_credit(engine)
    p = str(partner_id)
    added = cli(
        "webhooks", "add", "--partner", p, "--url", receiver.url,
        "--event", "credit.threshold_reached", "--json",
    )  # fmt: skip
    assert isinstance(added["id"], int) and added["secret"].startswith("whsec_")
    assert added["event_types"] == ["credit.threshold_reached"]
    listed = cli("webhooks", "list", "--partner", p, "--json")
    assert [e["id"] for e in listed] == [added["id"]] and "secret" not in listed[0]
    assert cli("webhooks", "list", "--partner", str(other_id), "--json") == []

    receiver.secrets.append(added["secret"])
    eid = str(added["id"])
    sent = cli("webhooks", "test", "--partner", p, "--id", eid, "--wait", "--json")
    assert sent["status"] == "delivered" and sent["log"][0]["status_code"] == 200
    assert receiver.bad_signatures == [] and len(receiver.successes()) == 1

    rotated = cli("webhooks", "rotate-secret", "--partner", p, "--id", eid, "--json")
    assert rotated["secret"] != added["secret"] and rotated["previous_secret_expires_at"]
    again = cli("webhooks", "redeliver", "--partner", p, "--delivery", str(sent["id"]), "--json")
    assert again["status"] == "pending"
    log = cli("webhooks", "deliveries", "--partner", p, "--json")
    assert [d["id"] for d in log["data"]] == [sent["id"]]

    # Another partner's endpoint and delivery look missing.
    refused = cli("webhooks", "remove", "--partner", str(other_id), "--id", eid, code=3)
    assert "no webhook endpoint" in refused.output
    cli("webhooks", "redeliver", "--partner", str(other_id), "--delivery", str(sent["id"]), code=3)
    cli("webhooks", "add", "--partner", p, "--url", "ftp://x", "--json", code=3)
    cli("webhooks", "add", "--partner", p, "--url", receiver.url, "--event", "nope", code=3)

    cli("webhooks", "remove", "--partner", p, "--id", eid, "--json")
    assert cli("webhooks", "list", "--partner", p, "--json") == []


def test_notify_settings_through_the_cli(engine: Engine, cli: Any) -> None:
    partner_id, _ = customer_with_credit(engine)
    p = str(partner_id)
    shown = cli("notify", "settings", "--partner", p, "--json")
    assert shown == {"partner_id": partner_id, "recipients": [], "email_customer": False}
    changed = cli(
        "notify", "settings", "--partner", p, "--recipient", "a@acme.example",
        "--add", "b@acme.example", "--email-customer", "--json",
    )  # fmt: skip
    assert changed["recipients"] == ["a@acme.example", "b@acme.example"]
    assert changed["email_customer"] is True
    changed = cli("notify", "settings", "--partner", p, "--remove", "A@acme.example", "--json")
    assert changed["recipients"] == ["b@acme.example"]
    cli("notify", "settings", "--partner", p, "--add", "not-an-address", code=3)
    cleared = cli("notify", "settings", "--partner", p, "--clear", "--no-email-customer", "--json")
    assert cleared == {"partner_id": partner_id, "recipients": [], "email_customer": False}
    cli("notify", "settings", "--partner", "999", code=3)


def test_webhooks_add_refuses_an_internal_target(
    engine: Engine, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDITLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS")  # the default: off
    get_settings.cache_clear()
    partner_id, _ = customer_with_credit(engine)
    p = str(partner_id)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://0x7f.1:5432/"):
        refused = cli("webhooks", "add", "--partner", p, "--url", url, code=3)
        assert "must point to the public internet" in refused.output
    assert cli("webhooks", "list", "--partner", p, "--json") == []

"""Forecasts through the command line: ``customers show``, ``customers list --sort
runs-out``, ``forecasts alarm`` and ``forecasts refresh``, on both engines."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.cli.test_cli_partners_customers_credit import make_customer, make_reseller, refused

from creditline.ledger import forecast


def _import_fortnight(cli: Any, tmp_path: Path, uin: int, amount: str, tag: str) -> None:
    today = forecast.today()
    path = tmp_path / f"{tag}.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "event_id": f"{tag}-{n}",
                    "customer_uin": uin,
                    "product": "cvm",
                    "list_amount": amount,
                    "occurred_at": f"{(today - timedelta(days=n)).isoformat()}T08:00:00Z",
                }
            )
            + "\n"
            for n in range(1, 15)
        )
    )
    cli("usage", "import", path, "--json")


def test_customers_show_and_list_by_runs_out(cli: Any, tmp_path: Path) -> None:
    partner = make_reseller(cli, pool="10000.00")
    slow, fast, new = (make_customer(cli, partner, n) for n in ("Slow", "Fast", "New"))
    for uin in (slow, fast):
        cli("credit", "allocate", uin, "3000.00", "--operator", "ops")
    _import_fortnight(cli, tmp_path, slow, "10.00", "s")
    _import_fortnight(cli, tmp_path, fast, "100.00", "f")

    shown = cli("customers", "show", fast, "--json").json()
    assert shown["forecast"]["burn_rate"] == "100.00"
    assert shown["forecast"]["days_left"] == 16
    assert shown["forecast_alarm_days"] == 7
    text = cli("customers", "show", fast).stdout
    assert "burns 100.00 a day" in text and "(16 d)" in text
    assert "not enough history" in cli("customers", "show", new).stdout

    listed = cli("customers", "list", "--partner", partner, "--sort", "runs-out", "--json").json()
    assert [c["uin"] for c in listed["customers"]] == [fast, slow, new]
    paged = cli(
        "customers",
        "list",
        "--partner",
        partner,
        "--sort",
        "runs-out",
        "--limit",
        "1",
        "--page",
        "2",
        "--json",
    ).json()
    assert [c["uin"] for c in paged["customers"]] == [slow] and paged["has_more"] is True
    table = cli("customers", "list", "--partner", partner, "--sort", "runs-out").stdout
    assert "runs out" in table and "(16 d)" in table
    assert "runs-out" in refused(cli, "customers", "list", "--partner", partner, "--sort", "x")
    assert "--page" in refused(
        cli, "customers", "list", "--partner", partner, "--sort", "runs-out", "--after", "5"
    )


def test_forecast_alarm_window_and_refresh(cli: Any) -> None:
    partner = make_reseller(cli)
    uin = make_customer(cli, partner)
    assert cli("forecasts", "alarm", partner, "--json").json()["days"] == 7
    assert cli("forecasts", "alarm", partner, "--days", "3", "--json").json()["days"] == 3
    own = cli("forecasts", "alarm", partner, "--customer", uin, "--days", "0", "--json").json()
    assert (own["days"], own["own"]) == (0, True)
    assert "off (0)" in cli("forecasts", "alarm", partner, "--customer", uin).stdout
    back = cli("forecasts", "alarm", partner, "--customer", uin, "--default", "--json").json()
    assert (back["days"], back["own"]) == (3, False)
    assert "0-366" in refused(cli, "forecasts", "alarm", partner, "--days", "400")
    assert cli("forecasts", "alarm", partner, "--json").json()["days"] == 3
    done = cli("forecasts", "refresh", "--json").json()
    assert done["partners"] >= 1 and done["refreshed"] == 0

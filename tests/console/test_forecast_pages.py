"""Forecasts in the console: the "runs out" column and its sort, the customer's forecast
and chart, the dashboard's customers running out, and the forecast alarm settings."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.console.conftest import World, login

from creditline.db import transaction
from creditline.ledger import forecast, usage


def _fortnight(engine: Engine, uin: int, amount: str, tag: str) -> None:
    today = forecast.today()
    with transaction(engine) as s:
        batch = usage.parse_batch(
            [
                (
                    n,
                    {
                        "event_id": f"{tag}-{n}",
                        "customer_uin": str(uin),
                        "product": "cvm",
                        "list_amount": amount,
                        "voucher_amount": "0",
                        "occurred_at": f"{(today - timedelta(days=n)).isoformat()}T08:00:00Z",
                    },
                )
                for n in range(1, 15)
            ]
        )
        usage.ingest(s, batch)


def test_runs_out_column_sort_detail_chart_and_dashboard(
    client: TestClient, world: World, engine: Engine
) -> None:
    alpha, beta, gamma = world.a_customers
    # Alpha holds 1,000.00: 14 days of 50.00 leave 300.00, 6 days at 50 a day.
    _fortnight(engine, alpha, "50.00", "a")
    login(client, "viewer@acme.example")
    today = forecast.today()
    page = client.get("/customers", params={"sort": "runs_out", "dir": "asc"})
    assert page.status_code == 200
    assert 'aria-sort="ascending"' in page.text and "Runs out" in page.text
    rows = page.text.split('data-uin="')[1:]
    assert [int(r.split('"')[0]) for r in rows] == [alpha, beta, gamma]
    runs_out = today + timedelta(days=6)
    assert runs_out.isoformat() in rows[0]  # in full in its title
    short = f"{runs_out.day} {runs_out:%b}"
    if runs_out.year != today.year:
        short += f" {runs_out.year}"
    assert f">{short}</span>" in rows[0]  # shown short in the narrow column
    assert "not enough history" in rows[1]

    detail = client.get(f"/customers/{alpha}")
    assert 'data-testid="forecast"' in detail.text
    assert "50.00 USD a day" in detail.text and "in 6 days" in detail.text
    chart = client.get(f"/customers/{alpha}/usage-by-day.svg")
    assert chart.status_code == 200
    assert f"runs out on {today + timedelta(days=6)}" in chart.text and "projected" in chart.text

    setting = client.get(f"/customers/{alpha}/credit")
    assert setting.status_code in (200, 403)  # a viewer may not allocate
    dash = client.get("/")
    soon = dash.text.split('data-testid="running-out"')[1].split("</section>")[0]
    assert f'data-uin="{alpha}"' in soon and f'data-uin="{beta}"' not in soon


def test_setting_credit_shows_when_the_customer_runs_out(
    client: TestClient, world: World, engine: Engine
) -> None:
    alpha = world.a_customers[0]
    _fortnight(engine, alpha, "50.00", "a")
    login(client, "operator@acme.example")
    page = client.get(f"/customers/{alpha}/credit")
    assert page.status_code == 200
    assert "in 6 days" in page.text and "at 50.00 USD a day" in page.text


def test_forecast_alarm_settings_in_the_console(client: TestClient, world: World) -> None:
    token = login(client, "admin@acme.example")
    saved = client.post(
        "/settings/forecast-alarm", data={"days": "10", "csrf_token": token}, follow_redirects=True
    )
    assert "Default forecast alarm saved: within 10 days." in saved.text
    assert 'data-testid="default-forecast-days">within 10 days' in saved.text
    bad = client.post("/settings/forecast-alarm", data={"days": "400", "csrf_token": token})
    assert bad.status_code == 422 and "0-366" in bad.text and 'value="400"' in bad.text
    uin = world.a_customers[0]
    own = client.post(
        f"/customers/{uin}/forecast-alarm",
        data={"days": "0", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Forecast alarm saved: off." in own.text and "(this customer&#39;s own)" in own.text
    back = client.post(
        f"/customers/{uin}/forecast-alarm",
        data={"use_default": "1", "csrf_token": token},
        follow_redirects=True,
    )
    assert "within 10 days" in back.text
    wrong = client.post(f"/customers/{uin}/forecast-alarm", data={"days": "x", "csrf_token": token})
    assert wrong.status_code == 422 and 'data-testid="forecast-error"' in wrong.text


def test_a_viewer_cannot_change_the_forecast_alarm(client: TestClient, world: World) -> None:
    token = login(client, "viewer@acme.example")
    refused = client.post("/settings/forecast-alarm", data={"days": "3", "csrf_token": token})
    assert refused.status_code == 403

"""Forecasts through REST: the customer's forecast, the list sorted by "runs out", and the
forecast alarm window (partner default and per customer), audited."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.api.conftest import World

from creditline.db import transaction
from creditline.db.tables import AuditEvent
from creditline.ledger import forecast


def _fortnight(uin: int, amount: str, tag: str) -> list[dict[str, object]]:
    today = forecast.today()
    return [
        {
            "event_id": f"{tag}-{n}",
            "customer_uin": uin,
            "product": "cvm",
            "list_amount": amount,
            "occurred_at": f"{(today - timedelta(days=n)).isoformat()}T08:00:00Z",
        }
        for n in range(1, 15)
    ]


def test_forecast_in_the_customer_and_the_sorted_list(client: TestClient, world: World) -> None:
    operator, platform = world.h("a_operator"), world.h("platform")
    other = client.post("/v1/customers", json={"name": "Zed"}, headers=operator).json()["uin"]
    quiet = client.post("/v1/customers", json={"name": "Quiet"}, headers=operator).json()["uin"]
    for uin in (world.a_customer, other):
        done = client.post(
            f"/v1/customers/{uin}/allocate", json={"amount": "3000.00"}, headers=operator
        )
        assert done.status_code == 200, done.text
    posted = client.post(
        "/v1/usage-batches",
        json={
            "records": _fortnight(world.a_customer, "100.00", "a") + _fortnight(other, "50.00", "z")
        },
        headers=platform,
    )
    assert posted.status_code == 200, posted.text
    today = forecast.today()
    one = client.get(f"/v1/customers/{world.a_customer}", headers=world.h("a_viewer")).json()
    assert one["forecast"]["status"] == "runs_out"
    assert one["forecast"]["burn_rate"] == "100.00"
    # 3,000 - 1,400 = 1,600 at 100 a day.
    assert one["forecast"]["days_left"] == 16
    assert one["forecast"]["runs_out_on"] == (today + timedelta(days=16)).isoformat()
    assert one["forecast"]["month_projected"] is not None
    none = client.get(f"/v1/customers/{quiet}", headers=world.h("a_viewer")).json()
    assert none["forecast"]["status"] == "not_enough_history"
    assert none["forecast"]["runs_out_on"] is None
    # Soonest first; those that never run out last (and first, descending).
    listed = client.get(
        "/v1/customers", params={"sort": "runs_out", "order": "asc"}, headers=world.h("a_viewer")
    ).json()["data"]
    assert [c["uin"] for c in listed] == [world.a_customer, other, quiet]
    assert listed[1]["forecast"]["days_left"] == 46  # 2,300 left at 50 a day
    down = client.get(
        "/v1/customers", params={"sort": "runs_out", "order": "desc"}, headers=world.h("a_viewer")
    ).json()["data"]
    assert [c["uin"] for c in down] == [quiet, other, world.a_customer]


def test_forecast_alarm_window_default_and_per_customer(
    client: TestClient, world: World, engine: Engine
) -> None:
    admin = world.h("a_admin")
    assert client.get("/v1/forecast-alarm", headers=admin).json() == {"days": 7}
    put = client.put("/v1/forecast-alarm", json={"days": 10}, headers=admin)
    assert put.status_code == 200 and put.json() == {"days": 10}
    path = f"/v1/customers/{world.a_customer}/forecast-alarm"
    assert client.get(path, headers=admin).json() == {"days": 10, "own": False}
    own = client.put(path, json={"days": 0}, headers=admin)
    assert own.json() == {"days": 0, "own": True}
    back = client.put(path, json={"days": None}, headers=admin)
    assert back.json() == {"days": 10, "own": False}
    for bad in (-1, 367, "7", 2.5):
        refused = client.put("/v1/forecast-alarm", json={"days": bad}, headers=admin)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"]["param"] == "days"
    assert client.get("/v1/forecast-alarm", headers=admin).json() == {"days": 10}
    viewer = client.put("/v1/forecast-alarm", json={"days": 3}, headers=world.h("a_viewer"))
    assert viewer.status_code == 403
    with transaction(engine) as s:
        changes = s.execute(
            select(AuditEvent.before, AuditEvent.after)
            .where(AuditEvent.partner_id == world.a)
            .order_by(AuditEvent.id)
        ).all()
    pool = [(b, a) for b, a in changes if a and f"pool {world.a}" in a]
    assert pool and pool[0][0][f"pool {world.a}"]["forecast_days"] == 7
    assert pool[0][1][f"pool {world.a}"]["forecast_days"] == 10
    customer = [(b, a) for b, a in changes if a and f"customer {world.a_customer}" in a]
    assert [a[f"customer {world.a_customer}"]["forecast_days"] for _, a in customer] == [0, None]

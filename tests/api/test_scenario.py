"""A partner's day through the REST API, read like the walk-through in docs/api.md."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.api.conftest import World

from creditline.db import transaction
from creditline.ledger.verify import verify


def test_allocate_consume_alarm_records(client: TestClient, world: World, engine: Engine) -> None:
    pool = client.get("/v1/pool", headers=world.h("a_viewer"))
    assert pool.status_code == 200, pool.text
    assert pool.json()["pool"] == {
        "partner_id": world.a,
        "total": "10000.00",
        "allocated": "0.00",
        "remaining": "10000.00",
    }
    assert pool.headers["x-request-id"]

    found = client.get("/v1/customers", params={"q": "gold"}, headers=world.h("a_viewer")).json()
    assert [c["uin"] for c in found["data"]] == [world.a_customer]
    assert found["total"] is None and found["has_more"] is False
    counted = client.get(
        "/v1/customers", params={"q": "gold", "include_total": "true"}, headers=world.h("a_viewer")
    ).json()
    assert counted["data"] == found["data"] and counted["total"] == 1

    made = client.post(
        "/v1/customers",
        json={"name": "Carl GmbH", "email": "carl@example.com"},
        headers=world.h("a_operator"),
    )
    assert made.status_code == 201, made.text
    carl = made.json()["uin"]

    allocated = client.post(
        f"/v1/customers/{carl}/allocate",
        json={"amount": "100.00", "remark": "first month"},
        headers=world.h("a_operator"),
    )
    assert allocated.status_code == 200, allocated.text
    body = allocated.json()
    assert body["customer"]["total_credit"] == "100.00"
    assert body["pool"]["remaining"] == "9900.00"
    assert body["record"]["operator"] == "a_operator" and body["record"]["source"] == "api"

    refused = client.post(
        f"/v1/customers/{carl}/withdraw", json={"amount": "100.01"}, headers=world.h("a_operator")
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "insufficient_available_credit"
    assert refused.json()["error"]["param"] == "amount"

    usage = client.post(
        "/v1/usage-batches",
        json={
            "records": [
                {
                    "event_id": "ev-1",
                    "customer_uin": carl,
                    "product": "cvm",
                    "list_amount": "80.00",
                    "occurred_at": "2026-01-01T00:00:00Z",
                }
            ]
        },
        headers=world.h("platform"),
    )
    assert usage.status_code == 200, usage.text
    assert usage.json()["accepted"] == 1 and len(usage.json()["alarm_ids"]) == 1

    assert client.get("/v1/alarms/unread-count", headers=world.h("a_viewer")).json() == {
        "unread": 1
    }
    alarm = client.get("/v1/alarms", params={"unread": True}, headers=world.h("a_viewer")).json()
    [only] = alarm["data"]
    assert (only["customer_uin"], only["threshold"]) == (carl, 75)
    acked = client.post(f"/v1/alarms/{only['id']}/acknowledge", headers=world.h("a_operator"))
    assert acked.status_code == 200 and acked.json()["acknowledged_at"]
    assert client.get("/v1/alarms/unread-count", headers=world.h("a_viewer")).json() == {
        "unread": 0
    }

    sorted_page = client.get(
        "/v1/customers", params={"sort": "utilization"}, headers=world.h("a_viewer")
    ).json()
    assert sorted_page["data"][0]["uin"] == carl
    assert sorted_page["data"][0]["utilization_percent"] == "80.00"

    recs = client.get(
        "/v1/allocation-records", params={"customer_uin": carl}, headers=world.h("a_viewer")
    ).json()
    assert [(r["kind"], r["change"]) for r in recs["data"]] == [("allocation", "100.00")]
    exported = client.get("/v1/allocation-records.csv", headers=world.h("a_viewer"))
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    # Newest first: the allocation, then the platform's grant that filled the pool.
    assert [(r["kind"], r["customer_uin"], r["change"]) for r in rows] == [
        ("allocation", str(carl), "100.00"),
        ("grant", "", "10000.00"),
    ]

    mine = client.get("/v1/me/credit", headers=world.h("a_customer"))
    assert mine.status_code == 200 and mine.json()["uin"] == world.a_customer

    with transaction(engine) as s:
        assert verify(s) == []


def test_batch_dry_run_and_all_or_nothing(client: TestClient, world: World, engine: Engine) -> None:
    ann = world.a_customer
    dry = client.post(
        "/v1/allocation-batches",
        json={"dry_run": True, "items": [{"customer_uin": ann, "amount": "40.00"}]},
        headers=world.h("a_operator"),
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["applied"] is False
    assert dry.json()["results"][0]["customer"]["total_credit"] == "40.00"
    assert dry.json()["pool"]["remaining"] == "9960.00"
    pool = client.get("/v1/pool", headers=world.h("a_viewer")).json()["pool"]
    assert pool["remaining"] == "10000.00"  # the dry run changed nothing

    refused = client.post(
        "/v1/allocation-batches",
        json={
            "items": [
                {"customer_uin": ann, "amount": "40.00"},
                {"customer_uin": world.b_customer, "amount": "1.00"},
                {"customer_uin": ann, "amount": "-50.00"},
            ]
        },
        headers=world.h("a_operator"),
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_batch"
    assert [d["line"] for d in error["details"]] == [2, 3]
    assert str(world.b_customer) in error["details"][0]["message"]
    ann_now = client.get(f"/v1/customers/{ann}", headers=world.h("a_viewer")).json()
    assert ann_now["total_credit"] == "0.00"

    done = client.post(
        "/v1/allocation-batches",
        json={"items": [{"customer_uin": ann, "amount": "40.00"}]},
        headers=world.h("a_operator"),
    )
    assert done.status_code == 200 and done.json()["applied"] is True
    with transaction(engine) as s:
        assert verify(s) == []


def test_thresholds_sub_resellers_and_applications(
    client: TestClient, world: World, engine: Engine
) -> None:
    put = client.put("/v1/thresholds", json={"thresholds": [50, 80]}, headers=world.h("a_admin"))
    assert put.status_code == 200 and put.json() == {"thresholds": [50, 80]}
    own = client.put(
        f"/v1/customers/{world.a_customer}/thresholds",
        json={"thresholds": [95]},
        headers=world.h("a_admin"),
    )
    assert own.json() == {"thresholds": [95], "own": True}
    back = client.put(
        f"/v1/customers/{world.a_customer}/thresholds",
        json={"thresholds": None},
        headers=world.h("a_admin"),
    )
    assert back.json() == {"thresholds": [50, 80], "own": False}
    bad = client.put("/v1/thresholds", json={"thresholds": [0]}, headers=world.h("a_admin"))
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "thresholds"

    subs = client.get("/v1/sub-resellers", headers=world.h("dist_admin")).json()["data"]
    assert [s["partner_id"] for s in subs] == [world.sub]
    moved = client.post(
        f"/v1/sub-resellers/{world.sub}/pool-allocations",
        json={"amount": "25.00"},
        headers=world.h("dist_admin"),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["sub_reseller"]["pool"]["total"] == "25.00"
    assert client.get("/v1/sub-resellers", headers=world.h("a_admin")).status_code == 403

    # A reseller asks the platform; approval grants.
    asked = client.post(
        "/v1/credit-applications",
        json={"amount": "500.00", "reason": "season"},
        headers=world.h("a_admin"),
    )
    assert asked.status_code == 201, asked.text
    app_id = asked.json()["id"]
    queue = client.get("/v1/credit-applications", headers=world.h("platform")).json()["data"]
    assert [a["id"] for a in queue] == [app_id]
    approved = client.post(
        f"/v1/credit-applications/{app_id}/approve", json={}, headers=world.h("platform")
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["record_id"]
    again = client.post(
        f"/v1/credit-applications/{app_id}/reject", json={}, headers=world.h("platform")
    )
    assert again.status_code == 409
    pool = client.get("/v1/pool", headers=world.h("a_viewer")).json()["pool"]
    assert pool["total"] == "10500.00"

    # A sub-reseller asks its distributor, not the platform.
    sub_ask = client.post(
        "/v1/credit-applications", json={"amount": "10.00"}, headers=world.h("sub_admin")
    ).json()
    assert sub_ask["decided_by_partner"] == world.dist
    pending = client.get(
        "/v1/credit-applications", params={"status": "pending"}, headers=world.h("platform")
    )
    assert pending.json()["data"] == []
    not_platforms = client.post(
        f"/v1/credit-applications/{sub_ask['id']}/approve", json={}, headers=world.h("platform")
    )
    assert not_platforms.status_code == 404
    ok = client.post(
        f"/v1/credit-applications/{sub_ask['id']}/approve", json={}, headers=world.h("dist_admin")
    )
    assert ok.status_code == 200, ok.text
    sub_pool = client.get("/v1/pool", headers=world.h("sub_admin")).json()["pool"]
    assert sub_pool["total"] == "35.00"
    with transaction(engine) as s:
        assert verify(s) == []


def test_platform_partners_and_grants(client: TestClient, world: World) -> None:
    made = client.post(
        "/v1/partners", json={"name": "Gamma", "kind": "reseller"}, headers=world.h("platform")
    )
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    granted = client.post(
        f"/v1/partners/{pid}/grants", json={"amount": "12.50"}, headers=world.h("platform")
    )
    assert granted.status_code == 200 and granted.json()["pool"]["total"] == "12.50"
    reduce_too_much = client.post(
        f"/v1/partners/{pid}/grants", json={"amount": "-12.51"}, headers=world.h("platform")
    )
    assert reduce_too_much.status_code == 409
    assert client.get(f"/v1/partners/{pid}", headers=world.h("platform")).json()["pool"] == {
        "partner_id": pid,
        "total": "12.50",
        "allocated": "0.00",
        "remaining": "12.50",
    }
    page = client.get("/v1/partners", params={"limit": 2}, headers=world.h("platform")).json()
    assert page["has_more"] is True and len(page["data"]) == 2
    assert client.get("/v1/partners", headers=world.h("a_admin")).status_code == 403

"""Who may do what: no key or a revoked key is 401 everywhere; a viewer cannot write; a
customer key reaches only its own credit; another partner's objects answer exactly as
missing ones (404, nothing about them in the answer)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from tests.api.conftest import World

from creditline.clock import utcnow


def _a_objects(client: TestClient, world: World) -> dict[str, int]:
    """Objects of partner A (and of the distributor) that other partners must not see."""
    h = world.h("a_admin")
    client.post(f"/v1/customers/{world.a_customer}/allocate", json={"amount": "90.00"}, headers=h)
    client.post(
        "/v1/usage-batches",
        json={
            "records": [
                {
                    "event_id": "a-1",
                    "customer_uin": world.a_customer,
                    "product": "cos",
                    "list_amount": "90.00",
                    "occurred_at": "2026-01-01T00:00:00Z",
                }
            ]
        },
        headers=world.h("platform"),
    )
    alarm = client.get("/v1/alarms", headers=h).json()["data"][0]["id"]
    application = client.post("/v1/credit-applications", json={"amount": "1.00"}, headers=h).json()[
        "id"
    ]
    endpoint = client.post(
        "/v1/webhook-endpoints", json={"url": "https://hooks.example.com/a"}, headers=h
    ).json()["id"]
    delivery = client.post(f"/v1/webhook-endpoints/{endpoint}/test", headers=h).json()["id"]
    return {"alarm": alarm, "application": application, "endpoint": endpoint, "delivery": delivery}


def _endpoints(world: World, ids: dict[str, int]) -> list[tuple[str, str, Any]]:
    """(method, path, json body) of every partner endpoint, aimed at A's objects."""
    uin = world.a_customer
    return [
        ("GET", f"/v1/customers/{uin}", None),
        ("PATCH", f"/v1/customers/{uin}", {"remark": "x"}),
        ("POST", f"/v1/customers/{uin}/allocate", {"amount": "1.00"}),
        ("POST", f"/v1/customers/{uin}/withdraw", {"amount": "1.00"}),
        ("GET", f"/v1/customers/{uin}/thresholds", None),
        ("PUT", f"/v1/customers/{uin}/thresholds", {"thresholds": [80]}),
        ("GET", f"/v1/customers/{uin}/forecast-alarm", None),
        ("PUT", f"/v1/customers/{uin}/forecast-alarm", {"days": 3}),
        ("POST", f"/v1/customers/{uin}/purchase-checks", {"amount": "1.00"}),
        ("GET", f"/v1/customers/{uin}/purchase-policy", None),
        ("PUT", f"/v1/customers/{uin}/purchase-policy", {"policy": "block_all"}),
        ("GET", f"/v1/customers/{uin}/top-up-rule", None),
        ("PUT", f"/v1/customers/{uin}/top-up-rule", {"mode": "off"}),
        ("GET", f"/v1/customers/{uin}/statements/{utcnow():%Y-%m}", None),
        ("GET", f"/v1/customers/{uin}/customer-alarms", None),
        ("PUT", f"/v1/customers/{uin}/customer-alarms", {"enabled": True}),
        ("POST", f"/v1/alarms/{ids['alarm']}/read", None),
        ("POST", f"/v1/alarms/{ids['alarm']}/acknowledge", None),
        ("GET", f"/v1/credit-applications/{ids['application']}", None),
        ("GET", f"/v1/sub-resellers/{world.sub}", None),
        ("POST", f"/v1/sub-resellers/{world.sub}/pool-allocations", {"amount": "1.00"}),
        ("GET", f"/v1/webhook-endpoints/{ids['endpoint']}", None),
        ("PATCH", f"/v1/webhook-endpoints/{ids['endpoint']}", {"enabled": False}),
        ("POST", f"/v1/webhook-endpoints/{ids['endpoint']}/rotate-secret", None),
        ("POST", f"/v1/webhook-endpoints/{ids['endpoint']}/test", None),
        ("GET", f"/v1/deliveries/{ids['delivery']}", None),
        ("GET", f"/v1/deliveries/{ids['delivery']}/attempts", None),
        ("POST", f"/v1/deliveries/{ids['delivery']}/redeliver", None),
        ("DELETE", f"/v1/webhook-endpoints/{ids['endpoint']}", None),
    ]


WRITES = [
    ("POST", "/v1/customers", {"name": "New"}),
    ("POST", "/v1/allocation-batches", {"items": [{"customer_uin": 1, "amount": "1.00"}]}),
    ("PUT", "/v1/thresholds", {"thresholds": [80]}),
    ("PUT", "/v1/forecast-alarm", {"days": 3}),
    ("POST", "/v1/api-keys", {"role": "viewer"}),
    ("POST", "/v1/credit-applications", {"amount": "1.00"}),
    ("POST", "/v1/sub-resellers", {"name": "S2"}),
    ("POST", "/v1/webhook-endpoints", {"url": "https://hooks.example.com/b"}),
    ("PATCH", "/v1/notification-settings", {"add": ["ops@example.com"]}),
    ("PUT", "/v1/purchase-policy", {"policy": "block_all"}),
    (
        "PUT",
        "/v1/top-up-rule",
        {"available_below": "1.00", "amount": "1.00", "monthly_cap": "1.00"},
    ),
    ("DELETE", "/v1/top-up-rule", None),
    ("PATCH", "/v1/customer-settings", {"show_remarks": True}),
]
READS = [
    ("GET", "/v1/pool", None),
    ("GET", "/v1/customers", None),
    ("GET", "/v1/allocation-records", None),
    ("GET", "/v1/allocation-records.csv", None),
    ("GET", "/v1/alarms", None),
    ("GET", "/v1/alarms/unread-count", None),
    ("GET", "/v1/thresholds", None),
    ("GET", "/v1/forecast-alarm", None),
    ("GET", "/v1/api-keys", None),
    ("GET", "/v1/credit-applications", None),
    ("GET", "/v1/sub-resellers", None),
    ("GET", "/v1/webhook-endpoints", None),
    ("GET", "/v1/deliveries", None),
    ("GET", "/v1/notification-settings", None),
    ("GET", "/v1/me/credit", None),
    ("GET", "/v1/purchase-checks", None),
    ("GET", "/v1/purchase-policy", None),
    ("GET", "/v1/top-up-rule", None),
    ("GET", "/v1/customer-settings", None),
]
PLATFORM = [
    ("GET", "/v1/partners", None),
    ("POST", "/v1/partners", {"name": "P"}),
    ("GET", "/v1/partners/1", None),
    ("POST", "/v1/partners/1/grants", {"amount": "1.00"}),
    (
        "POST",
        "/v1/usage-batches",
        {
            "records": [
                {
                    "event_id": "x-1",
                    "customer_uin": 1,
                    "product": "cvm",
                    "list_amount": "1.00",
                    "occurred_at": "2026-01-01T00:00:00Z",
                }
            ]
        },
    ),
    ("POST", "/v1/credit-applications/1/approve", {}),
    ("POST", "/v1/credit-applications/1/reject", {}),
    ("GET", "/v1/platform/audit", None),
]


def _all(world: World, ids: dict[str, int]) -> list[tuple[str, str, Any]]:
    return _endpoints(world, ids) + WRITES + READS + PLATFORM


def test_every_endpoint_is_covered(client: TestClient, world: World) -> None:
    """Each documented operation is exercised by the tests of this file."""
    ids = {"alarm": 1, "application": 1, "endpoint": 1, "delivery": 1}
    covered = [(m, p) for m, p, _ in _all(world, ids)] + [("DELETE", "/v1/api-keys/x")]
    paths = client.get("/openapi.json").json()["paths"]
    for template, item in paths.items():
        pattern = re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$")
        for method in item:
            assert any(m == method.upper() and pattern.match(p) for m, p in covered), (
                f"{method.upper()} {template} is not covered"
            )


def test_no_key_or_revoked_key_is_401(client: TestClient, world: World) -> None:
    ids = _a_objects(client, world)
    revoked = world.keys["a_admin"][0]
    assert client.delete(f"/v1/api-keys/{revoked}", headers=world.h("a_admin")).status_code == 200
    for method, path, body in _all(world, ids):
        for headers in (
            {},
            world.h("a_admin"),
            {"Authorization": "Bearer nonsense"},
            {"Authorization": f"Bearer {revoked}:wrong"},
        ):
            answer = client.request(method, path, json=body, headers=headers)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.json()["error"]["type"] == "authentication_error"


def test_viewer_cannot_write(client: TestClient, world: World) -> None:
    ids = _a_objects(client, world)
    for method, path, body in _endpoints(world, ids) + WRITES:
        if method == "GET":
            continue
        answer = client.request(method, path, json=body, headers=world.h("a_viewer"))
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"]["type"] == "permission_error"
    key = world.keys["a_operator"][0]
    assert client.delete(f"/v1/api-keys/{key}", headers=world.h("a_viewer")).status_code == 403
    # Operators allocate but manage no keys or settings.
    assert client.post("/v1/api-keys", json={}, headers=world.h("a_operator")).status_code == 403
    assert (
        client.put(
            "/v1/thresholds", json={"thresholds": [80]}, headers=world.h("a_operator")
        ).status_code
        == 403
    )


def test_customer_key_reaches_only_its_own_credit(client: TestClient, world: World) -> None:
    ids = _a_objects(client, world)
    for method, path, body in _all(world, ids):
        answer = client.request(method, path, json=body, headers=world.h("a_customer"))
        expected = 200 if path == "/v1/me/credit" else 403
        assert answer.status_code == expected, (method, path, answer.text)


def test_other_partner_sees_nothing(client: TestClient, world: World) -> None:
    ids = _a_objects(client, world)
    missing = 999_999_999_999
    for method, path, body in _endpoints(world, ids):
        if "/sub-resellers/" in path:
            headers = world.h("b_admin")  # not a distributor: refused before any lookup
            answer = client.request(method, path, json=body, headers=headers)
            assert answer.status_code == 403, (method, path, answer.text)
            continue
        theirs = client.request(method, path, json=body, headers=world.h("b_admin"))
        absent = client.request(
            method,
            path.replace(str(world.a_customer), str(missing))
            .replace(f"/alarms/{ids['alarm']}", f"/alarms/{missing}")
            .replace(
                f"/credit-applications/{ids['application']}", f"/credit-applications/{missing}"
            )
            .replace(f"/webhook-endpoints/{ids['endpoint']}", f"/webhook-endpoints/{missing}")
            .replace(f"/deliveries/{ids['delivery']}", f"/deliveries/{missing}"),
            json=body,
            headers=world.h("b_admin"),
        )
        assert theirs.status_code == 404, (method, path, theirs.text)
        # Exactly as a missing one: same status, code and shape; no name, no amount.
        assert theirs.json()["error"]["code"] == absent.json()["error"]["code"]
        assert theirs.json()["error"].keys() == absent.json()["error"].keys()
        assert "Ann" not in theirs.text and "90.00" not in theirs.text

    # Another distributor's sub-reseller is 404 to a distributor.
    assert (
        client.get(f"/v1/sub-resellers/{missing}", headers=world.h("dist_admin")).status_code == 404
    )
    # Lists hold only one's own.
    h = world.h("b_admin")
    assert [c["uin"] for c in client.get("/v1/customers", headers=h).json()["data"]] == [
        world.b_customer
    ]
    assert (
        client.get("/v1/customers", params={"q": str(world.a_customer)}, headers=h).json()["data"]
        == []
    )
    records = client.get("/v1/allocation-records", headers=h).json()["data"]
    assert {r["partner_id"] for r in records} == {world.b}
    assert (
        client.get(
            "/v1/allocation-records", params={"customer_uin": world.a_customer}, headers=h
        ).json()["data"]
        == []
    )
    assert str(world.a_customer) not in client.get("/v1/allocation-records.csv", headers=h).text
    assert client.get("/v1/alarms", headers=h).json()["data"] == []
    assert client.get("/v1/alarms/unread-count", headers=h).json() == {"unread": 0}
    assert client.get("/v1/credit-applications", headers=h).json()["data"] == []
    assert client.get("/v1/webhook-endpoints", headers=h).json()["data"] == []
    assert client.get("/v1/deliveries", headers=h).json()["data"] == []
    assert world.keys["a_admin"][0] not in client.get("/v1/api-keys", headers=h).text
    revoke_theirs = client.delete(f"/v1/api-keys/{world.keys['a_admin'][0]}", headers=h)
    assert revoke_theirs.status_code == 404
    # Batches naming another partner's customer are refused whole, as for a missing one.
    batch = client.post(
        "/v1/allocation-batches",
        json={"items": [{"customer_uin": world.a_customer, "amount": "1.00"}]},
        headers=h,
    )
    assert batch.status_code == 400 and "Ann" not in batch.text
    # A customer key for another partner's customer cannot be made.
    made = client.post("/v1/api-keys", json={"customer_uin": world.a_customer}, headers=h)
    assert made.status_code == 404


def test_a_served_app_keeps_what_started_it_out_of_the_collectors_way() -> None:
    """``creditline serve`` freezes what was built to start (app.settled): a full garbage
    collection then walks only what requests made since."""
    import gc
    import logging

    from fastapi import FastAPI

    from creditline.app import settled

    kept = (logging._srcfile, logging.logThreads, logging.logProcesses)
    gc.unfreeze()
    try:
        app = FastAPI()
        assert settled(app) is app
        assert gc.get_freeze_count() > 0
        assert (logging._srcfile, logging.logThreads, logging.logProcesses) == (
            None,
            False,
            False,
        )
    finally:
        gc.unfreeze()
        logging._srcfile, logging.logThreads, logging.logProcesses = kept
        logging.logMultiprocessing = True

"""Alarm delivery settings through REST, as docs/api.md describes them: a partner admin
manages webhook endpoints, their deliveries and the alarm email recipients; other keys
read or are refused; every write is audited; secrets are shown once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.api.conftest import World

from creditline.db import transaction
from creditline.db.tables import AuditEvent, WebhookEndpoint
from creditline.notify import endpoints

HOOK = "https://hooks.example.com/x"


def _add(client: TestClient, world: World, key: str = "a_admin", **body: Any) -> Any:
    answer = client.post("/v1/webhook-endpoints", json={"url": HOOK, **body}, headers=world.h(key))
    assert answer.status_code == 201, answer.text
    return answer


def _audit_since(engine: Engine, first: int) -> list[AuditEvent]:
    with transaction(engine) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.id > first).order_by("id")))


def _last_audit_id(engine: Engine) -> int:
    with transaction(engine) as s:
        return int(s.scalar(select(func.coalesce(func.max(AuditEvent.id), 0))) or 0)


def test_admin_key_runs_the_whole_webhook_lifecycle(
    client: TestClient, world: World, engine: Engine
) -> None:
    admin = world.h("a_admin")
    made = _add(
        client,
        world,
        event_types=["credit.threshold_reached"],
        description="finance hook",
    )
    assert made.headers["cache-control"] == "no-store"
    hook = made.json()
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    assert hook["url"] == HOOK and hook["enabled"] is True
    assert hook["event_types"] == ["credit.threshold_reached"]
    assert hook["description"] == "finance hook"
    with transaction(engine) as s:
        stored = endpoints.get_endpoint(s, world.a, hook["id"])
        assert endpoints.secret_of(s, stored) == secret  # the secret shown is the real one

    listed = client.get("/v1/webhook-endpoints", headers=admin)
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["data"]] == [hook["id"]]
    assert listed.json()["has_more"] is False and listed.json()["next_after"] is None
    assert "whsec_" not in listed.text and "secret" not in listed.json()["data"][0]
    one = client.get(f"/v1/webhook-endpoints/{hook['id']}", headers=admin)
    assert one.status_code == 200 and "whsec_" not in one.text

    path = f"/v1/webhook-endpoints/{hook['id']}"
    off = client.patch(path, json={"enabled": False}, headers=admin)
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False
    assert off.json()["disabled_reason"] == "disabled by the partner"
    on = client.patch(path, json={"enabled": True}, headers=admin)
    assert on.json()["enabled"] is True and on.json()["disabled_reason"] is None

    rotated = client.post(f"{path}/rotate-secret", json={"overlap_seconds": 3600}, headers=admin)
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != secret
    assert rotated.json()["previous_secret_expires_at"] is not None
    with transaction(engine) as s:
        stored = endpoints.get_endpoint(s, world.a, hook["id"])
        assert endpoints.secret_of(s, stored) == new_secret
    # Without a body the default overlap (24 hours) applies.
    again = client.post(f"{path}/rotate-secret", headers=admin)
    assert again.status_code == 200 and again.json()["secret"] not in (secret, new_secret)

    test = client.post(f"{path}/test", headers=admin)
    assert test.status_code == 201, test.text
    delivery = test.json()
    assert (delivery["channel"], delivery["endpoint_id"]) == ("webhook", hook["id"])
    assert delivery["status"] == "pending" and delivery["attempts"] == 0

    page = client.get("/v1/deliveries", params={"endpoint_id": hook["id"]}, headers=admin)
    assert page.status_code == 200
    assert [d["id"] for d in page.json()["data"]] == [delivery["id"]]
    pending = client.get("/v1/deliveries", params={"status": "failed"}, headers=admin)
    assert pending.json()["data"] == []
    got = client.get(f"/v1/deliveries/{delivery['id']}", headers=admin)
    assert got.json() == delivery
    log = client.get(f"/v1/deliveries/{delivery['id']}/attempts", headers=admin)
    assert log.status_code == 200
    assert log.json() == {"data": [], "has_more": False, "next_after": None}
    redelivered = client.post(f"/v1/deliveries/{delivery['id']}/redeliver", headers=admin)
    assert redelivered.status_code == 200, redelivered.text
    assert redelivered.json()["status"] == "pending"

    removed = client.delete(path, headers=admin)
    assert removed.status_code == 200, removed.text
    assert removed.json()["id"] == hook["id"] and "whsec_" not in removed.text
    assert client.get(path, headers=admin).status_code == 404
    assert client.get("/v1/webhook-endpoints", headers=admin).json()["data"] == []
    # Its pending delivery ended as failed; the log stays readable.
    ended = client.get(f"/v1/deliveries/{delivery['id']}", headers=admin).json()
    assert (ended["status"], ended["last_error"]) == ("failed", "endpoint removed")
    refused = client.post(f"/v1/deliveries/{delivery['id']}/redeliver", headers=admin)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "the endpoint of this delivery was removed"


def test_admin_key_manages_alarm_email_settings(client: TestClient, world: World) -> None:
    admin = world.h("a_admin")
    first = client.get("/v1/notification-settings", headers=admin)
    assert first.json() == {"recipients": [], "email_customer": False}
    replaced = client.patch(
        "/v1/notification-settings",
        json={"recipients": ["a@example.com", "b@example.com", "A@example.com"]},
        headers=admin,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {
        "recipients": ["a@example.com", "b@example.com"],
        "email_customer": False,
    }
    changed = client.patch(
        "/v1/notification-settings",
        json={"add": ["c@example.com"], "remove": ["a@example.com"], "email_customer": True},
        headers=admin,
    )
    assert changed.json() == {
        "recipients": ["b@example.com", "c@example.com"],
        "email_customer": True,
    }
    assert client.get("/v1/notification-settings", headers=world.h("a_viewer")).json() == (
        changed.json()
    )
    cleared = client.patch("/v1/notification-settings", json={"recipients": []}, headers=admin)
    assert cleared.json() == {"recipients": [], "email_customer": True}

    bad = client.patch("/v1/notification-settings", json={"add": ["not an address"]}, headers=admin)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "recipients"
    assert "is not an email address" in bad.json()["error"]["message"]
    assert client.get("/v1/notification-settings", headers=admin).json() == cleared.json()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/notification-settings", {"email_customer": "yes"}),
        ("/v1/notification-settings", {"email_customer": 1}),
        ("/v1/notification-settings", {"recipients": "a@example.com"}),
        ("/v1/notification-settings", {"recipient": ["a@example.com"]}),
        ("/v1/webhook-endpoints", {"url": HOOK, "secret": "whsec_mine"}),
        ("/v1/webhook-endpoints", {"url": 5}),
        ("/v1/webhook-endpoints", {"url": HOOK, "event_types": "credit.threshold_reached"}),
    ],
)
def test_bodies_are_strict(client: TestClient, world: World, path: str, body: Any) -> None:
    method = "PATCH" if path.endswith("settings") else "POST"
    answer = client.request(method, path, json=body, headers=world.h("a_admin"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"


def test_endpoint_rules_are_the_cores(client: TestClient, world: World) -> None:
    admin = world.h("a_admin")
    cases = [
        ({"url": "ftp://hooks.example.com/x"}, "url", "is not an http(s) URL"),
        ({"url": HOOK, "event_types": ["credit.nope"]}, "event_types", "unknown event type"),
        ({"url": HOOK, "description": "d" * 501}, "description", "longer than 500"),
    ]
    for body, param, message in cases:
        answer = client.post("/v1/webhook-endpoints", json=body, headers=admin)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == param
        assert message in answer.json()["error"]["message"]
    hook = _add(client, world).json()
    for overlap in (-1, 8 * 24 * 3600):
        too = client.post(
            f"/v1/webhook-endpoints/{hook['id']}/rotate-secret",
            json={"overlap_seconds": overlap},
            headers=admin,
        )
        assert too.status_code == 422, too.text
    assert client.get("/v1/webhook-endpoints", headers=admin).json()["data"][0]["id"] == hook["id"]


def test_an_internal_target_is_refused(client: TestClient, world: World) -> None:
    admin = world.h("a_admin")
    for url in ("http://169.254.169.254/latest/meta-data/", "http://2130706433:5432/"):
        answer = client.post("/v1/webhook-endpoints", json={"url": url}, headers=admin)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == "url"
        assert "must point to the public internet" in answer.json()["error"]["message"]
    assert client.get("/v1/webhook-endpoints", headers=admin).json()["data"] == []


def test_other_keys_are_refused_and_other_partners_see_nothing(
    client: TestClient, world: World
) -> None:
    hook = _add(client, world).json()
    delivery = client.post(
        f"/v1/webhook-endpoints/{hook['id']}/test", headers=world.h("a_admin")
    ).json()
    path = f"/v1/webhook-endpoints/{hook['id']}"
    writes: list[tuple[str, str, Any]] = [
        ("POST", "/v1/webhook-endpoints", {"url": HOOK}),
        ("PATCH", path, {"enabled": False}),
        ("POST", f"{path}/rotate-secret", None),
        ("POST", f"{path}/test", None),
        ("DELETE", path, None),
        ("POST", f"/v1/deliveries/{delivery['id']}/redeliver", None),
        ("PATCH", "/v1/notification-settings", {"add": ["x@example.com"]}),
    ]
    reads = [
        "/v1/webhook-endpoints",
        path,
        "/v1/deliveries",
        f"/v1/deliveries/{delivery['id']}",
        f"/v1/deliveries/{delivery['id']}/attempts",
        "/v1/notification-settings",
    ]
    for key in ("a_operator", "a_viewer", "a_customer", "platform"):
        for method, target, body in writes:
            answer = client.request(method, target, json=body, headers=world.h(key))
            assert answer.status_code == 403, (key, method, target, answer.text)
            assert answer.json()["error"]["type"] == "permission_error"
    for key in ("a_operator", "a_viewer"):
        for target in reads:
            answer = client.get(target, headers=world.h(key))
            assert answer.status_code == 200, (key, target, answer.text)
            assert "whsec_" not in answer.text
    for key in ("a_customer", "platform"):
        for target in reads:
            assert client.get(target, headers=world.h(key)).status_code == 403

    # Another partner's endpoint and delivery answer exactly as missing ones.
    missing_id = hook["id"] + 1000
    for key in ("b_admin", "sub_admin"):
        other = client.get(path, headers=world.h(key))
        missing = client.get(f"/v1/webhook-endpoints/{missing_id}", headers=world.h(key))
        assert other.status_code == missing.status_code == 404
        assert other.json()["error"]["code"] == missing.json()["error"]["code"]
        assert other.json()["error"]["message"] == f"no webhook endpoint {hook['id']}"
        for method, target, body in writes[1:6]:
            answer = client.request(method, target, json=body, headers=world.h(key))
            assert answer.status_code == 404, (key, method, target, answer.text)
        for target in reads[2:5]:
            answer = client.get(target, headers=world.h(key))
            if target == "/v1/deliveries":
                assert answer.json()["data"] == []
            else:
                assert answer.status_code == 404
        assert client.get("/v1/webhook-endpoints", headers=world.h(key)).json()["data"] == []
        filtered = client.get(
            "/v1/deliveries", params={"endpoint_id": hook["id"]}, headers=world.h(key)
        )
        assert filtered.status_code == 404
    # Nothing of A changed.
    still = client.get(path, headers=world.h("a_admin")).json()
    assert still == {k: v for k, v in hook.items() if k != "secret"}


def test_writes_are_audited_without_secrets(
    client: TestClient, world: World, engine: Engine
) -> None:
    first = _last_audit_id(engine)
    hook = _add(client, world).json()
    path = f"/v1/webhook-endpoints/{hook['id']}"
    assert client.patch(path, json={"enabled": False}, headers=world.h("a_admin")).is_success
    rotated = client.post(f"{path}/rotate-secret", headers=world.h("a_admin")).json()
    refused = client.patch(path, json={"enabled": True}, headers=world.h("a_operator"))
    assert refused.status_code == 403
    settings = client.patch(
        "/v1/notification-settings",
        json={"recipients": ["ops@example.com"]},
        headers=world.h("a_admin"),
    )
    assert settings.status_code == 200

    rows = _audit_since(engine, first)
    assert [(r.action, r.outcome) for r in rows] == [
        ("POST /v1/webhook-endpoints", "ok"),
        ("PATCH /v1/webhook-endpoints/{endpoint_id}", "ok"),
        ("POST /v1/webhook-endpoints/{endpoint_id}/rotate-secret", "ok"),
        ("PATCH /v1/webhook-endpoints/{endpoint_id}", "refused"),
        ("PATCH /v1/notification-settings", "ok"),
    ]
    assert all(r.source == "api" and r.partner_id == world.a for r in rows)
    assert rows[0].principal.startswith(f"api-key:{world.keys['a_admin'][0]}")
    assert rows[3].principal.startswith(f"api-key:{world.keys['a_operator'][0]}")
    webhook = f"webhook {hook['id']}"
    assert rows[0].before is None  # created: nothing before
    assert rows[0].after[webhook]["url"] == HOOK
    assert rows[1].before[webhook]["enabled"] is True
    assert rows[1].after[webhook]["enabled"] is False
    assert rows[4].after[f"notification_settings {world.a}"]["email_recipients"] == [
        "ops@example.com"
    ]
    everything = " ".join(repr((r.before, r.after)) for r in rows)
    assert hook["secret"] not in everything and rotated["secret"] not in everything
    assert "whsec_" not in everything


def test_create_replays_under_its_idempotency_key(
    client: TestClient, world: World, engine: Engine
) -> None:
    headers = world.h("a_admin", **{"Idempotency-Key": "hook-1"})
    first = client.post("/v1/webhook-endpoints", json={"url": HOOK}, headers=headers)
    assert first.status_code == 201 and first.json()["secret"].startswith("whsec_")
    again = client.post("/v1/webhook-endpoints", json={"url": HOOK}, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["cache-control"] == "no-store"
    # The secret never rests in plain text: a replay answers the endpoint without it.
    assert again.json() == {**first.json(), "secret": None}
    with transaction(engine) as s:
        count = s.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.partner_id == world.a)
        )
    assert count == 1
    other = client.post("/v1/webhook-endpoints", json={"url": HOOK + "/other"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_lists_page_within_the_hard_maximum(client: TestClient, world: World) -> None:
    admin = world.h("a_admin")
    made = [_add(client, world).json()["id"] for _ in range(3)]
    seen: list[int] = []
    after: int | None = None
    while True:
        params = {"limit": 2} | ({"after": after} if after is not None else {})
        page = client.get("/v1/webhook-endpoints", params=params, headers=admin).json()
        seen += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            break
        after = page["next_after"]
    assert seen == made
    for hook in made:
        client.post(f"/v1/webhook-endpoints/{hook}/test", headers=admin)
    first = client.get("/v1/deliveries", params={"limit": 2}, headers=admin).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = client.get(
        "/v1/deliveries", params={"limit": 2, "before": first["next_before"]}, headers=admin
    ).json()
    assert rest["has_more"] is False
    assert [d["endpoint_id"] for d in first["data"] + rest["data"]] == made[::-1]
    for path in ("/v1/webhook-endpoints", "/v1/deliveries", f"/v1/deliveries/{1}/attempts"):
        too_big = client.get(path, params={"limit": 101}, headers=admin)
        assert too_big.status_code == 422, (path, too_big.text)

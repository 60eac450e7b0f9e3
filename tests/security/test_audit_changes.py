"""The audit log's before/after: the objects a write changed, as they were and as they are,
through every door; refused writes recorded as such and leaving no other trace."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.security.conftest import World
from tests.security.test_authorization_matrix import _console_login, tc3_call

from creditline.db import transaction
from creditline.db.tables import AllocationRecord, AuditEvent


def _since(engine: Engine, first: int) -> list[AuditEvent]:
    with transaction(engine) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.id > first).order_by("id")))


def _last_id(engine: Engine) -> int:
    with transaction(engine) as s:
        return int(s.scalar(select(func.coalesce(func.max(AuditEvent.id), 0))) or 0)


def _records(engine: Engine) -> int:
    with transaction(engine) as s:
        return int(s.scalar(select(func.count()).select_from(AllocationRecord)) or 0)


def test_rest_allocation_keeps_credit_and_pool_before_and_after(
    client: TestClient, world: World, engine: Engine
) -> None:
    first = _last_id(engine)
    answer = client.post(
        f"/v1/customers/{world.a_customer}/allocate",
        json={"amount": "3.00"},
        headers=world.h("a_operator"),
    )
    assert answer.status_code == 200, answer.text
    (row,) = _since(engine, first)
    customer, pool = f"customer {world.a_customer}", f"pool {world.a}"
    assert set(row.before) == {customer, pool}
    was, now = row.before[customer], row.after[customer]
    assert float(now["total_credit"]) - float(was["total_credit"]) == 3.0
    assert float(now["available"]) - float(was["available"]) == 3.0
    assert now["total_credit"] == answer.json()["customer"]["total_credit"]
    assert float(row.after[pool]["pool_allocated"]) - float(row.before[pool]["pool_allocated"]) == 3
    assert row.before[pool]["pool_total"] == row.after[pool]["pool_total"]
    assert row.after["request"] == {"amount": "3.00"}


def test_refused_rest_write_is_recorded_and_leaves_no_other_trace(
    client: TestClient, world: World, engine: Engine
) -> None:
    first, records = _last_id(engine), _records(engine)
    too_much = client.post(
        f"/v1/customers/{world.a_customer}/withdraw",
        json={"amount": "999999999.00"},
        headers=world.h("a_operator"),
    )
    assert too_much.status_code == 409
    viewer = client.post(
        f"/v1/customers/{world.a_customer}/allocate",
        json={"amount": "1.00"},
        headers=world.h("a_viewer"),
    )
    assert viewer.status_code == 403
    other = client.patch(
        f"/v1/customers/{world.b_customer}", json={"remark": "x"}, headers=world.h("a_admin")
    )
    assert other.status_code == 404
    anonymous = client.post(f"/v1/customers/{world.a_customer}/allocate", json={"amount": "1"})
    assert anonymous.status_code == 401
    rows = _since(engine, first)
    assert [(r.outcome, r.after["error"]["code"]) for r in rows] == [
        ("refused", too_much.json()["error"]["code"]),
        ("refused", viewer.json()["error"]["code"]),
        ("refused", other.json()["error"]["code"]),
    ]
    assert rows[1].principal.startswith(f"api-key:{world.keys['a_viewer'][0]}")
    assert all(r.before is None for r in rows)
    assert _records(engine) == records


def test_tc3_remark_and_refusal(client: TestClient, world: World, engine: Engine) -> None:
    first = _last_id(engine)
    done = tc3_call(
        client,
        world,
        "a_operator",
        "ModifyClientRemark",
        {"ClientUin": str(world.a_customer), "Remark": "after"},
    )
    assert "Error" not in done
    refused = tc3_call(
        client,
        world,
        "a_viewer",
        "ModifyClientRemark",
        {"ClientUin": str(world.a_customer), "Remark": "viewer"},
    )
    assert "Error" in refused
    ok, no = _since(engine, first)
    customer = f"customer {world.a_customer}"
    assert ok.outcome == "ok" and ok.after[customer]["remark"] == "after"
    assert ok.before[customer]["remark"] != "after"
    assert no.outcome == "refused" and no.action == "ModifyClientRemark"
    assert no.after["error"]["code"] == refused["Error"]["Code"]


def test_console_settings_and_error_page(client: TestClient, world: World, engine: Engine) -> None:
    csrf = _console_login(client, world.users["a_admin"])
    first, records = _last_id(engine), _records(engine)
    saved = client.post(
        "/settings/thresholds", data={"csrf_token": csrf, "thresholds": "50, 80, 100"}
    )
    assert saved.status_code == 200, saved.text[:300]
    refused = client.post(
        f"/customers/{world.a_customer}/credit",
        data={"csrf_token": csrf, "amount": "-999999999.00", "remark": ""},
    )
    assert refused.status_code == 422, refused.text[:300]
    thresholds, error_page = _since(engine, first)
    pool = f"pool {world.a}"
    assert thresholds.outcome == "ok"
    assert thresholds.after[pool]["thresholds"] == [50, 80, 100]
    assert thresholds.before[pool]["thresholds"] != [50, 80, 100]
    assert error_page.outcome == "refused" and error_page.before is None
    assert error_page.after["error"]["message"]
    assert _records(engine) == records


def test_console_new_key_and_webhook_show_no_secret(
    client: TestClient, world: World, engine: Engine
) -> None:
    csrf = _console_login(client, world.users["a_admin"])
    first = _last_id(engine)
    client.post("/settings/keys", data={"csrf_token": csrf, "role": "viewer", "name": "k2"})
    hooked = client.post(
        "/settings/webhooks", data={"csrf_token": csrf, "url": "https://hooks.example/y"}
    )
    key_row, hook_row = _since(engine, first)
    (key_label,) = [k for k in key_row.after if k.startswith("api_key ")]
    assert key_row.after[key_label]["name"] == "k2" and key_label not in (key_row.before or {})
    assert "secret_encrypted" not in key_row.after[key_label]
    (hook_label,) = [k for k in hook_row.after if k.startswith("webhook ")]
    assert hook_row.after[hook_label]["url"] == "https://hooks.example/y"
    assert "secret" not in hook_row.after[hook_label]
    shown = re.search(r"whsec_[A-Za-z0-9+/=]+", hooked.text)
    assert shown and shown.group(0) not in str(hook_row.after)


def test_console_audit_page_for_platform_admins(
    client: TestClient, world: World, engine: Engine
) -> None:
    for n in range(3):
        client.post(
            f"/v1/customers/{world.a_customer}/allocate",
            json={"amount": "1.00", "remark": f"page {n}"},
            headers=world.h("a_operator"),
        )
    client.patch(
        f"/v1/customers/{world.a_customer}", json={"remark": "<b>x</b>"}, headers=world.h("a_admin")
    )
    _console_login(client, world.users["platform"])
    page = client.get("/platform/audit")
    assert page.status_code == 200
    assert 'href="/platform/audit"' in page.text  # in the sidebar
    assert page.text.count('data-testid="audit-row"') >= 5
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    by_action = client.get("/platform/audit", params={"action": "/allocate"})
    assert by_action.text.count('data-testid="audit-row"') == 3
    assert "PATCH /v1/customers/{uin}" not in by_action.text
    operator = world.keys["a_operator"][0]
    by_principal = client.get("/platform/audit", params={"principal": operator})
    assert by_principal.text.count('data-testid="audit-row"') == 3
    later = client.get("/platform/audit", params={"since": "2999-01-01"})
    assert 'data-testid="audit-row"' not in later.text
    earlier = client.get("/platform/audit", params={"until": "2000-01-01"})
    assert 'data-testid="audit-row"' not in earlier.text
    bad = client.get("/platform/audit", params={"since": "yesterday"})
    assert bad.status_code == 400


def test_console_audit_pages_back(client: TestClient, world: World, engine: Engine) -> None:
    from creditline.console.audit import PAGE_SIZE

    with transaction(engine) as s:
        count = s.scalar(select(func.count()).select_from(AuditEvent)) or 0
    for n in range(PAGE_SIZE + 1 - count):
        client.patch(
            f"/v1/customers/{world.a_customer}",
            json={"remark": f"r{n}"},
            headers=world.h("a_admin"),
        )
    _console_login(client, world.users["platform"])
    first = client.get("/platform/audit")
    assert first.text.count('data-testid="audit-row"') == PAGE_SIZE
    older = re.search(r'href="/platform/audit\?([^"]*before=\d+[^"]*)"', first.text)
    assert older, "an Older link"
    second = client.get("/platform/audit?" + older.group(1).replace("&amp;", "&"))
    assert second.text.count('data-testid="audit-row"') >= 1
    assert "Newest" in second.text


def test_console_viewer_sees_messages_but_cannot_mark_them_read(
    client: TestClient, world: World, engine: Engine
) -> None:
    csrf = _console_login(client, world.users["a_viewer"])
    page = client.get("/messages")
    assert page.status_code == 200
    assert 'class="alarm unread"' in page.text  # an operator would see its button
    assert "Mark read" not in page.text and "Mark all read" not in page.text
    first = _last_id(engine)
    forged = client.post("/messages/read", data={"csrf_token": csrf}, follow_redirects=False)
    assert forged.status_code == 403
    one = client.post(
        f"/messages/{world.ids['alarm']}/read", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert one.status_code == 403
    rows = _since(engine, first)
    assert [(r.outcome, r.after["error"]["code"]) for r in rows] == [("refused", "forbidden")] * 2

"""Hardening: an audit row for every write and login, redacted and for platform eyes only;
webhook signing secrets encrypted at rest; no secret or password in any log line."""

from __future__ import annotations

import json
import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.security.conftest import PASSWORD, World
from tests.security.test_authorization_matrix import _console_login, tc3_call

from creditline.db import transaction
from creditline.db.tables import AuditEvent, WebhookEndpoint

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _events(engine: Engine) -> list[AuditEvent]:
    with transaction(engine) as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_every_door_writes_an_audit_row(
    client: TestClient, world: World, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = len(_events(engine))
    # REST write, with a request id of the caller's.
    answer = client.post(
        f"/v1/customers/{world.a_customer}/allocate",
        json={"amount": "2.00", "remark": "audited"},
        headers={**world.h("a_operator"), "X-Request-Id": "req-audit-1"},
    )
    assert answer.status_code == 200
    # Tencent-compatible write.
    response = tc3_call(
        client,
        world,
        "a_operator",
        "ModifyClientRemark",
        {"ClientUin": str(world.a_customer), "Remark": "via tc3"},
    )
    assert "Error" not in response
    # Console: a failed login, a login, a form that creates an API key (whose secret is
    # shown once and must not reach the log).
    page = client.get("/login")
    token = _CSRF.search(page.text)
    assert token
    client.post(
        "/login",
        data={"email": world.users["a_admin"], "password": "wrong", "csrf_token": token.group(1)},
    )
    csrf = _console_login(client, world.users["a_admin"])
    made = client.post(
        "/settings/keys", data={"csrf_token": csrf, "role": "viewer", "name": "console key"}
    )
    assert made.status_code == 200, made.text[:300]
    hooked = client.post(
        "/settings/webhooks", data={"csrf_token": csrf, "url": "https://hooks.example/x"}
    )
    assert hooked.status_code == 200
    shown = re.search(r"whsec_[A-Za-z0-9+/=]+", hooked.text)
    assert shown, "the new webhook secret is shown once"

    events = _events(engine)[before:]
    by_source = {e.source for e in events}
    assert {"api", "tc3", "console"} <= by_source
    rest = next(e for e in events if e.source == "api")
    assert rest.action == "POST /v1/customers/{uin}/allocate"
    assert rest.request_id == "req-audit-1" and rest.source_ip
    assert rest.principal.startswith(f"api-key:{world.keys['a_operator'][0]}")
    assert rest.partner_id == world.a
    assert rest.after["request"]["remark"] == "audited"
    assert rest.after["answer"]["record"]["change"] == "2.00"
    tc3 = next(e for e in events if e.source == "tc3")
    assert tc3.action == "ModifyClientRemark" and tc3.after["request"]["Remark"] == "via tc3"
    logins = [e for e in events if e.action == "login"]
    assert [e.outcome for e in logins] == ["refused", "ok"]
    assert all(e.principal == f"user:{world.users['a_admin']}" for e in logins)
    # Nothing secret in any audit row, nor in any log line of these requests.
    stored = json.dumps([[e.principal, e.before, e.after] for e in events])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    secrets = [
        world.keys["a_operator"][1],
        PASSWORD,
        "wrong",
        shown.group(0),
        client.cookies.get("creditline_session") or "no-session-cookie",
    ]
    for secret in secrets:
        assert secret not in stored, f"{secret[:6]}… is in the audit log"
        assert secret not in logged, f"{secret[:6]}… is in the log"


def test_redaction_keeps_ids_and_hides_secrets() -> None:
    from creditline.audit import REDACTED, redact

    kept = redact(
        {
            "secret_id": "AKID1",
            "secret_key": "s3cret",
            "password": "pw",
            "form": {"csrf_token": "t", "note": "whsec_abc", "name": "<b>x</b>"},
            "items": [{"Authorization": "Bearer x"}],
        }
    )
    assert kept == {
        "secret_id": "AKID1",
        "secret_key": REDACTED,
        "password": REDACTED,
        "form": {"csrf_token": REDACTED, "note": REDACTED, "name": "<b>x</b>"},
        "items": [{"Authorization": REDACTED}],
    }


def test_only_the_platform_reads_the_audit_log(client: TestClient, world: World) -> None:
    client.post(
        f"/v1/customers/{world.a_customer}/allocate",
        json={"amount": "1.00"},
        headers=world.h("a_admin"),
    )
    page = client.get("/v1/platform/audit", headers=world.h("platform"))
    assert page.status_code == 200
    assert any(e["action"].endswith("/allocate") for e in page.json()["data"])
    for principal in ("a_admin", "b_admin", "a_customer"):
        assert client.get("/v1/platform/audit", headers=world.h(principal)).status_code == 403
    assert client.get("/v1/platform/audit").status_code == 401


def test_webhook_secrets_are_encrypted_at_rest(
    client: TestClient, world: World, engine: Engine
) -> None:
    with transaction(engine) as s:
        stored = s.scalars(select(WebhookEndpoint)).all()
    assert stored
    for endpoint in stored:
        assert not endpoint.secret.startswith("whsec_"), "a webhook secret is stored in clear"
        from creditline.notify.endpoints import secret_of

        with transaction(engine) as s:
            assert secret_of(s, endpoint).startswith("whsec_")

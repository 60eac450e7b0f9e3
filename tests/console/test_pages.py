"""The console through its HTTP surface (TestClient), on both engines: sessions and their
defences, every page area, and another partner's objects looking exactly like missing ones."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from tests.console.conftest import PASSWORD, World, csrf_of, login

from creditline.console import customers as console_customers
from creditline.db import transaction
from creditline.db.tables import AllocationRecord, Customer, Partner
from creditline.ledger import usage
from creditline.ledger.verify import verify


def _customer(engine: Engine, uin: int) -> Customer:
    with transaction(engine) as s:
        return s.execute(select(Customer).where(Customer.uin == uin)).scalar_one()


def _record_count(engine: Engine) -> int:
    with transaction(engine) as s:
        return s.execute(select(func.count()).select_from(AllocationRecord)).scalar_one()


def test_login_logout_and_pages_need_a_session(client: TestClient, world: World) -> None:
    assert client.get("/customers", follow_redirects=False).headers["location"] == "/login"
    page = client.get("/login")
    wrong = client.post(
        "/login",
        data={"email": "admin@acme.example", "password": "nope", "csrf_token": csrf_of(page.text)},
    )
    assert wrong.status_code == 401
    assert "Wrong email or password" in wrong.text
    token = login(client, "admin@acme.example")
    dashboard = client.get("/")
    assert "Acme Cloud" in dashboard.text and "10,000.00" in dashboard.text
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_failed_logins_are_throttled(client: TestClient, world: World) -> None:
    page = client.get("/login")
    token = csrf_of(page.text)
    for _ in range(5):
        r = client.post(
            "/login", data={"email": "admin@acme.example", "password": "x", "csrf_token": token}
        )
        assert r.status_code == 401
    # Even the right password waits now.
    r = client.post(
        "/login", data={"email": "admin@acme.example", "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 429
    assert "too many failed logins" in r.text.lower()


def test_cookies_and_security_headers(client: TestClient, world: World) -> None:
    page = client.get("/login")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    r = client.post(
        "/login",
        data={
            "email": "admin@acme.example",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure


def test_secure_cookie_over_tls(app: object, world: World) -> None:
    with TestClient(app, base_url="https://testserver") as tls:  # type: ignore[arg-type]
        page = tls.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()


def test_login_form_without_csrf_token_is_refused(client: TestClient, world: World) -> None:
    client.get("/login")
    r = client.post("/login", data={"email": "admin@acme.example", "password": PASSWORD})
    assert r.status_code == 403


def test_search_sort_and_pages(client: TestClient, world: World) -> None:
    login(client, "viewer@acme.example")
    assert "Beta Labs" in client.get("/customers?q=beta").text
    assert "Alpha Games" not in client.get("/customers?q=beta").text
    by_uin = client.get(f"/customers?q={world.a_customers[2]}").text
    assert "Gamma Retail" in by_uin and "Beta Labs" not in by_uin
    assert "Gamma Retail" in client.get("/customers?q=ops2@gamma").text
    assert "Alpha Games" in client.get("/customers?q=tier%200").text
    ordered = client.get("/customers?sort=name&dir=asc").text
    assert ordered.index("Alpha Games") < ordered.index("Beta Labs") < ordered.index("Gamma")
    assert "Bravo Customer" not in client.get("/customers").text


def test_pages_follow_one_another_without_counting_the_matches(
    client: TestClient, world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """My Customers pages with Previous / Next from one row past the page: it never counts
    every match (a broad search of a large partner would read all of them per page)."""
    monkeypatch.setattr(console_customers, "PAGE_SIZE", 2)
    login(client, "viewer@acme.example")
    seen: list[str] = []

    def remember(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.lower())

    event.listen(engine, "before_cursor_execute", remember)
    try:
        first = client.get("/customers?sort=name&dir=asc").text
        second = client.get("/customers?sort=name&dir=asc&page=2").text
        beyond = client.get("/customers?sort=name&dir=asc&page=3").text
        searched = client.get("/customers?q=a&sort=name&dir=asc").text
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert not [s for s in seen if "count(" in s and "customers" in s]
    assert "Alpha Games" in first and "Beta Labs" in first and "Gamma Retail" not in first
    assert 'rel="next"' in first and 'rel="prev"' not in first and "Page 1<" in first
    assert "Customers 1\u20132" in first
    assert "Gamma Retail" in second and "Alpha Games" not in second
    assert 'rel="prev"' in second and 'rel="next"' not in second and "Customers 3\u20133" in second
    assert "No customers match." in beyond and 'rel="prev"' in beyond
    # A search pages the same way: three names have an "a", two per page.
    assert 'rel="next"' in searched and "Gamma Retail" not in searched


def test_allocate_and_withdraw_beyond_the_maximum(
    client: TestClient, world: World, engine: Engine
) -> None:
    token = login(client, "operator@acme.example")
    uin = world.a_customers[1]
    form = client.get(f"/customers/{uin}/credit").text
    assert "9,000.00" in form  # pool remaining beside the form
    r = client.post(
        f"/customers/{uin}/credit", data={"amount": "250.50", "remark": "Q3", "csrf_token": token}
    )
    assert r.status_code == 200
    assert "Allocated 250.50 USD" in r.text
    assert _customer(engine, uin).total_credit == 25_050
    before = _record_count(engine)
    refused = client.post(
        f"/customers/{uin}/credit", data={"amount": "-300", "remark": "", "csrf_token": token}
    )
    assert refused.status_code == 422
    assert "at most 250.50 withdrawable" in refused.text
    assert _customer(engine, uin).total_credit == 25_050
    assert _record_count(engine) == before
    bad = client.post(
        f"/customers/{uin}/credit", data={"amount": "1.005", "remark": "", "csrf_token": token}
    )
    assert bad.status_code == 422 and "two decimal places" in bad.text
    with transaction(engine) as s:
        assert verify(s) == []


def test_forged_form_without_csrf_is_refused(
    client: TestClient, world: World, engine: Engine
) -> None:
    login(client, "admin@acme.example")
    uin = world.a_customers[1]
    for token in (None, "0" * 64):
        data = {"amount": "100"} | ({"csrf_token": token} if token else {})
        r = client.post(f"/customers/{uin}/credit", data=data)
        assert r.status_code == 403
    assert _customer(engine, uin).total_credit == 0


def test_csrf_token_of_another_session_is_refused(
    app: object, world: World, engine: Engine
) -> None:
    with TestClient(app) as one, TestClient(app) as two:  # type: ignore[arg-type]
        token_one = login(one, "admin@acme.example")
        login(two, "operator@acme.example")
        r = two.post(
            f"/customers/{world.a_customers[1]}/credit",
            data={"amount": "100", "csrf_token": token_one},
        )
        assert r.status_code == 403
    assert _customer(engine, world.a_customers[1]).total_credit == 0


def test_viewer_sees_no_write_buttons_and_cannot_post(
    client: TestClient, world: World, engine: Engine
) -> None:
    token = login(client, "viewer@acme.example")
    page = client.get("/customers").text
    assert "Setting Credit" not in page and "Bulk allocation" not in page
    assert "Save thresholds" not in client.get(f"/customers/{world.a_customers[0]}").text
    assert "Add user" not in client.get("/settings").text
    uin = world.a_customers[1]
    assert client.get(f"/customers/{uin}/credit").status_code == 403
    r = client.post(f"/customers/{uin}/credit", data={"amount": "100", "csrf_token": token})
    assert r.status_code == 403
    r = client.post("/settings/thresholds", data={"thresholds": "50", "csrf_token": token})
    assert r.status_code == 403
    assert _customer(engine, uin).total_credit == 0


def test_another_partners_customer_is_missing(
    client: TestClient, world: World, engine: Engine
) -> None:
    token = login(client, "admin@bravo.example")
    theirs = world.a_customers[0]
    for path in (
        f"/customers/{theirs}",
        f"/customers/{theirs}/credit",
        f"/customers/{theirs}/usage-by-day.svg",
        f"/customers/{theirs}/usage-by-product.svg",
        "/customers/999999999999",
    ):
        assert client.get(path).status_code == 404, path
    r = client.post(f"/customers/{theirs}/credit", data={"amount": "1", "csrf_token": token})
    assert r.status_code == 404
    r = client.post(
        f"/customers/{theirs}/thresholds", data={"thresholds": "50", "csrf_token": token}
    )
    assert r.status_code == 404
    assert str(theirs) not in client.get("/records").text
    assert str(theirs) not in client.get(f"/records.csv?customer={theirs}").text
    assert client.get("/distributors").status_code == 404  # Bravo is no distributor
    assert client.get("/platform/partners").status_code == 404
    assert _customer(engine, theirs).total_credit == 100_000


def test_records_filter_and_csv(client: TestClient, world: World) -> None:
    token = login(client, "operator@acme.example")
    for uin, amount in ((world.a_customers[1], "10.00"), (world.a_customers[2], "20.00")):
        client.post(f"/customers/{uin}/credit", data={"amount": amount, "csrf_token": token})
    page = client.get(f"/records?customer={world.a_customers[2]}").text
    assert "20.00" in page and "+10.00" not in page
    by_operator = client.get("/records?operator=operator@acme.example&kind=allocation").text
    assert "+10.00" in by_operator and "+20.00" in by_operator
    assert "+1,000.00" not in by_operator  # made by "setup"
    download = client.get("/records.csv?operator=operator@acme.example")
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert sorted(r["change"] for r in rows) == ["10.00", "20.00"]
    assert {r["operator"] for r in rows} == {"operator@acme.example"}
    assert client.get("/records?since=yesterday").status_code == 400


def test_thresholds_default_and_per_customer(
    client: TestClient, world: World, engine: Engine
) -> None:
    token = login(client, "admin@acme.example")
    r = client.post("/settings/thresholds", data={"thresholds": "50, 80", "csrf_token": token})
    assert "Default thresholds saved: 50%, 80%" in r.text
    bad = client.post("/settings/thresholds", data={"thresholds": "0", "csrf_token": token})
    assert bad.status_code == 422 and "outside 1-1000" in bad.text
    uin = world.a_customers[0]
    r = client.post(f"/customers/{uin}/thresholds", data={"thresholds": "60", "csrf_token": token})
    assert "Thresholds saved" in r.text and "this customer&#39;s own" in r.text
    with transaction(engine) as s:
        assert s.get(Partner, world.a).thresholds == [50, 80]  # type: ignore[union-attr]
    assert _customer(engine, uin).thresholds == [60]


def test_alarm_reaches_the_message_centre(client: TestClient, world: World, engine: Engine) -> None:
    token = login(client, "viewer@acme.example")
    assert 'data-testid="unread"' not in client.get("/").text
    uin = world.a_customers[0]
    with transaction(engine) as s:
        usage.ingest(
            s,
            usage.parse_batch(
                [
                    (
                        1,
                        {
                            "event_id": "u1",
                            "customer_uin": uin,
                            "product": "cvm",
                            "list_amount": "800.00",
                            "voucher_amount": "0",
                            "occurred_at": "2026-01-01T00:00:00Z",
                        },
                    )
                ]
            ),
        )
    home = client.get("/").text
    assert 'data-testid="unread">1<' in home
    messages = client.get("/messages").text
    assert "Alpha Games" in messages and "75%" in messages
    # A viewer only looks (issue 3): no button, and a forged form is refused.
    assert "Mark all read" not in messages
    refused = client.post("/messages/read", data={"csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 403
    assert 'data-testid="unread">1<' in client.get("/").text
    token = login(client, "operator@acme.example")
    assert "Mark all read" in client.get("/messages").text
    client.post("/messages/read", data={"csrf_token": token})
    assert 'data-testid="unread"' not in client.get("/").text


def test_bulk_preview_then_apply_all_or_nothing(
    client: TestClient, world: World, engine: Engine
) -> None:
    token = login(client, "operator@acme.example")
    c0, c1, c2 = world.a_customers
    good = f"customer_uin,amount,remark\n{c1},100.00,first\n{c2},50,second\n{c1},-30,back\n"
    preview = client.post(
        "/bulk/preview",
        data={"csrf_token": token},
        files={"file": ("credit.csv", good.encode(), "text/csv")},
    )
    assert preview.status_code == 200
    assert preview.text.count("✓ OK") == 3 and "Apply all 3 rows" in preview.text
    assert _customer(engine, c1).total_credit == 0  # a preview changes nothing
    applied = client.post("/bulk/apply", data={"csrf_token": token, "text": good})
    assert "Applied all 3 rows" in applied.text
    assert _customer(engine, c1).total_credit == 7_000
    assert _customer(engine, c2).total_credit == 5_000
    before = _record_count(engine)
    bad = (
        f"customer_uin,amount,remark\n{c2},10,ok\n"
        f"{world.b_customer},5,theirs\n{c0},-5000,too much\n"
    )
    refused = client.post("/bulk/apply", data={"csrf_token": token, "text": bad})
    assert refused.status_code == 422
    assert "no customer" in refused.text and "withdrawable" in refused.text
    assert _record_count(engine) == before
    assert _customer(engine, c2).total_credit == 5_000
    with transaction(engine) as s:
        sources = s.execute(
            select(AllocationRecord.source).where(AllocationRecord.customer_uin == c2)
        ).scalars()
        assert set(sources) == {"bulk"}
        assert verify(s) == []


def test_distributor_allocates_pool_to_sub_reseller(
    client: TestClient, world: World, engine: Engine
) -> None:
    token = login(client, "admin@acme.example")
    assert "Acme Sub" in client.get("/distributors").text
    r = client.post(
        f"/distributors/{world.sub}/pool", data={"amount": "500.00", "csrf_token": token}
    )
    assert "is now 500.00" in r.text
    too_much = client.post(
        f"/distributors/{world.sub}/pool", data={"amount": "99999", "csrf_token": token}
    )
    assert too_much.status_code == 422
    theirs = client.post(f"/distributors/{world.b}/pool", data={"amount": "1", "csrf_token": token})
    assert theirs.status_code == 404
    with transaction(engine) as s:
        assert s.get(Partner, world.sub).pool_total == 50_000  # type: ignore[union-attr]
        assert verify(s) == []


def test_platform_admin_creates_partner_and_grants(
    client: TestClient, world: World, engine: Engine
) -> None:
    token = login(client, "staff@vendor.example")
    assert "Bravo Hosting" in client.get("/platform/partners").text
    assert client.get("/").status_code == 404  # a platform admin has no partner pages
    r = client.post(
        "/platform/partners", data={"name": "Delta", "kind": "reseller", "csrf_token": token}
    )
    assert "Created partner Delta" in r.text
    r = client.post(
        f"/platform/partners/{world.b}/grants", data={"amount": "250.00", "csrf_token": token}
    )
    assert "Pool is now 5,250.00" in r.text
    r = client.post(
        f"/platform/partners/{world.b}/grants", data={"amount": "-99999", "csrf_token": token}
    )
    assert r.status_code == 422
    with transaction(engine) as s:
        assert s.get(Partner, world.b).pool_total == 525_000  # type: ignore[union-attr]


def test_partner_admin_adds_and_removes_users(client: TestClient, world: World) -> None:
    token = login(client, "admin@acme.example")
    r = client.post(
        "/settings/users",
        data={
            "email": "new@acme.example",
            "password": PASSWORD,
            "role": "viewer",
            "csrf_token": token,
        },
    )
    assert "Added new@acme.example as viewer" in r.text
    assert "admin@bravo.example" not in r.text
    short = client.post(
        "/settings/users",
        data={
            "email": "x@acme.example",
            "password": "short",
            "role": "viewer",
            "csrf_token": token,
        },
    )
    assert short.status_code == 422
    with TestClient(client.app) as other:
        login(other, "new@acme.example")
    page = client.get("/settings").text
    user_id = page.split("/settings/users/")[-1].split("/remove")[0]
    removed = client.post(f"/settings/users/{user_id}/remove", data={"csrf_token": token})
    assert "Removed new@acme.example" in removed.text


def test_api_key_secret_shown_once_and_revoked(client: TestClient, world: World) -> None:
    token = login(client, "admin@acme.example")
    r = client.post(
        "/settings/keys", data={"name": "billing sync", "role": "viewer", "csrf_token": token}
    )
    assert r.status_code == 200 and "not shown again" in r.text, r.text[r.text.find("alert") :][
        :300
    ]
    assert r.headers["cache-control"] == "no-store"
    secret_key = r.text.split('data-testid="secret-key">')[1].split("<")[0]
    secret_id = r.text.split('data-testid="secret-id">')[1].split("<")[0]
    assert len(secret_key) >= 32
    later = client.get("/settings").text
    assert secret_id in later and secret_key not in later
    revoked = client.post(f"/settings/keys/{secret_id}/revoke", data={"csrf_token": token})
    assert "Revoked API key billing sync" in revoked.text
    with TestClient(client.app) as other:
        other_token = login(other, "admin@bravo.example")
        assert secret_id not in other.get("/settings").text
        r = other.post(f"/settings/keys/{secret_id}/revoke", data={"csrf_token": other_token})
        assert r.status_code == 404


def test_credit_application_approved_by_the_platform(
    app: object, world: World, engine: Engine
) -> None:
    with TestClient(app) as partner, TestClient(app) as staff:  # type: ignore[arg-type]
        token = login(partner, "admin@bravo.example")
        r = partner.post(
            "/applications", data={"amount": "1500.00", "reason": "Q4", "csrf_token": token}
        )
        assert "for 1,500.00 USD sent" in r.text
        application_id = r.text.split("<td>")[1].split("<")[0]
        staff_token = login(staff, "staff@vendor.example")
        queue = staff.get("/platform/applications").text
        assert "Bravo Hosting" in queue and "1,500.00" in queue
        assert partner.get("/platform/applications").status_code == 404
        r = staff.post(
            f"/platform/applications/{application_id}/approve",
            data={"note": "ok", "csrf_token": staff_token},
        )
        assert "approved" in r.text
        again = staff.post(
            f"/platform/applications/{application_id}/approve", data={"csrf_token": staff_token}
        )
        assert again.status_code == 422 and "already decided" in again.text
    with transaction(engine) as s:
        assert s.get(Partner, world.b).pool_total == 650_000  # type: ignore[union-attr]
        assert verify(s) == []


def test_distributor_decides_its_sub_resellers_application(
    app: object, world: World, engine: Engine
) -> None:
    from creditline.auth import users

    with transaction(engine) as s:
        users.create_user(
            s, partner_id=world.sub, email="admin@sub.example", password=PASSWORD, role="admin"
        )
    with TestClient(app) as sub, TestClient(app) as dist:  # type: ignore[arg-type]
        token = login(sub, "admin@sub.example")
        sub.post("/applications", data={"amount": "200", "csrf_token": token})
        dist_token = login(dist, "admin@acme.example")
        queue = dist.get("/applications").text
        assert "Acme Sub" in queue
        application_id = queue.split('data-testid="approve-')[1].split('"')[0]
        r = dist.post(f"/applications/{application_id}/approve", data={"csrf_token": dist_token})
        assert "approved" in r.text
    with transaction(engine) as s:
        assert s.get(Partner, world.sub).pool_total == 20_000  # type: ignore[union-attr]
        assert verify(s) == []


def test_webhook_to_an_internal_address_is_refused(client: TestClient, world: World) -> None:
    token = login(client, "admin@acme.example")
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]:5432/"):
        r = client.post("/settings/webhooks", data={"url": url, "csrf_token": token})
        assert r.status_code == 422
        assert "must point to the public internet" in r.text and "whsec_" not in r.text
    assert "169.254.169.254" not in client.get("/settings/notifications").text


def test_email_recipients_and_webhooks(client: TestClient, world: World) -> None:
    token = login(client, "admin@acme.example")
    r = client.post(
        "/settings/notifications/email",
        data={"addresses": "finance@acme.example\nops@acme.example", "csrf_token": token},
    )
    assert "Email recipients saved" in r.text and "ops@acme.example" in r.text
    bad = client.post(
        "/settings/notifications/email", data={"addresses": "not-an-address", "csrf_token": token}
    )
    assert bad.status_code == 422
    added = client.post(
        "/settings/webhooks",
        data={"url": "https://hooks.acme.example/credit", "csrf_token": token},
    )
    assert "whsec_" in added.text
    hook_id = added.text.split('href="/settings/webhooks/')[1].split('"')[0]
    assert "whsec_" not in client.get("/settings/notifications").text  # shown once
    tested = client.post(f"/settings/webhooks/{hook_id}/test", data={"csrf_token": token})
    assert "Test event queued" in tested.text
    assert "pending" in tested.text  # the delivery log lists it
    rotated = client.post(f"/settings/webhooks/{hook_id}/rotate", data={"csrf_token": token})
    assert "whsec_" in rotated.text
    with TestClient(client.app) as other:
        other_token = login(other, "admin@bravo.example")
        assert other.get(f"/settings/webhooks/{hook_id}").status_code == 404
        r = other.post(f"/settings/webhooks/{hook_id}/remove", data={"csrf_token": other_token})
        assert r.status_code == 404
        assert "hooks.acme.example" not in other.get("/settings/notifications").text

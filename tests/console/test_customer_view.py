"""The customer view (issue 17): a partner admin invites a customer's login; the customer
logs in and sees exactly its own account — credit (a negative available shown as such),
its usage chart, its allocation history (remarks only if the partner allows), its alarms
— and none of the partner's pages."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.console.conftest import PASSWORD, World, login
from tests.ledger.scenario import charge, ingest

from creditline.db import transaction
from creditline.ledger import customer_settings


def test_invited_customer_sees_exactly_its_own_account(
    client: TestClient, world: World, engine: Engine
) -> None:
    uin = world.a_customers[0]
    csrf = login(client, "admin@acme.example")
    # A viewer may not invite; the admin may.
    invited = client.post(
        f"/customers/{uin}/users",
        data={"email": "Me@Alpha.example", "password": PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert invited.status_code == 303, invited.text
    detail = client.get(f"/customers/{uin}")
    assert "me@alpha.example" in detail.text
    client.post("/logout", data={"csrf_token": csrf})

    # 1,000.00 of credit, 1,250.00 consumed: available is -250.00.
    ingest(engine, {**charge(uin, "1250.00"), "product": "cvm"})
    login(client, "me@alpha.example")
    home = client.get("/")
    assert home.status_code == 200
    text = home.text
    assert "Alpha Games" in text and "Acme Cloud" in text
    assert "1,000.00 USD" in text and "1,250.00 USD" in text
    assert 'class="neg" data-testid="available">-250.00 USD' in text
    assert "/account/usage-by-day.svg" in text
    assert client.get("/account/usage-by-day.svg").status_code == 200
    # Amounts only: the allocation's remark is not shown (the setup's operator neither).
    assert "setup" not in text
    for other in ("Beta Labs", "Gamma Retail", "Bravo", "Pool", "tier 0"):
        assert other not in text, other
    for path in (
        "/customers",
        f"/customers/{uin}",
        f"/customers/{world.a_customers[1]}",
        f"/customers/{uin}/statements",
        "/records",
        "/messages",
        "/settings",
        "/pool-by-day.svg",
    ):
        assert client.get(path, follow_redirects=False).status_code == 404, path


def test_remarks_when_the_partner_allows(client: TestClient, world: World, engine: Engine) -> None:
    uin = world.a_customers[0]
    with transaction(engine) as s:
        from creditline.auth import users

        users.create_user(
            s,
            partner_id=world.a,
            email="me@alpha.example",
            password=PASSWORD,
            role=users.CUSTOMER_ROLE,
            customer_uin=uin,
        )
        customer_settings.update_customer_settings(s, partner_id=world.a, show_remarks=True)
    csrf = login(client, "admin@acme.example")
    client.post(
        f"/customers/{uin}/credit",
        data={"amount": "5.00", "remark": "thank-you bonus", "csrf_token": csrf},
    )
    client.post("/logout", data={"csrf_token": csrf})
    login(client, "me@alpha.example")
    assert "thank-you bonus" in client.get("/").text


def test_a_customer_login_belongs_to_the_partners_own_customer(
    client: TestClient, world: World
) -> None:
    csrf = login(client, "admin@acme.example")
    refused = client.post(
        f"/customers/{world.b_customer}/users",
        data={"email": "x@bravo.example", "password": PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert refused.status_code == 404
    client.post("/logout", data={"csrf_token": csrf})
    csrf = login(client, "viewer@acme.example")
    refused = client.post(
        f"/customers/{world.a_customers[0]}/users",
        data={"email": "x@alpha.example", "password": PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert refused.status_code == 403


def test_partner_statement_pages_and_customer_settings(
    client: TestClient, world: World, engine: Engine
) -> None:
    import io

    import pypdf

    from creditline.clock import utcnow

    uin = world.a_customers[0]
    ingest(engine, {**charge(uin, "12.34", occurred_at=utcnow().isoformat()), "product": "cos"})
    csrf = login(client, "admin@acme.example")
    page = client.get(f"/customers/{uin}/statements")
    assert page.status_code == 200
    assert "Closing available" in page.text and "cos" in page.text and "987.66" in page.text
    month = utcnow().strftime("%Y-%m")
    pdf = client.get(f"/customers/{uin}/statement.pdf?month={month}")
    assert pdf.headers["content-type"] == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Alpha Games" in text and "987.66" in text and "Acme Cloud" in text
    csv = client.get(f"/customers/{uin}/statement.csv?month={month}")
    assert csv.text.startswith("section,") and "-12.34" in csv.text
    assert client.get(f"/customers/{uin}/statements?month=2026-13").status_code == 400

    refused = client.post(
        "/settings/customers",
        data={"time_zone": "Nowhere/Else", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert refused.status_code == 422
    saved = client.post(
        "/settings/customers",
        data={
            "time_zone": "Asia/Tokyo",
            "customer_alarms": "1",
            "contact": "help@acme.example",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    with transaction(engine) as s:
        settings = customer_settings.customer_settings(s, world.a)
    assert (settings.time_zone, settings.customer_alarms, settings.show_remarks) == (
        "Asia/Tokyo",
        True,
        False,
    )
    assert "Asia/Tokyo" in client.get(f"/customers/{uin}/statements").text


def test_the_customer_sees_and_reads_its_own_alarms(
    client: TestClient, world: World, engine: Engine
) -> None:
    from tests.notify.support import drain

    from creditline.auth import users
    from creditline.config import Settings
    from creditline.notify.worker import Worker

    mine, other = world.a_customers[0], world.a_customers[1]
    with transaction(engine) as s:
        for uin, email in ((mine, "me@alpha.example"), (other, "them@beta.example")):
            users.create_user(
                s,
                partner_id=world.a,
                email=email,
                password=PASSWORD,
                role=users.CUSTOMER_ROLE,
                customer_uin=uin,
            )
        customer_settings.set_customer_alarms(
            s, partner_id=world.a, customer_uin=mine, enabled=True
        )
    login(client, "me@alpha.example")
    assert "No alarms." in client.get("/").text
    # 950.00 of 1,000.00 in one change: one alarm, naming 90 %.
    ingest(engine, {**charge(mine, "950.00"), "product": "cvm"})
    drain(Worker(engine, Settings()))
    page = client.get("/").text
    assert '<tr class="unread">' in page and "90%" in page and "950.00" in page
    assert "Mark all read" in page
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    read = client.post("/account/alarms/read", data={"csrf_token": csrf}, follow_redirects=False)
    assert read.status_code == 303
    page = client.get("/").text
    assert '<tr class="unread">' not in page and "Mark all read" not in page and "90%" in page
    client.post("/logout", data={"csrf_token": csrf})
    # The other customer receives no alarms (the partner's setting is off) and sees none.
    login(client, "them@beta.example")
    page = client.get("/").text
    assert "alarms are not sent to you" in page and "90%" not in page

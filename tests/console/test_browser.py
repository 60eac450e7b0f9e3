"""The Partner Center in a real browser (Debian's Chromium driven by Playwright) against a
live server, on both engines: every step of the seed's flow and the console's defences."""

from __future__ import annotations

import csv
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from tests.console.conftest import PASSWORD, build_world

from creditline.db import transaction
from creditline.db.tables import AllocationRecord, Customer
from creditline.ledger import usage

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("CREDITLINE_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_api.Browser]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def server(engine: Engine) -> Iterator[str]:
    """The real application (REST and console) on a free port, in a background thread."""
    import uvicorn

    from creditline.app import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(engine=engine, worker=False), host="127.0.0.1", port=port, log_level="warning"
    )
    live = uvicorn.Server(config)
    thread = threading.Thread(target=live.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not live.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    live.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def page(browser: playwright_api.Browser, server: str) -> Iterator[playwright_api.Page]:
    context = browser.new_context(base_url=server, accept_downloads=True)
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


def login(page: playwright_api.Page, email: str) -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def _credit(engine: Engine, uin: int) -> int:
    with transaction(engine) as s:
        return s.execute(select(Customer.total_credit).where(Customer.uin == uin)).scalar_one()


def _records(engine: Engine) -> int:
    with transaction(engine) as s:
        return s.execute(select(func.count()).select_from(AllocationRecord)).scalar_one()


def test_login_and_logout(page: playwright_api.Page, engine: Engine) -> None:
    build_world(engine)
    page.goto("/login")
    page.fill("input[name=email]", "admin@acme.example")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "Wrong email or password" in page.inner_text("[data-testid=error]")
    login(page, "admin@acme.example")
    assert page.inner_text("[data-testid=pool-remaining]") == "9,000.00"
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto("/customers")
    assert page.url.endswith("/login")


def test_search(page: playwright_api.Page, engine: Engine) -> None:
    world = build_world(engine)
    login(page, "viewer@acme.example")
    page.click("text=My Customers")
    page.fill("input[name=q]", "gamma")
    page.click("form.search button")
    rows = page.locator("[data-testid=customers] tbody tr")
    assert rows.count() == 1
    assert "Gamma Retail" in rows.first.inner_text()
    page.fill("input[name=q]", str(world.a_customers[1]))
    page.click("form.search button")
    assert "Beta Labs" in page.locator("[data-testid=customers] tbody tr").first.inner_text()


def test_allocate_then_withdraw_more_than_the_maximum(
    browser: playwright_api.Browser, page: playwright_api.Page, server: str, engine: Engine
) -> None:
    world = build_world(engine)
    uin = world.a_customers[1]
    login(page, "operator@acme.example")
    page.goto(f"/customers?q={uin}")
    page.click("[data-testid=setting-credit]")
    assert page.inner_text("[data-testid=pool-remaining]") == "9,000.00"
    assert page.inner_text("[data-testid=max-withdrawable]") == "0.00"
    page.fill("#amount", "300.00")
    page.fill("input[name=remark]", "first month")
    page.click("text=OK")
    assert "Allocated 300.00 USD" in page.inner_text("[data-testid=flash]")
    assert page.inner_text(f"tr[data-uin='{uin}'] [data-testid=total-credit]") == "300.00"
    before = _records(engine)

    # Before submit: the browser explains and does not send the form.
    page.click("[data-testid=setting-credit]")
    page.fill("#amount", "-500")
    assert "maximum withdrawable" in page.inner_text("#amount-check")
    page.click("text=OK")
    assert "/credit" in page.url
    assert _credit(engine, uin) == 30_000

    # After submit: without JavaScript the server refuses and says why.
    context = browser.new_context(base_url=server, java_script_enabled=False)
    plain = context.new_page()
    login(plain, "operator@acme.example")
    plain.goto(f"/customers/{uin}/credit")
    plain.fill("#amount", "-500")
    plain.click("text=OK")
    assert "at most 300.00 withdrawable" in plain.inner_text("[data-testid=error]")
    context.close()
    assert _credit(engine, uin) == 30_000
    assert _records(engine) == before


def test_records_filter_and_csv_download(page: playwright_api.Page, engine: Engine) -> None:
    world = build_world(engine)
    login(page, "operator@acme.example")
    for uin, amount in ((world.a_customers[1], "11.00"), (world.a_customers[2], "22.00")):
        page.goto(f"/customers/{uin}/credit")
        page.fill("#amount", amount)
        page.click("text=OK")
    page.click("text=Allocation Records")
    page.fill("input[name=customer]", str(world.a_customers[2]))
    page.click("#record-filters button[type=submit]")
    rows = page.locator("[data-testid=records] tbody tr")
    assert rows.count() == 1 and "+22.00" in rows.first.inner_text()
    with page.expect_download() as info:
        page.click("[data-testid=csv]")
    text = Path(info.value.path()).read_text()
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [(r["customer_uin"], r["change"]) for r in lines] == [
        (str(world.a_customers[2]), "22.00")
    ]


def test_thresholds(page: playwright_api.Page, engine: Engine) -> None:
    world = build_world(engine)
    login(page, "admin@acme.example")
    page.click("text=Settings")
    page.fill("input[name=thresholds]", "60, 85, 100")
    page.click("text=Save thresholds")
    assert page.inner_text("[data-testid=default-thresholds]") == "60%, 85%, 100%"
    page.fill("input[name=thresholds]", "5000")
    page.click("text=Save thresholds")
    assert "outside 1-1000" in page.inner_text("[data-testid=error]")
    page.goto(f"/customers/{world.a_customers[0]}")
    page.fill("input[name=thresholds]", "50")
    page.click("text=Save thresholds")
    assert page.inner_text("[data-testid=thresholds]") == "50%"


def test_alarm_in_message_centre_after_usage_import(
    page: playwright_api.Page, engine: Engine
) -> None:
    world = build_world(engine)
    # An operator: marking messages read is a write, which viewers may not do.
    login(page, "operator@acme.example")
    assert page.locator("[data-testid=unread]").count() == 0
    with transaction(engine) as s:
        usage.ingest(
            s,
            usage.parse_batch(
                [
                    (
                        1,
                        {
                            "event_id": "browser-1",
                            "customer_uin": world.a_customers[0],
                            "product": "cvm",
                            "list_amount": "950.00",
                            "voucher_amount": "0",
                            "occurred_at": "2026-01-02T00:00:00Z",
                        },
                    )
                ]
            ),
        )
    page.reload()
    assert page.inner_text("[data-testid=unread]") == "1"
    page.click("a.bell")
    message = page.locator("[data-testid=messages] li.unread").first.inner_text()
    assert "Alpha Games" in message and "90%" in message
    page.click("text=Mark all read")
    assert page.locator("[data-testid=unread]").count() == 0


def test_bulk_upload_preview_and_apply(page: playwright_api.Page, engine: Engine) -> None:
    world = build_world(engine)
    _, c1, c2 = world.a_customers
    login(page, "operator@acme.example")
    page.click("text=Bulk allocation")
    body = f"customer_uin,amount,remark\n{c1},40.00,bulk one\n{c2},60.00,bulk two\n"
    page.set_input_files(
        "input[type=file]",
        files=[{"name": "credit.csv", "mimeType": "text/csv", "buffer": body.encode()}],
    )
    page.click("text=Preview")
    assert page.locator("[data-testid=preview] tbody tr").count() == 2
    assert page.locator("text=✓ OK").count() == 2
    assert _credit(engine, c1) == 0
    page.click("[data-testid=apply]")
    assert "Applied all 2 rows" in page.inner_text("[data-testid=flash]")
    assert (_credit(engine, c1), _credit(engine, c2)) == (4_000, 6_000)


def test_forged_form_without_csrf_token_is_refused(
    page: playwright_api.Page, engine: Engine
) -> None:
    world = build_world(engine)
    uin = world.a_customers[1]
    login(page, "admin@acme.example")
    page.goto(f"/customers/{uin}/credit")
    page.eval_on_selector("#credit-form input[name=csrf_token]", "e => e.remove()")
    page.fill("#amount", "100")
    page.click("text=OK")
    assert "Form expired or forged" in page.content()
    assert _credit(engine, uin) == 0


def test_viewer_sees_no_write_buttons_and_a_forged_post_is_refused(
    page: playwright_api.Page, engine: Engine
) -> None:
    world = build_world(engine)
    uin = world.a_customers[1]
    login(page, "viewer@acme.example")
    page.click("text=My Customers")
    assert page.locator("[data-testid=setting-credit]").count() == 0
    assert page.locator("text=Bulk allocation").count() == 0
    page.goto(f"/customers/{uin}")
    assert page.locator("text=Save thresholds").count() == 0
    # A POST the viewer builds by hand, with its own valid CSRF token, is still refused.
    token = page.get_attribute("input[name=csrf_token]", "value")
    answer = page.request.post(
        f"/customers/{uin}/credit", form={"amount": "100", "csrf_token": str(token)}
    )
    assert answer.status == 403
    assert _credit(engine, uin) == 0


def test_api_key_creation(page: playwright_api.Page, engine: Engine) -> None:
    build_world(engine)
    login(page, "admin@acme.example")
    page.click("text=Settings")
    page.fill("input[placeholder='e.g. billing sync']", "billing sync")
    page.click("text=Create API key")
    secret_id = page.inner_text("[data-testid=secret-id]")
    secret_key = page.inner_text("[data-testid=secret-key]")
    assert secret_id.startswith("AKID") and len(secret_key) >= 32
    page.goto("/settings")
    assert secret_id in page.inner_text("[data-testid=keys]")
    assert secret_key not in page.content()  # shown once only


def test_application_approved_by_a_platform_admin(
    browser: playwright_api.Browser, page: playwright_api.Page, server: str, engine: Engine
) -> None:
    build_world(engine)
    login(page, "admin@bravo.example")
    assert page.inner_text("[data-testid=pool-remaining]") == "5,000.00"
    page.click("text=Credit applications")
    page.fill("input[name=amount]", "2500.00")
    page.fill("input[name=reason]", "year-end projects")
    page.click("text=Send application")
    assert "pending" in page.inner_text("[data-testid=own]")

    context = browser.new_context(base_url=server)
    staff = context.new_page()
    staff.goto("/login")
    staff.fill("input[name=email]", "staff@vendor.example")
    staff.fill("input[name=password]", PASSWORD)
    staff.click("button[type=submit]")
    staff.wait_for_url("**/platform/partners")
    staff.click("text=Credit applications")
    assert "year-end projects" in staff.inner_text("[data-testid=queue]")
    staff.click("[data-testid^=approve-]")
    assert "approved" in staff.inner_text("[data-testid=flash]")
    context.close()

    page.goto("/")
    assert page.inner_text("[data-testid=pool-remaining]") == "7,500.00"
    page.goto("/applications")
    assert "approved" in page.inner_text("[data-testid=own]")

"""The Partner Center in a real browser (Debian's Chromium driven by Playwright) against a
live server, on both engines: every step of the seed's flow and the console's defences."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from tests.console.conftest import PASSWORD, build_world

from creditline.db import transaction
from creditline.db.tables import AllocationRecord, Customer
from creditline.ledger import usage

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
expect.set_options(timeout=15_000)
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
    expect(page.get_by_test_id("error")).to_contain_text("Wrong email or password")
    login(page, "admin@acme.example")
    expect(page.get_by_test_id("pool-remaining")).to_have_text("9,000.00")
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto("/customers")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_search(page: playwright_api.Page, engine: Engine) -> None:
    world = build_world(engine)
    login(page, "viewer@acme.example")
    page.click("text=My Customers")
    page.fill("input[name=q]", "gamma")
    page.click("form.search button")
    rows = page.locator("[data-testid=customers] tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Gamma Retail")
    page.fill("input[name=q]", str(world.a_customers[1]))
    page.click("form.search button")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Beta Labs")


def test_allocate_then_withdraw_more_than_the_maximum(
    browser: playwright_api.Browser, page: playwright_api.Page, server: str, engine: Engine
) -> None:
    world = build_world(engine)
    uin = world.a_customers[1]
    login(page, "operator@acme.example")
    page.goto(f"/customers?q={uin}")
    page.click("[data-testid=setting-credit]")
    expect(page.get_by_test_id("max-withdrawable")).to_have_text("0.00")
    expect(page.get_by_test_id("pool-remaining")).to_have_text("9,000.00")
    page.fill("#amount", "300.00")
    page.fill("input[name=remark]", "first month")
    page.click("text=OK")
    expect(page.get_by_test_id("flash")).to_contain_text("Allocated 300.00 USD")
    expect(page.locator(f"tr[data-uin='{uin}'] [data-testid=total-credit]")).to_have_text("300.00")
    before = _records(engine)

    # Before submit: the browser explains and does not send the form.
    page.click("[data-testid=setting-credit]")
    page.fill("#amount", "-500")
    expect(page.locator("#amount-check")).to_contain_text("maximum withdrawable")
    page.click("text=OK")
    expect(page).to_have_url(re.compile(r"/credit$"))
    assert _credit(engine, uin) == 30_000

    # After submit: without JavaScript the server refuses and says why.
    context = browser.new_context(base_url=server, java_script_enabled=False)
    plain = context.new_page()
    login(plain, "operator@acme.example")
    plain.goto(f"/customers/{uin}/credit")
    plain.fill("#amount", "-500")
    plain.click("text=OK")
    expect(plain.get_by_test_id("error")).to_contain_text("at most 300.00 withdrawable")
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
        expect(page.get_by_test_id("flash")).to_contain_text(f"Allocated {amount} USD")
    page.click("text=Allocation Records")
    rows = page.locator("[data-testid=records] tbody tr")
    expect(page).to_have_url(re.compile(r"/records$"))
    page.fill("input[name=customer]", str(world.a_customers[2]))
    page.click("#record-filters button[type=submit]")
    expect(page).to_have_url(re.compile(f"customer={world.a_customers[2]}"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("+22.00")
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
    expect(page.get_by_test_id("default-thresholds")).to_have_text("60%, 85%, 100%")
    page.fill("input[name=thresholds]", "5000")
    page.click("text=Save thresholds")
    expect(page.get_by_test_id("error")).to_contain_text("outside 1-1000")
    page.goto(f"/customers/{world.a_customers[0]}")
    page.fill("input[name=thresholds]", "50")
    page.click("text=Save thresholds")
    expect(page.get_by_test_id("thresholds")).to_have_text("50%")


def test_alarm_in_message_centre_after_usage_import(
    page: playwright_api.Page, engine: Engine
) -> None:
    world = build_world(engine)
    # An operator: marking messages read is a write, which viewers may not do.
    login(page, "operator@acme.example")
    expect(page.get_by_test_id("unread")).to_have_count(0)
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
    expect(page.get_by_test_id("unread")).to_have_text("1")
    page.click("a.bell")
    message = page.locator("[data-testid=messages] li.unread").first
    expect(message).to_contain_text("Alpha Games")
    expect(message).to_contain_text("90%")
    page.click("text=Mark all read")
    expect(page.locator("[data-testid=messages] li.unread")).to_have_count(0)
    expect(page.get_by_test_id("unread")).to_have_count(0)


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
    expect(page.locator("[data-testid=preview] tbody tr")).to_have_count(2)
    expect(page.locator("text=✓ OK")).to_have_count(2)
    assert _credit(engine, c1) == 0
    page.click("[data-testid=apply]")
    expect(page.get_by_test_id("flash")).to_contain_text("Applied all 2 rows")
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
    expect(page.locator("body")).to_contain_text("Form expired or forged")
    assert _credit(engine, uin) == 0


def test_viewer_sees_no_write_buttons_and_a_forged_post_is_refused(
    page: playwright_api.Page, engine: Engine
) -> None:
    world = build_world(engine)
    uin = world.a_customers[1]
    login(page, "viewer@acme.example")
    page.click("text=My Customers")
    expect(page.locator("[data-testid=customers] tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("setting-credit")).to_have_count(0)
    expect(page.locator("text=Bulk allocation")).to_have_count(0)
    page.goto(f"/customers/{uin}")
    expect(page.locator("text=Save thresholds")).to_have_count(0)
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
    expect(page.get_by_test_id("secret-id")).to_contain_text("AKID")
    secret_id = page.inner_text("[data-testid=secret-id]")
    secret_key = page.inner_text("[data-testid=secret-key]")
    assert secret_id.startswith("AKID") and len(secret_key) >= 32
    page.goto("/settings")
    expect(page.get_by_test_id("keys")).to_contain_text(secret_id)
    assert secret_key not in page.content()  # shown once only


def test_application_approved_by_a_platform_admin(
    browser: playwright_api.Browser, page: playwright_api.Page, server: str, engine: Engine
) -> None:
    build_world(engine)
    login(page, "admin@bravo.example")
    expect(page.get_by_test_id("pool-remaining")).to_have_text("5,000.00")
    page.click("text=Credit applications")
    page.fill("input[name=amount]", "2500.00")
    page.fill("input[name=reason]", "year-end projects")
    page.click("text=Send application")
    expect(page.get_by_test_id("own")).to_contain_text("pending")

    context = browser.new_context(base_url=server)
    staff = context.new_page()
    staff.goto("/login")
    staff.fill("input[name=email]", "staff@vendor.example")
    staff.fill("input[name=password]", PASSWORD)
    staff.click("button[type=submit]")
    staff.wait_for_url("**/platform/partners")
    staff.click("text=Credit applications")
    expect(staff.get_by_test_id("queue")).to_contain_text("year-end projects")
    staff.click("[data-testid^=approve-]")
    expect(staff.get_by_test_id("flash")).to_contain_text("approved")
    context.close()

    page.goto("/")
    expect(page.get_by_test_id("pool-remaining")).to_have_text("7,500.00")
    page.goto("/applications")
    expect(page.get_by_test_id("own")).to_contain_text("approved")


RED = "rgb(229, 69, 69)"


def _context_page(
    browser: playwright_api.Browser, server: str, width: int, height: int
) -> playwright_api.Page:
    context = browser.new_context(base_url=server, viewport={"width": width, "height": height})
    p = context.new_page()
    p.set_default_timeout(15_000)
    return p


def _page_width(p: playwright_api.Page) -> int:
    return int(p.evaluate("document.documentElement.scrollWidth"))


@pytest.mark.parametrize("width", [1280, 1366, 1600])
def test_my_customers_fits_a_laptop(
    browser: playwright_api.Browser, server: str, engine: Engine, width: int
) -> None:
    build_world(engine)
    p = _context_page(browser, server, width, 768)
    try:
        login(p, "operator@acme.example")
        p.goto("/customers")
        row = p.locator("[data-testid=customers] tbody tr").first
        expect(row.get_by_test_id("setting-credit")).to_be_visible()
        # The page does not scroll sideways, and every column that matters is on screen.
        assert _page_width(p) <= width
        for cell in (
            "td:nth-child(1)",
            "td.cust",
            "[data-testid=total-credit]",
            "[data-testid=available]",
            "[data-testid=utilisation]",
            "[data-testid=setting-credit]",
        ):
            box = row.locator(cell).bounding_box()
            assert box is not None, cell
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (cell, box)
            assert box["y"] >= 0 and box["y"] + box["height"] <= 768, (cell, box)
    finally:
        p.context.close()


def test_phone_width_header_and_sidebar_fit(
    browser: playwright_api.Browser, server: str, engine: Engine
) -> None:
    world = build_world(engine)
    p = _context_page(browser, server, 390, 844)
    try:
        login(p, "operator@acme.example")
        for path in ("/", "/customers", f"/customers/{world.a_customers[0]}/credit", "/records"):
            p.goto(path)
            assert _page_width(p) <= 390, path
            header = p.locator("header.topbar")
            assert header.evaluate("e => e.scrollWidth <= e.clientWidth"), path
            # The sidebar has folded into one row of links above the page.
            sidebar = p.locator("nav.sidebar").bounding_box()
            assert sidebar is not None and sidebar["height"] < 80 and sidebar["width"] <= 390
        p.goto("/customers")
        button = p.locator("[data-testid=setting-credit]").first
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        button.click()
        expect(p.locator("#amount")).to_be_visible()
    finally:
        p.context.close()


def test_sort_column_shows_its_direction(page: playwright_api.Page, engine: Engine) -> None:
    build_world(engine)
    login(page, "viewer@acme.example")
    page.goto("/customers")
    page.click("thead >> text=Utilisation")
    sorted_header = page.locator("th[aria-sort]")
    expect(sorted_header).to_have_count(1)
    expect(sorted_header).to_have_attribute("aria-sort", "descending")
    expect(sorted_header.locator(".arrow")).to_have_text("▼")
    page.click("thead >> text=Utilisation")
    expect(sorted_header).to_have_attribute("aria-sort", "ascending")
    expect(sorted_header.locator(".arrow")).to_have_text("▲")


def _border(p: playwright_api.Page, selector: str) -> str:
    return str(p.eval_on_selector(selector, "e => getComputedStyle(e).borderTopColor"))


def test_required_fields_are_not_red_before_they_are_touched(
    browser: playwright_api.Browser, server: str, engine: Engine
) -> None:
    build_world(engine)
    p = _context_page(browser, server, 1366, 768)
    try:
        p.goto("/login")
        for selector in ("input[name=email]", "input[name=password]"):
            assert _border(p, selector) != RED, selector
        login(p, "admin@acme.example")
        forms = {
            "/settings": [
                "form[action='/settings/users'] input[name=email]",
                "form[action='/settings/users'] input[name=password]",
                "form[action='/settings/keys'] input[name=name]",
            ],
            "/distributors": ["form[action='/distributors/sub-resellers'] input[name=name]"],
        }
        for path, selectors in forms.items():
            p.goto(path)
            for selector in selectors:
                assert _border(p, selector) != RED, (path, selector)
        # Once touched and left wrong, a field is marked.
        p.goto("/settings")
        email = "form[action='/settings/users'] input[name=email]"
        p.fill(email, "not an address")
        p.click("h1")
        assert _border(p, email) == RED
        # The hint under the add-user form does not overlap it.
        hint = p.locator("form[action='/settings/users'] + .hint").bounding_box()
        form = p.locator("form[action='/settings/users']").bounding_box()
        assert hint is not None and form is not None
        assert hint["y"] >= form["y"] + form["height"]
        p.click("text=Log out")
        p.fill("input[name=email]", "staff@vendor.example")
        p.fill("input[name=password]", PASSWORD)
        p.click("button[type=submit]")
        p.wait_for_url("**/platform/partners")
        assert _border(p, "form[action='/platform/partners'] input[name=name]") != RED
    finally:
        p.context.close()


def test_customer_email_fits_its_card(
    browser: playwright_api.Browser, server: str, engine: Engine
) -> None:
    world = build_world(engine)
    uin = world.a_customers[0]
    with transaction(engine) as s:
        s.execute(
            update(Customer)
            .where(Customer.uin == uin)
            .values(email="accountspayable.asiapacificregion@alphagamesholdings.example")
        )
    p = _context_page(browser, server, 1366, 768)
    try:
        login(p, "viewer@acme.example")
        p.goto(f"/customers/{uin}")
        email = p.locator("dl.facts dd", has_text="accountspayable")
        card = p.locator("section.panel", has=email)
        box, inside = email.bounding_box(), card.bounding_box()
        assert box is not None and inside is not None
        assert box["x"] + box["width"] <= inside["x"] + inside["width"]
        assert card.evaluate("e => e.scrollWidth <= e.clientWidth")
        # The text itself stays inside its cell, and the cards inside the page.
        text_right = email.evaluate(
            "e => { const r = document.createRange(); r.selectNodeContents(e);"
            " return r.getBoundingClientRect().right; }"
        )
        assert text_right <= box["x"] + box["width"] + 0.5
        main = p.locator("main").bounding_box()
        assert main is not None and inside["x"] + inside["width"] <= main["x"] + main["width"]
        assert _page_width(p) <= 1366
    finally:
        p.context.close()

"""The console as a finance team reads it every day, on both engines: sorting that shows
its direction, records that name their customer, a message centre with filters, a
dashboard that explains the pool, safe defaults in forms, one way of writing dates."""

from __future__ import annotations

import csv
import io
import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.console.conftest import World, login

from creditline.db import transaction
from creditline.ledger import credit, pools, usage
from creditline.ledger.records import Origin

SETUP = Origin(operator="setup", source="cli")


def _use(engine: Engine, uin: int, amount: str, event_id: str) -> None:
    with transaction(engine) as s:
        usage.ingest(
            s,
            usage.parse_batch(
                [
                    (
                        1,
                        {
                            "event_id": event_id,
                            "customer_uin": uin,
                            "product": "cvm",
                            "list_amount": amount,
                            "voucher_amount": "0",
                            "occurred_at": "2026-01-01T00:00:00Z",
                        },
                    )
                ]
            ),
        )


def _allocate(engine: Engine, world: World, uin: int, cents: int) -> None:
    with transaction(engine) as s:
        credit.allocate_credit(s, partner_id=world.a, customer_uin=uin, amount=cents, origin=SETUP)


def _row_order(html: str, world: World) -> list[int]:
    found = [int(u) for u in re.findall(r'<tr data-uin="(\d+)"', html)]
    return [u for u in found if u in world.a_customers]


def test_customers_sort_by_utilisation_and_show_the_direction(
    client: TestClient, world: World, engine: Engine
) -> None:
    alpha, beta, gamma = world.a_customers  # alpha has 1,000.00
    _allocate(engine, world, beta, 10_000)
    _use(engine, alpha, "500.00", "u-alpha")  # 50 %
    _use(engine, beta, "90.00", "u-beta")  # 90 %
    login(client, "viewer@acme.example")  # gamma: no credit, nothing used: 0 %
    down = client.get("/customers?sort=utilisation&dir=desc").text
    assert _row_order(down, world) == [beta, alpha, gamma]
    header = re.search(r'<th aria-sort="descending">(.*?)</th>', down, re.S)
    assert header and "Utilisation" in header.group(1) and "▼" in header.group(1)
    # The header links to the other direction.
    assert "sort=utilisation&amp;dir=asc" in header.group(1)
    up = client.get("/customers?sort=utilisation&dir=asc").text
    assert _row_order(up, world) == [gamma, alpha, beta]
    assert '<th aria-sort="ascending">' in up and "▲" in up
    # Exactly one column is marked as the sorted one.
    assert up.count("aria-sort=") == 1


def test_records_dashboard_and_csv_name_the_customer(
    client: TestClient, world: World, engine: Engine
) -> None:
    with transaction(engine) as s:
        pools.allocate_pool(
            s, distributor_id=world.a, sub_reseller_id=world.sub, amount=5_000, origin=SETUP
        )
    token = login(client, "operator@acme.example")
    client.post(
        f"/customers/{world.a_customers[2]}/credit", data={"amount": "20.00", "csrf_token": token}
    )
    page = client.get("/records").text
    assert re.search(rf'{world.a_customers[2]}</a> <span class="party-name">Gamma Retail<', page)
    assert re.search(rf'{world.sub} <span class="party-name">Acme Sub<', page)
    home = client.get("/").text
    assert "Gamma Retail</span>" in home and "Acme Sub</span>" in home
    # The operator filter: a prefix, in any case.
    assert "+20.00" in client.get("/records?operator=OPERATOR%40").text
    assert "+20.00" not in client.get("/records?operator=acme").text
    rows = list(csv.DictReader(io.StringIO(client.get("/records.csv").text)))
    assert {(r["customer_uin"], r["sub_partner_id"], r["name"]) for r in rows} >= {
        (str(world.a_customers[2]), "", "Gamma Retail"),
        ("", str(world.sub), "Acme Sub"),
    }


def test_message_centre_filters_levels_and_causes(
    client: TestClient, world: World, engine: Engine
) -> None:
    alpha, beta, _ = world.a_customers
    _allocate(engine, world, beta, 10_000)
    _use(engine, alpha, "800.00", "u1")  # alpha: 75 %
    _use(engine, beta, "95.00", "u2")  # beta: 90 %
    _use(engine, alpha, "250.00", "u3")  # alpha: 100 % (105 %)
    login(client, "operator@acme.example")
    everything = client.get("/messages").text
    levels = re.findall(r'<span class="pill (lv-\w+)" data-testid="level">(\d+)%', everything)
    assert levels == [("lv-100", "100"), ("lv-90", "90"), ("lv-75", "75")]
    assert everything.count("Because new usage was counted.") == 3
    at_90 = client.get("/messages?level=90").text
    assert re.findall(r'data-testid="level">(\d+)%', at_90) == ["90"]
    assert '<option value="90" selected>' in at_90
    only_alpha = client.get(f"/messages?customer={alpha}").text
    assert re.findall(r'data-testid="level">(\d+)%', only_alpha) == ["100", "75"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', everything)
    assert token
    newest = re.search(r'action="/messages/(\d+)/read"', everything)
    assert newest
    client.post(f"/messages/{newest.group(1)}/read", data={"csrf_token": token.group(1)})
    assert re.findall(r'data-testid="level">(\d+)%', client.get("/messages?status=read").text) == [
        "100"
    ]
    unread = client.get("/messages?status=unread").text
    assert re.findall(r'data-testid="level">(\d+)%', unread) == ["90", "75"]
    assert client.get("/messages?until=2000-01-01").text.count('data-testid="level"') == 0
    assert client.get("/messages?since=2000-01-01").text.count('data-testid="level"') == 3
    # A filter that makes no sense is explained on the page, with the filters kept.
    bad = client.get("/messages?customer=abc&level=90")
    assert bad.status_code == 400
    assert "is not a UIN" in bad.text and 'value="abc"' in bad.text
    assert 'id="message-filters"' in bad.text


def test_dashboard_explains_the_pool_and_draws_the_last_30_days(
    client: TestClient, world: World, engine: Engine
) -> None:
    with transaction(engine) as s:
        pools.allocate_pool(
            s, distributor_id=world.a, sub_reseller_id=world.sub, amount=250_000, origin=SETUP
        )
    _use(engine, world.a_customers[0], "12.00", "u-dash")
    login(client, "viewer@acme.example")
    home = client.get("/").text
    # 3,500.00 allocated: 1,000.00 customers' credit and 2,500.00 to the sub-reseller.
    assert 'data-testid="pool-allocated">3,500.00<' in home
    assert 'data-testid="to-sub-resellers">2,500.00<' in home
    for path, title in (
        ("/usage-by-day.svg", "consumption by day"),
        ("/pool-by-day.svg", "Pool at each day"),
    ):
        assert f'src="{path}"' in home
        chart = client.get(path)
        assert chart.status_code == 200
        assert chart.headers["content-type"].startswith("image/svg+xml")
        assert title in chart.text
    # The pool chart ends at today's pool: 10,000.00 total, 3,500.00 allocated.
    pool_svg = client.get("/pool-by-day.svg").text
    assert "10,000.00" in pool_svg and "3,500.00" in pool_svg


def test_new_users_and_keys_default_to_viewer(client: TestClient, world: World) -> None:
    login(client, "admin@acme.example")
    settings = client.get("/settings").text
    selects = re.findall(r'<select name="role">(.*?)</select>', settings)
    assert len(selects) == 2
    for options in selects:
        assert re.findall(r"<option selected>(\w+)</option>", options) == ["viewer"]
    login(client, "staff@vendor.example")
    # A partner's first user is its admin; later ones start as viewers.
    empty = client.get(f"/platform/partners/{world.sub}").text
    assert re.findall(r"<option selected>(\w+)</option>", empty) == ["admin"]
    staffed = client.get(f"/platform/partners/{world.a}").text
    assert re.findall(r"<option selected>(\w+)</option>", staffed) == ["viewer"]


def test_favicon_is_served_locally(client: TestClient, world: World) -> None:
    login(client, "viewer@acme.example")
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in (
        client.get("/").text
    )
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    old_style = client.get("/favicon.ico", follow_redirects=False)
    assert old_style.headers["location"] == "/static/favicon.svg"


def test_dates_are_written_one_way(client: TestClient, world: World, engine: Engine) -> None:
    _use(engine, world.a_customers[0], "800.00", "u-dates")
    login(client, "admin@acme.example")
    shown: list[str] = []
    for path in ("/", "/records", "/messages", "/settings", f"/customers/{world.a_customers[0]}"):
        shown += re.findall(
            r"<time datetime=\"[^\"]+\" title=\"[^\"]+\">([^<]*)</time>", client.get(path).text
        )
    assert len(shown) > 10
    for text in shown:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d( \d\d:\d\d UTC)?", text), text

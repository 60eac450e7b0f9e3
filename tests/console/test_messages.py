"""Messages the console shows in the operator's own terms: amounts as the pages show them,
a bad records filter explained on the page with the filters kept, and threshold lists kept
as typed when refused and described when stored otherwise than typed."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from tests.console.conftest import World, login


def test_refusal_shows_amounts_as_the_page_does(client: TestClient, world: World) -> None:
    token = login(client, "operator@acme.example")
    refused = client.post(
        f"/customers/{world.a_customers[1]}/credit",
        data={"amount": "9500", "remark": "", "csrf_token": token},
    )
    assert refused.status_code == 422
    assert "the pool has 9,000.00 remaining; cannot allocate 9,500.00" in refused.text


def test_letters_in_the_uin_filter_are_explained_on_the_page(
    client: TestClient, world: World
) -> None:
    login(client, "viewer@acme.example")
    page = client.get("/records?customer=12ab&operator=setup&kind=allocation")
    assert page.status_code == 400
    text = html.unescape(page.text)
    assert 'id="record-filters"' in text  # the records page itself, not an error page
    assert "Customer UIN takes digits only, such as 100000000123, not “12ab”." in text
    assert 'name="customer" value="12ab"' in text
    assert 'name="operator" value="setup"' in text
    assert '<option value="allocation" selected' in text


def test_from_after_to_is_explained_with_both_dates_kept(client: TestClient, world: World) -> None:
    login(client, "viewer@acme.example")
    page = client.get("/records?since=2026-03-01&until=2026-02-01")
    assert page.status_code == 400
    text = html.unescape(page.text)
    assert "From (2026-03-01) is after To (2026-02-01): no record can match." in text
    assert 'name="since" value="2026-03-01"' in text
    assert 'name="until" value="2026-02-01"' in text
    # The same day on both sides is one whole day, and fine.
    assert client.get("/records?since=2026-02-01&until=2026-02-01").status_code == 200


def test_a_date_that_is_not_one_is_named(client: TestClient, world: World) -> None:
    login(client, "viewer@acme.example")
    page = client.get("/records?since=yesterday")
    assert page.status_code == 400
    assert "From takes a date such as 2026-01-31, not “yesterday”." in html.unescape(page.text)


def test_refused_threshold_list_keeps_what_was_typed(client: TestClient, world: World) -> None:
    token = login(client, "admin@acme.example")
    bad = client.post(
        "/settings/thresholds", data={"thresholds": "75, 90, abc", "csrf_token": token}
    )
    assert bad.status_code == 422
    text = html.unescape(bad.text)
    assert "Not saved: threshold 'abc' is not a whole percent." in text
    assert 'name="thresholds" value="75, 90, abc"' in text
    uin = world.a_customers[0]
    own = client.post(
        f"/customers/{uin}/thresholds", data={"thresholds": "50, 2000", "csrf_token": token}
    )
    assert own.status_code == 422
    text = html.unescape(own.text)
    assert "Not saved: threshold 2000 is outside 1-1000." in text
    assert 'name="thresholds" value="50, 2000"' in text


def test_thresholds_stored_otherwise_than_typed_say_so(client: TestClient, world: World) -> None:
    token = login(client, "admin@acme.example")

    def save(typed: str) -> str:
        answer = client.post(
            "/settings/thresholds", data={"thresholds": typed, "csrf_token": token}
        )
        assert answer.status_code == 200
        return html.unescape(answer.text)

    assert (
        "Default thresholds saved: 75%, 90%, 100% (sorted and de-duplicated to 75, 90, 100)."
        in save("100, 75, 90, 75")
    )
    assert "Default thresholds saved: 75%, 90% (sorted to 75, 90)." in save("90, 75")
    assert "Default thresholds saved: 80% (de-duplicated to 80)." in save("80, 80")
    assert "Default thresholds saved: 60%, 70%." in save("60, 70")
    uin = world.a_customers[0]
    own = client.post(
        f"/customers/{uin}/thresholds", data={"thresholds": "90,50", "csrf_token": token}
    )
    assert "Thresholds saved (sorted to 50, 90)." in html.unescape(own.text)

"""GET /v1/customers/{uin}/statements/{month}: JSON by default, CSV or PDF by the format
parameter or the Accept header; the PDF's text read back with a PDF parser; the
partner's customer settings and a customer's own alarm setting."""

from __future__ import annotations

import csv
import io

import pypdf
from fastapi.testclient import TestClient
from tests.api.conftest import World

from creditline.clock import utcnow


def _month() -> str:
    return utcnow().strftime("%Y-%m")


def _setup(client: TestClient, world: World) -> str:
    uin = world.a_customer
    answer = client.post(
        f"/v1/customers/{uin}/allocate",
        json={"amount": "100.00", "remark": "internal-note-7"},
        headers=world.h("a_operator"),
    )
    assert answer.status_code == 200, answer.text
    records = [
        {
            "event_id": f"st-{n}",
            "customer_uin": uin,
            "product": product,
            "list_amount": amount,
            "voucher_amount": voucher,
            "occurred_at": utcnow().isoformat(),
        }
        for n, (product, amount, voucher) in enumerate(
            [("cvm", "50.00", "10.00"), ("cdn", "5.25", "0.00")]
        )
    ]
    answer = client.post(
        "/v1/usage-batches", json={"records": records}, headers=world.h("platform")
    )
    assert answer.status_code == 200, answer.text
    return f"/v1/customers/{uin}/statements/{_month()}"


def test_json_statement(client: TestClient, world: World) -> None:
    path = _setup(client, world)
    body = client.get(path, headers=world.h("a_viewer")).json()
    assert body["month"] == _month() and body["closed"] is False
    assert body["opening"]["available"] == "0.00"
    assert body["allocations"] == "100.00" and body["withdrawals"] == "0.00"
    assert body["usage"] == [
        {
            "product": "cdn",
            "charges": "5.25",
            "vouchers": "0.00",
            "refunds": "0.00",
            "counted": "5.25",
        },
        {
            "product": "cvm",
            "charges": "50.00",
            "vouchers": "10.00",
            "refunds": "0.00",
            "counted": "40.00",
        },
    ]
    assert body["closing"] == {"total_credit": "100.00", "consumed": "45.25", "available": "54.75"}
    assert body["credit_lines"][0]["remark"] == "internal-note-7"
    # The customer's own balance, as the REST API shows it, is the open month's closing.
    customer = client.get(f"/v1/customers/{world.a_customer}", headers=world.h("a_viewer"))
    assert customer.json()["available_credit"] == body["closing"]["available"]


def test_csv_by_accept_header_and_by_parameter(client: TestClient, world: World) -> None:
    path = _setup(client, world)
    by_header = client.get(path, headers=world.h("a_viewer", Accept="text/csv"))
    by_param = client.get(path + "?format=csv", headers=world.h("a_viewer"))
    assert by_header.headers["content-type"].startswith("text/csv")
    # The same statement (an open month's closing line is dated when it was read).
    assert by_header.text.splitlines()[:-1] == by_param.text.splitlines()[:-1]
    rows = list(csv.DictReader(io.StringIO(by_header.text)))
    assert [r["section"] for r in rows] == ["opening", "credit", "usage", "usage", "closing"]
    assert rows[-1]["amount"] == "54.75"
    assert "attachment" in by_header.headers["content-disposition"]


def test_pdf_reads_back_with_the_partner_settings(client: TestClient, world: World) -> None:
    path = _setup(client, world)

    def text() -> str:
        answer = client.get(path, headers=world.h("a_viewer", Accept="application/pdf"))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/pdf"
        reader = pypdf.PdfReader(io.BytesIO(answer.content))
        return "\n".join(page.extract_text() for page in reader.pages)

    first = text()
    for expected in (
        "Alpha Cloud",
        f"Credit statement {_month()}",
        f"Ann Ltd (UIN {world.a_customer})",
        "Closing available credit",
        "54.75",
        "cvm",
        "40.00",
        "cdn",
        "5.25",
    ):
        assert expected in first, (expected, first)
    # Amounts only until the partner lets customers see remarks.
    assert "internal-note-7" not in first
    changed = client.patch(
        "/v1/customer-settings",
        json={"show_remarks": True, "contact": "billing@alpha.example"},
        headers=world.h("a_admin"),
    )
    assert changed.status_code == 200, changed.text
    second = text()
    assert "internal-note-7" in second and "billing@alpha.example" in second


def test_refusals(client: TestClient, world: World) -> None:
    path = _setup(client, world)
    other = client.get(path, headers=world.h("b_admin"))
    assert other.status_code == 404
    bad = client.get(
        f"/v1/customers/{world.a_customer}/statements/2026-13", headers=world.h("a_viewer")
    )
    assert bad.status_code in (400, 422) and bad.json()["error"]["param"] == "month"
    future = client.get(
        f"/v1/customers/{world.a_customer}/statements/9998-01", headers=world.h("a_viewer")
    )
    assert future.status_code in (400, 422)
    assert "not begun" in future.json()["error"]["message"]
    zone = client.patch(
        "/v1/customer-settings", json={"time_zone": "Mars/Olympus"}, headers=world.h("a_admin")
    )
    assert zone.status_code in (400, 422)
    assert (
        client.get("/v1/customer-settings", headers=world.h("a_admin")).json()["time_zone"] == "UTC"
    )


def test_customer_alarm_override(client: TestClient, world: World) -> None:
    path = f"/v1/customers/{world.a_customer}/customer-alarms"
    assert client.get(path, headers=world.h("a_viewer")).json() == {
        "customer_uin": world.a_customer,
        "enabled": None,
        "receives_alarms": False,
    }
    client.patch(
        "/v1/customer-settings", json={"customer_alarms": True}, headers=world.h("a_admin")
    )
    assert client.get(path, headers=world.h("a_viewer")).json()["receives_alarms"] is True
    answer = client.put(path, json={"enabled": False}, headers=world.h("a_admin"))
    assert answer.json() == {
        "customer_uin": world.a_customer,
        "enabled": False,
        "receives_alarms": False,
    }
    assert client.put(path, json={"enabled": True}, headers=world.h("a_viewer")).status_code == 403


def test_pdf_prints_a_name_in_any_script(client: TestClient, world: World) -> None:
    name = "株式会社 Müller Ελλάδα Север"
    made = client.post("/v1/customers", json={"name": name}, headers=world.h("a_operator"))
    assert made.status_code == 201, made.text
    uin = made.json()["uin"]
    answer = client.post(
        f"/v1/customers/{uin}/allocate",
        json={"amount": "12.00", "remark": "首次充值"},
        headers=world.h("a_operator"),
    )
    assert answer.status_code == 200, answer.text
    changed = client.patch(
        "/v1/customer-settings", json={"show_remarks": True}, headers=world.h("a_admin")
    )
    assert changed.status_code == 200, changed.text
    pdf = client.get(
        f"/v1/customers/{uin}/statements/{_month()}?format=pdf", headers=world.h("a_viewer")
    )
    assert pdf.status_code == 200, pdf.text
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert f"Customer: {name} (UIN {uin})" in text, text
    assert "allocation: 首次充值 12.00" in text, text

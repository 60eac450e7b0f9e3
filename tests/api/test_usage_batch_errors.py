"""A usage batch names every bad record at once, and its body means exactly what it says:
no conversion between JSON types, unknown fields refused, times only with their offset.
``details[].line`` is the record's 1-based position in ``records``."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.api.conftest import World

from creditline.db import transaction
from creditline.ledger import accounts


def _good(world: World, n: int) -> dict[str, Any]:
    return {
        "event_id": f"ev-{n}",
        "customer_uin": world.a_customer,
        "product": "cvm",
        "list_amount": "1.00",
        "voucher_amount": "0.50",
        "occurred_at": "2026-01-01T00:00:00Z",
    }


def _consumed(engine: Engine, world: World) -> int:
    with transaction(engine) as s:
        return accounts.get_customer(s, world.a, world.a_customer).consumed


def test_one_answer_names_every_bad_record(
    client: TestClient, world: World, engine: Engine
) -> None:
    uin = world.a_customer
    records = [
        _good(world, 1),
        _good(world, 2) | {"customer_uin": str(uin)},  # text for an integer
        _good(world, 3) | {"customer_uin": float(uin)},  # 100000000002.0
        _good(world, 4) | {"occurred_at": 1763632800},  # a number for a time
        _good(world, 5) | {"customer_uin": 999_999},  # nobody's customer
        _good(world, 6) | {"voucher_amount": "1.01"},  # voucher above list
        _good(world, 7) | {"occurred_at": "2026-01-01T00:00:00"},  # no UTC offset
        _good(world, 8) | {"bogus": 1},  # unknown field
        _good(world, 9) | {"list_amount": "1.005", "product": ""},  # two faults at once
        _good(world, 10) | {"list_amount": 1.0},  # a number for decimal text
    ]
    answer = client.post(
        "/v1/usage-batches", json={"records": records}, headers=world.h("platform")
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_batch"
    named = [(d["line"], d["field"]) for d in error["details"]]
    assert named == [
        (2, "customer_uin"),
        (3, "customer_uin"),
        (4, "occurred_at"),
        (5, "customer_uin"),
        (6, "voucher_amount"),
        (7, "occurred_at"),
        (8, "bogus"),
        (9, "product"),
        (9, "list_amount"),
        (10, "list_amount"),
    ]
    messages = {(d["line"], d["field"]): d["message"] for d in error["details"]}
    assert "no customer 999999" in messages[(5, "customer_uin")]
    assert "UTC offset" in messages[(7, "occurred_at")]
    assert error["message"].startswith("batch refused: record 2: ")
    assert _consumed(engine, world) == 0

    # The good record alone goes in: nothing of the refused batch had been counted.
    ok = client.post(
        "/v1/usage-batches", json={"records": [_good(world, 1)]}, headers=world.h("platform")
    )
    assert ok.status_code == 200, ok.text
    assert _consumed(engine, world) == 50


def test_the_body_shape_is_refused_naming_the_field(client: TestClient, world: World) -> None:
    platform = world.h("platform")
    extra = client.post(
        "/v1/usage-batches", json={"records": [_good(world, 1)], "dry_run": True}, headers=platform
    )
    assert extra.status_code == 400
    assert extra.json()["error"]["param"] == "dry_run"
    not_objects = client.post("/v1/usage-batches", json={"records": [1, "x"]}, headers=platform)
    assert [d["line"] for d in not_objects.json()["error"]["details"]] == [1, 2]
    empty = client.post("/v1/usage-batches", json={"records": []}, headers=platform)
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "records"
    schema = client.get("/openapi.json").json()["paths"]["/v1/usage-batches"]["post"]
    body = schema["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False
    assert body["properties"]["records"]["items"]["additionalProperties"] is False


def test_an_allocation_batch_names_bad_amounts_and_unknown_customers_at_once(
    client: TestClient, world: World
) -> None:
    """The same class: amounts were refused first, unknown customers only on the next try."""
    refused = client.post(
        "/v1/allocation-batches",
        json={
            "items": [
                {"customer_uin": world.a_customer, "amount": "1.00"},
                {"customer_uin": world.a_customer, "amount": "9999999999.00"},  # beyond
                {"customer_uin": world.b_customer, "amount": "1.00"},
            ]
        },
        headers=world.h("a_operator"),
    )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert [(d["line"], d["field"]) for d in error["details"]] == [
        (2, "amount"),
        (3, "customer_uin"),
    ]
    assert str(world.b_customer) in error["details"][1]["message"]

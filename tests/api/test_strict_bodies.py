"""Bodies mean exactly what they say: every REST request body is read strictly to its
published schema. No value is coerced between types, and an unknown field is refused by
name (``additionalProperties: false`` in the OpenAPI document), as Stripe's API does."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import World

#: The usage body has its own rules (each bad record named), kept beside its endpoint.
NOT_HERE = {"UsageBatchIn", "UsageIn"}


def _refused(answer: Any, field: str) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["param"] == field, error
    assert field in error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "1.00", "bogus": 1}, "bogus"),
        ({"amount": "1.00", "customer_uin": 100000000099}, "customer_uin"),
        ({"amount": 1.0}, "amount"),
        ({"amount": 1}, "amount"),
        ({"amount": "1.00", "remark": 7}, "remark"),
    ],
)
def test_allocation_body_is_read_strictly(
    client: TestClient, world: World, body: dict[str, Any], field: str
) -> None:
    answer = client.post(
        f"/v1/customers/{world.a_customer}/allocate", json=body, headers=world.h("a_operator")
    )
    error = _refused(answer, field)
    assert error["type"] == "invalid_request_error"
    pool = client.get("/v1/pool", headers=world.h("a_admin")).json()["pool"]
    assert pool["allocated"] == "0.00", "a refused body changed nothing"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/customers", {"name": "N", "identity_status": "1"}, "identity_status"),
        ("/v1/customers", {"name": "N", "identity_status": 1.0}, "identity_status"),
        ("/v1/customers", {"name": "N", "identity_status": True}, "identity_status"),
        ("/v1/customers", {"name": 5}, "name"),
        ("/v1/customers", {"name": "N", "partner_id": 1}, "partner_id"),
        ("/v1/thresholds", {"thresholds": ["80"]}, "thresholds.0"),
        ("/v1/api-keys", {"customer_uin": "100000000001"}, "customer_uin"),
        ("/v1/credit-applications", {"amount": "1.00", "approve": True}, "approve"),
        ("/v1/allocation-batches", {"items": [{"customer_uin": "1", "amount": "1"}]}, None),
        ("/v1/allocation-batches", {"items": [], "dry_run": "true"}, None),
    ],
)
def test_every_body_refuses_coercion_and_unknown_fields(
    client: TestClient, world: World, path: str, body: dict[str, Any], field: str | None
) -> None:
    method = "PUT" if path == "/v1/thresholds" else "POST"
    answer = client.request(method, path, json=body, headers=world.h("a_admin"))
    assert answer.status_code == 422, answer.text
    if field is not None:
        _refused(answer, field)


def test_batch_item_names_the_unknown_field(client: TestClient, world: World) -> None:
    item = {"customer_uin": world.a_customer, "amount": "1.00", "kind": "allocation"}
    answer = client.post(
        "/v1/allocation-batches", json={"items": [item]}, headers=world.h("a_operator")
    )
    _refused(answer, "items.0.kind")


def test_platform_bodies_are_strict(client: TestClient, world: World) -> None:
    grant = client.post(
        f"/v1/partners/{world.a}/grants",
        json={"amount": "1.00", "partner_id": world.b},
        headers=world.h("platform"),
    )
    _refused(grant, "partner_id")
    partner = client.post(
        "/v1/partners",
        json={"name": "P", "parent_id": str(world.dist)},
        headers=world.h("platform"),
    )
    _refused(partner, "parent_id")


def test_withdraw_says_it_takes_a_positive_amount(client: TestClient, world: World) -> None:
    answer = client.post(
        f"/v1/customers/{world.a_customer}/withdraw",
        json={"amount": "-5.00"},
        headers=world.h("a_operator"),
    )
    error = _refused(answer, "amount")
    assert "must be positive" in error["message"]
    assert "withdraw takes the amount to take back" in error["message"]
    assert "pattern" not in error["message"]
    malformed = client.post(
        f"/v1/customers/{world.a_customer}/withdraw",
        json={"amount": "5.001"},
        headers=world.h("a_operator"),
    )
    assert "at most two decimals, such as 12.50" in _refused(malformed, "amount")["message"]


def test_openapi_forbids_additional_properties_on_every_request_body(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    bodies = set()
    for path in document["paths"].values():
        for operation in path.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                bodies.update(_refs(media["schema"]))
    bodies -= NOT_HERE
    assert {"CreditIn", "CustomerIn", "BatchIn", "GrantIn", "KeyIn"} <= bodies
    pending = list(bodies)
    seen = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        schema = schemas[name]
        assert schema.get("additionalProperties") is False, name
        for prop in schema.get("properties", {}).values():
            for ref in _refs(prop):
                pending.append(ref)
    credit = schemas["CreditIn"]["properties"]["amount"]
    assert credit["type"] == "string" and credit["pattern"].startswith("^[0-9]")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else []
        for value in node.values():
            found += _refs(value)
        return found
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []

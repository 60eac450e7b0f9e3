"""A REST refusal's ``message`` shows amounts as people read them (``9,950.00``); the
machine-readable parts of the answer keep plain decimal text."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.api.conftest import World


def test_refusal_message_has_thousands_separators(client: TestClient, world: World) -> None:
    refused = client.post(
        f"/v1/customers/{world.b_customer}/allocate",
        json={"amount": "12000.00"},
        headers=world.h("b_admin", **{"Idempotency-Key": "messages-1"}),
    )
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "insufficient_pool"
    assert error["message"] == "the pool has 9,950.00 remaining; cannot allocate 12,000.00"
    pool = client.get("/v1/pool", headers=world.h("b_admin")).json()
    assert pool["pool"]["remaining"] == "9950.00"

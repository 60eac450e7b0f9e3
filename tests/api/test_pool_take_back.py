"""Through REST, a distributor takes back from its sub-reseller only what it gave
(DESIGN §2): the reproduced case of issue 12, answered 200 before it was fixed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.api.conftest import World

from creditline.db import transaction
from creditline.ledger.verify import verify


def test_a_distributor_takes_back_only_what_it_gave(
    client: TestClient, world: World, engine: Engine
) -> None:
    # The platform has granted the distributor 10,000.00 (the world's setup).
    dist, platform = world.h("dist_admin"), world.h("platform")
    made = client.post("/v1/customers", json={"name": "Delta's customer"}, headers=dist)
    assert made.status_code == 201, made.text
    customer = made.json()["uin"]
    allocated = client.post(
        f"/v1/customers/{customer}/allocate", json={"amount": "5000.00"}, headers=dist
    )
    assert allocated.status_code == 200, allocated.text
    granted = client.post(
        f"/v1/partners/{world.sub}/grants", json={"amount": "5000.00"}, headers=platform
    )
    assert granted.status_code == 200, granted.text
    path = f"/v1/sub-resellers/{world.sub}/pool-allocations"
    gave = client.post(path, json={"amount": "1000.00"}, headers=dist)
    assert gave.status_code == 200, gave.text
    assert gave.json()["sub_reseller"]["given"] == "1000.00"

    refused = client.post(path, json={"amount": "-4000.00"}, headers=dist)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("insufficient_pool", "amount")
    assert "has given it 1,000.00" in error["message"]

    sub = client.get(f"/v1/sub-resellers/{world.sub}", headers=dist).json()
    assert sub["pool"]["total"] == "6000.00" and sub["given"] == "1000.00"

    back = client.post(path, json={"amount": "-1000.00"}, headers=dist)
    assert back.status_code == 200, back.text
    assert back.json()["sub_reseller"]["given"] == "0.00"
    assert back.json()["pool"]["allocated"] == "5000.00"
    # The distributor's customer can still withdraw all of its own credit.
    withdrawn = client.post(
        f"/v1/customers/{customer}/withdraw", json={"amount": "5000.00"}, headers=dist
    )
    assert withdrawn.status_code == 200, withdrawn.text
    with transaction(engine) as s:
        assert verify(s) == []

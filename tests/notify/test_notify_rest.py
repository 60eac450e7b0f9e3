"""Webhook test events, redelivery and the delivery log driven through REST, delivered by
the worker to a real receiver that verifies every signature."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.notify.support import Receiver, customer_with_credit, drain

from creditline.app import create_app
from creditline.auth import keys
from creditline.config import Settings
from creditline.db import transaction
from creditline.notify import endpoints
from creditline.notify.worker import Worker

# The receiver listens on 127.0.0.1: this test opts in to private targets explicitly.
SETTINGS = Settings(
    smtp_host="", webhook_timeout_s=30.0, smtp_timeout_s=30.0, webhook_allow_private_targets=True
)


@pytest.fixture
def client(engine: Engine, database_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url), engine, worker=False)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def worker(engine: Engine) -> Iterator[Worker]:
    delivery = Worker(engine, SETTINGS)
    yield delivery
    delivery.close()


def test_test_event_redelivery_and_log_through_rest(
    engine: Engine, client: TestClient, receiver: Receiver, worker: Worker
) -> None:
    partner_id, _ = customer_with_credit(engine)
    drain(worker)  # the setup's allocation event is handed over before the endpoint exists
    with transaction(engine) as s:
        key = keys.create(s, principal="partner", partner_id=partner_id, role="admin", name="ops")
        # The receiver listens on the loopback address, so it is registered as the other
        # delivery tests register theirs.
        endpoint = endpoints.add_endpoint(
            s, partner_id=partner_id, url=receiver.url, allow_private_targets=True
        )
        receiver.secrets.append(endpoints.secret_of(s, endpoint))
        endpoint_id = endpoint.id
    admin = {"Authorization": f"Bearer {key.secret_id}:{key.secret_key}"}
    # A rotation through REST: the receiver knows only the secret the answer showed.
    rotated = client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
        json={"overlap_seconds": 0},
        headers=admin,
    )
    assert rotated.status_code == 200, rotated.text
    receiver.secrets[:] = [rotated.json()["secret"]]

    queued = client.post(f"/v1/webhook-endpoints/{endpoint_id}/test", headers=admin)
    assert queued.status_code == 201, queued.text
    delivery_id = queued.json()["id"]
    drain(worker)
    assert receiver.bad_signatures == []
    (first,) = receiver.successes()
    assert first.body is not None and first.body["type"] == endpoints.WEBHOOK_TEST
    assert first.body["data"]["endpoint_id"] == endpoint_id

    done = client.get(f"/v1/deliveries/{delivery_id}", headers=admin).json()
    assert (done["status"], done["attempts"], done["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    log = client.get(f"/v1/deliveries/{delivery_id}/attempts", headers=admin).json()
    assert [(a["succeeded"], a["status_code"]) for a in log["data"]] == [(True, 200)]

    again = client.post(f"/v1/deliveries/{delivery_id}/redeliver", headers=admin)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending"
    drain(worker)
    second = receiver.successes()[1]
    assert second.webhook_id == first.webhook_id  # the receiver can deduplicate on it
    log = client.get(f"/v1/deliveries/{delivery_id}/attempts", headers=admin).json()
    assert [a["succeeded"] for a in log["data"]] == [True, True]
    page = client.get(
        f"/v1/deliveries/{delivery_id}/attempts",
        params={"limit": 1, "after": log["data"][0]["id"]},
        headers=admin,
    ).json()
    assert [a["id"] for a in page["data"]] == [log["data"][1]["id"]]
    assert page["has_more"] is False

    # Disabled, it is not redelivered; the refusal is the core's.
    off = client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", json={"enabled": False}, headers=admin
    )
    assert off.status_code == 200
    refused = client.post(f"/v1/deliveries/{delivery_id}/redeliver", headers=admin)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "the endpoint is disabled; enable it first"

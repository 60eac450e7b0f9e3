"""The request path's shortcuts keep their promises: a key whose decrypted secret is
cached still fails from the request after its revocation, and an idempotency key older
than 24 hours is claimed afresh."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from tests.api.conftest import World

from creditline.auth import keys
from creditline.clock import utcnow
from creditline.db import transaction
from creditline.db.tables import AllocationRecord, IdempotentRequest


def test_revoked_key_fails_on_the_next_request_though_its_secret_is_cached(
    client: TestClient, world: World
) -> None:
    path = f"/v1/customers/{world.a_customer}"
    for _ in range(2):  # the second request is served from the cache of decrypted secrets
        assert client.get(path, headers=world.h("a_viewer")).status_code == 200
    revoked = client.delete(f"/v1/api-keys/{world.keys['a_viewer'][0]}", headers=world.h("a_admin"))
    assert revoked.status_code in (200, 204), revoked.text
    after = client.get(path, headers=world.h("a_viewer"))
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "invalid_api_key"


def test_lookup_names_the_partner_kind(engine: Engine, world: World) -> None:
    with transaction(engine) as s:
        assert keys.lookup(s, world.keys["dist_admin"][0]).partner_kind == "distributor"
        assert keys.lookup(s, world.keys["a_admin"][0]).partner_kind == "reseller"
        assert keys.lookup(s, world.keys["platform"][0]).partner_kind is None


def test_wrong_secret_is_refused_after_the_right_one_was_cached(
    client: TestClient, world: World
) -> None:
    secret_id, secret_key = world.keys["a_viewer"]
    path = f"/v1/customers/{world.a_customer}"
    good = {"Authorization": f"Bearer {secret_id}:{secret_key}"}
    assert client.get(path, headers=good).status_code == 200
    wrong = "y" if secret_key.endswith("x") else "x"  # never the right secret again
    bad = {"Authorization": f"Bearer {secret_id}:{secret_key[:-1]}{wrong}"}
    assert client.get(path, headers=bad).status_code == 401


def test_an_expired_idempotency_key_is_claimed_afresh(
    client: TestClient, world: World, engine: Engine
) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    headers = world.h("a_operator", **{"Idempotency-Key": "monthly"})
    first = client.post(path, json={"amount": "3.00"}, headers=headers)
    assert first.status_code == 200, first.text
    with transaction(engine) as s:
        s.execute(update(IdempotentRequest).values(created_at=utcnow() - timedelta(hours=25)))
    # 25 hours later the same key with another body is a new request, not a conflict.
    second = client.post(path, json={"amount": "4.00"}, headers=headers)
    assert second.status_code == 200, second.text
    assert "idempotent-replayed" not in second.headers
    with transaction(engine) as s:
        changes = s.execute(
            select(AllocationRecord.change)
            .where(AllocationRecord.idempotency_key == "monthly")
            .order_by(AllocationRecord.id)
        ).scalars()
        assert list(changes) == [300, 400]
        assert s.execute(select(IdempotentRequest.key)).scalars().all() == ["monthly"]


def test_the_fast_paths_answer_in_front_of_every_layer(client: TestClient, engine: Engine) -> None:
    """The fast paths are the outermost layers, in front of FastAPI's own entry and
    layers (its error, telemetry and body-limit middleware): a request they answer pays
    for no other."""
    from creditline.api.fast import FastPath
    from creditline.tc3.fast import TencentFastPath

    stack = client.app.front()  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        assert isinstance(stack, TencentFastPath)
        stack = stack.app
    assert isinstance(stack, FastPath)
    assert stack.app.__name__ == "fastapi"  # type: ignore[attr-defined]

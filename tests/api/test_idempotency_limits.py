"""Idempotency (replay, conflict, race) and the limits: page size, body size, rate."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.api.conftest import World

from creditline.app import create_app
from creditline.auth import keys
from creditline.config import Settings
from creditline.db import transaction
from creditline.db.tables import AllocationRecord, IdempotentRequest


def _allocations(engine: Engine) -> int:
    """Allocations made through the API (the world's own setup is made by the CLI)."""
    with transaction(engine) as s:
        return s.execute(
            select(func.count())
            .select_from(AllocationRecord)
            .where(AllocationRecord.kind == "allocation", AllocationRecord.source == "api")
        ).scalar_one()


def test_replay_and_conflict(client: TestClient, world: World, engine: Engine) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    headers = world.h("a_operator", **{"Idempotency-Key": "order-1"})
    first = client.post(path, json={"amount": "10.00"}, headers=headers)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    # Same body (spacing and key order aside): the stored answer, nothing applied twice.
    again = client.post(
        path,
        content=b'{ "amount" : "10.00" }',
        headers=headers | {"Content-Type": "application/json"},
    )
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["record"]["idempotency_key"] == "order-1"
    assert _allocations(engine) == 1
    # Same key, other body: refused, nothing applied.
    other = client.post(path, json={"amount": "11.00"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert _allocations(engine) == 1
    # Keys belong to one API key: another key may use the same string.
    mine = client.post(
        path, json={"amount": "10.00"}, headers=world.h("a_admin", **{"Idempotency-Key": "order-1"})
    )
    assert mine.status_code == 200 and "idempotent-replayed" not in mine.headers
    assert _allocations(engine) == 2


def test_refusals_are_not_stored(client: TestClient, world: World, engine: Engine) -> None:
    path = f"/v1/customers/{world.a_customer}/withdraw"
    headers = world.h("a_operator", **{"Idempotency-Key": "w-1"})
    refused = client.post(path, json={"amount": "5.00"}, headers=headers)
    assert refused.status_code == 409
    with transaction(engine) as s:
        assert s.execute(select(func.count()).select_from(IdempotentRequest)).scalar_one() == 0


def test_created_key_secret_is_not_kept_for_replay(
    client: TestClient, world: World, engine: Engine
) -> None:
    headers = world.h("a_admin", **{"Idempotency-Key": "new-key"})
    made = client.post("/v1/api-keys", json={"role": "viewer"}, headers=headers)
    assert made.status_code == 201 and made.json()["secret_key"]
    with transaction(engine) as s:
        stored = s.execute(select(IdempotentRequest.response_body)).scalar_one()
    assert made.json()["secret_key"] not in (stored or "")
    replay = client.post("/v1/api-keys", json={"role": "viewer"}, headers=headers)
    assert replay.status_code == 201 and replay.json()["secret_key"] is None
    assert replay.json()["secret_id"] == made.json()["secret_id"]


def test_concurrent_requests_with_one_key_apply_once(
    world: World, engine: Engine, database_url: str
) -> None:
    app = create_app(Settings(database_url=database_url), engine, worker=False)
    path = f"/v1/customers/{world.a_customer}/allocate"
    headers = world.h("a_operator", **{"Idempotency-Key": "race-1"})
    keys.authenticate_kept(engine, *world.keys["a_operator"])  # kept: the fast path takes part
    with TestClient(app) as c:  # and its rate-limit tokens leased (a read takes the first)
        assert c.get("/v1/pool", headers=world.h("a_operator")).status_code == 200
    barrier = threading.Barrier(4)
    answers: list[tuple[int, str | None, dict[str, object]]] = []
    lock = threading.Lock()

    def post() -> None:
        with TestClient(app) as c:
            barrier.wait()
            r = c.post(path, json={"amount": "7.00"}, headers=headers)
            with lock:
                answers.append((r.status_code, r.headers.get("idempotent-replayed"), r.json()))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a[0] for a in answers] == [200] * 4, answers
    assert sorted(str(a[1]) for a in answers) == ["None", "true", "true", "true"]
    assert len({str(a[2]) for a in answers}) == 1
    assert _allocations(engine) == 1
    assert app.state.fast_credit.statements > 0  # one of them applied on the fast path


def test_page_size_is_capped(client: TestClient, world: World) -> None:
    answer = client.get("/v1/customers", params={"page_size": 101}, headers=world.h("a_viewer"))
    assert answer.status_code == 422
    assert answer.json()["error"]["param"] == "page_size"
    assert (
        client.get(
            "/v1/allocation-records", params={"limit": 101}, headers=world.h("a_viewer")
        ).status_code
        == 422
    )


def test_body_size_is_capped(world: World, engine: Engine, database_url: str) -> None:
    app = create_app(
        Settings(database_url=database_url, api_max_body_bytes=100), engine, worker=False
    )
    with TestClient(app) as c:
        answer = c.post("/v1/customers", json={"name": "x" * 200}, headers=world.h("a_operator"))
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "body_too_large"
        assert answer.headers["x-request-id"]

        def chunks() -> object:
            yield b'{"name": "'
            yield b"y" * 200
            yield b'"}'

        streamed = c.post(
            "/v1/customers",
            content=chunks(),  # type: ignore[arg-type]
            headers=world.h("a_operator", **{"Content-Type": "application/json"}),
        )
        assert streamed.status_code == 413


def test_rate_limit_answers_429_with_retry_after(
    world: World, engine: Engine, database_url: str
) -> None:
    app = create_app(
        Settings(database_url=database_url, api_rate_limit_per_minute=3), engine, worker=False
    )
    with TestClient(app) as c:
        codes = [c.get("/v1/pool", headers=world.h("a_viewer")).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        limited = c.get("/v1/pool", headers=world.h("a_viewer"))
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["type"] == "rate_limit_error"
        # The bucket is per key: another key is not limited.
        assert c.get("/v1/pool", headers=world.h("a_admin")).status_code == 200


def test_request_id_is_echoed_or_made(client: TestClient, world: World) -> None:
    given = client.get("/v1/pool", headers=world.h("a_viewer", **{"X-Request-Id": "abc-123"}))
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/v1/nowhere")
    assert made.status_code == 404 and len(made.headers["x-request-id"]) == 32
    assert made.json()["error"]["type"] == "not_found_error"

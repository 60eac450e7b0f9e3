"""The Tencent-compatible allocation takes its key from the key cache and confirms it in
its own statement: a key revoked after it was kept is refused on its next request as a
revoked SecretId, changing nothing and leaving no audit row. REST reads take it from the
cache and confirm it in their read transaction alike."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.security.conftest import World
from tests.security.test_authorization_matrix import _fill, _rows, tc3_call

from creditline.auth import keys
from creditline.db import transaction
from creditline.db.tables import AllocationRecord, AuditEvent


def _counts(engine: Engine) -> tuple[int, int]:
    with transaction(engine) as s:
        return (
            int(s.scalar(select(func.count()).select_from(AllocationRecord)) or 0),
            int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0),
        )


def test_a_kept_key_revoked_is_refused_by_the_tencent_allocation(
    client: TestClient, world: World, engine: Engine
) -> None:
    params = {"ClientUin": world.a_customer, "AddedCredit": 1.0}
    first = tc3_call(client, world, "a_operator", "AllocateCustomerCredit", params)
    assert "Error" not in first, first
    secret_id = world.keys["a_operator"][0]
    assert keys.CACHE.get(engine, secret_id) is not None
    with transaction(engine) as s:
        keys.revoke(s, secret_id)
    before = _counts(engine)
    again = {**params, "AddedCredit": 2.0}  # signed anew: not a replay
    refused = tc3_call(client, world, "a_operator", "AllocateCustomerCredit", again)
    assert refused["Error"]["Code"] == "AuthFailure.SecretIdNotFound"
    assert _counts(engine) == before
    assert keys.CACHE.get(engine, secret_id) is None


@pytest.mark.parametrize("principal", ["a_viewer", "a_customer"])
def test_a_kept_key_revoked_is_refused_by_every_read(
    client: TestClient, world: World, engine: Engine, principal: str
) -> None:
    """REST reads take their key from the key cache too and confirm it live in their read
    transaction: once revoked, every read answers 401 on the key's next request — on a
    route the key may not call, and with a parameter out of range, alike — and forgets
    the key."""
    first = client.get(
        "/v1/me/credit" if principal == "a_customer" else "/v1/pool", headers=world.h(principal)
    )
    assert first.status_code == 200, first.text
    secret_id = world.keys[principal][0]
    kept = keys.CACHE.get(engine, secret_id)
    assert kept is not None
    with transaction(engine) as s:
        keys.revoke(s, secret_id)
    reads = [row for row in _rows() if row.method == "GET" and row.rule != "public"]
    paths = [_fill(row.template, world) for row in reads]
    paths += ["/v1/allocation-records?limit=0", "/v1/customers?sort=nonsense"]
    for path in paths:
        keys.CACHE.put(engine, kept)  # as kept before the revocation
        answer = client.get(path, headers=world.h(principal))
        assert answer.status_code == 401, (path, answer.status_code, answer.text[:200])
        assert answer.json()["error"]["code"] == "invalid_api_key", path
        assert keys.CACHE.get(engine, secret_id) is None, path

"""The Tencent-compatible allocation takes its key from the key cache and confirms it in
its own statement: a key revoked after it was kept is refused on its next request as a
revoked SecretId, changing nothing and leaving no audit row."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.security.conftest import World
from tests.security.test_authorization_matrix import tc3_call

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

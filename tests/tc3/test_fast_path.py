"""``AllocateCustomerCredit`` on the allocation's fast path (PostgreSQL's one statement,
creditline.tc3.fast) answers and stores exactly what the endpoint does: the answer, the
record, the outbox event, the audit row, the customer and the pool; a repeated signature is
still refused as a replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, inspect, select
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.intlpartnersmgt.v20220928 import intlpartnersmgt_client, models
from tests.tc3.conftest import World

from creditline.db import transaction
from creditline.db.tables import AllocationRecord, AuditEvent, Customer, OutboxEvent, Partner

Client = intlpartnersmgt_client.IntlpartnersmgtClient
_OWN = frozenset({"id", "created_at", "delivered_at", "at", "request_id"})


def _same(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _same(v) for k, v in value.items() if k not in _OWN}
    if isinstance(value, list):
        return [_same(v) for v in value]
    return value


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in inspect(obj).mapper.column_attrs}


def _allocate(client: Client, uin: int, amount: float) -> dict[str, Any]:
    request = models.AllocateCustomerCreditRequest()
    request.from_json_string(f'{{"ClientUin": {uin}, "AddedCredit": {amount}, "Remark": "same"}}')
    answer = client.AllocateCustomerCredit(request)
    return {"TotalCredit": answer.TotalCredit, "RemainingCredit": answer.RemainingCredit}


def _last(engine: Engine, world: World) -> dict[str, Any]:
    """The last allocation's record, event and audit row, and the customer and pool."""
    with transaction(engine) as s:
        record = s.scalars(select(AllocationRecord).order_by(AllocationRecord.id.desc())).first()
        event = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id.desc())).first()
        audited = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        customer = s.get(Customer, (world.reseller, world.customer))
        pool = s.get(Partner, world.reseller)
        assert record and event and audited and customer and pool
        return {
            "record": _same(_row(record)),
            "event": _same({**_row(event), "payload": event.payload}),
            "audit": _same(_row(audited)),
            "customer": _row(customer),
            "pool": _row(pool),
        }


def test_the_tencent_fast_path_answers_and_stores_what_the_endpoint_does(
    sdk: Callable[..., Client],
    world: World,
    served_app: FastAPI,
    engine_with_server_key: Engine,
) -> None:
    engine = engine_with_server_key
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's one statement; on SQLite the endpoint answers every call")
    fast = served_app.state.fast_credit
    client = sdk(world.operator)
    answered = fast.answered
    ordinary = _allocate(client, world.customer, 12.34)  # the key's first call: looked up
    assert fast.answered == answered
    stored_ordinary = _last(engine, world)
    # As they were. The rate limit's tokens are leased by the process in chunks: a call
    # finding none leased goes to the endpoint, which waits for the lease; a few calls in,
    # the process holds some.
    _allocate(client, world.customer, -12.34)
    time.sleep(1.1)  # the same request is signed again in another second (not a replay)
    for cents in (1, 2, 3):
        _allocate(client, world.customer, cents / 100)
        _allocate(client, world.customer, -cents / 100)
    answered = fast.answered
    fast_answer = _allocate(client, world.customer, 12.34)
    assert fast.answered == answered + 1
    stored_fast = _last(engine, world)
    assert fast_answer == ordinary
    for part in ("record", "event", "audit", "customer", "pool"):
        assert stored_fast[part] == stored_ordinary[part], part


def test_a_replayed_signature_is_refused_on_the_fast_path_too(
    sdk: Callable[..., Client], world: World, served_app: FastAPI, engine_with_server_key: Engine
) -> None:
    if engine_with_server_key.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's one statement")
    client = sdk(world.operator)
    _allocate(client, world.customer, 1.00)  # the key is kept from here
    request = models.AllocateCustomerCreditRequest()
    request.from_json_string(f'{{"ClientUin": {world.customer}, "AddedCredit": 1.0}}')
    sent: list[tuple[str, dict[str, str]]] = []
    original = client.request.send_request

    def keep(req: Any) -> Any:
        sent.append((req.data, dict(req.header)))
        return original(req)

    client.request.send_request = keep  # type: ignore[method-assign]
    client.AllocateCustomerCredit(request)
    data, headers = sent[-1]
    fast = served_app.state.fast_credit
    answered = fast.answered

    class Again:
        def __init__(self) -> None:
            self.data, self.header = data, headers
            self.host, self.method, self.uri = client.request.host, "POST", "/"

    with pytest.raises(TencentCloudSDKException):
        client.request.send_request = original  # type: ignore[method-assign]
        response = original(Again())
        client._check_status(response)
        client._check_error(response)
    assert fast.answered == answered

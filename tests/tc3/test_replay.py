"""A signed request is applied once: a repeat of a signed write is refused with
``InvalidRequest.ReplayAttack``, across server processes, and the signed ``Host`` is
checked as docs/tencent-compatibility.md says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from tests.tc3.conftest import World
from tests.tc3.test_actions import Sdk
from tests.tc3.test_protocol import _built, _send

from creditline.db import make_engine, transaction
from creditline.db.tables import AllocationRecord, AuditEvent, Tc3Signature
from creditline.ledger import accounts, pools
from creditline.ledger.records import Origin
from creditline.tc3 import signature
from creditline.tc3.callers import ApiKeyStore
from creditline.tc3.endpoint import TencentEndpoint, TencentRequest

REPLAY = "InvalidRequest.ReplayAttack"


def _credit(engine: Engine, world: World) -> int:
    with transaction(engine) as s:
        return accounts.get_customer(s, world.reseller, world.customer).total_credit


def _records(engine: Engine, world: World) -> int:
    with transaction(engine) as s:
        return s.execute(
            select(func.count())
            .select_from(AllocationRecord)
            .where(AllocationRecord.customer_uin == world.customer)
        ).scalar_one()


def test_the_same_signed_allocation_sent_three_times_allocates_once(
    sdk: Sdk, world: World, endpoint: str, engine_with_server_key: Engine
) -> None:
    before, records = (
        _credit(engine_with_server_key, world),
        _records(engine_with_server_key, world),
    )
    request = _built(
        sdk(world.admin), "AllocateCustomerCredit", {"ClientUin": world.customer, "AddedCredit": 1}
    )
    answers = [_send(endpoint, request, request.data)[0] for _ in range(3)]
    assert answers[0]["TotalCredit"] == (before + 100) / 100
    for repeat in answers[1:]:
        assert repeat["Error"]["Code"] == REPLAY
        assert "sign the request again" in repeat["Error"]["Message"].lower()
    assert _credit(engine_with_server_key, world) == before + 100
    assert _records(engine_with_server_key, world) == records + 1
    with transaction(engine_with_server_key) as s:
        refused = s.execute(
            select(AuditEvent).where(AuditEvent.outcome == "refused", AuditEvent.source == "tc3")
        ).scalars()
        assert [e.after["error"]["code"] for e in refused] == [REPLAY, REPLAY]


def test_a_refused_write_cannot_be_replayed_once_it_would_pass(
    sdk: Sdk, world: World, endpoint: str, engine_with_server_key: Engine
) -> None:
    """The first verified use claims the signature, even when the write is refused."""
    before = _credit(engine_with_server_key, world)
    request = _built(
        sdk(world.admin),
        "AllocateCustomerCredit",
        {"ClientUin": world.customer, "AddedCredit": 150_000},
    )
    first, _ = _send(endpoint, request, request.data)
    assert first["Error"]["Code"] == "InvalidParameterValue.CreditAmountOutOfRange"
    with transaction(engine_with_server_key) as s:
        pools.grant(s, partner_id=world.reseller, amount=20_000_000, origin=Origin("setup", "cli"))
    again, _ = _send(endpoint, request, request.data)
    assert again["Error"]["Code"] == REPLAY
    assert _credit(engine_with_server_key, world) == before


def test_a_replay_is_refused_by_another_server_process(
    sdk: Sdk, world: World, database_url: str, engine_with_server_key: Engine
) -> None:
    """Two endpoints on two engines (as two processes or machines) share one memory."""
    request = _built(
        sdk(world.operator),
        "AllocateCustomerCredit",
        {"ClientUin": world.customer, "AddedCredit": 2, "Remark": "once"},
    )
    incoming = TencentRequest(
        method="POST",
        query="",
        headers={name.lower(): value for name, value in request.header.items()},
        body=request.data.encode(),
    )
    before = _credit(engine_with_server_key, world)
    other_engine = make_engine(database_url)
    try:
        answers = [
            json.loads(
                TencentEndpoint(app=_unused, engine=engine, keys=ApiKeyStore()).answer(incoming)
            )["Response"]
            for engine in (engine_with_server_key, other_engine)
        ]
    finally:
        other_engine.dispose()
    assert "Error" not in answers[0]
    assert answers[1]["Error"]["Code"] == REPLAY
    assert _credit(engine_with_server_key, world) == before + 200


def test_reads_may_repeat_and_signatures_are_forgotten_when_they_expire(
    sdk: Sdk, world: World, endpoint: str, engine_with_server_key: Engine
) -> None:
    # The SDK sends a byte-identical read when called twice within a second: both answer.
    read = _built(sdk(world.viewer), "QueryPartnerCredit", {})
    for _ in range(2):
        assert "Error" not in _send(endpoint, read, read.data)[0]
    write = _built(
        sdk(world.admin), "AllocateCustomerCredit", {"ClientUin": world.customer, "AddedCredit": 3}
    )
    assert "Error" not in _send(endpoint, write, write.data)[0]
    with transaction(engine_with_server_key) as s:
        kept = s.execute(select(Tc3Signature)).scalars().all()
        assert len(kept) == 1  # only the write is remembered
        assert kept[0].secret_id == world.admin.secret_id
        assert kept[0].signature_hash not in write.header["Authorization"]  # a hash, not it
    # Once the window has passed, the key's next write forgets the expired signature.
    timestamp = int(write.header["X-TC-Timestamp"])
    later = timestamp + signature.MAX_SKEW_SECONDS + 1
    fresh = _built(
        sdk(world.admin), "AllocateCustomerCredit", {"ClientUin": world.customer, "AddedCredit": 4}
    )
    fresh.header["X-TC-Timestamp"] = str(later)
    fresh.header["Authorization"] = _resigned(sdk, world, fresh, later)
    endpoint_later = TencentEndpoint(
        app=_unused, engine=engine_with_server_key, keys=ApiKeyStore(), clock=lambda: later
    )
    answer = json.loads(endpoint_later.answer(_incoming(fresh)))["Response"]
    assert "Error" not in answer, answer
    with transaction(engine_with_server_key) as s:
        assert s.execute(select(func.count()).select_from(Tc3Signature)).scalar_one() == 1


def test_the_signed_host_is_checked_as_documented(
    sdk: Sdk, world: World, endpoint: str, engine_with_server_key: Engine
) -> None:
    request = _built(sdk(world.viewer), "QueryPartnerCredit", {})
    host = request.header["Host"]
    # Any host is accepted by default, but only the one signed: changed, it fails.
    assert "Error" not in _answer(engine_with_server_key, request, hosts=())
    changed = _incoming(request)
    changed.headers["host"] = "other.example"
    answer = json.loads(
        TencentEndpoint(app=_unused, engine=engine_with_server_key, keys=ApiKeyStore()).answer(
            changed
        )
    )["Response"]
    assert answer["Error"]["Code"] == "AuthFailure.SignatureFailure"
    # With CREDITLINE_TC3_HOSTS set, a request signed for another host is refused.
    assert "Error" not in _answer(engine_with_server_key, request, hosts=[host.upper()])
    refused = _answer(engine_with_server_key, request, hosts=["api.example.com"])
    assert refused["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    assert host in refused["Error"]["Message"]
    # The live server (no CREDITLINE_TC3_HOSTS) answers a request to its own address.
    assert "Error" not in _send(endpoint, request, request.data)[0]
    assert httpx.get(f"http://{endpoint}/", timeout=30).status_code != 500


def _answer(engine: Engine, request: Any, *, hosts: Any) -> dict[str, Any]:
    endpoint = TencentEndpoint(app=_unused, engine=engine, keys=ApiKeyStore(), hosts=hosts)
    answer: dict[str, Any] = json.loads(endpoint.answer(_incoming(request)))["Response"]
    return answer


def _incoming(request: Any) -> TencentRequest:
    return TencentRequest(
        method="POST",
        query="",
        headers={name.lower(): value for name, value in request.header.items()},
        body=request.data.encode(),
    )


def _resigned(sdk: Sdk, world: World, request: Any, timestamp: int) -> str:
    """The Authorization header for ``request`` signed at ``timestamp``."""
    headers = {name.lower(): value for name, value in request.header.items()}
    authorization = signature.parse_authorization(headers["authorization"])
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{signature.SERVICE}/{signature.TERMINATOR}"
    canonical = signature.canonical_request(
        method="POST",
        query="",
        headers=headers,
        signed_headers=authorization.signed_headers,
        payload_hash=signature.payload_hash("POST", request.data.encode(), headers),
    )
    signed = signature.sign(
        world.admin.secret_key,
        date=date,
        service=signature.SERVICE,
        message=signature.string_to_sign(
            timestamp=str(timestamp), credential_scope=scope, canonical=canonical
        ),
    )
    return (
        f"TC3-HMAC-SHA256 Credential={world.admin.secret_id}/{scope}, "
        f"SignedHeaders={';'.join(authorization.signed_headers)}, Signature={signed}"
    )


async def _unused(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not a Tencent request")

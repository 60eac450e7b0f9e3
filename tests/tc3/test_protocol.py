"""The protocol around the actions: signatures, keys, timestamps, rate limits and the
error envelope, through the official SDK against a live server."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from tencentcloud.common import abstract_client
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.intlpartnersmgt.v20220928 import models
from tests.tc3.conftest import Key, World
from tests.tc3.test_actions import Sdk, _allocate, refused

from creditline.db import transaction
from creditline.ledger import accounts
from creditline.tc3.callers import KeyMatch
from creditline.tc3.endpoint import TencentEndpoint, TencentRequest
from creditline.tc3.limits import Limit, parse_limits


def _built(client: Any, action: str, params: dict[str, Any]) -> RequestInternal:
    """The request the SDK would send, signed by the SDK, not yet sent."""
    endpoint = client.profile.httpProfile.endpoint
    request = RequestInternal(endpoint, "POST", "/", header={})
    client._build_req_inter(action, params, request)
    return request


def _send(endpoint: str, request: RequestInternal, body: str) -> tuple[dict[str, Any], str]:
    """Send a built request with ``body``: the ``Response`` object and the raw text."""
    answer = httpx.post(
        f"http://{endpoint}/", headers=request.header, content=body.encode(), timeout=60
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    response: dict[str, Any] = answer.json()["Response"]
    assert response["RequestId"]
    return response, answer.text


def test_tampered_body_is_refused_and_changes_nothing(
    sdk: Sdk, world: World, endpoint: str, engine_with_server_key: Engine
) -> None:
    client = sdk(world.admin)
    params = {"ClientUin": world.customer, "AddedCredit": 1.0}
    request = _built(client, "AllocateCustomerCredit", params)
    tampered = request.data.replace("1.0", "700.0")
    assert tampered != request.data
    response, _ = _send(endpoint, request, tampered)
    assert response["Error"]["Code"] == "AuthFailure.SignatureFailure"
    with transaction(engine_with_server_key) as s:
        assert accounts.get_customer(s, world.reseller, world.customer).total_credit == 20_000
    # The request as signed goes through; amounts are written with two decimals.
    response, text = _send(endpoint, request, request.data)
    assert (response["TotalCredit"], response["RemainingCredit"]) == (201.0, 201.0)
    assert '"TotalCredit":201.00' in text


def test_stale_timestamp_and_unknown_or_wrong_keys(
    sdk: Sdk, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sdk(world.admin)
    stale = int(time.time()) - 301
    with monkeypatch.context() as patch:
        patch.setattr(abstract_client, "time", SimpleNamespace(time=lambda: stale))
        code, _ = refused(lambda: client.QueryPartnerCredit(models.QueryPartnerCreditRequest()))
    assert code == "AuthFailure.SignatureExpire"

    unknown = Key("AKID" + "0" * 32, world.admin.secret_key, "nobody")
    code, _ = refused(lambda: sdk(unknown).QueryPartnerCredit(models.QueryPartnerCreditRequest()))
    assert code == "AuthFailure.SecretIdNotFound"
    wrong = Key(world.admin.secret_id, "not-the-secret", "x")
    code, _ = refused(lambda: sdk(wrong).QueryPartnerCredit(models.QueryPartnerCreditRequest()))
    assert code == "AuthFailure.SignatureFailure"


def test_malformed_authorization_and_envelope(sdk: Sdk, world: World, endpoint: str) -> None:
    request = _built(sdk(world.admin), "QueryPartnerCredit", {})
    request.header["Authorization"] = "TC3-HMAC-SHA256 Credential=nonsense"
    response, _ = _send(endpoint, request, request.data)
    assert response["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    assert set(response) == {"Error", "RequestId"}
    assert set(response["Error"]) == {"Code", "Message"}


def test_other_requests_to_root_pass_through(endpoint: str) -> None:
    # No X-TC-Action: not a Tencent call; the console behind answers (it sends a visitor
    # to its login page) and nothing comes back in the Tencent envelope.
    page = httpx.get(f"http://{endpoint}/", timeout=60)
    assert page.status_code == 303
    assert page.headers["location"].endswith("/login")
    posted = httpx.post(f"http://{endpoint}/", content=b"{}", timeout=60)
    assert posted.status_code in (403, 404, 405)
    assert "Response" not in posted.text


class TestRateLimit:
    @pytest.fixture
    def rate_limits(self) -> str:
        return "AllocateCustomerCredit=2/3600,*=3/3600"

    def test_limit_per_key_and_action(self, sdk: Sdk, world: World) -> None:
        admin, operator = sdk(world.admin), sdk(world.operator)
        # Remarks tell the calls apart: two byte-identical writes signed within one second
        # carry one signature, and the second would be refused as a replay.
        assert _allocate(admin, world.customer, 1.0, "1").TotalCredit == 201.0
        assert _allocate(admin, world.customer, 1.0, "2").TotalCredit == 202.0
        assert refused(lambda: _allocate(admin, world.customer, 1.0, "3"))[0] == (
            "RequestLimitExceeded"
        )
        # Another key, and another action of the same key, have their own allowance.
        assert _allocate(operator, world.customer, 1.0).TotalCredit == 203.0
        query = models.QueryPartnerCreditRequest()
        assert admin.QueryPartnerCredit(query).AllocatedCredit == 203.0


def test_parse_limits() -> None:
    # The buckets themselves, shared by processes: tests/auth/test_rate_limit.py.
    assert parse_limits("")["AllocateCustomerCredit"] == Limit(5, 1.0)
    assert parse_limits("X=3/2")["X"] == Limit(3, 2.0)
    with pytest.raises(ValueError):
        parse_limits("X=0/1")


class _BrokenKeys:
    def lookup(self, session: object, secret_id: str) -> KeyMatch | None:
        raise RuntimeError("the key store is broken")


def test_unexpected_failure_is_an_internal_error(
    sdk: Sdk, world: World, engine_with_server_key: Engine
) -> None:
    request = _built(sdk(world.admin), "QueryPartnerCredit", {})
    endpoint = TencentEndpoint(
        app=lambda scope, receive, send: None,  # type: ignore[arg-type,return-value]
        engine=engine_with_server_key,
        keys=_BrokenKeys(),
    )
    body = endpoint.answer(
        TencentRequest(
            method="POST",
            query="",
            headers={name.lower(): value for name, value in request.header.items()},
            body=request.data.encode(),
        )
    )
    response = json.loads(body)["Response"]
    assert response["Error"]["Code"] == "InternalError"
    assert "broken" not in response["Error"]["Message"]
    assert response["RequestId"] in response["Error"]["Message"]

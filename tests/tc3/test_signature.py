"""TC3-HMAC-SHA256 verification against requests signed by Tencent's own SDK."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

import pytest
from tencentcloud.common import credential
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.intlpartnersmgt.v20220928 import intlpartnersmgt_client

from creditline.tc3 import signature
from creditline.tc3.errors import (
    INVALID_AUTHORIZATION,
    MISSING_PARAMETER,
    SIGNATURE_EXPIRE,
    SIGNATURE_FAILURE,
    TencentError,
)
from creditline.tc3.params import Params, unflatten

SECRET_ID = "AKIDexample0000000000000000000000000"
SECRET_KEY = "example-secret-key-0123456789"


def _signed(
    method: str, params: dict[str, Any], endpoint: str = "127.0.0.1:8000"
) -> RequestInternal:
    """A request built and signed by the SDK, exactly as it would send it."""
    profile = ClientProfile(
        httpProfile=HttpProfile(protocol="http", endpoint=endpoint, reqMethod=method)
    )
    client = intlpartnersmgt_client.IntlpartnersmgtClient(
        credential.Credential(SECRET_ID, SECRET_KEY), "", profile
    )
    request = RequestInternal(endpoint, method, "/", header={})
    client._build_req_inter("AllocateCustomerCredit", params, request)
    return request


def _check(
    request: RequestInternal,
    *,
    secret_key: str = SECRET_KEY,
    body: bytes | None = None,
    now: float | None = None,
) -> None:
    headers = {name.lower(): value for name, value in request.header.items()}
    authorization = signature.parse_authorization(headers["authorization"])
    timestamp = signature.request_time(headers, now=time.time() if now is None else now)
    signature.check_scope(authorization, timestamp)
    data = request.data.encode() if isinstance(request.data, str) else request.data
    signature.verify(
        authorization,
        secret_key=secret_key,
        method=request.method,
        query=request.data if request.method == "GET" else "",
        headers=headers,
        body=data if body is None else body,
    )


def test_post_signed_by_the_sdk_verifies() -> None:
    request = _signed("POST", {"ClientUin": 100000000005, "AddedCredit": 12.5, "Remark": "é"})
    _check(request)
    assert signature.parse_authorization(request.header["Authorization"]).secret_id == SECRET_ID


def test_get_query_form_signed_by_the_sdk_verifies_and_reads_back() -> None:
    request = _signed("GET", {"UinList": [100000000005, 100000000006], "AddedCredit": 1.25})
    _check(request)
    params = Params(unflatten(parse_qsl(request.data)), textual=True)
    assert params.uin_list("UinList", most=50) == [100000000005, 100000000006]
    assert params.amount("AddedCredit") == 125


def test_tampered_body_fails() -> None:
    request = _signed("POST", {"ClientUin": 100000000005, "AddedCredit": 1.0})
    with pytest.raises(TencentError) as refused:
        _check(request, body=request.data.replace("1.0", "1000.0").encode())
    assert refused.value.code == SIGNATURE_FAILURE


def test_wrong_secret_fails() -> None:
    request = _signed("POST", {"ClientUin": 100000000005, "AddedCredit": 1.0})
    with pytest.raises(TencentError) as refused:
        _check(request, secret_key="not-the-secret")
    assert refused.value.code == SIGNATURE_FAILURE


def test_other_host_fails() -> None:
    request = _signed("POST", {"ClientUin": 1, "AddedCredit": 1.0})
    request.header["Host"] = "127.0.0.1:9999"
    with pytest.raises(TencentError) as refused:
        _check(request)
    assert refused.value.code == SIGNATURE_FAILURE


def test_stale_and_future_timestamps_expire() -> None:
    request = _signed("POST", {"ClientUin": 1, "AddedCredit": 1.0})
    sent = int(request.header["X-TC-Timestamp"])
    _check(request, now=sent + 300)
    for now in (sent + 301, sent - 301):
        with pytest.raises(TencentError) as refused:
            _check(request, now=now)
        assert refused.value.code == SIGNATURE_EXPIRE


def test_missing_timestamp() -> None:
    with pytest.raises(TencentError) as refused:
        signature.request_time({}, now=time.time())
    assert refused.value.code == MISSING_PARAMETER


SCOPE = "a/2026-01-01/intlpartnersmgt/tc3_request"
HEX = "0" * 64


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"HMAC-SHA1 Credential={SCOPE}, SignedHeaders=content-type;host, Signature={HEX}",
        f"TC3-HMAC-SHA256 Credential=a/1/x, SignedHeaders=host;content-type, Signature={HEX}",
        f"TC3-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=host, Signature={HEX}",
        f"TC3-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=content-type;host, Signature=xyz",
        f"TC3-HMAC-SHA256 Credential={SCOPE}, Signature={HEX}",
    ],
)
def test_malformed_authorization(header: str | None) -> None:
    with pytest.raises(TencentError) as refused:
        signature.parse_authorization(header)
    assert refused.value.code == INVALID_AUTHORIZATION


def test_scope_must_be_the_service_and_the_timestamps_date() -> None:
    request = _signed("POST", {"ClientUin": 1, "AddedCredit": 1.0})
    authorization = signature.parse_authorization(request.header["Authorization"])
    timestamp = int(request.header["X-TC-Timestamp"])
    signature.check_scope(authorization, timestamp)
    with pytest.raises(TencentError) as refused:
        signature.check_scope(authorization, timestamp + 86_400)
    assert refused.value.code == SIGNATURE_FAILURE
    other = signature.parse_authorization(
        request.header["Authorization"].replace("/intlpartnersmgt/", "/cvm/")
    )
    with pytest.raises(TencentError) as refused:
        signature.check_scope(other, timestamp)
    assert refused.value.code == INVALID_AUTHORIZATION


def test_unsigned_payload_is_refused() -> None:
    with pytest.raises(TencentError) as refused:
        signature.payload_hash("POST", b"{}", {"x-tc-content-sha256": "UNSIGNED-PAYLOAD"})
    assert refused.value.code == INVALID_AUTHORIZATION

"""No input can burn CPU or memory: every amount is judged by its length and shape before
any arithmetic, through every door. The fuzz here builds the RAW text a client can send
(exponents of any size, digit strings of up to a million characters, signs, whitespace,
non-ASCII digits), not only values a JSON encoder produces; and it watches
:func:`creditline.money._cents` (the one place digits become a number) to show that no
hostile amount reaches arithmetic with more than a handful of digits."""

from __future__ import annotations

import json
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from tests.security.conftest import World
from tests.security.test_authorization_matrix import _console_login, signed_headers
from tests.security.test_fuzz import _counts

from creditline import money
from creditline.db import transaction
from creditline.errors import InvalidBatch
from creditline.ledger.verify import verify
from creditline.tc3.limits import RateLimiter
from creditline.usage_file import import_file

SCALE = 10 if os.environ.get("CREDITLINE_LONG_TESTS") == "1" else 1
FUZZ = settings(
    max_examples=25 * SCALE,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ],
)

#: The request of the review: 54 bytes that took 21 s and 460 MB before the fix.
FIFTY_FOUR_BYTES = b'{"ClientUin": 100000000002, "AddedCredit": 1e50000000}'

_sign = st.sampled_from(["", "-", "+", " ", "--"])
_digits = st.text(alphabet="0123456789", min_size=1, max_size=25)
#: JSON-number-shaped text with any exponent, from tiny to absurd.
number_text = st.builds(
    lambda sign, whole, fraction, mark, exponent: (
        f"{sign}{whole}{'.' + fraction if fraction else ''}{mark}{exponent if mark else ''}"
    ),
    _sign,
    _digits,
    st.one_of(st.just(""), _digits),
    st.sampled_from(["", "e", "E", "e+", "e-"]),
    st.integers(min_value=0, max_value=10**12),
)
#: Digit strings up to a million characters, made cheaply.
long_digits = st.builds(
    lambda digit, n, point: digit * n + ("." + digit * n if point else ""),
    st.sampled_from(["0", "1", "9"]),
    st.integers(min_value=30, max_value=1_000_000),
    st.booleans(),
)
raw_amount = st.one_of(
    number_text,
    long_digits,
    st.text(
        alphabet=" \t\u00a0+-.eE0123456789\u0661\u0662\u0663\u0664\u0665\U0001d7d9", max_size=60
    ),
    st.sampled_from(
        ["1e50000000", "1e1000000", "-1e999999", "1E+999999999999", "0e99999999", "NaN"]
    ),
)


@pytest.fixture(autouse=True)
def no_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzz sends far more than 5 calls a second; the limit is tested elsewhere."""
    monkeypatch.setattr(RateLimiter, "admit", lambda self, key, action, **_: True)


@pytest.fixture
def arithmetic() -> Iterator[list[tuple[int, int]]]:
    """(digits, exponent) of every amount that reached arithmetic while the test ran."""
    seen: list[tuple[int, int]] = []
    original = money._cents

    def watched(sign: str, whole: str, fraction: str, exponent: int, *a: Any, **k: Any) -> int:
        seen.append((len(whole) + len(fraction), exponent))
        return original(sign, whole, fraction, exponent, *a, **k)

    money._cents = watched  # type: ignore[assignment]
    yield seen
    money._cents = original  # type: ignore[assignment]


def _bounded(seen: list[tuple[int, int]]) -> None:
    assert all(digits <= money.MAX_AMOUNT_TEXT for digits, _ in seen), seen


def test_the_54_byte_request_is_an_invalid_amount_read_as_written(
    client: TestClient, world: World, engine: Engine, arithmetic: list[tuple[int, int]]
) -> None:
    body = FIFTY_FOUR_BYTES.replace(b"100000000002", str(world.a_customer).encode())
    before = _counts(engine)
    tracemalloc.start()
    try:
        answer = client.post(
            "/",
            content=body,
            headers=signed_headers("AllocateCustomerCredit", body, *world.keys["a_operator"]),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    error = answer.json()["Response"]["Error"]
    assert error["Code"] == "InvalidParameterValue"
    assert "beyond the limit" in error["Message"]
    # Structural, not timed: the number reached money as its 10 characters, one digit and
    # its exponent, and nothing the size of the number it names was ever built.
    assert arithmetic == [(1, 50_000_000)]
    assert peak < 20_000_000, peak
    assert _counts(engine)[:2] == before[:2]


@pytest.mark.parametrize("exponent", ["1e999999", "1e1000000", "-1e1000001", "1e-1000000"])
def test_exponents_past_decimal_range_are_invalid_amounts(
    client: TestClient, world: World, exponent: str
) -> None:
    body = f'{{"ClientUin": {world.a_customer}, "AddedCredit": {exponent}}}'.encode()
    answer = client.post(
        "/",
        content=body,
        headers=signed_headers("AllocateCustomerCredit", body, *world.keys["a_operator"]),
    )
    assert answer.json()["Response"]["Error"]["Code"] == "InvalidParameterValue"


def test_raw_tencent_amounts(
    client: TestClient, world: World, engine: Engine, arithmetic: list[tuple[int, int]]
) -> None:
    @FUZZ
    @given(raw=raw_amount, action=st.sampled_from(["AllocateCustomerCredit", "AllocateCreditPool"]))
    @example(raw="1e50000000", action="AllocateCustomerCredit")
    @example(raw="9" * 1_000_000, action="AllocateCreditPool")
    def run(raw: str, action: str) -> None:
        if action == "AllocateCustomerCredit":
            body = f'{{"ClientUin": {world.a_customer}, "AddedCredit": {raw}}}'
        else:
            body = f'{{"SubAgentUin": {world.sub}, "Credit": {raw}}}'
        sent = body.encode()
        answer = client.post(
            "/", content=sent, headers=signed_headers(action, sent, *world.keys["a_admin"])
        )
        if answer.status_code == 413:
            return  # over the server's body limit: refused before the endpoint reads it
        response = answer.json()["Response"]
        if "Error" in response:
            assert response["Error"]["Code"] in (
                "InvalidParameter",
                "InvalidParameterValue",
                "FailedOperation",
                "InvalidParameterValue.CreditAmountOutOfRange",
                # The same body drawn twice in one second is the same signed request.
                "InvalidRequest.ReplayAttack",
            ), response
            assert len(response["Error"]["Message"]) < 300

    run()
    _bounded(arithmetic)
    with transaction(engine) as s:
        assert verify(s) == []


def test_raw_rest_amounts(
    client: TestClient, world: World, arithmetic: list[tuple[int, int]]
) -> None:
    paths = [
        f"/v1/customers/{world.a_customer}/allocate",
        f"/v1/customers/{world.a_customer}/withdraw",
        f"/v1/sub-resellers/{world.sub}/pool-allocations",
        "/v1/credit-applications",
    ]

    @FUZZ
    @given(raw=raw_amount, path=st.sampled_from(paths), quoted=st.booleans())
    @example(raw="1e50000000", path=paths[0], quoted=False)
    @example(raw="9" * 1_000_000, path=paths[0], quoted=True)
    def run(raw: str, path: str, quoted: bool) -> None:
        value = json.dumps(raw) if quoted else raw
        answer = client.post(
            path,
            content=f'{{"amount": {value}}}'.encode(),
            headers={**world.h("a_admin"), "content-type": "application/json"},
        )
        assert answer.status_code < 500, answer.text[:300]
        if answer.status_code >= 400:
            error = answer.json()["error"]
            assert error["message"] and len(error["message"]) < 1000

    run()
    _bounded(arithmetic)


def test_raw_console_amounts(
    client: TestClient, world: World, arithmetic: list[tuple[int, int]]
) -> None:
    csrf = _console_login(client, world.users["a_admin"])
    forms = [
        f"/customers/{world.a_customer}/credit",
        f"/distributors/{world.sub}/pool",
        "/applications",
    ]

    @FUZZ
    @given(raw=raw_amount, path=st.sampled_from(forms))
    @example(raw="1e50000000", path=forms[0])
    @example(raw="1" * 1_000_000, path=forms[0])
    def run(raw: str, path: str) -> None:
        answer = client.post(path, data={"amount": raw, "csrf_token": csrf}, follow_redirects=False)
        assert answer.status_code < 500, answer.text[:300]

    run()
    _bounded(arithmetic)


def test_the_setting_credit_form_names_a_huge_exponent_as_an_invalid_amount(
    client: TestClient, world: World
) -> None:
    csrf = _console_login(client, world.users["a_admin"])
    answer = client.post(
        f"/customers/{world.a_customer}/credit",
        data={"amount": "1" * 100_000, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 422
    assert "longer than 40 characters" in answer.text


def test_a_text_client_uin_allocates_nothing(
    client: TestClient, world: World, engine: Engine
) -> None:
    # AllocateCustomerCredit declares ClientUin as int: text is refused, as Tencent does.
    before = _counts(engine)
    body = f'{{"ClientUin": "{world.a_customer}", "AddedCredit": 1.5}}'.encode()
    answer = client.post(
        "/",
        content=body,
        headers=signed_headers("AllocateCustomerCredit", body, *world.keys["a_operator"]),
    )
    assert answer.json()["Response"]["Error"]["Code"] == "InvalidParameter"
    assert _counts(engine)[:2] == before[:2]


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        ("jsonl", '{"event_id": "e1", "customer_uin": ' + "9" * 5000 + "}"),
        ("jsonl", '{"event_id": "e1", "list_amount": 1e50000000}'),
        ("csv", "e1,100000000002,cvm," + "9" * 100_000 + ",0,2026-01-01T00:00:00Z,charge"),
    ],
    ids=["jsonl-long-integer", "jsonl-huge-exponent", "csv-long-amount"],
)
def test_usage_files_refuse_oversized_numbers_by_line(
    world: World, engine: Engine, tmp_path: Path, fmt: str, line: str
) -> None:
    # The 5,000-digit integer raised ValueError out of the JSON reader (not a refusal).
    header = "event_id,customer_uin,product,list_amount,voucher_amount,occurred_at,kind\n"
    path = tmp_path / f"usage.{fmt}"
    path.write_text((header if fmt == "csv" else "") + line + "\n", encoding="utf-8")
    with pytest.raises(InvalidBatch) as refused, transaction(engine) as s:
        import_file(s, path)
    assert refused.value.errors[0].line == 1 + (fmt == "csv")

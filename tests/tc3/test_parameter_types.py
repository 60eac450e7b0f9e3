"""Parameters are read by Tencent's declared types, never coerced: a UIN declared ``int``
sent as text, or text sent as a number, is ``InvalidParameter`` as the real API answers;
a number too large for its field is ``InvalidParameterValue``; nothing a client writes
reaches ``int()`` or arithmetic unbounded (which raised, and answered ``InternalError``)."""

from __future__ import annotations

from typing import Any

import pytest

from creditline.tc3 import signature
from creditline.tc3.errors import TencentError
from creditline.tc3.params import JsonNumber, Params, decode_json, unflatten


def _code(call: Any) -> str:
    with pytest.raises(TencentError) as refused:
        call()
    return refused.value.code


def _json(text: str) -> Params:
    return Params(decode_json(text.encode()))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"ClientUin": "100000000002"}', "InvalidParameter"),
        ('{"ClientUin": 100000000002.0}', "InvalidParameter"),
        ('{"ClientUin": 1e11}', "InvalidParameter"),
        ('{"ClientUin": true}', "InvalidParameter"),
        ('{"ClientUin": 99999999999999999999}', "InvalidParameterValue"),
        ('{"ClientUin": ' + "9" * 5000 + "}", "InvalidParameterValue"),
        ('{"ClientUin": -1}', "InvalidParameterValue"),
    ],
)
def test_an_int_uin_is_an_integer(body: str, code: str) -> None:
    assert _code(lambda: _json(body).uin("ClientUin")) == code


def test_a_text_uin_is_text() -> None:
    # ModifyClientRemark declares ClientUin as str.
    assert _json('{"ClientUin": "100000000002"}').uin_text("ClientUin") == 100000000002
    assert _code(lambda: _json('{"ClientUin": 100000000002}').uin_text("ClientUin")) == (
        "InvalidParameter"
    )
    for text in ("١٢٣", "9" * 5000, "-5", "1e5"):
        params = Params({"ClientUin": text})
        assert _code(lambda p=params: p.uin_text("ClientUin")) == "InvalidParameterValue"


def test_lists_and_pages_are_integers() -> None:
    assert _code(lambda: _json('{"UinList": ["100000000002"]}').uin_list("UinList", most=5)) == (
        "InvalidParameter"
    )
    assert _code(lambda: _json('{"Page": "1", "PageSize": 10}').page()) == "InvalidParameter"
    assert _code(lambda: _json('{"Remark": 5}').text("Remark")) == "InvalidParameter"
    assert _code(lambda: _json('{"AddedCredit": "1.50"}').amount("AddedCredit")) == (
        "InvalidParameter"
    )


def test_numbers_are_kept_as_written() -> None:
    values = decode_json(b'{"a": 1.50, "b": 1e50000000, "c": 12, "d": ' + b"7" * 40 + b"}")
    assert values == {
        "a": JsonNumber("1.50"),
        "b": JsonNumber("1e50000000"),
        "c": 12,
        "d": JsonNumber("7" * 40),
    }
    assert _json('{"AddedCredit": 1.50}').amount("AddedCredit") == 150
    assert _json('{"AddedCredit": -2}').amount("AddedCredit") == -200
    assert _code(lambda: _json('{"AddedCredit": 1e50000000}').amount("AddedCredit")) == (
        "InvalidParameterValue"
    )


def test_query_strings_carry_text_bounded() -> None:
    params = Params({"ClientUin": "100000000002", "Page": "9" * 5000}, textual=True)
    assert params.uin("ClientUin") == 100000000002
    assert _code(lambda: params.integer("Page", minimum=1, maximum=10)) == ("InvalidParameterValue")
    for key in ("UinList." + "1" * 5000, "UinList.01"):
        assert _code(lambda k=key: unflatten([(k, "1")])) == "InvalidParameter"
    # A non-ASCII digit is no list index (int() of it raised): the field is not a list.
    odd = Params(unflatten([("UinList.\u0661", "1")]), textual=True)
    assert _code(lambda: odd.uin_list("UinList", most=5)) == "InvalidParameter"


@pytest.mark.parametrize("raw", ["\u00b2", "1" * 5000, "1" * 13, "\u0661\u0662"])
def test_a_timestamp_that_is_no_time_is_an_invalid_parameter(raw: str) -> None:
    # "²" passed isdigit() and int() raised; 5,000 digits overflowed the comparison.
    headers = {"x-tc-timestamp": raw}
    assert _code(lambda: signature.request_time(headers, now=1_700_000_000)) == ("InvalidParameter")

"""The Tencent response envelope: ``{"Response": {..., "RequestId": ...}}``.

Amounts go out as JSON numbers written with exactly two decimals (``12.50``), from the
integer cents, so no float ever stands between the ledger and the caller's parser.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from creditline import money

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class Cents(int):
    """An amount in cents that is rendered as a two-decimal JSON number."""


def tencent_time(value: datetime | None) -> str:
    """A timestamp in Tencent's ``YYYY-MM-DD HH:MM:SS`` form (UTC); ``""`` when unknown."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def new_request_id() -> str:
    """A fresh ``RequestId``, a UUID as Tencent's are."""
    return str(uuid.uuid4())


#: Object keys as JSON text: an answer's keys are the API's field names, a few dozen, each
#: written once (json.dumps per key per answer was a tenth of an allocation's rendering).
_KEYS: dict[str, str] = {}


def _key(key: object) -> str:
    if type(key) is not str:
        return json.dumps(str(key))
    text = _KEYS.get(key)
    if text is None:
        text = json.dumps(key)
        if len(_KEYS) < 4096:
            _KEYS[key] = text
    return text


def _write(value: Any, out: list[str]) -> None:
    # The plain cases first, written as json.dumps(value, ensure_ascii=False) writes them.
    if type(value) is str:
        out.append(encode_basestring(value))
    elif type(value) is int:
        out.append(int.__repr__(value))
    elif isinstance(value, Cents):
        out.append(money.to_text(int(value)))
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(_key(key))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, float):
        raise TypeError("floats are not rendered; pass amounts as Cents")
    else:
        out.append(json.dumps(value, ensure_ascii=False))


def render(value: Any) -> bytes:
    """JSON for ``value``, with :class:`Cents` written as two-decimal numbers."""
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode("utf-8")


def success(fields: Mapping[str, Any], request_id: str) -> bytes:
    """The body of a successful answer."""
    return render({"Response": {**fields, "RequestId": request_id}})


def failure(code: str, message: str, request_id: str) -> bytes:
    """The body of an error answer (still HTTP 200, as Tencent answers)."""
    return render(
        {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}}
    )

"""Reading an action's parameters, by Tencent's names and types.

A POST carries a JSON object; a GET carries the SDK's flattened query string
(``UinList.0=1&UinList.1=2``), where every value arrives as text. Both are read through
:class:`Params`, so an action states each field once. A missing field is
``MissingParameter``, a wrong type ``InvalidParameter``, a value outside what the field
allows ``InvalidParameterValue``. Types are Tencent's and are not coerced: a UIN declared
``int`` sent as text is ``InvalidParameter``, as the real API answers (only a GET's query
string carries every value as text). Amounts are converted by :mod:`creditline.money`
from the JSON number's own text (:class:`JsonNumber`): judged by its shape before any
arithmetic, more than two decimals refused, never rounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from creditline import money
from creditline.errors import InvalidAmount
from creditline.limits import MAX_REQUEST_PAGE_SIZE, MAX_UIN
from creditline.tc3.errors import (
    INVALID_PARAMETER,
    INVALID_PARAMETER_VALUE,
    MISSING_PARAMETER,
    TencentError,
)

#: Digits of the largest BIGINT: longer integer text is out of range without reading it.
_BIGINT_DIGITS = len(str(MAX_UIN))


@dataclass(frozen=True)
class JsonNumber:
    """A JSON number kept as the text it was written in: a fraction or exponent, or an
    integer too long for any field. Nothing is computed from it until its shape is
    judged, so ``1e50000000`` is refused as quickly as it is read."""

    text: str

    def __str__(self) -> str:
        return self.text


def _json_integer(text: str) -> int | JsonNumber:
    return int(text) if len(text) <= _BIGINT_DIGITS + 1 else JsonNumber(text)


def decode_json(body: bytes) -> Any:
    """A POST body as JSON, numbers with a fraction or exponent (and integers longer than
    any field) kept as :class:`JsonNumber`. ValueError if it is not JSON."""
    return json.loads(body, parse_float=JsonNumber, parse_int=_json_integer)


def _digits(text: str) -> bool:
    body = text[1:] if text[:1] == "-" else text
    return body.isascii() and body.isdigit()


def unflatten(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Rebuild nested parameters from the SDK's ``Name.0.Field=value`` query form."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.split(".")
        if not all(parts):
            raise TencentError(INVALID_PARAMETER, f"malformed parameter name {key!r}")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise TencentError(INVALID_PARAMETER, f"parameter {key!r} conflicts with another")
            node = child
        if parts[-1] in node:
            raise TencentError(INVALID_PARAMETER, f"parameter {key!r} is given twice")
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {key: _lists(value) for key, value in node.items()}
    if items and all(key.isascii() and key.isdigit() for key in items):
        if any(len(key) > len(str(len(items))) for key in items):
            raise TencentError(INVALID_PARAMETER, "list parameters must be numbered from 0")
        indexes = sorted(int(key) for key in items)
        if indexes != list(range(len(indexes))):
            raise TencentError(INVALID_PARAMETER, "list parameters must be numbered from 0")
        return [items[str(index)] for index in indexes]
    return items


class Params:
    """The parameters of one call. ``textual`` when they came from a query string."""

    def __init__(self, values: Mapping[str, Any], *, textual: bool = False) -> None:
        self._values = values
        self._textual = textual

    @property
    def values(self) -> Mapping[str, Any]:
        """The parameters as read (a POST body's JSON object)."""
        return self._values

    def _get(self, name: str, required: bool) -> Any:
        value = self._values.get(name)
        if value is None and required:
            raise TencentError(MISSING_PARAMETER, f"the parameter {name} is missing")
        return value

    def _integer(self, name: str, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, JsonNumber) and _digits(value.text):
            # An integer longer than any field takes: out of range, read no further.
            raise TencentError(INVALID_PARAMETER_VALUE, f"{name} is out of range")
        if self._textual and isinstance(value, str):
            text = value.strip()
            if _digits(text):
                if len(text.lstrip("-")) > _BIGINT_DIGITS:
                    raise TencentError(INVALID_PARAMETER_VALUE, f"{name} is out of range")
                return int(text)
        raise TencentError(INVALID_PARAMETER, f"{name} must be an integer")

    def integer(
        self, name: str, *, minimum: int, maximum: int, required: bool = True
    ) -> int | None:
        """An integer field within ``minimum``..``maximum``."""
        value = self._get(name, required)
        if value is None:
            return None
        number = self._integer(name, value)
        if not minimum <= number <= maximum:
            raise TencentError(
                INVALID_PARAMETER_VALUE, f"{name} must be between {minimum} and {maximum}"
            )
        return number

    def required_integer(self, name: str, *, minimum: int, maximum: int) -> int:
        """An integer field that must be present."""
        value = self.integer(name, minimum=minimum, maximum=maximum)
        assert value is not None  # required=True raised already
        return value

    def uin(self, name: str) -> int:
        """A UIN declared ``int``: a positive integer (in a query string, its digits)."""
        return self.required_integer(name, minimum=1, maximum=MAX_UIN)

    def uin_text(self, name: str) -> int:
        """A UIN declared ``str`` (ModifyClientRemark's ``ClientUin``): its digits as text."""
        value = self._get(name, True)
        if not isinstance(value, str):
            raise TencentError(INVALID_PARAMETER, f"{name} must be a string of digits")
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise TencentError(INVALID_PARAMETER_VALUE, f"{name} must be the digits of a UIN")
        if len(text) > _BIGINT_DIGITS or not 1 <= int(text) <= MAX_UIN:
            raise TencentError(INVALID_PARAMETER_VALUE, f"{name} must be between 1 and {MAX_UIN}")
        return int(text)

    def uin_list(self, name: str, *, most: int) -> list[int]:
        """A list of 1..``most`` UINs, in the order given, repeats removed."""
        value = self._get(name, True)
        if not isinstance(value, list):
            raise TencentError(INVALID_PARAMETER, f"{name} must be a list of UINs")
        if not 1 <= len(value) <= most:
            raise TencentError(INVALID_PARAMETER_VALUE, f"{name} must hold 1 to {most} UINs")
        uins: list[int] = []
        for item in value:
            uin = self._integer(name, item)
            if not 1 <= uin <= MAX_UIN:
                raise TencentError(INVALID_PARAMETER_VALUE, f"{name} holds an invalid UIN {uin}")
            if uin not in uins:
                uins.append(uin)
        return uins

    def text(self, name: str, *, required: bool = True, longest: int = 500) -> str | None:
        """A string field of at most ``longest`` characters."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise TencentError(INVALID_PARAMETER, f"{name} must be a string")
        if len(value) > longest:
            raise TencentError(
                INVALID_PARAMETER_VALUE, f"{name} is longer than {longest} characters"
            )
        return value

    def amount(self, name: str) -> int:
        """A USD amount in cents (Tencent's ``float``); negative allowed (a withdrawal),
        more than two decimals refused."""
        value = self._get(name, True)
        try:
            if self._textual and isinstance(value, str):
                # The query-string form carries the number as text.
                return money.parse_amount(value, allow_negative=True, param=name)
            if isinstance(value, JsonNumber):
                # The number as written: 12.3000000000000001 is refused for its decimals
                # instead of being rounded to 12.3, 1e50000000 for its size, unexpanded.
                return money.parse_json_number(value.text, allow_negative=True, param=name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return money.from_float(value, allow_negative=True, param=name)
        except InvalidAmount as error:
            raise TencentError(INVALID_PARAMETER_VALUE, error.message) from None
        raise TencentError(INVALID_PARAMETER, f"{name} must be a number")

    def page(self, *, largest: int = MAX_REQUEST_PAGE_SIZE) -> tuple[int, int]:
        """``Page`` (from 1) and ``PageSize`` (1..``largest``), both required."""
        page = self.required_integer("Page", minimum=1, maximum=1_000_000_000)
        size = self.required_integer("PageSize", minimum=1, maximum=largest)
        return page, size

"""PostgreSQL expressions that write values as creditline's JSON does in Python: amounts
as :func:`creditline.money.to_text` writes them (and as :func:`creditline.money.to_display`
writes them for people, in a message), times as ``datetime.isoformat``,
pydantic's JSON and ``str`` write them. With them a statement can build an answer, an
event's payload or an audit row itself (api/fast.py), in the same shape as the Python
that builds them elsewhere; tests/db/test_json_sql.py holds each pair equal."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import BigInteger, Numeric, Text, case, cast, func, literal, literal_column
from sqlalchemy.sql.elements import ColumnElement

TimeStyle = Literal["iso", "z", "str"]
#: How each style writes the time's date and time part, and its UTC offset.
_STYLES: dict[str, tuple[str, str]] = {
    "iso": ('YYYY-MM-DD"T"HH24:MI:SS', "+00:00"),  # datetime.isoformat()
    "z": ('YYYY-MM-DD"T"HH24:MI:SS', "Z"),  # pydantic's JSON
    "str": ("YYYY-MM-DD HH24:MI:SS", "+00:00"),  # str(datetime)
}


def money_text(cents: Any) -> ColumnElement[str]:
    """``cents`` (a bigint expression) as :func:`creditline.money.to_text` writes it: the
    product with 0.01 is exact, and has two places."""
    return cast(cast(cents, BigInteger) * literal_column("0.01", Numeric), Text)


def money_display(cents: Any) -> ColumnElement[str]:
    """``cents`` (a bigint expression) as :func:`creditline.money.to_display` writes it:
    the sign, the whole units grouped by commas, two places."""
    whole = func.abs(cast(cents, BigInteger))
    units = func.to_char(func.div(whole, 100), literal("FM9,999,999,999,999,999,990", Text))
    fraction = func.lpad(cast(func.mod(whole, 100), Text), 2, "0")
    sign = case((cast(cents, BigInteger) < 0, "-"), else_="")
    return sign + units + literal(".", Text) + fraction


def time_text(at: Any, style: TimeStyle) -> ColumnElement[str]:
    """A UTC timestamp as Python writes it: microseconds only when there are any, as
    ``datetime`` does (``style``: see :data:`_STYLES`)."""
    pattern, offset = _STYLES[style]
    utc = func.timezone("UTC", at)
    fraction = case(
        (func.mod(cast(func.date_part("microseconds", utc), BigInteger), 1_000_000) == 0, ""),
        else_=func.to_char(utc, ".US"),
    )
    text = func.to_char(utc, pattern) + fraction + literal(offset, Text)
    return case((at.is_(None), None), else_=text)

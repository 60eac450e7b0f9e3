"""The one place an amount changes form: integer cents <-> decimal text <-> float.

Money inside creditline is always an ``int`` number of US cents. Text ("12.50") comes in
through REST, CSV and the CLI; floats come in through the Tencent-compatible API. Both are
converted here, exactly, and anything that cannot be represented in whole cents is refused,
never rounded.
"""

from __future__ import annotations

import math
from decimal import Context, Decimal, InvalidOperation

from creditline.errors import InvalidAmount

#: The largest amount accepted anywhere: 1,000,000,000.00 USD.
MAX_CENTS = 100_000_000_000


def _from_decimal(value: Decimal, raw: object, *, allow_negative: bool, param: str) -> int:
    if not value.is_finite():
        raise InvalidAmount(f"{raw!r} is not a finite amount", param=param)
    # Scale in a context wide enough to be exact: the default 28 digits would round
    # "12.500000000000000000000000001" to whole cents instead of refusing it.
    scaled = value.scaleb(2, context=Context(prec=len(value.as_tuple().digits) + 3))
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(
            f"{raw!r} has more than two decimal places; amounts are in whole cents", param=param
        )
    cents = int(scaled)
    if abs(cents) > MAX_CENTS:
        raise InvalidAmount(f"{raw!r} is beyond the limit of {to_display(MAX_CENTS)}", param=param)
    if cents < 0 and not allow_negative:
        raise InvalidAmount(f"{raw!r} must not be negative", param=param)
    return cents


def parse_amount(text: str, *, allow_negative: bool = False, param: str = "amount") -> int:
    """Convert decimal text such as ``"12.50"`` or ``"-3"`` to cents, exactly.

    Refuses empty text, exponents, NaN, infinities, more than two decimals and anything
    beyond :data:`MAX_CENTS`.
    """
    if not isinstance(text, str):
        raise InvalidAmount(f"{text!r} is not a decimal string", param=param)
    stripped = text.strip()
    body = stripped[1:] if stripped[:1] in "+-" else stripped
    if not body or not all(c in "0123456789." for c in body) or body.count(".") > 1:
        raise InvalidAmount(f"{text!r} is not a decimal amount such as 12.50", param=param)
    if body.startswith(".") or body.endswith("."):
        raise InvalidAmount(f"{text!r} is not a decimal amount such as 12.50", param=param)
    try:
        value = Decimal(stripped)
    except InvalidOperation:
        raise InvalidAmount(f"{text!r} is not a decimal amount", param=param) from None
    return _from_decimal(value, text, allow_negative=allow_negative, param=param)


def from_float(value: float | int, *, allow_negative: bool = False, param: str = "amount") -> int:
    """Convert a JSON number (Tencent-compatible API) to cents, exactly.

    The shortest decimal form of the float is used, so ``12.5`` is 1250 cents while
    ``0.1 + 0.2`` (``0.30000000000000004``) is refused rather than rounded.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAmount(f"{value!r} is not a number", param=param)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidAmount(f"{value!r} is not a finite amount", param=param)
    if isinstance(value, int):
        if abs(value) > MAX_CENTS // 100:
            raise InvalidAmount(
                f"{value!r} is beyond the limit of {to_display(MAX_CENTS)}", param=param
            )
        return _from_decimal(Decimal(value), value, allow_negative=allow_negative, param=param)
    return _from_decimal(Decimal(repr(value)), value, allow_negative=allow_negative, param=param)


def to_text(cents: int) -> str:
    """Format cents as a decimal string with two places: ``1250`` -> ``"12.50"``."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def to_float(cents: int) -> float:
    """Format cents as a float with two decimals (Tencent-compatible API only)."""
    return float(Decimal(cents) / 100)


def to_display(cents: int) -> str:
    """Format cents for people: ``123456`` -> ``"1,234.56"``.

    Every amount a person reads is in this form: the console's pages, the CLI's text
    output and the ``message`` of every refusal (REST, console, CLI). Machine-readable
    fields (JSON values, CSV cells) keep :func:`to_text`.
    """
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{frac:02d}"

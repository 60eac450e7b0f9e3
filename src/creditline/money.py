"""The one place an amount changes form: integer cents <-> decimal text <-> float.

Money inside creditline is always an ``int`` number of US cents. Text ("12.50") comes in
through REST, CSV and the CLI; numbers come in through the Tencent-compatible API (as the
JSON number's own text, see :func:`parse_json_number`). Both are converted here, exactly,
and anything that cannot be represented in whole cents is refused, never rounded.

Every amount is judged by its shape before any arithmetic: text longer than
:data:`MAX_AMOUNT_TEXT` is refused on its length, and the digits and exponent of the rest
are read as text, so ``1e50000000`` or a million digits cost no more than ``12.50``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from creditline.errors import InvalidAmount

#: The largest amount accepted anywhere: 1,000,000,000.00 USD.
MAX_CENTS = 100_000_000_000
#: The longest amount text read at all. "-1000000000.00" is 14 characters; this leaves room
#: for padding, zeros and an exponent, and nothing an amount needs is longer.
MAX_AMOUNT_TEXT = 40
#: Shown in place of text too long to echo back in a message.
_ECHO = 24

_DECIMAL_TEXT = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)
#: A JSON number (RFC 8259), or a float's ``repr``: the exponent is read as text.
_NUMBER_TEXT = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?", re.ASCII)


def _echo(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= _ECHO else f"{text[:_ECHO]}... ({len(text)} characters)"


def _too_long(raw: str, param: str) -> InvalidAmount:
    return InvalidAmount(
        f"{_echo(raw)} is not an amount: longer than {MAX_AMOUNT_TEXT} characters", param=param
    )


def _beyond(raw: object, param: str) -> InvalidAmount:
    return InvalidAmount(
        f"{_echo(raw)} is beyond the limit of {to_display(MAX_CENTS)}", param=param
    )


def _cents(
    sign: str,
    whole: str,
    fraction: str,
    exponent: int,
    raw: object,
    *,
    allow_negative: bool,
    param: str,
) -> int:
    """Cents of ``sign whole.fraction e exponent``, from the digits as text: every figure
    is bounded by the text's length (at most :data:`MAX_AMOUNT_TEXT`) before any is made."""
    digits = (whole + fraction).lstrip("0")
    significant = digits.rstrip("0")
    # The value is int(significant) * 10**shift cents.
    shift = exponent - len(fraction) + 2 + (len(digits) - len(significant))
    if not significant:
        return 0
    if shift < 0:
        raise InvalidAmount(
            f"{_echo(raw)} has more than two decimal places; amounts are in whole cents",
            param=param,
        )
    if len(significant) + shift > len(str(MAX_CENTS)):
        raise InvalidAmount(
            f"{_echo(raw)} is beyond the limit of {to_display(MAX_CENTS)}", param=param
        )
    cents = int(significant) * 10**shift
    if cents > MAX_CENTS:
        raise InvalidAmount(
            f"{_echo(raw)} is beyond the limit of {to_display(MAX_CENTS)}", param=param
        )
    if sign == "-" and not allow_negative:
        raise InvalidAmount(f"{_echo(raw)} must not be negative", param=param)
    return -cents if sign == "-" else cents


def parse_amount(text: str, *, allow_negative: bool = False, param: str = "amount") -> int:
    """Convert decimal text such as ``"12.50"`` or ``"-3"`` to cents, exactly.

    Refuses text longer than :data:`MAX_AMOUNT_TEXT`, empty text, exponents, NaN,
    infinities, digits other than ASCII, more than two decimals and anything beyond
    :data:`MAX_CENTS`.
    """
    if not isinstance(text, str):
        raise InvalidAmount(f"{_echo(text)} is not a decimal string", param=param)
    if len(text) > MAX_AMOUNT_TEXT:
        raise _too_long(text, param)
    match = _DECIMAL_TEXT.fullmatch(text.strip())
    if match is None:
        raise InvalidAmount(f"{_echo(text)} is not a decimal amount such as 12.50", param=param)
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    return _cents(sign, whole, fraction, 0, text, allow_negative=allow_negative, param=param)


def parse_json_number(text: str, *, allow_negative: bool = False, param: str = "amount") -> int:
    """Convert a JSON number's own text (``12.5``, ``-3``, ``1.25e2``) to cents, exactly.

    The Tencent-compatible API hands over the number as it was written, so it is judged
    by its length and shape; ``1e50000000`` is refused at once instead of being expanded.
    """
    if not isinstance(text, str):
        raise InvalidAmount(f"{_echo(text)} is not a number", param=param)
    if len(text) > MAX_AMOUNT_TEXT:
        raise _too_long(text, param)
    match = _NUMBER_TEXT.fullmatch(text)
    if match is None:
        raise InvalidAmount(f"{_echo(text)} is not a number", param=param)
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    exponent = int(match.group(4) or 0)  # at most MAX_AMOUNT_TEXT digits
    return _cents(sign, whole, fraction, exponent, text, allow_negative=allow_negative, param=param)


def from_float(value: float | int, *, allow_negative: bool = False, param: str = "amount") -> int:
    """Convert a JSON number already decoded by Python to cents, exactly.

    The shortest decimal form of the float is used, so ``12.5`` is 1250 cents while
    ``0.1 + 0.2`` (``0.30000000000000004``) is refused rather than rounded.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAmount(f"{_echo(value)} is not a number", param=param)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidAmount(f"{value!r} is not a finite amount", param=param)
    if isinstance(value, int) and abs(value) > MAX_CENTS // 100:
        # Before str(): a huge int's text is costly to make.
        raise InvalidAmount(
            f"{_echo(value)} is beyond the limit of {to_display(MAX_CENTS)}", param=param
        )
    # repr() of a float is at most 24 characters (e.g. "-2.2250738585072014e-308").
    return parse_json_number(repr(value), allow_negative=allow_negative, param=param)


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

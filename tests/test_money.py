"""creditline.money: exact conversions between cents, decimal text and floats; anything
finer than a cent, non-finite or beyond 1,000,000,000.00 is refused, never rounded."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from creditline import money
from creditline.errors import InvalidAmount
from creditline.money import (
    MAX_AMOUNT_TEXT,
    MAX_CENTS,
    from_float,
    parse_amount,
    parse_json_number,
    to_display,
    to_float,
    to_text,
)

cents = st.integers(min_value=-MAX_CENTS, max_value=MAX_CENTS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.50", 1250),
        ("12.5", 1250),
        ("12", 1200),
        ("0.01", 1),
        ("-3", -300),
        ("+7.00", 700),
        (" 4.20 ", 420),
        ("1000000000.00", MAX_CENTS),
        ("0012.50", 1250),
        ("12.500", 1250),
    ],
)
def test_parse_amount(text: str, expected: int) -> None:
    assert parse_amount(text, allow_negative=True) == expected


def test_negative_text_refused_unless_allowed() -> None:
    with pytest.raises(InvalidAmount, match="must not be negative"):
        parse_amount("-0.01")
    assert parse_amount("-0.01", allow_negative=True) == -1


@pytest.mark.parametrize(
    "text", ["12.", ".5", "1.2.3", "1e2", "0x10", "12,50", "--1", "", " ", "١٢"]
)
def test_malformed_text_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(text, allow_negative=True)


def test_text_with_more_digits_than_decimal_precision_is_refused_not_rounded() -> None:
    # Found by this suite: 29 significant digits were rounded by Decimal's default context.
    with pytest.raises(InvalidAmount, match="more than two decimal places"):
        parse_amount("12.500000000000000000000000001")
    with pytest.raises(InvalidAmount, match="more than two decimal places"):
        parse_amount("1000000000.0000000000000000001")


def test_non_strings_refused_by_parse_amount() -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(12.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("number", "expected"),
    [(12.5, 1250), (0.01, 1), (-3, -300), (1e9, MAX_CENTS), (19.99, 1999), (0.3, 30)],
)
def test_from_float(number: float, expected: int) -> None:
    assert from_float(number, allow_negative=True) == expected


@pytest.mark.parametrize("value", [True, "12.50", None, [1]])
def test_from_float_refuses_non_numbers(value: object) -> None:
    with pytest.raises(InvalidAmount, match="not a number"):
        from_float(value)  # type: ignore[arg-type]


def test_formatting() -> None:
    assert [to_text(c) for c in (0, 1, -1, 1250, -123456)] == [
        "0.00",
        "0.01",
        "-0.01",
        "12.50",
        "-1234.56",
    ]
    assert to_display(-123456789) == "-1,234,567.89"
    assert to_float(1999) == 19.99


@given(cents)
@example(MAX_CENTS)
@example(-MAX_CENTS)
def test_text_round_trip(value: int) -> None:
    assert parse_amount(to_text(value), allow_negative=True) == value


@given(cents)
@example(MAX_CENTS)
@example(1)
def test_float_round_trip(value: int) -> None:
    assert from_float(to_float(value), allow_negative=True) == value


@given(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.integers(min_value=0, max_value=99),
)
def test_two_decimal_text_is_exact(whole: int, hundredths: int) -> None:
    text = f"{'-' if whole < 0 else ''}{abs(whole)}.{hundredths:02d}"
    expected = (abs(whole) * 100 + hundredths) * (-1 if whole < 0 else 1)
    if abs(expected) > MAX_CENTS:
        with pytest.raises(InvalidAmount, match="beyond the limit"):
            parse_amount(text, allow_negative=True)
    else:
        assert parse_amount(text, allow_negative=True) == expected


@given(
    cents,
    st.integers(min_value=1, max_value=9),
    st.integers(min_value=1, max_value=40),
)
def test_finer_than_a_cent_is_refused(value: int, last_digit: int, extra_places: int) -> None:
    # Any non-zero digit past the second decimal place, however far out, is refused.
    text = to_text(value) + "0" * (extra_places - 1) + str(last_digit)
    with pytest.raises(InvalidAmount):
        parse_amount(text, allow_negative=True)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_float_accepted_only_when_exactly_whole_cents(number: float) -> None:
    try:
        result = from_float(number, allow_negative=True)
    except InvalidAmount:
        # Refused: non-finite, beyond the limit, or its shortest form is finer than a cent.
        assert (
            number != number
            or abs(number) == float("inf")
            or abs(Decimal(repr(number))) > Decimal(MAX_CENTS) / 100
            or Decimal(repr(number)) * 100 % 1 != 0
        )
    else:
        assert Decimal(result) / 100 == Decimal(repr(number))
        assert abs(result) <= MAX_CENTS


# --- Raw text: judged by length and shape before any arithmetic --------------------------

_raw_digits = st.text(alphabet="0123456789", min_size=1, max_size=30)
raw_number_text = st.one_of(
    st.builds(
        lambda sign, whole, fraction, exponent: f"{sign}{whole}.{fraction}e{exponent}",
        st.sampled_from(["", "-", "+", " "]),
        _raw_digits,
        _raw_digits,
        st.integers(min_value=-(10**15), max_value=10**15),
    ),
    st.builds(lambda n: "9" * n, st.integers(min_value=1, max_value=1_000_000)),
    st.text(alphabet=" \t+-.eE0123456789\u0661\u0662\U0001d7d9\u00a0", max_size=60),
)


@given(raw_number_text)
@example("1e50000000")
@example("1e1000000")
@example("9" * 1_000_000)
@example("0." + "0" * 999_990 + "1")
def test_raw_text_is_an_amount_or_an_invalid_amount(text: str) -> None:
    reached: list[int] = []
    original = money._cents

    def watched(sign: str, whole: str, fraction: str, exponent: int, *a: Any, **k: Any) -> int:
        reached.append(len(whole) + len(fraction))
        return original(sign, whole, fraction, exponent, *a, **k)

    money._cents = watched  # type: ignore[assignment]
    try:
        for parse in (parse_amount, parse_json_number):
            try:
                cents = parse(text, allow_negative=True)
            except InvalidAmount as refused:
                assert len(refused.message) < 200  # the text is never echoed whole
            else:
                assert -MAX_CENTS <= cents <= MAX_CENTS
    finally:
        money._cents = original  # type: ignore[assignment]
    # Only text of at most MAX_AMOUNT_TEXT characters ever reaches arithmetic.
    assert all(n <= MAX_AMOUNT_TEXT for n in reached)
    if len(text) > MAX_AMOUNT_TEXT:
        assert reached == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.5e2", 15000), ("125E-2", 125), ("-0.00e99999", 0), ("1e9", MAX_CENTS), ("0.1e1", 100)],
)
def test_json_number_text(text: str, expected: int) -> None:
    assert parse_json_number(text, allow_negative=True) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e50000000", "beyond the limit"),
        ("1e1000000", "beyond the limit"),
        ("1e-1000000", "more than two decimal places"),
        ("1.001e9", "beyond the limit"),
        ("1e-3", "more than two decimal places"),
        ("9" * 41, "longer than 40 characters"),
        ("1e", "not a number"),
        ("+1", "not a number"),
    ],
)
def test_json_number_text_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidAmount, match=message):
        parse_json_number(text, allow_negative=True)

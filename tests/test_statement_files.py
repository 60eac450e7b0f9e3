"""The statement PDF prints any text a name, product or remark can hold: the fonts shipped
with the package draw Latin, Greek, Cyrillic and CJK letters, a character no font draws
becomes "?" and nothing crashes; the text is read back with a PDF parser."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from importlib import resources

import pypdf
import pytest

from creditline import statement_files
from creditline.ledger.statements import CreditLine, Month, ProductUsage, Statement


def _statement(*, partner: str, customer: str, product: str, remark: str) -> Statement:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return Statement(
        partner_id=1,
        partner_name=partner,
        customer_uin=200001,
        customer_name=customer,
        month=Month(2026, 3),
        time_zone="UTC",
        start=start,
        end=datetime(2026, 4, 1, tzinfo=UTC),
        closed=True,
        as_of=datetime(2026, 4, 1, tzinfo=UTC),
        opening_total_credit=10_000,
        opening_consumed=2_500,
        credit_lines=[CreditLine(at=start, kind="allocate", change=5_000, remark=remark)],
        usage=[ProductUsage(product=product, charges=1_234, counted=1_234)],
        corrections=[ProductUsage(product=product, charges=100, counted=100, month="2026-02")],
    )


def _text(document: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(document))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize(
    ("partner", "customer", "product", "remark"),
    [
        ("Müller GmbH", "Société Générale Ŝ", "Cloud Block Storage", "Überweisung erhalten"),
        ("株式会社テスト", "北京云计算有限公司", "云服务器", "月度充值 한국어"),
        ("Ελλάδα Cloud", "Компания Север", "Ψηφιακό", "Пополнение"),
    ],
)
def test_unicode_names_read_back(partner: str, customer: str, product: str, remark: str) -> None:
    s = _statement(partner=partner, customer=customer, product=product, remark=remark)
    text = _text(statement_files.pdf(s, remarks=True, contact=f"{partner} <billing@x.example>"))
    for expected in (
        partner,
        f"Customer: {customer} (UIN 200001)",
        # The amounts after a name in the fallback font are drawn in their own font.
        f"{product} 12.34 0.00 0.00 12.34",
        f"2026-02 {product} 1.00 0.00 0.00 1.00",
        remark,
        "Closing available credit",
        "111.66",
    ):
        assert expected in text, (expected, text)
    reader = pypdf.PdfReader(io.BytesIO(statement_files.pdf(s)))
    assert (
        reader.metadata is not None and reader.metadata.title == f"Statement 2026-03 - {customer}"
    )
    # Without the partner's leave, the remark is not printed.
    assert remark not in _text(statement_files.pdf(s))


def test_characters_no_font_draws_degrade_to_a_question_mark() -> None:
    # U+1FAE0 (an emoji of Unicode 14) and Thai are in neither font; the joiner and the
    # variation selector of an emoji sequence are invisible; a newline is a space.
    s = _statement(
        partner="Partner \U0001fae0 One",
        customer="Thai ไทย\ufe0f Co\nLtd",
        product="cvm\u200d",
        remark="\x00note\ttab",
    )
    text = _text(statement_files.pdf(s, remarks=True))
    assert "Partner ? One" in text
    assert "Customer: Thai ??? Co Ltd (UIN 200001)" in text
    assert "note tab" in text
    assert "\U0001fae0" not in text and "ไ" not in text


def test_printable_keeps_what_the_fonts_draw() -> None:
    assert statement_files.printable("Müller 株式会社 Ελλάδα €") == "Müller 株式会社 Ελλάδα €"
    assert statement_files.printable("a\u0301") == "á"  # composed first (NFC)
    assert statement_files.printable("x\U0001fae0\u200dy") == "x?y"


def test_the_fonts_and_their_licences_ship_with_the_package() -> None:
    fonts = resources.files("creditline") / "fonts"
    for name in (
        "DejaVuSans.ttf",
        "DejaVuSans-Bold.ttf",
        "DroidSansFallback.ttf",
        "LICENSE-DejaVu.txt",
        "LICENSE-DroidSansFallback.txt",
    ):
        assert (fonts / name).is_file(), name


def test_a_long_name_or_remark_is_cut_to_its_column() -> None:
    s = _statement(
        partner="P",
        customer="C",
        product="Cloud Virtual Machine " * 6 + "END",
        remark="a remark that goes on " * 20 + "END",
    )
    text = _text(statement_files.pdf(s, remarks=True))
    # Cut with an ellipsis, and the amounts beside them still read whole.
    assert "END" not in text
    assert "Cloud Virtual Machine" in text and "allocate: a remark that goes on" in text
    assert text.count("\u2026") == 3  # the usage line, the correction line, the remark
    assert "12.34 0.00 0.00 12.34" in text and "50.00" in text


def test_pages_after_the_first_keep_their_fonts() -> None:
    # Every usage line starts and ends in the fallback font; each page's first line too.
    s = _statement(partner="株式会社", customer="北京", product="云服务器", remark="")
    s.usage = [
        ProductUsage(product=f"云{n}号", charges=100 + n, counted=100 + n) for n in range(120)
    ]
    reader = pypdf.PdfReader(io.BytesIO(statement_files.pdf(s)))
    assert len(reader.pages) > 2
    lines = [line for page in reader.pages for line in page.extract_text().splitlines()]
    for n in range(120):
        amount = f"{(100 + n) / 100:.2f}"
        assert f"云{n}号 {amount} 0.00 0.00 {amount}" in lines, n
    assert (
        lines[-1]
        == f"株式会社 - statement 2026-03 for customer 200001  -  page {len(reader.pages)}"
    )

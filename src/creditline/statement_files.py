"""Monthly statements as files: a JSON payload, CSV (one statement in detail, or a month's
summary of every customer) and a PDF the partner can send to its customer as is.

Amounts are decimal text (``12.50``) in JSON and CSV, and written for people
(``1,234.56``) in the PDF.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from creditline import money
from creditline.ledger.statements import ProductUsage, Statement


def _cell(text: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula: free text is quoted.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _usage(line: ProductUsage) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "product": line.product,
        "charges": money.to_text(line.charges),
        "vouchers": money.to_text(line.vouchers),
        "refunds": money.to_text(line.refunds),
        "counted": money.to_text(line.counted),
    }
    if line.month:
        shown = {"month": line.month, **shown}
    return shown


def as_payload(s: Statement, *, remarks: bool = True) -> dict[str, Any]:
    """The statement as JSON data; ``remarks``: the allocation lines carry their remarks."""
    return {
        "customer_uin": s.customer_uin,
        "customer_name": s.customer_name,
        "partner_id": s.partner_id,
        "partner_name": s.partner_name,
        "month": str(s.month),
        "time_zone": s.time_zone,
        "period_start": s.start.isoformat(),
        "period_end": s.end.isoformat(),
        "closed": s.closed,
        "as_of": s.as_of.isoformat(),
        "currency": "USD",
        "opening": {
            "total_credit": money.to_text(s.opening_total_credit),
            "consumed": money.to_text(s.opening_consumed),
            "available": money.to_text(s.opening_available),
        },
        "allocations": money.to_text(s.allocations),
        "withdrawals": money.to_text(s.withdrawals),
        "credit_lines": [
            {
                "at": line.at.isoformat(),
                "kind": line.kind,
                "change": money.to_text(line.change),
                **({"remark": line.remark} if remarks else {}),
            }
            for line in s.credit_lines
        ],
        "usage": [_usage(u) for u in s.usage],
        "usage_counted": money.to_text(s.usage_counted),
        "corrections": [_usage(u) for u in s.corrections],
        "corrections_counted": money.to_text(s.corrections_counted),
        "closing": {
            "total_credit": money.to_text(s.closing_total_credit),
            "consumed": money.to_text(s.closing_consumed),
            "available": money.to_text(s.closing_available),
        },
        "thresholds_reached": s.thresholds_reached,
        "alarms": [
            {
                "at": a.at.isoformat(),
                "threshold": a.threshold,
                "thresholds_reached": a.thresholds_reached,
            }
            for a in s.thresholds
        ],
    }


DETAIL_COLUMNS = (
    "section",
    "date",
    "month",
    "product",
    "description",
    "charges",
    "vouchers",
    "refunds",
    "amount",
)


def detail_csv(s: Statement, *, remarks: bool = True) -> str:
    """One statement as CSV: one line per figure, allocation, product and correction."""
    buffer = io.StringIO()
    w = csv.writer(buffer)
    w.writerow(DETAIL_COLUMNS)
    month = str(s.month)
    w.writerow(
        (
            "opening",
            s.start.isoformat(),
            month,
            "",
            "opening available",
            "",
            "",
            "",
            money.to_text(s.opening_available),
        )
    )
    for line in s.credit_lines:
        w.writerow(
            (
                "credit",
                line.at.isoformat(),
                month,
                "",
                _cell(line.kind + (f": {line.remark}" if remarks and line.remark else "")),
                "",
                "",
                "",
                money.to_text(line.change),
            )
        )
    for u in s.usage:
        w.writerow(
            (
                "usage",
                "",
                month,
                _cell(u.product),
                "usage",
                money.to_text(u.charges),
                money.to_text(u.vouchers),
                money.to_text(u.refunds),
                money.to_text(-u.counted),
            )
        )
    for u in s.corrections:
        w.writerow(
            (
                "correction",
                "",
                u.month,
                _cell(u.product),
                f"late usage of {u.month}",
                money.to_text(u.charges),
                money.to_text(u.vouchers),
                money.to_text(u.refunds),
                money.to_text(-u.counted),
            )
        )
    for a in s.thresholds:
        w.writerow(
            (
                "threshold",
                a.at.isoformat(),
                month,
                "",
                f"{a.threshold}% of credit reached",
                "",
                "",
                "",
                "",
            )
        )
    w.writerow(
        (
            "closing",
            s.as_of.isoformat(),
            month,
            "",
            "closing available",
            "",
            "",
            "",
            money.to_text(s.closing_available),
        )
    )
    return buffer.getvalue()


SUMMARY_COLUMNS = (
    "customer_uin",
    "customer_name",
    "month",
    "closed",
    "opening_available",
    "allocations",
    "withdrawals",
    "charges",
    "vouchers",
    "refunds",
    "usage_counted",
    "corrections_counted",
    "closing_total_credit",
    "closing_consumed",
    "closing_available",
    "thresholds_reached",
)


def summary_csv(statements: Iterable[Statement]) -> str:
    """A month's statements as CSV, one line per customer."""
    buffer = io.StringIO()
    w = csv.writer(buffer)
    w.writerow(SUMMARY_COLUMNS)
    for s in statements:
        w.writerow(
            (
                s.customer_uin,
                _cell(s.customer_name),
                str(s.month),
                "yes" if s.closed else "no",
                money.to_text(s.opening_available),
                money.to_text(s.allocations),
                money.to_text(s.withdrawals),
                money.to_text(sum(u.charges for u in s.usage)),
                money.to_text(sum(u.vouchers for u in s.usage)),
                money.to_text(sum(u.refunds for u in s.usage)),
                money.to_text(s.usage_counted),
                money.to_text(s.corrections_counted),
                money.to_text(s.closing_total_credit),
                money.to_text(s.closing_consumed),
                money.to_text(s.closing_available),
                " ".join(map(str, s.thresholds_reached)),
            )
        )
    return buffer.getvalue()


# The PDF embeds Unicode fonts shipped with the package (creditline/fonts, licences beside
# them): DejaVu Sans for Latin, Greek, Cyrillic and many symbols, and Droid Sans Fallback
# for Chinese, Japanese and Korean, so a customer's, partner's or product's name prints as
# it is written. The PDF's 14 built-in fonts carry Latin-1 only.
_FONTS = resources.files("creditline") / "fonts"
_FAMILY = "DejaVuSans"
_FALLBACK = "DroidSansFallback"
_FILES = {
    (_FAMILY, ""): "DejaVuSans.ttf",
    (_FAMILY, "B"): "DejaVuSans-Bold.ttf",
    (_FALLBACK, ""): "DroidSansFallback.ttf",
}
#: What a character no shipped font can draw (an emoji of a newer Unicode, a script
#: neither font covers) prints as.
MISSING = "?"


@cache
def _covered(family: str) -> frozenset[int]:
    """The code points every style of ``family`` can draw."""
    sets = []
    for (name, _style), file in _FILES.items():
        if name == family:
            with resources.as_file(_FONTS / file) as path:
                sets.append(frozenset(TTFont(path, lazy=True).getBestCmap()))
    return frozenset.intersection(*sets)


def printable(text: str) -> str:
    """``text`` as the statement's fonts can draw it: a line break or tab becomes a space,
    other control and invisible format characters (an emoji's joiner or variation selector)
    are dropped, a combining mark no font draws is dropped, any other character no font
    draws becomes :data:`MISSING`."""
    main, fallback = _covered(_FAMILY), _covered(_FALLBACK)
    shown = []
    for char in unicodedata.normalize("NFC", text):
        kind = unicodedata.category(char)
        if kind in ("Cc", "Zl", "Zp"):
            # A line break or tab inside a name or remark: a space, the cell stays one line.
            shown.append(" " if char in "\t\n\r\x0b\x0c\x85\u2028\u2029" else "")
        elif kind == "Cf" or "VARIATION SELECTOR" in unicodedata.name(char, ""):
            # Joiners, direction marks, emoji presentation selectors: the PDF's text is
            # drawn glyph by glyph, without the shaping they steer.
            continue
        elif ord(char) in main or ord(char) in fallback:
            shown.append(char)
        elif kind not in ("Mn", "Me"):
            shown.append(MISSING)
    return "".join(shown)


def _needs_fallback(texts: Iterable[str]) -> bool:
    main, fallback = _covered(_FAMILY), _covered(_FALLBACK)
    return any(ord(char) not in main and ord(char) in fallback for text in texts for char in text)


class _Pdf(FPDF):
    def __init__(self, footer_text: str, *, fallback: bool) -> None:
        super().__init__(format="A4")
        self.footer_text = footer_text
        for (family, style), file in _FILES.items():
            # The CJK font is large (4 MB to parse): loaded only for a statement that uses it.
            if family == _FAMILY or fallback:
                with resources.as_file(_FONTS / file) as path:
                    self.add_font(family, style, path)
        if fallback:
            # exact_match=False: bold text falls back to the fallback's regular style.
            self.set_fallback_fonts([_FALLBACK], exact_match=False)

    # fpdf2 (2.8) sets the page's font lazily, at a line's first text. When that text is in
    # the fallback font, it sets the font inside a q ... Q that the following text no longer
    # sees: "12.34" after a Chinese product name came out in the wrong font's glyphs. So the
    # font is set on the page before each line is drawn, and on each new page (a page break
    # happens inside the drawing of a line).
    def _establish_font(self) -> None:
        if self.page and self.current_font is not None and not self.current_font_is_set_on_page:
            self._out(self._set_font_for_page(self.current_font, self.font_size_pt))

    def _render_styled_text_line(self, *args: Any, **kwargs: Any) -> bool:
        self._establish_font()
        return bool(super()._render_styled_text_line(*args, **kwargs))

    def header(self) -> None:
        self._establish_font()

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(_FAMILY, size=8)
        self.cell(0, 8, printable(f"{self.footer_text}  -  page {self.page_no()}"), align="C")


def pdf(s: Statement, *, remarks: bool = False, contact: str = "") -> bytes:
    """The statement as a PDF for the customer: the partner's name and contact, the month,
    the balances, credit lines (with remarks only if ``remarks``), usage by product,
    corrections, thresholds reached."""
    free_text = [s.partner_name, s.customer_name, contact]
    free_text += [u.product for u in (*s.usage, *s.corrections)]
    free_text += [c.remark for c in s.credit_lines] if remarks else []
    doc = _Pdf(
        f"{s.partner_name} - statement {s.month} for customer {s.customer_uin}",
        fallback=_needs_fallback(free_text),
    )
    doc.set_title(printable(f"Statement {s.month} - {s.customer_name}"))
    doc.set_author(printable(s.partner_name))
    doc.add_page()
    width = doc.epw

    def line(text: str, *, size: int = 10, bold: bool = False, height: float = 6) -> None:
        doc.set_font(_FAMILY, style="B" if bold else "", size=size)
        doc.multi_cell(width, height, printable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def fit(text: str, w: float) -> str:
        # A long product name or remark is cut to its column with an ellipsis, never drawn
        # over the amounts beside it.
        shown, room = printable(text), w - 2 * doc.c_margin
        if doc.get_string_width(shown) <= room:
            return shown
        short, long = 0, len(shown)
        while long - short > 1:
            middle = (short + long) // 2
            if doc.get_string_width(shown[:middle].rstrip() + "…") <= room:
                short = middle
            else:
                long = middle
        return shown[:short].rstrip() + "…"

    def row(cells: list[str], widths: list[float], *, bold: bool = False) -> None:
        doc.set_font(_FAMILY, style="B" if bold else "", size=9)
        for i, (text, w) in enumerate(zip(cells, widths, strict=True)):
            doc.cell(w, 6, fit(text, w), border="B", align="L" if i == 0 else "R")
        doc.ln(6)

    line(s.partner_name, size=16, bold=True, height=9)
    if contact:
        line(f"Contact: {contact}", size=9)
    doc.ln(3)
    line(f"Credit statement {s.month}", size=13, bold=True, height=8)
    line(f"Customer: {s.customer_name} (UIN {s.customer_uin})")
    period = (
        f"Period: {s.start.astimezone(_zone(s)).strftime('%Y-%m-%d %H:%M')} to "
        f"{s.end.astimezone(_zone(s)).strftime('%Y-%m-%d %H:%M')} ({s.time_zone})"
    )
    line(period)
    if not s.closed:
        line(f"The month is not over: figures as of {s.as_of.strftime('%Y-%m-%d %H:%M')} UTC.")
    line("All amounts in USD at list price.", size=9)
    doc.ln(3)

    half = [width * 0.6, width * 0.4]
    row(["Summary", "USD"], half, bold=True)
    for label, amount in (
        ("Opening available credit", s.opening_available),
        ("Credit allocated", s.allocations),
        ("Credit withdrawn", -s.withdrawals),
        ("Usage counted this month", -s.usage_counted),
        ("Corrections for earlier months", -s.corrections_counted),
        ("Closing available credit", s.closing_available),
    ):
        row([label, money.to_display(amount)], half)
    row(["Closing total credit", money.to_display(s.closing_total_credit)], half)
    doc.ln(4)

    if s.credit_lines:
        line("Credit changes", size=11, bold=True)
        widths = [width * 0.3, width * 0.45, width * 0.25]
        row(["Date", "Change", "USD"], widths, bold=True)
        for c in s.credit_lines:
            what = c.kind + (f": {c.remark}" if remarks and c.remark else "")
            row(
                [
                    c.at.astimezone(_zone(s)).strftime("%Y-%m-%d"),
                    what,
                    money.to_display(c.change),
                ],
                widths,
            )
        doc.ln(4)

    columns = [width * 0.28, width * 0.18, width * 0.18, width * 0.18, width * 0.18]
    line("Usage by product", size=11, bold=True)
    row(["Product", "Charges", "Vouchers", "Refunds", "Counted"], columns, bold=True)
    for u in s.usage:
        row(
            [
                u.product,
                *(money.to_display(v) for v in (u.charges, u.vouchers, u.refunds, u.counted)),
            ],
            columns,
        )
    if not s.usage:
        line("No usage this month.", size=9)
    doc.ln(4)
    if s.corrections:
        line("Corrections: usage of earlier months recorded this month", size=11, bold=True)
        row(["Month / product", "Charges", "Vouchers", "Refunds", "Counted"], columns, bold=True)
        for u in s.corrections:
            row(
                [
                    f"{u.month} {u.product}",
                    *(money.to_display(v) for v in (u.charges, u.vouchers, u.refunds, u.counted)),
                ],
                columns,
            )
        doc.ln(4)
    line("Alarm thresholds reached", size=11, bold=True)
    if s.thresholds:
        for a in s.thresholds:
            line(
                f"{a.at.astimezone(_zone(s)).strftime('%Y-%m-%d')}: {a.threshold}% of credit "
                "consumed",
                size=9,
            )
    else:
        line("None this month.", size=9)
    return bytes(doc.output())


def _zone(s: Statement) -> ZoneInfo:
    return ZoneInfo(s.time_zone)

"""Charts drawn on the server as SVG with pygal, served as images: no JavaScript, nothing
fetched from elsewhere (pygal's tooltip script is switched off with ``js=[]``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pygal  # type: ignore[import-untyped]
from pygal.style import Style  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import UsageEvent

_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#4a5568",
    foreground_strong="#1a202c",
    foreground_subtle="#e2e8f0",
    colors=("#0a6cff", "#00a870", "#ff9c19", "#e54545", "#7b61ff", "#00a6c8"),
    font_family="Helvetica, Arial, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    title_font_size=14,
)

DAYS = 30


def _events(session: Session, partner_id: int, uin: int, days: int) -> list[tuple[str, str, int]]:
    since = utcnow() - timedelta(days=days)
    rows = session.execute(
        select(UsageEvent.occurred_at, UsageEvent.product, UsageEvent.counted).where(
            UsageEvent.partner_id == partner_id,
            UsageEvent.customer_uin == uin,
            UsageEvent.occurred_at >= since,
        )
    ).all()
    return [(r.occurred_at.strftime("%m-%d"), r.product, r.counted) for r in rows]


def usage_by_day(session: Session, *, partner_id: int, uin: int) -> bytes:
    """Counted usage per day over the last 30 days, in USD, as an SVG bar chart."""
    totals: dict[str, int] = defaultdict(int)
    for day, _product, counted in _events(session, partner_id, uin, DAYS):
        totals[day] += counted
    today = utcnow()
    labels = [(today - timedelta(days=d)).strftime("%m-%d") for d in range(DAYS - 1, -1, -1)]
    chart = pygal.Bar(
        js=[],
        style=_STYLE,
        width=760,
        height=260,
        show_legend=False,
        x_label_rotation=0,
        show_minor_x_labels=False,
        truncate_label=-1,
        title="Counted usage by day (USD, last 30 days)",
        value_formatter=lambda x: f"{x:,.2f}",
    )
    chart.x_labels = labels
    chart.x_labels_major = labels[::5]
    # Cents become dollars only here, for drawing; nothing is computed from these floats.
    chart.add("usage", [totals.get(day, 0) / 100 for day in labels])
    return bytes(chart.render())


def usage_by_product(session: Session, *, partner_id: int, uin: int) -> bytes:
    """Counted usage per product over the last 30 days, in USD, as an SVG bar chart."""
    totals: dict[str, int] = defaultdict(int)
    for _day, product, counted in _events(session, partner_id, uin, DAYS):
        totals[product] += counted
    chart = pygal.HorizontalBar(
        js=[],
        style=_STYLE,
        width=760,
        height=260,
        title="Counted usage by product (USD, last 30 days)",
        value_formatter=lambda x: f"{x:,.2f}",
        legend_at_bottom=True,
    )
    for product, cents in sorted(totals.items(), key=lambda kv: -kv[1]):
        chart.add(product, [cents / 100])
    if not totals:
        chart.no_data_text = "No usage in the last 30 days"
    return bytes(chart.render())

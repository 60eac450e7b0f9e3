"""Charts drawn on the server as SVG with pygal, served as images: no JavaScript, nothing
fetched from elsewhere (pygal's tooltip script is switched off with ``js=[]``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pygal  # type: ignore[import-untyped]
from pygal.style import Style  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.ledger import accounts, forecast, history

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
    rows = history.customer_usage(session, partner_id=partner_id, uin=uin, since=since)
    return [(at.strftime("%m-%d"), product, counted) for at, product, counted in rows]


def usage_by_day(session: Session, *, partner_id: int, uin: int, projected: bool = False) -> bytes:
    """Counted usage per day over the last 30 days, in USD, as an SVG bar chart, read from
    the daily totals. ``projected``: the customer's forecast drawn on: its burn rate on each
    day from today to the projected exhaustion (at most 30 days ahead), named in the title."""
    days = _days(DAYS)
    totals = forecast.daily_history(session, partner_id=partner_id, uin=uin, since=days[0])
    labels = [d.strftime("%m-%d") for d in days]
    # Cents become dollars only here, for drawing; nothing is computed from these floats.
    values: list[float | None] = [totals.get(d, 0) / 100 for d in days]
    title = "Counted usage by day (USD, last 30 days)"
    if not projected:
        return _bar(title, labels, values)
    shown = forecast.forecast_of(session, partner_id=partner_id, uin=uin, on=days[-1])
    ahead: list[float | None] = [None] * len(days)
    if shown.status == forecast.NOT_ENOUGH_HISTORY:
        title = "Counted usage by day (USD): not enough history for a forecast"
    elif shown.runs_out_on is None or shown.days_left is None:
        title = "Counted usage by day (USD): not running out at its burn rate"
    else:
        assert shown.burn_rate is not None
        if shown.days_left <= 0:
            title = f"Counted usage by day (USD): out of credit since {shown.runs_out_on}"
        else:
            title = f"Counted usage by day and projection (USD): runs out on {shown.runs_out_on}"
        # Today's bar is the day so far; from tomorrow to the exhaustion, the burn rate.
        for n in range(1, min(shown.days_left, DAYS) + 1):
            day = days[-1] + timedelta(days=n)
            labels.append(day.strftime("%m-%d"))
            values.append(None)
            ahead.append(shown.burn_rate / 100)
    return _bar(title, labels, values, ("projected", ahead))


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


def _days(count: int) -> list[date]:
    today = utcnow().date()
    return [today - timedelta(days=d) for d in range(count - 1, -1, -1)]


def _bar(
    title: str,
    labels: list[str],
    values: Sequence[float | None],
    *more: tuple[str, Sequence[float | None]],
) -> bytes:
    chart = pygal.Bar(
        js=[],
        style=_STYLE,
        width=760,
        height=260,
        show_legend=bool(more),
        legend_at_bottom=True,
        x_label_rotation=0,
        show_minor_x_labels=False,
        truncate_label=-1,
        title=title,
        value_formatter=lambda x: f"{x:,.2f}",
    )
    chart.x_labels = labels
    chart.x_labels_major = labels[::5]
    chart.add("usage", list(values))
    for name, series in more:
        chart.add(name, list(series))
    return bytes(chart.render())


def partner_usage_by_day(session: Session, *, partner_id: int) -> bytes:
    """What all of the partner's customers consumed per day over the last 30 days (USD),
    as an SVG bar chart: summed by the database, one row a day."""
    days = _days(DAYS)
    since = datetime.combine(days[0], time.min, UTC)
    totals = history.usage_by_day(session, partner_id=partner_id, since=since)
    return _bar(
        "Customers' consumption by day (USD, last 30 days)",
        [d.strftime("%m-%d") for d in days],
        [totals.get(d, 0) / 100 for d in days],
    )


def pool_by_day(session: Session, *, partner_id: int) -> bytes:
    """The partner's pool at the end of each of the last 30 days (USD): its total and
    what of it was allocated, as an SVG line chart.

    Worked back from today's pool through the allocation records since: grants and pool
    allocations received change the total; allocations, withdrawals and pool allocations
    to sub-resellers change what is allocated."""
    partner = accounts.get_partner(session, partner_id)
    days = _days(DAYS)
    since = datetime.combine(days[0], time.min, UTC)
    rows = history.pool_changes(session, partner_id=partner_id, since=since)
    total_after: dict[date, int] = defaultdict(int)
    allocated_after: dict[date, int] = defaultdict(int)
    for at, kind, owner, change in rows:
        day = at.date()
        # A grant, or a pool allocation this sub-reseller received, changes the total.
        if kind == "grant" or owner != partner_id:
            total_after[day] += change
        else:
            allocated_after[day] += change
    total, allocated = partner.pool_total, partner.pool_allocated
    totals: list[float] = []
    allocations: list[float] = []
    for day in reversed(days):
        totals.append(total / 100)
        allocations.append(allocated / 100)
        total -= total_after[day]
        allocated -= allocated_after[day]
    chart = pygal.Line(
        js=[],
        style=_STYLE,
        width=760,
        height=260,
        x_label_rotation=0,
        show_minor_x_labels=False,
        truncate_label=-1,
        dots_size=2,
        include_x_axis=True,
        legend_at_bottom=True,
        title="Pool at each day's end (USD, last 30 days)",
        value_formatter=lambda x: f"{x:,.2f}",
    )
    labels = [d.strftime("%m-%d") for d in days]
    chart.x_labels = labels
    chart.x_labels_major = labels[::5]
    chart.add("pool total", list(reversed(totals)))
    chart.add("allocated", list(reversed(allocations)))
    return bytes(chart.render())

"""Burn rate, forecast and forecast alarms, per customer (docs/ledger.md, "Forecasts").

Usage ingestion keeps ``usage_daily``: each customer's counted usage per UTC day, the same
``counted`` that DESIGN §2 adds to ``consumed`` (list price less vouchers, refunds
negative), summed in the transaction that counts the events.

The **burn rate** is computed from the complete days before today (today is still
running): the last 14 days (two whole weeks), or the last 7 while the customer has fewer
than 14 days of history; with fewer than 7 there is *not enough history* and no rate.
Whole weeks make every weekday count as often as every other, so a weekly cycle averages
out exactly; the single highest day of the window is replaced by the second highest
(winsorised), so one spike moves the rate by at most the difference between the two
highest days divided by the window. The rate is that adjusted sum divided by the window's
days, in whole cents per day (a rate of 0: the customer is not running out).

The **projected exhaustion** is the day its available credit reaches 0 at that rate,
counted from the day the rate was computed: ``customers.runs_out_day``, a column the
database keeps from the row (``db.tables.RUNS_OUT_SQL``), so allocations move it at once
and the sort by "runs out" reads an index. The **projected month-end consumption** is the
month's counted usage so far plus the rate for the rest of the month (today counted as
``max(rate, today's usage so far)``).

The rate changes only with the complete days, so a usage batch recomputes it for a
customer only when the day has turned since its last forecast, or when the batch holds
events of a day in its window (or before its first day of usage); :func:`refresh`
recomputes every stale forecast of a partner once a day (``creditline forecasts
refresh``).

**Forecast alarms**: a customer whose projected exhaustion is at most its window (the
partner's ``forecast_days``, default 7, 0 off; or the customer's own) days away raises one
``credit.forecast_exhaustion`` event when it first falls within; it re-arms silently when
the projection moves beyond the window, and raises at most one alarm a day.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Integer,
    and_,
    bindparam,
    cast,
    extract,
    false,
    func,
    insert,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditline import money
from creditline.clock import utcnow
from creditline.db import arrays, compiled
from creditline.db.tables import Customer, Partner, PartnerNotice, UsageDaily
from creditline.errors import InvalidInput
from creditline.ledger.accounts import get_customer, get_partner
from creditline.ledger.outbox import FORECAST_EXHAUSTION
from creditline.ledger.outbox import INSERT as INSERT_EVENT
from creditline.ledger.outbox import event as outbox_event

#: The days a burn rate is computed from, and the fewest a customer needs.
WINDOW_DAYS = 14
SHORT_WINDOW_DAYS = 7
#: The partner's default alarm window, and the longest window a partner may set.
DEFAULT_ALARM_DAYS = 7
MAX_ALARM_DAYS = 366
#: Beyond this many days a projection is shown as "not within 10 years".
HORIZON_DAYS = 3653

_EPOCH = date(1970, 1, 1).toordinal()

NOT_ENOUGH_HISTORY = "not_enough_history"
NOT_RUNNING_OUT = "not_running_out"
RUNS_OUT = "runs_out"


def day_number(day: date) -> int:
    """A day as stored in the forecast columns: days since 1970-01-01."""
    return day.toordinal() - _EPOCH


def day_of(number: int) -> date | None:
    """The day a stored day number names; None if beyond the calendar."""
    ordinal = number + _EPOCH
    if not date.min.toordinal() <= ordinal <= date.max.toordinal():
        return None
    return date.fromordinal(ordinal)


def today() -> date:
    return utcnow().date()


def utc_day(moment: datetime) -> date:
    """The UTC day of a time (an event's ``occurred_at``; stored times read back as UTC)."""
    return moment.date() if moment.tzinfo is UTC else moment.astimezone(UTC).date()


def day_number_sql(moment: Any, dialect: str) -> Any:
    """What a usage batch's ``INSERT ... RETURNING`` hands back for an event's day: on
    PostgreSQL its UTC day number (:func:`day_number`), computed by the database, cheaper to
    read than each event's time; on SQLite (whose RETURNING names columns only) the time
    itself. :func:`day_number_of` reads either."""
    if dialect == "postgresql":
        return cast(func.floor(extract("epoch", moment) / 86400), Integer).label("day_number")
    return moment


def day_number_of(value: int | datetime) -> int:
    """The day number :func:`day_number_sql` returned (or the time it stands for)."""
    return value if isinstance(value, int) else day_number(utc_day(value))


def burn_rate(daily: Mapping[date, int], *, on: date, usage_since: date | None) -> int | None:
    """The burn rate in cents per day as of day ``on`` from the customer's daily totals
    (days absent count 0) and its first day of usage; None: not enough history."""
    if usage_since is None:
        return None
    history = (on - usage_since).days
    if history < SHORT_WINDOW_DAYS:
        return None
    window = WINDOW_DAYS if history >= WINDOW_DAYS else SHORT_WINDOW_DAYS
    values = [daily.get(on - timedelta(days=back), 0) for back in range(1, window + 1)]
    highest, second = sorted(values, reverse=True)[:2]
    adjusted = sum(values) - highest + second
    return max(adjusted // window, 0)


def days_left(available: int, rate: int) -> int:
    """Whole days until ``available`` reaches 0 at ``rate`` (> 0), rounded up, as
    ``RUNS_OUT_SQL`` computes them."""
    return 0 if available <= 0 else (available + rate - 1) // rate


def runs_out_day(*, available: int, rate: int | None, on: int | None) -> int | None:
    """What ``customers.runs_out_day`` holds for these values (day numbers)."""
    if rate is None or rate <= 0 or on is None:
        return None
    return on + days_left(available, rate)


@dataclass(frozen=True)
class Forecast:
    """A customer's forecast as every interface shows it."""

    status: str
    #: Cents per day; None with not enough history.
    burn_rate: int | None
    #: The day the rate was computed for.
    as_of: date | None
    runs_out_on: date | None
    #: Days from today to ``runs_out_on`` (negative: already past), None if no date.
    days_left: int | None
    month_to_date: int
    month_projected: int | None

    def as_payload(self) -> dict[str, Any]:
        """The REST and JSON shape (amounts as decimal strings)."""
        return {
            "status": self.status,
            "burn_rate": None if self.burn_rate is None else money.to_text(self.burn_rate),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "runs_out_on": None if self.runs_out_on is None else self.runs_out_on.isoformat(),
            "days_left": self.days_left,
            "month_to_date": money.to_text(self.month_to_date),
            "month_projected": (
                None if self.month_projected is None else money.to_text(self.month_projected)
            ),
        }


def describe(
    customer: Customer, *, on: date, month_to_date: int = 0, today_so_far: int = 0
) -> Forecast:
    """The forecast of ``customer`` (its stored rate) as of ``on``, given its counted
    usage this month and today."""
    rate = customer.burn_rate
    as_of = None if customer.forecast_day is None else day_of(customer.forecast_day)
    if rate is None:
        return Forecast(NOT_ENOUGH_HISTORY, None, as_of, None, None, month_to_date, None)
    last = calendar.monthrange(on.year, on.month)[1]
    rest = last - on.day
    projected = month_to_date + max(rate - today_so_far, 0) + rate * rest
    stored = runs_out_day(
        available=customer.total_credit - customer.consumed, rate=rate, on=customer.forecast_day
    )
    if stored is None:
        return Forecast(NOT_RUNNING_OUT, rate, as_of, None, None, month_to_date, projected)
    left = stored - day_number(on)
    runs_out = day_of(stored) if left <= HORIZON_DAYS else None
    return Forecast(
        RUNS_OUT if runs_out is not None else NOT_RUNNING_OUT,
        rate,
        as_of,
        runs_out,
        left if runs_out is not None else None,
        month_to_date,
        projected,
    )


def month_usage(
    session: Session, *, partner_id: int, uins: Sequence[int], on: date
) -> dict[int, tuple[int, int]]:
    """Each customer's counted usage this month and today: (month to date, today)."""
    if not uins:
        return {}
    start = on.replace(day=1)
    rows = session.execute(
        select(UsageDaily.customer_uin, UsageDaily.day, UsageDaily.counted).where(
            UsageDaily.partner_id == partner_id,
            UsageDaily.customer_uin.in_(sorted(set(uins))),
            UsageDaily.day >= start,
            UsageDaily.day <= on,
        )
    ).tuples()
    found: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for uin, day, counted in rows:
        found[uin][0] += counted
        if day == on:
            found[uin][1] += counted
    return {uin: (month, now) for uin, (month, now) in found.items()}


def forecasts(
    session: Session, *, partner_id: int, customers: Sequence[Customer], on: date | None = None
) -> dict[int, Forecast]:
    """The forecasts of a page of the partner's customers (one read of their month)."""
    on = on or today()
    usage = month_usage(session, partner_id=partner_id, uins=[c.uin for c in customers], on=on)
    return {
        c.uin: describe(
            c,
            on=on,
            month_to_date=usage.get(c.uin, (0, 0))[0],
            today_so_far=usage.get(c.uin, (0, 0))[1],
        )
        for c in customers
    }


def forecast_of(session: Session, *, partner_id: int, uin: int, on: date | None = None) -> Forecast:
    customer = get_customer(session, partner_id, uin)
    return forecasts(session, partner_id=partner_id, customers=[customer], on=on)[uin]


def daily_history(session: Session, *, partner_id: int, uin: int, since: date) -> dict[date, int]:
    """The customer's counted usage per day since ``since`` (days without usage absent)."""
    rows = session.execute(
        select(UsageDaily.day, UsageDaily.counted).where(
            UsageDaily.partner_id == partner_id,
            UsageDaily.customer_uin == uin,
            UsageDaily.day >= since,
        )
    ).tuples()
    return {day: int(counted) for day, counted in rows}


def running_out(
    session: Session, *, partner_id: int, within_days: int, on: date | None = None, limit: int = 50
) -> list[Customer]:
    """The partner's customers projected to run out within ``within_days`` days of ``on``
    (and those already out), soonest first: a range of the runs-out index."""
    on = on or today()
    rows = session.execute(
        select(Customer)
        .where(
            Customer.partner_id == partner_id,
            Customer.runs_out_day <= day_number(on) + within_days,
        )
        .order_by(Customer.runs_out_day, Customer.uin)
        .limit(limit)
    ).scalars()
    return list(rows)


# --- Written by usage ingestion ------------------------------------------------------

_daily = UsageDaily.metadata.tables[UsageDaily.__tablename__]
_customers = Customer.metadata.tables[Customer.__tablename__]

_DAILY_ROWS = (
    func.unnest(
        arrays.param("d_partner_ids"),
        arrays.param("d_uins"),
        arrays.param("d_days", Integer),
        arrays.param("d_counted"),
    )
    .table_valued("partner_id", "customer_uin", "day", "counted")
    .render_derived(name="d")
)
_pg_daily = postgresql.insert(_daily).from_select(
    ["partner_id", "customer_uin", "day", "counted"],
    select(
        _DAILY_ROWS.c.partner_id,
        _DAILY_ROWS.c.customer_uin,
        # Day numbers travel as integers (cheaper to send than dates) and become dates here.
        literal_column("DATE '1970-01-01'", Date) + _DAILY_ROWS.c.day,
        _DAILY_ROWS.c.counted,
    ),
)
#: PostgreSQL: every (customer, day) total of a batch added by one statement.
_ADD_DAILY_PG = _pg_daily.on_conflict_do_update(
    index_elements=["partner_id", "customer_uin", "day"],
    set_={"counted": _daily.c.counted + _pg_daily.excluded.counted},
)
_lite_daily = sqlite.insert(_daily)
_ADD_DAILY_SQLITE = _lite_daily.on_conflict_do_update(
    index_elements=["partner_id", "customer_uin", "day"],
    set_={"counted": _daily.c.counted + _lite_daily.excluded.counted},
)

#: The forecast columns a usage batch or the refresh writes (one statement for all).
_FORECAST_COLUMNS = {
    "burn_rate": BigInteger,
    "forecast_day": Integer,
    "usage_since": Integer,
    "forecast_fired": Boolean,
    "forecast_alarm_day": Integer,
}
_WRITE = (
    func.unnest(
        bindparam("f_partner_ids", type_=postgresql.ARRAY(BigInteger)),
        bindparam("f_uins", type_=postgresql.ARRAY(BigInteger)),
        *(
            bindparam(f"f_{name}", type_=postgresql.ARRAY(kind))
            for name, kind in _FORECAST_COLUMNS.items()
        ),
    )
    .table_valued("partner_id", "uin", *_FORECAST_COLUMNS)
    .render_derived(name="f")
)
_WRITE_PG = (
    update(_customers)
    .where(_customers.c.partner_id == _WRITE.c.partner_id, _customers.c.uin == _WRITE.c.uin)
    .values({name: _WRITE.c[name] for name in _FORECAST_COLUMNS})
)
#: The same for one partner's customers (one shard).
_WRITE_PG_ONE = _WRITE_PG.where(
    _customers.c.partner_id == bindparam("f_partner_id", type_=BigInteger)
)
_WRITE_SQLITE = (
    update(_customers)
    .where(
        _customers.c.partner_id == bindparam("w_partner_id", type_=BigInteger),
        _customers.c.uin == bindparam("w_uin", type_=BigInteger),
    )
    .values({name: bindparam(f"w_{name}", type_=kind) for name, kind in _FORECAST_COLUMNS.items()})
)

#: What the forecast needs of a customer row (the usage batch's UPDATE returns them).
COLUMNS = (
    _customers.c.uin,
    _customers.c.partner_id,
    _customers.c.name,
    _customers.c.total_credit,
    _customers.c.consumed,
    _customers.c.burn_rate,
    _customers.c.forecast_day,
    _customers.c.usage_since,
    _customers.c.forecast_days,
    _customers.c.forecast_fired,
    _customers.c.forecast_alarm_day,
)


def add_daily(session: Session, totals: Mapping[tuple[int, int, int], int]) -> None:
    """Add a batch's counted usage per (partner, customer, day number) to ``usage_daily``:
    one statement (PostgreSQL: the rows as arrays joined as a table, :mod:`creditline.db.
    arrays`; SQLite: one prepared statement run for each row), in key order. A usage batch
    adds them once it holds its customers' locks (:func:`creditline.ledger.usage.ingest`)."""
    if not totals:
        return
    keys = sorted(totals)
    if session.get_bind().dialect.name == "postgresql":
        compiled.execute(
            session,
            _ADD_DAILY_PG,
            {
                "d_partner_ids": arrays.ints(k[0] for k in keys),
                "d_uins": arrays.ints(k[1] for k in keys),
                "d_days": arrays.ints(k[2] for k in keys),
                "d_counted": arrays.ints(totals[k] for k in keys),
            },
        )
        return
    days = {n: date.fromordinal(n + _EPOCH) for n in {k[2] for k in keys}}
    session.execute(
        _ADD_DAILY_SQLITE,
        [
            {"partner_id": p, "customer_uin": u, "day": days[d], "counted": totals[(p, u, d)]}
            for p, u, d in keys
        ],
    )


@dataclass(frozen=True)
class ForecastAlarm:
    """A forecast alarm raised: its customer and the projection it names."""

    partner_id: int
    customer_uin: int
    customer_name: str
    window_days: int
    burn_rate: int
    runs_out_on: date
    days_left: int
    total_credit: int
    consumed: int
    cause: str
    occurred_at: datetime

    def payload(self) -> dict[str, object]:
        """The ``credit.forecast_exhaustion`` event data (docs/notifications.md)."""
        return {
            "partner_id": self.partner_id,
            "customer_uin": self.customer_uin,
            "customer_name": self.customer_name,
            "window_days": self.window_days,
            "burn_rate": money.to_text(self.burn_rate),
            "runs_out_on": self.runs_out_on.isoformat(),
            "days_left": self.days_left,
            "total_credit": money.to_text(self.total_credit),
            "consumed": money.to_text(self.consumed),
            "available_credit": money.to_text(self.total_credit - self.consumed),
            "cause": self.cause,
            "occurred_at": self.occurred_at.isoformat(),
        }

    def message(self) -> str:
        when = "today" if self.days_left <= 0 else f"in {self.days_left} days"
        if self.days_left == 1:
            when = "tomorrow"
        return (
            f"{self.customer_name} ({self.customer_uin}) is projected to run out of credit "
            f"{when}, on {self.runs_out_on.isoformat()}, at "
            f"{money.to_display(self.burn_rate)} a day (forecast alarm: "
            f"{self.window_days} days)."
        )


def alarm_decision(
    *, projected: int | None, window: int, fired: bool, alarmed_day: int | None, on: int
) -> tuple[bool, bool]:
    """The forecast alarm rule: (fired after, whether an alarm is raised now)."""
    within = window > 0 and projected is not None and projected - on <= window
    if not within:
        return False, False
    if fired:
        return True, False
    # Falls within again the same day it last alarmed: silent (at most one a day).
    return True, alarmed_day != on


def update_forecasts(
    session: Session,
    rows: Iterable[Any],
    *,
    new_days: Mapping[int, set[int]],
    defaults: Mapping[int, int],
    cause: str | Mapping[int, str] = "usage",
    on: date | None = None,
    force: bool = False,
) -> list[ForecastAlarm]:
    """After a change of the customers ``rows`` (each with :data:`COLUMNS`, as changed):
    recompute the rate of those whose forecast is stale (computed before ``on``, never
    computed, or given usage of a day of its window or before its first day of usage:
    ``new_days``, day numbers by UIN; every one with ``force``) from one read of their
    window's daily totals; apply the forecast alarm rule (``defaults``: each partner's window); then
    write every changed row by one statement and raise the alarms (a message-centre
    notice and an outbox event each)."""
    on = on or today()
    on_n = day_number(on)
    window_start = on_n - WINDOW_DAYS
    only_today = {on_n}
    rows = list(rows)
    stale = []
    for row in rows:
        days = new_days.get(row.uin) or set()
        since = row.usage_since
        if not force and row.forecast_day == on_n and since is not None and days <= only_today:
            continue  # the common case: today's usage of a customer forecast today
        first = min(days) if days else None
        if first is not None and (since is None or first < since):
            since = first
        if (
            force
            or row.forecast_day != on_n
            or since != row.usage_since
            or any(window_start <= day < on_n for day in days)
        ):
            stale.append((row, since))
    rates = _rates(session, stale, on=on)
    now = utcnow()
    writes: list[dict[str, Any]] = []
    alarms: list[ForecastAlarm] = []
    for row in rows:
        recomputed = row.uin in rates
        if not recomputed and row.burn_rate is None and not row.forecast_fired:
            continue  # no projection, nothing fired: nothing to decide
        rate, forecast_day, since = row.burn_rate, row.forecast_day, row.usage_since
        if recomputed:
            rate, since = rates[row.uin]
            forecast_day = on_n
        window = row.forecast_days if row.forecast_days is not None else defaults[row.partner_id]
        projected = runs_out_day(
            available=row.total_credit - row.consumed, rate=rate, on=forecast_day
        )
        fired, alarm = alarm_decision(
            projected=projected,
            window=window,
            fired=row.forecast_fired,
            alarmed_day=row.forecast_alarm_day,
            on=on_n,
        )
        if (
            not alarm
            and fired == row.forecast_fired
            and not (
                recomputed
                and (rate, forecast_day, since)
                != (row.burn_rate, row.forecast_day, row.usage_since)
            )
        ):
            continue  # nothing of the row changes
        writes.append(
            {
                "partner_id": row.partner_id,
                "uin": row.uin,
                "burn_rate": rate,
                "forecast_day": forecast_day,
                "usage_since": since,
                "forecast_fired": fired,
                "forecast_alarm_day": on_n if alarm else row.forecast_alarm_day,
            }
        )
        if alarm:
            assert projected is not None and rate is not None
            runs_out = day_of(projected)
            assert runs_out is not None
            alarms.append(
                ForecastAlarm(
                    partner_id=row.partner_id,
                    customer_uin=row.uin,
                    customer_name=row.name,
                    window_days=window,
                    burn_rate=rate,
                    runs_out_on=runs_out,
                    days_left=projected - on_n,
                    total_credit=row.total_credit,
                    consumed=row.consumed,
                    cause=cause if isinstance(cause, str) else cause.get(row.uin, "usage"),
                    occurred_at=now,
                )
            )
    _write(session, writes)
    raise_alarms(session, alarms)
    return alarms


def _rates(
    session: Session, stale: Sequence[tuple[Any, int | None]], *, on: date
) -> dict[int, tuple[int | None, int | None]]:
    """The new (rate, usage_since) of each stale customer, from one read of the daily
    totals of their windows."""
    if not stale:
        return {}
    keys = sorted({(row.partner_id, row.uin) for row, _ in stale})
    daily: dict[int, dict[date, int]] = defaultdict(dict)
    if any(since is not None for _, since in stale):
        query = select(UsageDaily.customer_uin, UsageDaily.day, UsageDaily.counted).where(
            UsageDaily.day >= on - timedelta(days=WINDOW_DAYS),
            UsageDaily.day < on,
        )
        partners = {p for p, _ in keys}
        if len(partners) == 1:
            query = query.where(
                UsageDaily.partner_id == next(iter(partners)),
                UsageDaily.customer_uin.in_([u for _, u in keys]),
            )
        else:
            query = query.where(tuple_(UsageDaily.partner_id, UsageDaily.customer_uin).in_(keys))
        for uin, day, counted in session.execute(query).tuples():
            daily[uin][day] = int(counted)
    result: dict[int, tuple[int | None, int | None]] = {}
    for row, since in stale:
        first = None if since is None else day_of(since)
        result[row.uin] = (burn_rate(daily[row.uin], on=on, usage_since=first), since)
    return result


def _write(session: Session, writes: list[dict[str, Any]]) -> None:
    if not writes:
        return
    writes.sort(key=lambda w: (w["partner_id"], w["uin"]))
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "f_partner_ids": [w["partner_id"] for w in writes],
            "f_uins": [w["uin"] for w in writes],
        }
        params.update({f"f_{name}": [w[name] for w in writes] for name in _FORECAST_COLUMNS})
        partners = set(params["f_partner_ids"])
        if len(partners) == 1:
            params["f_partner_id"] = partners.pop()
            session.execute(_WRITE_PG_ONE, params)
        else:
            session.execute(_WRITE_PG, params)
        return
    session.execute(
        _WRITE_SQLITE, [{f"w_{name}": value for name, value in w.items()} for w in writes]
    )


def raise_alarms(session: Session, alarms: Sequence[ForecastAlarm]) -> None:
    """Each alarm into its partner's message centre and the outbox (one statement each
    for all of them)."""
    if not alarms:
        return
    session.execute(
        insert(PartnerNotice),
        [
            {
                "partner_id": a.partner_id,
                "kind": "forecast_exhaustion",
                "message": a.message(),
                "created_at": a.occurred_at,
            }
            for a in alarms
        ],
    )
    events = [
        outbox_event(partner_id=a.partner_id, type=FORECAST_EXHAUSTION, payload=a.payload())
        for a in alarms
    ]
    session.execute(INSERT_EVENT, events if len(events) > 1 else events[0])


def refresh(session: Session, *, partner_id: int, on: date | None = None) -> int:
    """Recompute every stale forecast of the partner (computed before ``on``, or never
    though the customer has usage) and apply the forecast alarm rule to them: what a
    daily job runs so that forecasts follow the calendar when no usage comes. Returns how
    many customers were refreshed."""
    on = on or today()
    partner = get_partner(session, partner_id)
    rows = session.execute(
        select(*COLUMNS)
        .where(
            _customers.c.partner_id == partner_id,
            _customers.c.usage_since.is_not(None),
            (_customers.c.forecast_day.is_(None)) | (_customers.c.forecast_day < day_number(on)),
        )
        .order_by(_customers.c.uin)
        .with_for_update(key_share=True)
    ).all()
    update_forecasts(
        session,
        rows,
        new_days={},
        defaults={partner_id: partner.forecast_days},
        cause="daily",
        on=on,
    )
    return len(rows)


# --- Settings --------------------------------------------------------------------------


def validate_days(value: object) -> int:
    """A forecast alarm window as stored: whole days 0-366 (0: off)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"forecast days {value!r} is not a whole number", param="forecast_days")
    if not 0 <= value <= MAX_ALARM_DAYS:
        raise InvalidInput(
            f"forecast days {value} is outside 0-{MAX_ALARM_DAYS}", param="forecast_days"
        )
    return value


def set_alarm_days(
    session: Session, *, partner_id: int, days: object | None, customer_uin: int | None = None
) -> int:
    """Set the partner's default forecast alarm window, or one customer's own (None: back
    to the default). The fired state re-arms or settles at the customer's next forecast
    (next usage or the daily refresh), silently if the projection already lay within the
    old window. Returns the window that now applies."""
    partner = get_partner(session, partner_id)
    if days is None and customer_uin is None:
        raise InvalidInput("the partner's default cannot be removed", param="forecast_days")
    value = None if days is None else validate_days(days)
    with session.begin_nested():
        if customer_uin is None:
            assert value is not None
            session.execute(
                update(Partner)
                .where(Partner.id == partner_id)
                .values(forecast_days=value)
                .execution_options(synchronize_session=False)
            )
            applies = value
            which: Any = Customer.forecast_days.is_(None)
        else:
            get_customer(session, partner_id, customer_uin)
            session.execute(
                update(Customer)
                .where(Customer.partner_id == partner_id, Customer.uin == customer_uin)
                .values(forecast_days=value)
                .execution_options(synchronize_session=False)
            )
            applies = value if value is not None else partner.forecast_days
            which = Customer.uin == customer_uin
        _settle(session, partner_id, applies, which)
    session.expire_all()
    return applies


def _settle(session: Session, partner_id: int, window: int, which: Any) -> None:
    """A new window re-arms or fires silently: the fired state becomes whether the
    projection lies within it, with no alarm of its own (as a new threshold list does)."""
    limit = day_number(today()) + window
    within = (
        and_(Customer.runs_out_day.is_not(None), Customer.runs_out_day <= limit)
        if window > 0
        else false()
    )
    session.execute(
        update(Customer)
        .where(Customer.partner_id == partner_id, which)
        .values(forecast_fired=within)
        .execution_options(synchronize_session=False)
    )


def alarm_days(session: Session, *, partner_id: int, customer_uin: int | None = None) -> int:
    """The forecast alarm window that applies (to the customer, given one)."""
    partner = get_partner(session, partner_id)
    if customer_uin is not None:
        own = get_customer(session, partner_id, customer_uin).forecast_days
        if own is not None:
            return own
    return partner.forecast_days

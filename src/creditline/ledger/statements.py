"""Monthly statements: a customer's calendar month (in its partner's time zone) as the
partner re-bills it — opening available, allocations and withdrawals, usage by product,
closing available, and the thresholds reached.

A month is cut by the time each change was **recorded**, never by the time a charge says
it happened: an allocation record's ``created_at``, a usage event's ``ingested_at``, an
alarm's ``created_at``. So once a month has ended nothing can be added to it, and its
statement never changes. Usage recorded in a month for a time before that month (a late
charge or refund of a month already closed) is a **correction line** of the month it was
recorded in, naming the month it belongs to. The closing balances of a month are exactly
what the customer's balances were at the month's end (``verify.balances_at``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import Alarm, AllocationRecord, Customer, UsageEvent
from creditline.errors import InvalidInput
from creditline.ledger.accounts import get_customer, get_partner
from creditline.ledger.customer_settings import customer_settings

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, ``2026-01``."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str, *, param: str = "month") -> Month:
        """``YYYY-MM`` (years 2000-9998), or :class:`InvalidInput`."""
        found = _MONTH.fullmatch(text.strip())
        if found is None or not 2000 <= int(found[1]) <= 9998 or not 1 <= int(found[2]) <= 12:
            raise InvalidInput(f"{text!r} is not a month such as 2026-01", param=param)
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Month:
        """The month ``moment`` falls in, on the calendar of ``zone``."""
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def start(self, zone: ZoneInfo) -> datetime:
        """The first instant of the month in ``zone``, as UTC."""
        return datetime(self.year, self.month, 1, tzinfo=zone).astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass
class ProductUsage:
    """Usage of one product (for a correction line, of one product in one earlier month):
    list price of the charges, their vouchers, refunds (list less voucher, as a positive
    amount) and what was counted against credit (charges - vouchers - refunds)."""

    product: str
    charges: int = 0
    vouchers: int = 0
    refunds: int = 0
    counted: int = 0
    #: For a correction line: the month the usage belongs to.
    month: str = ""

    def add(self, *, kind: str, list_amount: int, voucher_amount: int, counted: int) -> None:
        if kind == "refund":
            self.refunds += list_amount - voucher_amount
        else:
            self.charges += list_amount
            self.vouchers += voucher_amount
        self.counted += counted


@dataclass(frozen=True)
class CreditLine:
    """An allocation or withdrawal of the month."""

    at: datetime
    kind: str
    change: int
    remark: str


@dataclass(frozen=True)
class ThresholdLine:
    """An alarm of the month: the highest threshold it named, and all it reached."""

    at: datetime
    threshold: int
    thresholds_reached: list[int]


@dataclass
class Statement:
    """One customer's month. Amounts in cents; ``closed``: the month has ended and this
    statement can no longer change."""

    partner_id: int
    partner_name: str
    customer_uin: int
    customer_name: str
    month: Month
    time_zone: str
    start: datetime
    end: datetime
    closed: bool
    #: The instant the figures are as of: the month's end, or now for the current month.
    as_of: datetime
    opening_total_credit: int = 0
    opening_consumed: int = 0
    credit_lines: list[CreditLine] = field(default_factory=list)
    usage: list[ProductUsage] = field(default_factory=list)
    corrections: list[ProductUsage] = field(default_factory=list)
    thresholds: list[ThresholdLine] = field(default_factory=list)

    @property
    def opening_available(self) -> int:
        return self.opening_total_credit - self.opening_consumed

    @property
    def allocations(self) -> int:
        return sum(line.change for line in self.credit_lines if line.change > 0)

    @property
    def withdrawals(self) -> int:
        """Withdrawn in the month, as a positive amount."""
        return -sum(line.change for line in self.credit_lines if line.change < 0)

    @property
    def usage_counted(self) -> int:
        return sum(u.counted for u in self.usage)

    @property
    def corrections_counted(self) -> int:
        return sum(u.counted for u in self.corrections)

    @property
    def closing_total_credit(self) -> int:
        return self.opening_total_credit + self.allocations - self.withdrawals

    @property
    def closing_consumed(self) -> int:
        return self.opening_consumed + self.usage_counted + self.corrections_counted

    @property
    def closing_available(self) -> int:
        return self.closing_total_credit - self.closing_consumed

    @property
    def thresholds_reached(self) -> list[int]:
        """Every threshold an alarm of the month reached, ascending."""
        return sorted({t for line in self.thresholds for t in line.thresholds_reached})


def _window(
    session: Session, partner_id: int, month: Month, now: datetime
) -> tuple[str, datetime, datetime, bool, datetime]:
    zone_name = customer_settings(session, partner_id).time_zone
    zone = ZoneInfo(zone_name)
    start, end = month.start(zone), month.next().start(zone)
    if start > now:
        raise InvalidInput(f"{month} has not begun yet", param="month")
    closed = end <= now
    return zone_name, start, end, closed, end if closed else now


def statements(
    session: Session,
    *,
    partner_id: int,
    month: Month,
    customer_uin: int | None = None,
    now: datetime | None = None,
) -> list[Statement]:
    """The month's statements of every customer of the partner (or of one), by UIN."""
    partner = get_partner(session, partner_id)
    if customer_uin is not None:
        get_customer(session, partner_id, customer_uin)
    now = now or utcnow()
    zone_name, start, end, closed, as_of = _window(session, partner_id, month, now)
    zone = ZoneInfo(zone_name)

    def scoped(
        query: Select[Any], of: type[AllocationRecord] | type[UsageEvent] | type[Alarm]
    ) -> Select[Any]:
        query = query.where(of.partner_id == partner_id)
        return query if customer_uin is None else query.where(of.customer_uin == customer_uin)

    customers = select(Customer.uin, Customer.name).where(Customer.partner_id == partner_id)
    if customer_uin is not None:
        customers = customers.where(Customer.uin == customer_uin)
    made = {
        uin: Statement(
            partner_id=partner_id,
            partner_name=partner.name,
            customer_uin=uin,
            customer_name=name,
            month=month,
            time_zone=zone_name,
            start=start,
            end=end,
            closed=closed,
            as_of=as_of,
        )
        for uin, name in session.execute(customers.order_by(Customer.uin)).tuples()
    }
    # Opening balances: everything recorded before the month began.
    for uin, total in session.execute(
        scoped(
            select(AllocationRecord.customer_uin, func.sum(AllocationRecord.change))
            .where(AllocationRecord.created_at < start)
            .group_by(AllocationRecord.customer_uin),
            AllocationRecord,
        ).where(AllocationRecord.customer_uin.is_not(None))
    ).tuples():
        if uin in made:
            made[uin].opening_total_credit = int(total or 0)
    for uin, consumed in session.execute(
        scoped(
            select(UsageEvent.customer_uin, func.sum(UsageEvent.counted))
            .where(UsageEvent.ingested_at < start)
            .group_by(UsageEvent.customer_uin),
            UsageEvent,
        )
    ).tuples():
        if uin in made:
            made[uin].opening_consumed = int(consumed or 0)
    # The month's allocations and withdrawals, oldest first.
    for row in session.execute(
        scoped(
            select(
                AllocationRecord.customer_uin,
                AllocationRecord.created_at,
                AllocationRecord.kind,
                AllocationRecord.change,
                AllocationRecord.remark,
            )
            .where(AllocationRecord.created_at >= start, AllocationRecord.created_at < end)
            .order_by(AllocationRecord.id),
            AllocationRecord,
        ).where(AllocationRecord.customer_uin.is_not(None))
    ):
        if row.customer_uin in made:
            made[row.customer_uin].credit_lines.append(
                CreditLine(at=row.created_at, kind=row.kind, change=row.change, remark=row.remark)
            )
    # The month's usage, by product; what belongs to an earlier month as corrections.
    late = UsageEvent.occurred_at < start
    in_month = (UsageEvent.ingested_at >= start, UsageEvent.ingested_at < end)
    for row in session.execute(
        scoped(
            select(
                UsageEvent.customer_uin,
                UsageEvent.product,
                UsageEvent.kind,
                func.sum(UsageEvent.list_amount).label("list_amount"),
                func.sum(UsageEvent.voucher_amount).label("voucher_amount"),
                func.sum(UsageEvent.counted).label("counted"),
            )
            .where(*in_month, ~late)
            .group_by(UsageEvent.customer_uin, UsageEvent.product, UsageEvent.kind),
            UsageEvent,
        )
    ):
        if row.customer_uin not in made:
            continue
        lines = made[row.customer_uin].usage
        line = next((u for u in lines if u.product == row.product), None)
        if line is None:
            line = ProductUsage(row.product)
            lines.append(line)
        line.add(
            kind=row.kind,
            list_amount=int(row.list_amount),
            voucher_amount=int(row.voucher_amount),
            counted=int(row.counted),
        )
    corrections: dict[int, dict[tuple[str, str], ProductUsage]] = defaultdict(dict)
    # Late usage is rare: read it line by line to name each line's own month.
    for row in session.execute(
        scoped(
            select(
                UsageEvent.customer_uin,
                UsageEvent.product,
                UsageEvent.kind,
                UsageEvent.list_amount,
                UsageEvent.voucher_amount,
                UsageEvent.counted,
                UsageEvent.occurred_at,
            ).where(*in_month, late),
            UsageEvent,
        )
    ):
        belongs = str(Month.of(row.occurred_at, zone))
        lines_of = corrections[row.customer_uin]
        key = (belongs, row.product)
        if key not in lines_of:
            lines_of[key] = ProductUsage(row.product, month=belongs)
        lines_of[key].add(
            kind=row.kind,
            list_amount=row.list_amount,
            voucher_amount=row.voucher_amount,
            counted=row.counted,
        )
    for uin, lines_of in corrections.items():
        if uin in made:
            made[uin].corrections = [lines_of[k] for k in sorted(lines_of)]
    for statement in made.values():
        statement.usage.sort(key=lambda u: u.product)
    for row in session.execute(
        scoped(
            select(Alarm.customer_uin, Alarm.created_at, Alarm.threshold, Alarm.thresholds_reached)
            .where(Alarm.created_at >= start, Alarm.created_at < end)
            .order_by(Alarm.id),
            Alarm,
        )
    ):
        if row.customer_uin in made:
            made[row.customer_uin].thresholds.append(
                ThresholdLine(
                    at=row.created_at,
                    threshold=row.threshold,
                    thresholds_reached=list(row.thresholds_reached),
                )
            )
    return list(made.values())


def statement(
    session: Session,
    *,
    partner_id: int,
    customer_uin: int,
    month: Month,
    now: datetime | None = None,
) -> Statement:
    """One customer's statement of ``month``; another partner's customer is missing."""
    (found,) = statements(
        session, partner_id=partner_id, month=month, customer_uin=customer_uin, now=now
    )
    return found


def month_now(session: Session, partner_id: int) -> Month:
    """The current month on the partner's calendar."""
    return Month.of(utcnow(), customer_settings(session, partner_id).zone)

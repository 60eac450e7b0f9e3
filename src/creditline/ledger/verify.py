"""Conservation, checkable at any time (DESIGN §2): every balance recomputed from the
records it must equal, and every difference named."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from creditline import money
from creditline.db.tables import (
    AllocationRecord,
    Customer,
    Partner,
    TopUpMonth,
    UsageDaily,
    UsageEvent,
)
from creditline.ledger.alarms import reached
from creditline.ledger.top_ups import month_of


@dataclass(frozen=True)
class Mismatch:
    """One balance that disagrees with what its records add up to."""

    subject: str
    id: int
    field: str
    stored: int | str
    expected: int | str
    #: For a breach of a rule rather than a balance that disagrees: the rule broken.
    rule: str = ""

    def describe(self) -> str:
        def show(v: int | str) -> str:
            return money.to_display(v) if isinstance(v, int) else v

        if self.rule:
            return f"{self.subject} {self.id}: {self.field} is {show(self.stored)}; {self.rule}"
        return (
            f"{self.subject} {self.id}: {self.field} is {show(self.stored)}, "
            f"its records say {show(self.expected)}"
        )


def _taken_back_beyond_given(session: Session) -> list[Mismatch]:
    """Each giver's running net to each pool, record by record: a take-back that made it
    negative took what someone else gave (DESIGN §2). The first such record is named."""
    recipient = case(
        (AllocationRecord.kind == "grant", AllocationRecord.partner_id),
        else_=AllocationRecord.sub_partner_id,
    )
    giver = case((AllocationRecord.kind == "grant", None), else_=AllocationRecord.partner_id)
    running = (
        select(
            recipient.label("recipient"),
            giver.label("giver"),
            AllocationRecord.id,
            func.sum(AllocationRecord.change)
            .over(partition_by=(AllocationRecord.kind, recipient), order_by=AllocationRecord.id)
            .label("net"),
        )
        .where(AllocationRecord.kind.in_(("grant", "pool_allocation")))
        .subquery()
    )
    found: dict[tuple[int, int | None], Mismatch] = {}
    for row in session.execute(
        select(running).where(running.c.net < 0).order_by(running.c.id)
    ).all():
        if (row.recipient, row.giver) in found:
            continue
        who = "the platform" if row.giver is None else f"distributor {row.giver}"
        found[(row.recipient, row.giver)] = Mismatch(
            "partner",
            row.recipient,
            f"what {who} gave it, net, after record {row.id}",
            int(row.net),
            0,
            rule=f"{who} took back more than it gave",
        )
    return sorted(found.values(), key=lambda m: (m.id, m.field))


def verify(session: Session) -> list[Mismatch]:
    """Recompute every pool, credit and consumption from the records; [] when all agree.

    - a pool's ``total`` equals its grants plus the pool allocations made to it;
    - a pool's ``allocated`` equals its customers' total credit plus the pool allocations
      it made to its sub-resellers;
    - a sub-reseller's ``pool_from_distributor`` equals its distributor's pool
      allocations to it, and no giver's net to a pool (the platform's grants, a
      distributor's pool allocations) ever went below zero;
    - a customer's ``total_credit`` equals the sum of its allocation records;
    - a customer's ``consumed`` equals the sum of its counted usage;
    - a customer's fired thresholds are exactly those its consumption reaches;
    - each customer's automatic top-ups of each month (its allocation records of source
      ``rule``, by the UTC month of their time) add up to, and count, what the month's
      tally says, which is within the cap its latest top-up was held to; a top-up is an
      allocation, never a withdrawal.
    """
    found: list[Mismatch] = []

    granted = dict(
        session.execute(
            select(AllocationRecord.partner_id, func.sum(AllocationRecord.change))
            .where(AllocationRecord.kind == "grant")
            .group_by(AllocationRecord.partner_id)
        )
        .tuples()
        .all()
    )
    received = dict(
        session.execute(
            select(AllocationRecord.sub_partner_id, func.sum(AllocationRecord.change))
            .where(AllocationRecord.kind == "pool_allocation")
            .group_by(AllocationRecord.sub_partner_id)
        )
        .tuples()
        .all()
    )
    held = dict(
        session.execute(
            select(Customer.partner_id, func.sum(Customer.total_credit)).group_by(
                Customer.partner_id
            )
        )
        .tuples()
        .all()
    )
    # What a distributor gave its sub-resellers is what its pool allocations add up to,
    # not their pools' totals: the platform may grant to a sub-reseller directly too.
    passed_on = dict(
        session.execute(
            select(AllocationRecord.partner_id, func.sum(AllocationRecord.change))
            .where(AllocationRecord.kind == "pool_allocation")
            .group_by(AllocationRecord.partner_id)
        )
        .tuples()
        .all()
    )
    given_by_parent = dict(
        session.execute(
            select(AllocationRecord.sub_partner_id, func.sum(AllocationRecord.change))
            .join(Partner, Partner.id == AllocationRecord.sub_partner_id)
            .where(
                AllocationRecord.kind == "pool_allocation",
                AllocationRecord.partner_id == Partner.parent_id,
            )
            .group_by(AllocationRecord.sub_partner_id)
        )
        .tuples()
        .all()
    )
    # populate_existing: the core changes balances with Core UPDATEs, so objects already in
    # this session's identity map may hold values from before them.
    fresh = {"populate_existing": True}
    for partner in session.execute(
        select(Partner).order_by(Partner.id).execution_options(**fresh)
    ).scalars():
        total = int(granted.get(partner.id) or 0) + int(received.get(partner.id) or 0)
        if partner.pool_total != total:
            found.append(Mismatch("partner", partner.id, "pool total", partner.pool_total, total))
        allocated = int(held.get(partner.id) or 0) + int(passed_on.get(partner.id) or 0)
        if partner.pool_allocated != allocated:
            found.append(
                Mismatch("partner", partner.id, "pool allocated", partner.pool_allocated, allocated)
            )
        given = int(given_by_parent.get(partner.id) or 0)
        if partner.pool_from_distributor != given:
            found.append(
                Mismatch(
                    "partner",
                    partner.id,
                    "pool given by its distributor",
                    partner.pool_from_distributor,
                    given,
                )
            )
    found.extend(_taken_back_beyond_given(session))

    credited = dict(
        session.execute(
            select(AllocationRecord.customer_uin, func.sum(AllocationRecord.change))
            .where(AllocationRecord.customer_uin.is_not(None))
            .group_by(AllocationRecord.customer_uin)
        )
        .tuples()
        .all()
    )
    counted = dict(
        session.execute(
            select(UsageEvent.customer_uin, func.sum(UsageEvent.counted)).group_by(
                UsageEvent.customer_uin
            )
        )
        .tuples()
        .all()
    )
    # The forecasts' daily totals (ledger.forecast) are the same counted usage, by day.
    daily = dict(
        session.execute(
            select(UsageDaily.customer_uin, func.sum(UsageDaily.counted)).group_by(
                UsageDaily.customer_uin
            )
        )
        .tuples()
        .all()
    )
    defaults = dict(session.execute(select(Partner.id, Partner.thresholds)).tuples().all())
    for customer in session.execute(
        select(Customer).order_by(Customer.uin).execution_options(**fresh)
    ).scalars():
        credit = int(credited.get(customer.uin) or 0)
        if customer.total_credit != credit:
            found.append(
                Mismatch("customer", customer.uin, "total credit", customer.total_credit, credit)
            )
        consumed = int(counted.get(customer.uin) or 0)
        if customer.consumed != consumed:
            found.append(
                Mismatch("customer", customer.uin, "consumed", customer.consumed, consumed)
            )
        by_day = int(daily.get(customer.uin) or 0)
        if by_day != consumed:
            found.append(Mismatch("customer", customer.uin, "daily usage totals", by_day, consumed))
        effective = (
            customer.thresholds
            if customer.thresholds is not None
            else defaults[customer.partner_id]
        )
        should = reached(effective, total_credit=customer.total_credit, consumed=customer.consumed)
        if sorted(customer.fired_thresholds) != should:
            found.append(
                Mismatch(
                    "customer",
                    customer.uin,
                    "fired thresholds",
                    ",".join(map(str, sorted(customer.fired_thresholds))) or "none",
                    ",".join(map(str, should)) or "none",
                )
            )
    found.extend(_top_ups(session))
    return found


def _top_ups(session: Session) -> list[Mismatch]:
    """Each customer-month's top-ups recomputed from the records against its tally."""
    found: list[Mismatch] = []
    recorded: dict[tuple[int, str], list[int]] = {}
    for uin, kind, change, created_at in session.execute(
        select(
            AllocationRecord.customer_uin,
            AllocationRecord.kind,
            AllocationRecord.change,
            AllocationRecord.created_at,
        )
        .where(AllocationRecord.source == "rule")
        .order_by(AllocationRecord.id)
    ).tuples():
        if kind != "allocation" or change <= 0 or uin is None:
            found.append(
                Mismatch(
                    "customer",
                    uin or 0,
                    "top-up",
                    change,
                    0,
                    rule="a top-up is an allocation to a customer, never anything else",
                )
            )
            continue
        sums = recorded.setdefault((uin, month_of(created_at)), [0, 0])
        sums[0] += change
        sums[1] += 1
    tallies = {
        (row.customer_uin, row.month): row
        for row in session.execute(select(TopUpMonth).execution_options(populate_existing=True))
        .scalars()
        .all()
    }
    for key in sorted(set(recorded) | set(tallies)):
        uin, month = key
        total, count = recorded.get(key, [0, 0])
        tally = tallies.get(key)
        stored, stored_count = (0, 0) if tally is None else (tally.topped_up, tally.top_ups)
        if stored != total:
            found.append(Mismatch("customer", uin, f"top-ups of {month}", stored, total))
        if stored_count != count:
            found.append(
                Mismatch(
                    "customer", uin, f"number of top-ups of {month}", str(stored_count), str(count)
                )
            )
        if tally is not None and tally.topped_up > tally.cap:
            found.append(
                Mismatch(
                    "customer",
                    uin,
                    f"top-ups of {month}",
                    tally.topped_up,
                    tally.cap,
                    rule=f"above the monthly cap of {money.to_display(tally.cap)}",
                )
            )
    return found


@dataclass(frozen=True)
class Balance:
    """A customer's credit as its records say it stood at one instant."""

    total_credit: int
    consumed: int

    @property
    def available(self) -> int:
        return self.total_credit - self.consumed


def balances_at(session: Session, *, partner_id: int, moment: datetime) -> dict[int, Balance]:
    """Each customer's total credit and consumption at ``moment``, recomputed from what had
    been recorded before it (allocation records by ``created_at``, usage by
    ``ingested_at``): the figures a monthly statement's opening and closing reconcile with.
    At the present moment they equal the stored balances (:func:`verify`)."""
    credited = dict(
        session.execute(
            select(AllocationRecord.customer_uin, func.sum(AllocationRecord.change))
            .where(
                AllocationRecord.partner_id == partner_id,
                AllocationRecord.customer_uin.is_not(None),
                AllocationRecord.created_at < moment,
            )
            .group_by(AllocationRecord.customer_uin)
        )
        .tuples()
        .all()
    )
    counted = dict(
        session.execute(
            select(UsageEvent.customer_uin, func.sum(UsageEvent.counted))
            .where(UsageEvent.partner_id == partner_id, UsageEvent.ingested_at < moment)
            .group_by(UsageEvent.customer_uin)
        )
        .tuples()
        .all()
    )
    uins = session.execute(select(Customer.uin).where(Customer.partner_id == partner_id))
    return {
        uin: Balance(int(credited.get(uin) or 0), int(counted.get(uin) or 0))
        for uin in uins.scalars()
    }

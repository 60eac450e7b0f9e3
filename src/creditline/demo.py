"""A realistic demo, made through the same ledger functions as real work.

A distributor with two second-level resellers (their pools allocated from the
distributor's), a direct reseller, about 200 customers with varied names, types and credit,
and three months of usage across several products, so that every alarm level is present
(below 75 %, 75 %, 90 %, 100 % and beyond) and a few customers have thresholds of their
own. The same seed makes the same demo; only UINs and the calendar move.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import msgspec
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import Alarm, AllocationRecord, Customer, Partner
from creditline.ledger import accounts, alarms, credit, pools, usage
from creditline.ledger.records import Origin

PRODUCTS = ("cvm", "cos", "cdn", "tencentdb", "clb", "tke", "scf", "vpc")
MONTHS = 3

FIRST_NAMES = (
    "Aiko",
    "Ben",
    "Carmen",
    "Dmitri",
    "Elif",
    "Farah",
    "Gustavo",
    "Hana",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Vikram",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zara",
)
LAST_NAMES = (
    "Abara",
    "Becker",
    "Chen",
    "Dubois",
    "Esposito",
    "Fernandes",
    "Goh",
    "Haddad",
    "Ito",
    "Jensen",
    "Kim",
    "Lopez",
    "Mwangi",
    "Nguyen",
    "Okafor",
    "Petrov",
    "Rahman",
    "Silva",
    "Tan",
    "Usman",
    "Varga",
    "Wong",
    "Yilmaz",
    "Zhou",
)
COMPANY_WORDS = (
    "Apex",
    "Blue Harbor",
    "Cedar",
    "Delta",
    "Ember",
    "Fjord",
    "Granite",
    "Horizon",
    "Iris",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Orchid",
    "Pioneer",
    "Quartz",
    "Redwood",
    "Sable",
    "Tidal",
    "Vertex",
    "Willow",
)
COMPANY_KINDS = (
    "Analytics",
    "Games",
    "Logistics",
    "Media",
    "Health",
    "Retail",
    "Labs",
    "Fintech",
    "Studios",
    "Travel",
    "Robotics",
    "Education",
)
COMPANY_SUFFIXES = ("Ltd", "Pte Ltd", "Inc", "GmbH", "LLC", "Sdn Bhd", "Co")
REMARKS = ("", "", "", "key account", "trial", "pays monthly", "migrating from on-prem", "VIP")
#: Credit a customer may be given, in whole dollars.
CREDITS = (200, 500, 1_000, 1_500, 2_500, 4_000, 6_000, 10_000, 15_000)
#: Where a customer ends up, as a share of its credit used: (level, low, high, weight).
LEVELS = (
    ("below 75", 0.05, 0.70, 45),
    ("75", 0.76, 0.88, 20),
    ("90", 0.91, 0.98, 17),
    ("100+", 1.00, 1.35, 18),
)


@dataclass
class DemoPartner:
    """One partner of the demo and how many customers it holds."""

    id: int
    name: str
    kind: str
    parent_id: int | None
    customers: int = 0


@dataclass
class DemoSummary:
    """What :func:`build_demo` made. Later work adds its own parts (users, keys) here."""

    partners: list[DemoPartner]
    #: The partner with the most to see: customers at every level and its own resellers.
    look_at: int
    customers: int = 0
    usage_events: int = 0
    alarms: int = 0
    allocation_records: int = 0
    #: Customers at each alarm level once the usage is in.
    levels: dict[str, int] = field(default_factory=dict)
    #: Customers given thresholds of their own.
    own_thresholds: list[int] = field(default_factory=list)


@dataclass
class _Plan:
    partner: DemoPartner
    name: str
    type: str
    email: str
    mobile: str
    remark: str
    credit: int
    withdraw: int
    target: float
    associated_at: datetime


def _slug(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _plan(rng: random.Random, partner: DemoPartner, index: int, today: date) -> _Plan:
    if rng.random() < 0.55:
        word = rng.choice(COMPANY_WORDS)
        kind = rng.choice(COMPANY_KINDS)
        name = f"{word} {kind} {rng.choice(COMPANY_SUFFIXES)}"
        email = f"billing@{_slug(word)}{_slug(kind)}.example"
        ctype = "company"
    else:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name = f"{first} {last}"
        email = f"{_slug(first)}.{_slug(last)}{rng.randint(1, 99)}@mail.example"
        ctype = "personal"
    # The first four of each partner cover every alarm level; the rest are drawn.
    level = (
        LEVELS[index]
        if index < len(LEVELS)
        else rng.choices(LEVELS, weights=[w for *_, w in LEVELS])[0]
    )
    credit_cents = rng.choice(CREDITS) * 100
    # Some customers had more credit once and gave part of it back.
    withdraw = credit_cents // 4 if rng.random() < 0.15 else 0
    return _Plan(
        partner=partner,
        name=name,
        type=ctype,
        email=email,
        mobile=f"+65 {rng.randint(8000, 9999)} {rng.randint(1000, 9999)}",
        remark=rng.choice(REMARKS),
        credit=credit_cents,
        withdraw=withdraw,
        target=rng.uniform(level[1], level[2]),
        associated_at=datetime.combine(today, datetime.min.time(), UTC)
        - timedelta(days=rng.randint(100, 900)),
    )


def _usage(
    rng: random.Random, uin: int, consumed: int, start: datetime, days: int
) -> list[usage.UsageRecord]:
    """Charges (some with vouchers, a few refunded) that count exactly ``consumed``; their
    event ids are given when they are fed in."""
    count = rng.randint(6, 30)
    weights = [rng.random() + 0.05 for _ in range(count)]
    whole = sum(weights)
    counted = [int(consumed * w / whole) for w in weights]
    counted[-1] += consumed - sum(counted)
    events: list[usage.UsageRecord] = []
    for amount in counted:
        at = start + timedelta(days=rng.uniform(0, days - 1), hours=rng.randint(0, 23))
        # A voucher lowers what counts, never the list price: list = counted + voucher.
        voucher = rng.randint(0, amount // 3) if amount > 3 and rng.random() < 0.2 else 0
        events.append(
            usage.UsageRecord("", uin, rng.choice(PRODUCTS), amount + voucher, voucher, at)
        )
        if rng.random() < 0.05:
            # A charge later refunded in full: both are kept, the net is nothing.
            mistaken = rng.randint(100, 5_000)
            product = rng.choice(PRODUCTS)
            events.append(usage.UsageRecord("", uin, product, mistaken, 0, at, "charge"))
            events.append(
                usage.UsageRecord("", uin, product, mistaken, 0, at + timedelta(hours=6), "refund")
            )
    return events


def _date_records(session: Session, partner_ids: list[int], *, until: datetime) -> None:
    """Date the demo's grants and allocations over the month before its usage begins, in
    the order they were made (credit is handed out before it is used)."""
    ids = list(
        session.execute(
            select(AllocationRecord.id)
            .where(AllocationRecord.partner_id.in_(partner_ids))
            .order_by(AllocationRecord.id)
        ).scalars()
    )
    start = until - timedelta(days=30)
    step = timedelta(days=29) / max(len(ids), 1)
    for n, record_id in enumerate(ids):
        session.execute(
            update(AllocationRecord)
            .where(AllocationRecord.id == record_id)
            .values(created_at=start + step * n)
            .execution_options(synchronize_session=False)
        )


def _date_alarms(session: Session, raised: list[Alarm], batch: list[usage.UsageRecord]) -> None:
    """Date the alarms a day's batch raised when their customers' usage came in that day
    (not when the demo ran), keeping the order they were raised in (their ids)."""
    last: dict[int, datetime] = {}
    for event in batch:
        last[event.customer_uin] = max(
            event.occurred_at, last.get(event.customer_uin, event.occurred_at)
        )
    moments = sorted(min(last[alarm.customer_uin], utcnow()) for alarm in raised)
    for alarm, at in zip(sorted(raised, key=lambda a: a.id), moments, strict=True):
        session.execute(
            update(Alarm)
            .where(Alarm.id == alarm.id)
            .values(created_at=at)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Customer)
            .where(Customer.uin == alarm.customer_uin)
            .values(last_alarm_at=at)
            .execution_options(synchronize_session=False)
        )


def build_demo(
    session: Session, *, seed: int = 2024, customers: int = 200, today: date | None = None
) -> DemoSummary:
    """Fill the database with the demo, inside the caller's transaction."""
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    platform = "channel-team@vendor.example"

    def made(partner: Partner) -> DemoPartner:
        return DemoPartner(partner.id, partner.name, partner.kind, partner.parent_id)

    distributor = made(
        accounts.create_partner(session, name="Northwind Cloud Distribution", kind="distributor")
    )
    subs = [
        made(
            accounts.create_partner(
                session, name=name, kind="sub-reseller", parent_id=distributor.id
            )
        )
        for name in ("Harbor IT Services", "Summit Digital")
    ]
    reseller = made(accounts.create_partner(session, name="Bluepeak Solutions", kind="reseller"))
    everyone = [distributor, *subs, reseller]
    operators = {p.id: f"finance@{_slug(p.name.split()[0])}.example" for p in everyone}

    # Shares of the customers: the distributor 30 %, its resellers 25 % and 20 %, the rest.
    shares = [0.30, 0.25, 0.20]
    counts = [round(customers * s) for s in shares]
    counts.append(customers - sum(counts))
    plans = [
        _plan(rng, partner, i, today)
        for partner, count in zip(everyone, counts, strict=True)
        for i in range(count)
    ]

    # Pools sized from what will be handed out, with room to spare for trying things.
    needed: dict[int, int] = defaultdict(int)
    for plan in plans:
        needed[plan.partner.id] += plan.credit + plan.withdraw
    sub_pools = {s.id: needed[s.id] + 20_000_00 for s in subs}
    pools.grant(
        session,
        partner_id=distributor.id,
        amount=needed[distributor.id] + sum(sub_pools.values()) + 50_000_00,
        origin=Origin(platform, "demo", remark="Q1 customer credit"),
    )
    for sub in subs:
        pools.allocate_pool(
            session,
            distributor_id=distributor.id,
            sub_reseller_id=sub.id,
            amount=sub_pools[sub.id],
            origin=Origin(operators[distributor.id], "demo", remark="quarterly pool"),
        )
    pools.grant(
        session,
        partner_id=reseller.id,
        amount=needed[reseller.id] + 30_000_00,
        origin=Origin(platform, "demo", remark="Q1 customer credit"),
    )
    # The direct reseller wants an earlier warning than the default.
    alarms.set_thresholds(session, partner_id=reseller.id, thresholds=[70, 90, 100])

    summary = DemoSummary(partners=everyone, look_at=distributor.id)
    made_customers: list[tuple[Customer, _Plan]] = []
    for plan in plans:
        customer = accounts.create_customer(
            session,
            partner_id=plan.partner.id,
            name=plan.name,
            type=plan.type,
            email=plan.email,
            mobile=plan.mobile,
            remark=plan.remark,
            identity_status=2 if plan.type == "company" else rng.choice((0, 1)),
            associated_at=plan.associated_at,
        )
        plan.partner.customers += 1
        origin = Origin(operators[plan.partner.id], "demo")
        credit.allocate_credit(
            session,
            partner_id=plan.partner.id,
            customer_uin=customer.uin,
            amount=plan.credit + plan.withdraw,
            origin=origin,
        )
        if plan.withdraw:
            credit.allocate_credit(
                session,
                partner_id=plan.partner.id,
                customer_uin=customer.uin,
                amount=-plan.withdraw,
                origin=Origin(origin.operator, "demo", remark="credit returned to pool"),
            )
        made_customers.append((customer, plan))

    # A few customers with thresholds of their own.
    own_lists = ([50, 80, 100], [60, 100], [85, 95, 100, 120], [25, 50, 75, 100])
    for (customer, plan), own in zip(made_customers[4::37], own_lists, strict=False):
        alarms.set_thresholds(
            session, partner_id=plan.partner.id, thresholds=own, customer_uin=customer.uin
        )
        summary.own_thresholds.append(customer.uin)

    # Three months of usage, fed month by month as the billing feed would.
    month_start = datetime(today.year, today.month, 1, tzinfo=UTC)
    starts = [month_start]
    for _ in range(MONTHS - 1):
        starts.insert(0, (starts[0] - timedelta(days=1)).replace(day=1))
    _date_records(session, [p.id for p in everyone], until=starts[0])
    by_month: list[list[usage.UsageRecord]] = [[] for _ in starts]
    for customer, plan in made_customers:
        consumed = int(plan.credit * plan.target)
        # Spread over the months, more in later ones as customers grow.
        split = [0.25, 0.35, 0.40]
        parts = [int(consumed * share) for share in split]
        parts[-1] += consumed - sum(parts)
        for month, (start, part) in enumerate(zip(starts, parts, strict=True)):
            days = 28 if month < len(starts) - 1 else max(today.day, 1)
            by_month[month].extend(_usage(rng, customer.uin, part, start, days))
    serial = 0
    for events in by_month:
        events.sort(key=lambda e: e.occurred_at)
        # One batch a day, as a daily billing feed sends them, so each alarm is dated
        # when its customer's usage crossed the threshold rather than when the demo ran.
        by_day: dict[date, list[usage.UsageRecord]] = defaultdict(list)
        for event in events:
            serial += 1
            # Unique per demo distributor, so a second demo (--force) adds, not collides.
            named = msgspec.structs.replace(event, event_id=f"demo-{distributor.id}-{serial:06d}")
            by_day[event.occurred_at.date()].append(named)
        for batch in by_day.values():
            result = usage.ingest(session, batch)
            summary.usage_events += result.accepted
            summary.alarms += len(result.alarms)
            _date_alarms(session, result.alarms, batch)

    # Each customer's level, by the highest default threshold its consumption reaches.
    summary.levels = {level: 0 for level, *_ in LEVELS}
    for customer, _ in made_customers:
        fresh = accounts.get_customer(session, customer.partner_id, customer.uin)
        hit = alarms.reached(
            alarms.DEFAULT_THRESHOLDS, total_credit=fresh.total_credit, consumed=fresh.consumed
        )
        summary.levels[{75: "75", 90: "90", 100: "100+"}.get(max(hit, default=0), "below 75")] += 1
    summary.customers = len(made_customers)
    summary.allocation_records = 2 + len(subs) + sum(2 if p.withdraw else 1 for p in plans)
    return summary

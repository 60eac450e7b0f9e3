"""Automatic top-ups (issue 16.4): "when a customer's available credit falls below X (or
its utilisation reaches Y %), allocate Z from the pool", at most a cap a calendar month
and never past a ceiling of total credit.

- A rule is the customer's own, or else its partner's default; a customer may also be set
  "off" (no top-ups whatever the default). Rules change through the ORM, so the audit log
  sees them (``creditline.audit``).
- Only usage triggers a top-up: a usage batch that raised a customer's consumption and
  left the rule's condition holding makes **one** top-up of that customer, in the batch's
  transaction, after the batch's own threshold alarms. The top-up is an ordinary
  allocation (:func:`creditline.ledger.credit.allocate_credit`: same guards, same record
  with source ``rule`` and the rule named as operator, same alarms), so it cannot make
  another (an allocation never triggers one) and cannot loop. Withdrawals never trigger one:
  a withdrawal is the partner taking credit back on purpose, and refilling it from the
  same pool would undo it.
- Checked in this order, the first that fails refuses the top-up: the ceiling (total
  credit after it above the ceiling), the monthly cap (the month's top-ups after it above
  the cap), the pool (less remaining than the amount). A refused top-up changes nothing
  and alarms the partner (``credit.top_up_refused``: a notice in its message centre and an
  outbox event for its webhooks and email recipients), once per customer, month and reason
  until a top-up of that customer succeeds again.
- The month is the UTC calendar month of the top-up's record, so ``verify`` can recompute
  each month's total from the records whatever time zone a partner later chooses.
- The cap holds under concurrency: a batch that may top up locks its partners' pool rows
  before its customers' (:func:`lock_pools`, the lock order every allocation follows), so
  the ceiling, the month's total and the pool are checked on rows it holds, before anything
  is written; the month's total is then added by one guarded statement (``... ON CONFLICT
  DO UPDATE ... WHERE topped_up + amount <= cap``) that fails the batch should it ever
  refuse a checked top-up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BigInteger, Row, insert, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditline import money
from creditline.clock import utcnow
from creditline.db.tables import (
    CustomerTopUpRule,
    Partner,
    PartnerNotice,
    PartnerTopUpRule,
    TopUpMonth,
)
from creditline.errors import CreditlineError, InvalidAmount, InvalidInput
from creditline.ledger import records
from creditline.ledger.accounts import get_customer, get_partner
from creditline.ledger.credit import CreditChange, allocate_credit
from creditline.ledger.outbox import TOP_UP_REFUSED
from creditline.ledger.outbox import enqueue as enqueue_event
from creditline.money import MAX_CENTS

Reason = Literal["pool_short", "monthly_cap", "ceiling"]
REASONS: dict[str, str] = {
    "ceiling": "the top-up would take total credit above the rule's ceiling",
    "monthly_cap": "the top-up would take this month's top-ups above the rule's monthly cap",
    "pool_short": "the pool has less remaining than the top-up's amount",
}
#: Where a rule comes from.
SCOPES = ("customer", "partner_default")
#: The operator named on a top-up's allocation record, by the rule's scope.
OPERATORS = {
    "customer": "top-up rule (customer's own)",
    "partner_default": "top-up rule (partner default)",
}


@dataclass(frozen=True)
class Rule:
    """One top-up rule, amounts in cents: exactly one of ``below`` (available credit) and
    ``utilization_percent`` triggers it; ``ceiling`` None: no ceiling."""

    amount: int
    monthly_cap: int
    below: int | None = None
    utilization_percent: int | None = None
    ceiling: int | None = None

    def holds(self, *, total_credit: int, consumed: int) -> bool:
        """Whether the rule's condition holds for this credit."""
        if self.below is not None:
            return total_credit - consumed < self.below
        assert self.utilization_percent is not None
        # As a threshold is reached (DESIGN §3): with no credit, anything consumed.
        return consumed > 0 and consumed * 100 >= self.utilization_percent * total_credit

    def describe(self, *, total_credit: int, consumed: int) -> str:
        """Why the rule fired, for the record's remark."""
        if self.below is not None:
            return (
                f"automatic top-up: available {money.to_display(total_credit - consumed)} "
                f"below {money.to_display(self.below)}"
            )
        return f"automatic top-up: utilisation reached {self.utilization_percent}%"

    def as_payload(self) -> dict[str, object]:
        """The rule as JSON (amounts as decimal text)."""
        return {
            "available_below": None if self.below is None else money.to_text(self.below),
            "utilization_percent": self.utilization_percent,
            "amount": money.to_text(self.amount),
            "monthly_cap": money.to_text(self.monthly_cap),
            "ceiling": None if self.ceiling is None else money.to_text(self.ceiling),
        }


def _cents(value: object, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(f"{param} must be an amount", param=param)
    if value > MAX_CENTS:
        raise InvalidAmount(
            f"{param} is beyond the limit of {money.to_display(MAX_CENTS)}", param=param
        )
    return value


def check_rule(
    *,
    amount: object,
    monthly_cap: object,
    below: object = None,
    utilization_percent: object = None,
    ceiling: object = None,
) -> Rule:
    """A rule as stored, or every fault refused by name (amounts in cents)."""
    if (below is None) == (utilization_percent is None):
        raise InvalidInput(
            "give exactly one trigger: available_below or utilization_percent", param="trigger"
        )
    below_cents = None if below is None else _cents(below, "available_below")
    if below_cents is not None and below_cents < 0:
        raise InvalidAmount("available_below must not be negative", param="available_below")
    percent: int | None = None
    if utilization_percent is not None:
        if (
            isinstance(utilization_percent, bool)
            or not isinstance(utilization_percent, int)
            or not 1 <= utilization_percent <= 1000
        ):
            raise InvalidInput(
                "utilization_percent must be a whole percent 1-1000", param="utilization_percent"
            )
        percent = utilization_percent
    amount_cents = _cents(amount, "amount")
    if amount_cents <= 0:
        raise InvalidAmount("amount must be above zero", param="amount")
    cap = _cents(monthly_cap, "monthly_cap")
    if cap < amount_cents:
        raise InvalidAmount(
            "monthly_cap must be at least the amount (else no top-up could ever be made)",
            param="monthly_cap",
        )
    ceiling_cents = None if ceiling is None else _cents(ceiling, "ceiling")
    if ceiling_cents is not None and ceiling_cents < amount_cents:
        raise InvalidAmount(
            "ceiling must be at least the amount (else no top-up could ever be made)",
            param="ceiling",
        )
    return Rule(
        amount=amount_cents,
        monthly_cap=cap,
        below=below_cents,
        utilization_percent=percent,
        ceiling=ceiling_cents,
    )


def _rule_of(row: PartnerTopUpRule | CustomerTopUpRule) -> Rule:
    assert row.amount is not None and row.monthly_cap is not None
    return Rule(
        amount=row.amount,
        monthly_cap=row.monthly_cap,
        below=row.below,
        utilization_percent=row.utilization_percent,
        ceiling=row.ceiling,
    )


def _fill(row: PartnerTopUpRule | CustomerTopUpRule, rule: Rule | None) -> None:
    row.below = None if rule is None else rule.below
    row.utilization_percent = None if rule is None else rule.utilization_percent
    row.amount = None if rule is None else rule.amount
    row.monthly_cap = None if rule is None else rule.monthly_cap
    row.ceiling = None if rule is None else rule.ceiling


def partner_rule(session: Session, partner_id: int) -> Rule | None:
    """The partner's default rule; None: it has none."""
    get_partner(session, partner_id)
    row = session.get(PartnerTopUpRule, partner_id, populate_existing=True)
    return None if row is None else _rule_of(row)


def set_partner_rule(session: Session, *, partner_id: int, rule: Rule | None) -> Rule | None:
    """Set the partner's default rule (None: remove it). Takes effect from the next usage
    batch; setting a rule tops nobody up by itself."""
    get_partner(session, partner_id)
    row = session.get(PartnerTopUpRule, partner_id)
    if rule is None:
        if row is not None:
            session.delete(row)
    else:
        if row is None:
            row = PartnerTopUpRule(partner_id=partner_id)
            session.add(row)
        if row.amount is None or _rule_of(row) != rule:
            _fill(row, rule)
            row.updated_at = utcnow()
    session.flush()
    return rule


@dataclass(frozen=True)
class CustomerRule:
    """What applies to one customer: ``mode`` ``own`` (its own rule), ``off`` (no
    top-ups) or ``default`` (its partner's default, which may be none); ``rule`` the rule
    that applies, if any."""

    customer_uin: int
    mode: Literal["own", "off", "default"]
    rule: Rule | None

    @property
    def scope(self) -> str | None:
        if self.rule is None:
            return None
        return "customer" if self.mode == "own" else "partner_default"


def customer_rule(session: Session, *, partner_id: int, customer_uin: int) -> CustomerRule:
    """The rule that applies to the customer (another partner's customer is missing)."""
    get_customer(session, partner_id, customer_uin)
    own = session.get(CustomerTopUpRule, (partner_id, customer_uin), populate_existing=True)
    if own is None:
        return CustomerRule(customer_uin, "default", partner_rule(session, partner_id))
    if not own.enabled:
        return CustomerRule(customer_uin, "off", None)
    return CustomerRule(customer_uin, "own", _rule_of(own))


def set_customer_rule(
    session: Session,
    *,
    partner_id: int,
    customer_uin: int,
    mode: str,
    rule: Rule | None = None,
) -> CustomerRule:
    """Give the customer its own ``rule`` (mode ``own``), no top-ups (``off``), or its
    partner's default again (``default``)."""
    if mode not in ("own", "off", "default"):
        raise InvalidInput("mode must be own, off or default", param="mode")
    if (mode == "own") != (rule is not None):
        raise InvalidInput("a rule is given with mode own, and only then", param="mode")
    get_customer(session, partner_id, customer_uin)
    row = session.get(CustomerTopUpRule, (partner_id, customer_uin))
    if mode == "default":
        if row is not None:
            session.delete(row)
    else:
        if row is None:
            row = CustomerTopUpRule(partner_id=partner_id, customer_uin=customer_uin)
            session.add(row)
        enabled = mode == "own"
        if row.enabled is not enabled or (enabled and _rule_of(row) != rule):
            row.enabled = enabled
            _fill(row, rule)
            row.updated_at = utcnow()
    session.flush()
    return customer_rule(session, partner_id=partner_id, customer_uin=customer_uin)


@dataclass(frozen=True)
class Month:
    """A customer's top-ups in one calendar month (UTC)."""

    month: str
    topped_up: int
    top_ups: int


def this_month(session: Session, *, partner_id: int, customer_uin: int) -> Month:
    """The customer's top-ups of the current calendar month (UTC)."""
    month = month_of(utcnow())
    found = session.execute(
        select(TopUpMonth.topped_up, TopUpMonth.top_ups).where(
            TopUpMonth.partner_id == partner_id,
            TopUpMonth.customer_uin == customer_uin,
            TopUpMonth.month == month,
        )
    ).one_or_none()
    return Month(month, 0, 0) if found is None else Month(month, found[0], found[1])


@dataclass(frozen=True)
class Applied:
    """The rule that applies to a customer of a usage batch, and where it comes from."""

    rule: Rule
    scope: str


_RULE_COLUMNS = ("below", "utilization_percent", "amount", "monthly_cap", "ceiling")


def rules_for(session: Session, owners: Mapping[int, int]) -> dict[int, Applied]:
    """The rule that applies to each customer of ``owners`` (UIN -> partner) that has one:
    one read whatever the batch's size (the partners' defaults and the customers' own,
    ``UNION ALL``)."""
    if not owners:
        return {}
    partner_ids = sorted(set(owners.values()))
    defaults = select(
        PartnerTopUpRule.partner_id,
        literal(None, BigInteger).label("customer_uin"),
        literal(True).label("enabled"),
        *(getattr(PartnerTopUpRule, name) for name in _RULE_COLUMNS),
    ).where(PartnerTopUpRule.partner_id.in_(partner_ids))
    own = select(
        CustomerTopUpRule.partner_id,
        CustomerTopUpRule.customer_uin,
        CustomerTopUpRule.enabled,
        *(getattr(CustomerTopUpRule, name) for name in _RULE_COLUMNS),
    ).where(
        CustomerTopUpRule.partner_id.in_(partner_ids),
        CustomerTopUpRule.customer_uin.in_(sorted(owners)),
    )
    default_of: dict[int, Rule] = {}
    own_of: dict[int, Rule | None] = {}
    for row in session.execute(union_all(defaults, own)).mappings():
        rule = (
            Rule(
                amount=row["amount"],
                monthly_cap=row["monthly_cap"],
                below=row["below"],
                utilization_percent=row["utilization_percent"],
                ceiling=row["ceiling"],
            )
            if row["enabled"]
            else None
        )
        if row["customer_uin"] is None:
            if rule is not None:  # a default is always on
                default_of[row["partner_id"]] = rule
        elif owners.get(row["customer_uin"]) == row["partner_id"]:
            own_of[row["customer_uin"]] = rule
    found: dict[int, Applied] = {}
    for uin, partner_id in owners.items():
        if uin in own_of:
            mine = own_of[uin]
            if mine is not None:
                found[uin] = Applied(mine, "customer")
        elif partner_id in default_of:
            found[uin] = Applied(default_of[partner_id], "partner_default")
    return found


def lock_pools(session: Session, partner_ids: Sequence[int]) -> None:
    """Lock the pools of ``partner_ids`` (ascending, one statement each, as an UPDATE of
    them would) before a usage batch locks its customers: the batch may then allocate
    from them, and every allocation locks its pool before its customer. PostgreSQL only
    (SQLite has one writer at a time)."""
    for partner_id in sorted(set(partner_ids)):
        session.execute(
            select(Partner.id).where(Partner.id == partner_id).with_for_update(key_share=True)
        )


def month_of(moment: datetime) -> str:
    """The UTC calendar month of ``moment``: ``YYYY-MM``."""
    return moment.strftime("%Y-%m")


_months = TopUpMonth.metadata.tables[TopUpMonth.__tablename__]


def _upsert(session: Session) -> Any:
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(_months)


def _add_to_month(
    session: Session, *, partner_id: int, uin: int, month: str, amount: int, cap: int
) -> int | None:
    """Add a top-up to its month, guarded by the cap: the month's new total, or None when
    it would pass the cap (nothing written)."""
    statement = _upsert(session).values(
        partner_id=partner_id,
        customer_uin=uin,
        month=month,
        topped_up=amount,
        top_ups=1,
        cap=cap,
        refused=None,
        updated_at=utcnow(),
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["partner_id", "customer_uin", "month"],
        set_={
            "topped_up": _months.c.topped_up + excluded.topped_up,
            "top_ups": _months.c.top_ups + 1,
            "cap": excluded.cap,
            "refused": None,
            "updated_at": excluded.updated_at,
        },
        where=_months.c.topped_up + excluded.topped_up <= excluded.cap,
    ).returning(_months.c.topped_up)
    return session.execute(statement).scalar_one_or_none()


def _note_refusal(
    session: Session, *, partner_id: int, uin: int, month: str, reason: str, cap: int
) -> bool:
    """Keep the refusal's reason on its month; whether it is new (to be alarmed): not
    already the month's last refusal since its last top-up."""
    statement = _upsert(session).values(
        partner_id=partner_id,
        customer_uin=uin,
        month=month,
        topped_up=0,
        top_ups=0,
        cap=cap,
        refused=reason,
        updated_at=utcnow(),
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["partner_id", "customer_uin", "month"],
        set_={"refused": excluded.refused, "updated_at": excluded.updated_at},
        where=(_months.c.refused.is_(None)) | (_months.c.refused != excluded.refused),
    ).returning(literal(1))
    return session.execute(statement).scalar_one_or_none() is not None


@dataclass(frozen=True)
class TopUp:
    """A top-up a usage batch triggered: made (``change``), or refused (``refused``, the
    reason, with ``alarmed`` telling whether the partner was alarmed of it now)."""

    partner_id: int
    customer_uin: int
    scope: str
    rule: Rule
    month: str
    change: CreditChange | None = None
    refused: str | None = None
    alarmed: bool = False


def _month_totals(
    session: Session, wanted: Sequence[tuple[int, int]], month: str
) -> dict[tuple[int, int], int]:
    """The month's top-up total of each (partner, UIN), one read per partner."""
    by_partner: dict[int, list[int]] = defaultdict(list)
    for partner_id, uin in wanted:
        by_partner[partner_id].append(uin)
    found: dict[tuple[int, int], int] = {}
    for partner_id, uins in sorted(by_partner.items()):
        for uin, total in session.execute(
            select(TopUpMonth.customer_uin, TopUpMonth.topped_up).where(
                TopUpMonth.partner_id == partner_id,
                TopUpMonth.customer_uin.in_(sorted(uins)),
                TopUpMonth.month == month,
            )
        ).tuples():
            found[(partner_id, uin)] = total
    return found


def after_usage(
    session: Session,
    changed: Sequence[Any],
    raised: Mapping[int, int],
    rules: Mapping[int, Applied],
) -> list[TopUp]:
    """The top-ups a usage batch triggers, made or refused, in ascending (partner, UIN)
    order (which customer's top-up a short pool serves first).

    ``changed``: the batch's customer rows as its consumption left them (UIN, partner,
    total credit, consumed, name), still locked by the batch; ``raised``: each customer's
    net consumption added by the batch (only a rise triggers); ``rules``: what
    :func:`rules_for` read before the batch locked its customers."""
    triggered = sorted(
        (
            row
            for row in changed
            if raised.get(row.uin, 0) > 0
            and row.uin in rules
            and rules[row.uin].rule.holds(total_credit=row.total_credit, consumed=row.consumed)
        ),
        key=lambda row: (row.partner_id, row.uin),
    )
    if not triggered:
        return []
    month = month_of(utcnow())
    totals = _month_totals(session, [(row.partner_id, row.uin) for row in triggered], month)
    remaining = {
        partner_id: session.execute(
            select(Partner.pool_total - Partner.pool_allocated).where(Partner.id == partner_id)
        ).scalar_one()
        for partner_id in sorted({row.partner_id for row in triggered})
    }
    made: list[TopUp] = []
    for row in triggered:
        applied = rules[row.uin]
        rule = applied.rule
        reason: str | None = None
        change: CreditChange | None = None
        if rule.ceiling is not None and row.total_credit + rule.amount > rule.ceiling:
            reason = "ceiling"
        elif totals.get((row.partner_id, row.uin), 0) + rule.amount > rule.monthly_cap:
            reason = "monthly_cap"
        elif rule.amount > remaining[row.partner_id]:
            reason = "pool_short"
        else:
            # Decided above on rows this batch holds locked (its customers; the pool, locked
            # before them; SQLite: its one writer), so the guards below cannot refuse: no
            # savepoint is needed. Should one refuse all the same, the batch fails whole.
            change = allocate_credit(
                session,
                partner_id=row.partner_id,
                customer_uin=row.uin,
                amount=rule.amount,
                origin=records.Origin(
                    operator=OPERATORS[applied.scope],
                    source="rule",
                    remark=rule.describe(total_credit=row.total_credit, consumed=row.consumed),
                ),
            )
            remaining[row.partner_id] -= rule.amount
            month = month_of(change.record.created_at)
            if (
                _add_to_month(
                    session,
                    partner_id=row.partner_id,
                    uin=row.uin,
                    month=month,
                    amount=rule.amount,
                    cap=rule.monthly_cap,
                )
                is None
            ):
                raise _CapReached(f"customer {row.uin}: the monthly cap refused a checked top-up")
        if change is not None:
            made.append(TopUp(row.partner_id, row.uin, applied.scope, rule, month, change=change))
            continue
        assert reason is not None
        alarmed = _note_refusal(
            session,
            partner_id=row.partner_id,
            uin=row.uin,
            month=month,
            reason=reason,
            cap=rule.monthly_cap,
        )
        if alarmed:
            _alarm(session, row, applied, reason=reason, month=month)
        made.append(
            TopUp(
                row.partner_id,
                row.uin,
                applied.scope,
                rule,
                month,
                refused=reason,
                alarmed=alarmed,
            )
        )
    return made


class _CapReached(CreditlineError):
    """The month's guarded total refused a top-up already checked against it: a broken
    lock, never a refusal to keep (the batch fails whole)."""

    code = "monthly_cap"


def _alarm(session: Session, row: Row[Any], applied: Applied, *, reason: str, month: str) -> None:
    """The partner's notice and the ``credit.top_up_refused`` event of a refused top-up."""
    pool = session.execute(
        select(Partner.pool_total - Partner.pool_allocated).where(Partner.id == row.partner_id)
    ).scalar_one()
    topped_up = (
        session.execute(
            select(TopUpMonth.topped_up).where(
                TopUpMonth.partner_id == row.partner_id,
                TopUpMonth.customer_uin == row.uin,
                TopUpMonth.month == month,
            )
        ).scalar_one_or_none()
        or 0
    )
    now = utcnow()
    payload = refused_payload(
        row,
        applied,
        reason=reason,
        month=month,
        topped_up=topped_up,
        pool_remaining=pool,
        at=now,
    )
    enqueue_event(session, partner_id=row.partner_id, type=TOP_UP_REFUSED, payload=payload)
    session.execute(
        insert(PartnerNotice).values(
            partner_id=row.partner_id,
            kind="top_up_refused",
            message=(
                f"Automatic top-up of {money.to_display(applied.rule.amount)} for "
                f"{row.name} ({row.uin}) refused: {REASONS[reason]}."
            ),
            created_at=now,
        )
    )


def refused_payload(
    row: Row[Any],
    applied: Applied,
    *,
    reason: str,
    month: str,
    topped_up: int,
    pool_remaining: int,
    at: datetime,
) -> dict[str, object]:
    """The ``credit.top_up_refused`` event data (amounts as decimal strings)."""
    return {
        "partner_id": row.partner_id,
        "customer_uin": row.uin,
        "customer_name": row.name,
        "reason": reason,
        "rule_scope": applied.scope,
        "rule": applied.rule.as_payload(),
        "amount": money.to_text(applied.rule.amount),
        "total_credit": money.to_text(row.total_credit),
        "consumed": money.to_text(row.consumed),
        "available_credit": money.to_text(row.total_credit - row.consumed),
        "pool_remaining": money.to_text(pool_remaining),
        "month": month,
        "topped_up_this_month": money.to_text(topped_up),
        "occurred_at": at.isoformat(),
    }

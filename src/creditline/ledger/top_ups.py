"""Automatic top-ups (issue 16.4): "when a customer's available credit falls below X (or
its utilisation reaches Y %), allocate Z from the pool", at most a cap a calendar month
and never past a ceiling of total credit.

- A rule is the customer's own, or else its partner's default; a customer may also be set
  "off" (no top-ups whatever the default). Rules change through the ORM, so the audit log
  sees them (``creditline.audit``).
- Only usage triggers a top-up: a usage batch that raised a customer's consumption and
  left the rule's condition holding makes **one** top-up of that customer, in the batch's
  transaction, after the batch's own threshold alarms. The top-up is an ordinary
  allocation: it leaves exactly what :func:`creditline.ledger.credit.allocate_credit`
  would (same guards, same record with source ``rule`` and the rule named as operator,
  same event, same alarm rule), so it cannot make another (an allocation never triggers
  one) and cannot loop. Withdrawals never trigger one: a withdrawal is the partner taking
  credit back on purpose, and refilling it from the same pool would undo it.
- Checked in this order, the first that fails refuses the top-up: the ceiling (total
  credit after it above the ceiling), the monthly cap (the month's top-ups after it above
  the cap), the pool (less remaining than the amount). A batch's top-ups are decided in
  ascending (partner, UIN) order, each against what the ones before it left of the pool,
  so a short pool serves the lowest UINs first. A refused top-up changes nothing and
  alarms the partner (``credit.top_up_refused``: a notice in its message centre and an
  outbox event for its webhooks and email recipients), once per customer, month and reason
  until a top-up of that customer succeeds again.
- Set-based (issue 16.5): a batch's top-ups, however many, are made by one statement per
  kind of write (:func:`after_usage`), not one allocation each; a test holds what they
  leave equal to one allocation after another (``tests/ledger/test_top_ups_set_based.py``).
- The month is the UTC calendar month of the top-up's record, so ``verify`` can recompute
  each month's total from the records whatever time zone a partner later chooses.
- The cap holds under concurrency: a batch that may top up locks its partners' pool rows
  before its customers' (:func:`lock_pools`, the lock order every allocation follows; both
  once the batch's events are in), so the ceiling, the month's total and the pool are
  checked on rows it holds, before anything is written; the guarded statements stay the
  last word (the pools' ``WHERE remaining >= amount``, the months' ``... ON CONFLICT DO
  UPDATE ... WHERE topped_up + amount <= cap``) and fail the batch should one ever refuse
  a checked top-up.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    FromClause,
    Row,
    String,
    and_,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditline import money
from creditline.clock import utcnow
from creditline.db import arrays, compiled
from creditline.db.tables import (
    AllocationRecord,
    Customer,
    CustomerTopUpRule,
    Partner,
    PartnerNotice,
    PartnerTopUpRule,
    TopUpMonth,
)
from creditline.errors import CreditlineError, InvalidAmount, InvalidInput
from creditline.ledger import credit, records
from creditline.ledger.accounts import get_customer, get_partner
from creditline.ledger.alarms import evaluate_many
from creditline.ledger.changes import RETURNED
from creditline.ledger.credit import CreditChange
from creditline.ledger.outbox import ALLOCATION_RECORDED, INSERT_EVENTS, TOP_UP_REFUSED
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


def _rules_query(partners: Any, customers: Any) -> Any:
    """The partners' default rules and the customers' own, ``UNION ALL``: ``partners``
    and ``customers`` the conditions on their ``partner_id`` and ``customer_uin``."""
    defaults = select(
        PartnerTopUpRule.partner_id,
        literal(None, BigInteger).label("customer_uin"),
        literal(True).label("enabled"),
        *(getattr(PartnerTopUpRule, name) for name in _RULE_COLUMNS),
    ).where(partners(PartnerTopUpRule.partner_id))
    own = select(
        CustomerTopUpRule.partner_id,
        CustomerTopUpRule.customer_uin,
        CustomerTopUpRule.enabled,
        *(getattr(CustomerTopUpRule, name) for name in _RULE_COLUMNS),
    ).where(partners(CustomerTopUpRule.partner_id), customers(CustomerTopUpRule.customer_uin))
    return union_all(defaults, own)


#: PostgreSQL: the rules of a batch's partners and customers, each list one array (one
#: statement text whatever the batch: parsed and planned once, where IN lists of hundreds
#: of UINs were rendered, parsed and planned anew for every batch).
_RULES_PG = _rules_query(
    lambda c: c == any_(arrays.param("rule_partner_ids")),
    lambda c: c == any_(arrays.param("rule_uins")),
)


def rules_for(session: Session, owners: Mapping[int, int]) -> dict[int, Applied]:
    """The rule that applies to each customer of ``owners`` (UIN -> partner) that has one:
    one read whatever the batch's size (the partners' defaults and the customers' own,
    ``UNION ALL``)."""
    if not owners:
        return {}
    partner_ids = sorted(set(owners.values()))
    if session.get_bind().dialect.name == "postgresql":
        query = session.execute(
            _RULES_PG,
            {
                "rule_partner_ids": arrays.ints(partner_ids),
                "rule_uins": arrays.ints(sorted(owners)),
            },
        )
    else:
        query = session.execute(
            _rules_query(lambda c: c.in_(partner_ids), lambda c: c.in_(sorted(owners)))
        )
    default_of: dict[int, Rule] = {}
    own_of: dict[int, Rule | None] = {}
    for row in query.mappings():
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
    # One Applied per partner default, shared by its customers (it is immutable).
    by_default = {p: Applied(rule, "partner_default") for p, rule in default_of.items()}
    found: dict[int, Applied] = {}
    for uin, partner_id in owners.items():
        if uin in own_of:
            mine = own_of[uin]
            if mine is not None:
                found[uin] = Applied(mine, "customer")
        elif partner_id in by_default:
            found[uin] = by_default[partner_id]
    return found


_partners = Partner.metadata.tables[Partner.__tablename__]
_customers = Customer.metadata.tables[Customer.__tablename__]
_months = TopUpMonth.metadata.tables[TopUpMonth.__tablename__]
_notices = PartnerNotice.metadata.tables[PartnerNotice.__tablename__]

#: PostgreSQL: one partner's pool locked (``FOR NO KEY UPDATE``, the lock an UPDATE of it
#: takes).
_LOCK_POOL = (
    select(_partners.c.id)
    .where(_partners.c.id == bindparam("partner_id", type_=BigInteger))
    .with_for_update(key_share=True)
)


def lock_pools(session: Session, partner_ids: Sequence[int]) -> None:
    """Lock the pools of ``partner_ids`` (ascending, one statement each, as an UPDATE of
    them would) before a usage batch locks its customers: the batch may then allocate
    from them, and every allocation locks its pool before its customer. Their rows are
    not read here (a pipelined transaction sends these statements with the next that has
    rows to read): :func:`after_usage` reads the remaining of those a top-up draws on,
    once they are locked, when nothing but its own transaction can change them.
    PostgreSQL only (SQLite has one writer at a time)."""
    compiled.execute_many(
        session, _LOCK_POOL, [{"partner_id": partner_id} for partner_id in sorted(set(partner_ids))]
    )


def month_of(moment: datetime) -> str:
    """The UTC calendar month of ``moment``: ``YYYY-MM``."""
    return moment.strftime("%Y-%m")


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


def _rows(dialect: str, name: str, columns: Sequence[str]) -> FromClause:
    """A batch's rows as a table ``name`` of integer ``columns``, for one statement to
    join: on PostgreSQL ``unnest`` of one array per column (parameters ``<name>_<column>``),
    on SQLite ``json_each`` of one JSON array of rows (parameter ``<name>_rows``). Either
    way one statement text whatever the number of rows, compiled (and on PostgreSQL
    planned) once; a ``VALUES`` list would be rendered anew for each number of rows, and
    SQLAlchemy cannot cache a statement holding one (8 ms to compile with 60 rows)."""
    if dialect == "postgresql":
        arrays = (bindparam(f"{name}_{c}", type_=postgresql.ARRAY(BigInteger)) for c in columns)
        return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)
    each = func.json_each(bindparam(f"{name}_rows", type_=String)).table_valued("value")
    return select(
        *(
            func.json_extract(each.c.value, f"$[{n}]", type_=BigInteger).label(column)
            for n, column in enumerate(columns)
        )
    ).subquery(name)


def _rows_params(
    dialect: str, name: str, columns: Sequence[str], rows: Sequence[Sequence[int | None]]
) -> dict[str, Any]:
    """The parameters of :func:`_rows` for ``rows`` (each a value per column)."""
    if dialect == "postgresql":
        return {f"{name}_{c}": [row[n] for row in rows] for n, c in enumerate(columns)}
    return {f"{name}_rows": json.dumps([list(row) for row in rows])}


_POOL_COLUMNS = ("partner_id", "amount")
_CREDIT_COLUMNS = ("partner_id", "uin", "amount", "ceiling")


def _pool_update(dialect: str) -> Any:
    """Every pool gives its batch's top-ups by one statement, each guarded by its
    remaining (as an allocation's pool is, for the partner's total of the batch)."""
    given = _rows(dialect, "pool_top_ups", _POOL_COLUMNS)
    return (
        update(_partners)
        .where(
            _partners.c.id == given.c.partner_id,
            _partners.c.pool_total - _partners.c.pool_allocated >= given.c.amount,
        )
        .values(pool_allocated=_partners.c.pool_allocated + given.c.amount)
        .returning(*_partners.c)
        # The changes are the operation's own (TopUp.change.changes), as an allocation's:
        # the audit log reads nothing for them.
        .execution_options(**RETURNED)
    )


def _credit_update(dialect: str) -> Any:
    """Every topped-up customer's credit raised by one statement; the ceiling checked again
    in it (a customer it refuses fails the batch)."""
    given = _rows(dialect, "credit_top_ups", _CREDIT_COLUMNS)
    return (
        update(_customers)
        .where(
            _customers.c.partner_id == given.c.partner_id,
            _customers.c.uin == given.c.uin,
            or_(
                given.c.ceiling.is_(None),
                _customers.c.total_credit + given.c.amount <= given.c.ceiling,
            ),
        )
        .values(total_credit=_customers.c.total_credit + given.c.amount)
        .returning(*_customers.c)
        .execution_options(**RETURNED)
    )


def _month_upsert(dialect: str) -> Any:
    """The months of a batch's top-ups, made and refused, by one upsert (an executemany,
    one row per customer): a made top-up adds its amount and one top-up, guarded by the
    cap (``topped_up + amount <= cap``), and clears the last refusal; a refused one
    (``top_ups`` 0, ``topped_up`` 0) keeps its reason, only when it is not already the
    month's last refusal. Returns the rows written: a made top-up missing from them broke
    its cap; a refusal among them is new (the partner is alarmed of it)."""
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(_months).values(
        {
            name: bindparam(f"month_{name}", type_=_months.c[name].type)
            for name in (
                "partner_id",
                "customer_uin",
                "month",
                "topped_up",
                "top_ups",
                "cap",
                "refused",
                "updated_at",
            )
        }
    )
    excluded = statement.excluded
    made = excluded.top_ups > 0
    return statement.on_conflict_do_update(
        index_elements=["partner_id", "customer_uin", "month"],
        set_={
            "topped_up": _months.c.topped_up + excluded.topped_up,
            "top_ups": _months.c.top_ups + excluded.top_ups,
            "cap": case((made, excluded.cap), else_=_months.c.cap),
            "refused": excluded.refused,
            "updated_at": excluded.updated_at,
        },
        where=or_(
            and_(made, _months.c.topped_up + excluded.topped_up <= excluded.cap),
            and_(
                ~made,
                or_(_months.c.refused.is_(None), _months.c.refused != excluded.refused),
            ),
        ),
    ).returning(_months.c.partner_id, _months.c.customer_uin)


_INSERT_NOTICE = insert(_notices).values(
    {
        name: bindparam(f"notice_{name}", type_=_notices.c[name].type)
        for name in ("partner_id", "kind", "message", "created_at")
    }
)
_STATEMENTS = {
    dialect: {
        "pool": _pool_update(dialect),
        "credit": _credit_update(dialect),
        "month": _month_upsert(dialect),
    }
    for dialect in ("postgresql", "sqlite")
}


def _months_and_pools(
    session: Session, wanted: Sequence[tuple[int, int]], month: str
) -> tuple[dict[tuple[int, int], int], dict[int, int]]:
    """The month's top-up total of each (partner, UIN) of ``wanted`` that has one, and the
    remaining of their partners' pools, read under the pools' locks (:func:`lock_pools`;
    SQLite: its one writer): one read, ``UNION ALL`` (a pool's row has no UIN)."""
    partner_ids = sorted({partner_id for partner_id, _ in wanted})
    months = select(_months.c.partner_id, _months.c.customer_uin, _months.c.topped_up).where(
        _months.c.partner_id.in_(partner_ids),
        _months.c.customer_uin.in_(sorted({uin for _, uin in wanted})),
        _months.c.month == month,
    )
    pools = select(
        _partners.c.id,
        literal(None, BigInteger),
        _partners.c.pool_total - _partners.c.pool_allocated,
    ).where(_partners.c.id.in_(partner_ids))
    pairs = set(wanted)
    totals: dict[tuple[int, int], int] = {}
    remaining: dict[int, int] = {}
    for partner_id, uin, amount in session.execute(union_all(months, pools)).tuples():
        if uin is None:
            remaining[partner_id] = amount
        elif (partner_id, uin) in pairs:
            totals[(partner_id, uin)] = amount
    return totals, remaining


@dataclass(frozen=True)
class _Decided:
    """One triggered customer's top-up as decided: ``reason`` None: made."""

    row: Any
    applied: Applied
    reason: str | None
    #: The pool's remaining once the batch's top-ups decided before this one are made.
    pool_remaining: int
    #: The customer's month total before the batch.
    topped_up: int


def _decide(
    triggered: Sequence[Any],
    rules: Mapping[int, Applied],
    totals: Mapping[tuple[int, int], int],
    remaining: Mapping[int, int],
) -> list[_Decided]:
    """Each triggered customer's top-up, in the order given, against what the ones before
    it left of their pool: the ceiling, then the monthly cap, then the pool."""
    left = dict(remaining)
    decided: list[_Decided] = []
    for row in triggered:
        applied = rules[row.uin]
        rule = applied.rule
        topped_up = totals.get((row.partner_id, row.uin), 0)
        reason: str | None = None
        if rule.ceiling is not None and row.total_credit + rule.amount > rule.ceiling:
            reason = "ceiling"
        elif topped_up + rule.amount > rule.monthly_cap:
            reason = "monthly_cap"
        elif rule.amount > left[row.partner_id]:
            reason = "pool_short"
        else:
            left[row.partner_id] -= rule.amount
        decided.append(_Decided(row, applied, reason, left[row.partner_id], topped_up))
    return decided


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
    :func:`rules_for` read before the batch locked its customers (and, on PostgreSQL, the
    pools of their partners: :func:`lock_pools`). Only a batch that triggers a top-up
    reads the pools' remaining, with its customers' month totals.

    Set-based: whatever the number of top-ups, one read of the months and pools, then one
    statement for each kind of write — the pools' guarded UPDATE, the customers'
    UPDATE, the records' INSERT, the months' guarded upsert, the outbox events' INSERT,
    the refusals' notices, the fired thresholds (:func:`creditline.ledger.alarms.
    evaluate_many`) — leaving exactly what one allocation after another
    (:func:`creditline.ledger.credit.allocate_credit`) leaves: the same records, events,
    notices, months and fired thresholds, with their ids in the same order."""
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
    dialect = session.get_bind().dialect.name
    statements = _STATEMENTS["postgresql" if dialect == "postgresql" else "sqlite"]
    now = utcnow()
    month = month_of(now)
    totals, remaining = _months_and_pools(
        session, [(row.partner_id, row.uin) for row in triggered], month
    )
    decided = _decide(triggered, rules, totals, remaining)
    made = [d for d in decided if d.reason is None]
    changes = _make(session, statements, made, now) if made else {}
    written = _add_to_months(session, statements, decided, month, now)
    refused = [d for d in decided if d.reason is not None]
    alarmed = {d.row.uin for d in refused if (d.row.partner_id, d.row.uin) in written}
    _write_events(session, decided, changes, alarmed, month=month, at=now)
    return [
        TopUp(
            d.row.partner_id,
            d.row.uin,
            d.applied.scope,
            d.applied.rule,
            month,
            change=changes.get(d.row.uin),
            refused=d.reason,
            alarmed=d.row.uin in alarmed,
        )
        for d in decided
    ]


class _Refused(CreditlineError):
    """A guarded statement refused a top-up already decided on rows this batch holds
    locked: a broken lock, never a refusal to keep (the batch fails whole)."""

    code = "top_up_conflict"
    kind = "conflict"


def _make(
    session: Session, statements: Mapping[str, Any], made: Sequence[_Decided], now: datetime
) -> dict[int, CreditChange]:
    """Make the decided top-ups (each customer's one, in order): the pools, the
    customers, the records, and the alarm rule applied to the customers; each one's
    change, by UIN, as :func:`creditline.ledger.credit.allocate_credit` returns it."""
    dialect = session.get_bind().dialect.name
    given: dict[int, int] = defaultdict(int)
    for d in made:
        given[d.row.partner_id] += d.applied.rule.amount
    pools_after = {
        row["id"]: dict(row)
        for row in session.execute(
            statements["pool"],
            _rows_params(dialect, "pool_top_ups", _POOL_COLUMNS, sorted(given.items())),
        ).mappings()
    }
    credit_rows = [
        (d.row.partner_id, d.row.uin, d.applied.rule.amount, d.applied.rule.ceiling) for d in made
    ]
    afters = {
        row["uin"]: dict(row)
        for row in session.execute(
            statements["credit"],
            _rows_params(dialect, "credit_top_ups", _CREDIT_COLUMNS, credit_rows),
        ).mappings()
    }
    if len(pools_after) != len(given) or len(afters) != len(made):
        # Decided on rows this batch holds locked (its customers; the pools, locked
        # before them; SQLite: its one writer): the guards cannot refuse. Should one
        # refuse all the same, the batch fails whole.
        raise _Refused("a guarded statement refused an automatic top-up already checked")
    values: list[dict[str, Any]] = []
    for d in made:
        rule = d.applied.rule
        origin = credit.check(
            rule.amount,
            records.Origin(
                operator=OPERATORS[d.applied.scope],
                source="rule",
                remark=rule.describe(total_credit=d.row.total_credit, consumed=d.row.consumed),
            ),
        )
        values.append(
            credit.record_values_of(
                partner_id=d.row.partner_id,
                customer_uin=d.row.uin,
                amount=rule.amount,
                after=afters[d.row.uin],
                origin=origin,
                created_at=now,
            )
        )
    inserted = session.execute(
        credit.RECORD_INSERTS["postgresql" if dialect == "postgresql" else "sqlite"],
        [credit.record_params(v) for v in values],
    )
    ids = {uin: record_id for record_id, uin in inserted.tuples().all()}
    made_records = [AllocationRecord(id=ids[v["customer_uin"]], **v) for v in values]
    alarms = {
        alarm.customer_uin: alarm
        for alarm in evaluate_many(
            session,
            [
                (
                    credit.credit_of(d.row.partner_id, afters[d.row.uin]),
                    pools_after[d.row.partner_id]["thresholds"],
                    credit.kind_of(d.applied.rule.amount),
                )
                for d in made
            ],
        )
    }
    # Each pool as its top-up left it: the pool after the batch's, less those after it.
    later: dict[int, int] = defaultdict(int)
    changes: dict[int, CreditChange] = {}
    for d, record in reversed(list(zip(made, made_records, strict=True))):
        pool_after = pools_after[d.row.partner_id]
        pool_after = {
            **pool_after,
            "pool_allocated": pool_after["pool_allocated"] - later[d.row.partner_id],
        }
        later[d.row.partner_id] += d.applied.rule.amount
        after = afters[d.row.uin]
        changes[d.row.uin] = credit.change_of(
            partner_id=d.row.partner_id,
            amount=d.applied.rule.amount,
            record=record,
            pool_after=pool_after,
            after=after,
            customer=credit.customer_object(session, after),
            alarm=alarms.get(d.row.uin),
        )
    return changes


def _add_to_months(
    session: Session,
    statements: Mapping[str, Any],
    decided: Sequence[_Decided],
    month: str,
    now: datetime,
) -> set[tuple[int, int]]:
    """Each decided top-up added to its customer's month (:func:`_month_upsert`): the
    (partner, UIN) of the rows written. Fails the batch should the cap refuse a made one."""
    params = [
        {
            "month_partner_id": d.row.partner_id,
            "month_customer_uin": d.row.uin,
            "month_month": month,
            "month_topped_up": d.applied.rule.amount if d.reason is None else 0,
            "month_top_ups": 1 if d.reason is None else 0,
            "month_cap": d.applied.rule.monthly_cap,
            "month_refused": d.reason,
            "month_updated_at": now,
        }
        for d in decided
    ]
    written = set(session.execute(statements["month"], params).tuples().all())
    broken = [
        d.row.uin
        for d in decided
        if d.reason is None and (d.row.partner_id, d.row.uin) not in written
    ]
    if broken:
        raise _Refused(f"customer {broken[0]}: the monthly cap refused a checked top-up")
    return written


def _write_events(
    session: Session,
    decided: Sequence[_Decided],
    changes: Mapping[int, CreditChange],
    alarmed: set[int],
    *,
    month: str,
    at: datetime,
) -> None:
    """The outbox events of the batch's top-ups, in (partner, UIN) order as one allocation
    after another writes them: each made top-up's ``credit.allocation_recorded``, each
    newly alarmed refusal's ``credit.top_up_refused``; and each alarmed refusal's notice
    in the partner's message centre. One INSERT of each, whatever their number."""
    events: list[dict[str, Any]] = []
    notices: list[dict[str, Any]] = []
    for d in decided:
        row, rule = d.row, d.applied.rule
        change = changes.get(row.uin)
        if change is not None:
            event_type, payload = ALLOCATION_RECORDED, records.as_payload(change.record)
        elif row.uin in alarmed:
            assert d.reason is not None
            event_type = TOP_UP_REFUSED
            payload = refused_payload(
                row,
                d.applied,
                reason=d.reason,
                month=month,
                topped_up=d.topped_up,
                pool_remaining=d.pool_remaining,
                at=at,
            )
            notices.append(
                {
                    "notice_partner_id": row.partner_id,
                    "notice_kind": "top_up_refused",
                    "notice_message": (
                        f"Automatic top-up of {money.to_display(rule.amount)} for "
                        f"{row.name} ({row.uin}) refused: {REASONS[d.reason]}."
                    ),
                    "notice_created_at": at,
                }
            )
        else:
            continue
        events.append(
            {
                "outbox_partner_id": row.partner_id,
                "outbox_type": event_type,
                "outbox_payload": payload,
                "outbox_created_at": at,
                "outbox_allocation": event_type == ALLOCATION_RECORDED,
            }
        )
    if events:
        session.execute(INSERT_EVENTS, events)
    if notices:
        session.execute(_INSERT_NOTICE, notices)


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

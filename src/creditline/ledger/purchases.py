"""The purchase check: may a customer make a new purchase, by its partner's policy?

Each customer has a purchase policy — its own, or else its partner's default, or else
``notify_only``:

- ``notify_only``: every purchase is allowed (the partner is only alarmed as credit runs
  out: the vendor's behaviour when a partner has chosen nothing);
- ``block_at_limit``: a purchase is refused when the customer's available credit after it
  would be below ``-tolerance`` (tolerance 0: below zero); exactly at the limit is allowed;
- ``block_all``: every purchase is refused (a manual hold, e.g. while a dispute is settled).

The tolerance (cents, >= 0) is the partner's, set with its default; a customer may have
its own. Every decision is kept (:class:`Decision`), as it was made. A check changes no
money: it reads the customer's credit, decides, and appends its decision — one statement
to read, one to append, without the ORM's unit of work (it is on the vendor's checkout
path); on PostgreSQL's fast path all three are one ``INSERT … SELECT``
(:func:`check_insert`, the rule in SQL: :func:`decide_sql`). Policies are set through the
ORM, so the audit log sees them change.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Insert,
    Select,
    String,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from creditline import money
from creditline.clock import utcnow
from creditline.db import json_sql
from creditline.db.batched import Batch
from creditline.db.tables import (
    PURCHASE_POLICIES,
    Base,
    Customer,
    CustomerPurchasePolicy,
    PartnerPurchasePolicy,
    PurchaseCheck,
)
from creditline.errors import InvalidAmount, InvalidInput, NotFound
from creditline.ledger import reports
from creditline.ledger.accounts import _text, get_customer, get_partner
from creditline.ledger.credit import Requirement, Unconfirmed
from creditline.limits import check_page_size

DEFAULT_POLICY = "notify_only"
ANSWERS = ("allowed", "refused")
#: The longest product name, as usage events keep it.
MAX_PRODUCT = 100
#: The longest requester's name a decision keeps (longer ones are cut).
MAX_REQUESTED_BY = 200
#: Why a purchase was allowed or refused.
REASONS = {
    "not_restricted": "the policy is notify_only: purchases are never restricted",
    "within_limit": "available credit after the purchase stays at or above the limit",
    "below_limit": "available credit after the purchase would be below the limit",
    "on_hold": "the policy is block_all: new purchases are on hold",
}


def check_policy(policy: object, *, param: str = "policy") -> str:
    """``policy`` if it is one of :data:`PURCHASE_POLICIES`; else refused by name."""
    if not isinstance(policy, str) or policy not in PURCHASE_POLICIES:
        raise InvalidInput(
            f"{policy!r} is not a purchase policy; use one of {', '.join(PURCHASE_POLICIES)}",
            param=param,
        )
    return policy


def check_tolerance(tolerance: int) -> int:
    """A tolerance: whole cents, 0 up to the largest amount."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int):
        raise InvalidAmount(f"{tolerance!r} is not an amount", param="tolerance")
    if tolerance < 0:
        raise InvalidAmount(
            f"the tolerance must not be negative, not {money.to_display(tolerance)}",
            param="tolerance",
        )
    if tolerance > money.MAX_CENTS:
        raise InvalidAmount(
            f"the tolerance is beyond the limit of {money.to_display(money.MAX_CENTS)}",
            param="tolerance",
        )
    return tolerance


# --- Policies --------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerDefault:
    """A partner's default policy and tolerance."""

    partner_id: int
    policy: str
    tolerance: int


@dataclass(frozen=True)
class CustomerPolicy:
    """The policy and tolerance that apply to one customer, and whose each is."""

    customer_uin: int
    policy: str
    tolerance: int
    #: The customer has its own policy (else the partner's default applies).
    own: bool
    #: The customer has its own tolerance (else the partner's applies).
    own_tolerance: bool


def partner_default(session: Session, partner_id: int) -> PartnerDefault:
    """The partner's default (``notify_only``, tolerance 0, until it sets one)."""
    get_partner(session, partner_id)
    row = session.get(PartnerPurchasePolicy, partner_id, populate_existing=True)
    if row is None:
        return PartnerDefault(partner_id, DEFAULT_POLICY, 0)
    return PartnerDefault(partner_id, row.policy, row.tolerance)


def set_partner_default(
    session: Session, *, partner_id: int, policy: str, tolerance: int = 0
) -> PartnerDefault:
    """Set the partner's default policy and tolerance (for every customer without its own
    policy; the tolerance also for those with their own policy but not their own
    tolerance)."""
    check_policy(policy)
    check_tolerance(tolerance)
    get_partner(session, partner_id)
    row = session.get(PartnerPurchasePolicy, partner_id)
    if row is None:
        row = PartnerPurchasePolicy(partner_id=partner_id, policy=policy, tolerance=tolerance)
        row.updated_at = utcnow()
        session.add(row)
    elif (row.policy, row.tolerance) != (policy, tolerance):
        row.policy, row.tolerance, row.updated_at = policy, tolerance, utcnow()
    session.flush()
    return PartnerDefault(partner_id, policy, tolerance)


def _applied(
    uin: int, default: PartnerDefault, own: CustomerPurchasePolicy | None
) -> CustomerPolicy:
    if own is None:
        return CustomerPolicy(uin, default.policy, default.tolerance, False, False)
    tolerance = default.tolerance if own.tolerance is None else own.tolerance
    return CustomerPolicy(uin, own.policy, tolerance, True, own.tolerance is not None)


def customer_policy(session: Session, partner_id: int | None, uin: int) -> CustomerPolicy:
    """The policy that applies to the customer ``uin`` of ``partner_id`` (another
    partner's customer is :class:`NotFound`, as a missing one)."""
    customer = get_customer(session, partner_id, uin)
    own = session.get(CustomerPurchasePolicy, (customer.partner_id, uin), populate_existing=True)
    return _applied(uin, partner_default(session, customer.partner_id), own)


def set_customer_policy(
    session: Session,
    *,
    partner_id: int,
    uin: int,
    policy: str | None,
    tolerance: int | None = None,
) -> CustomerPolicy:
    """Give the customer its own policy (and, optionally, its own tolerance), or with
    ``policy`` None put it back on the partner's default."""
    get_customer(session, partner_id, uin)
    if policy is None and tolerance is not None:
        raise InvalidInput(
            "a tolerance of its own needs a policy of its own; give a policy, or no tolerance "
            "to return to the default",
            param="tolerance",
        )
    if policy is not None:
        check_policy(policy)
    if tolerance is not None:
        check_tolerance(tolerance)
    row = session.get(CustomerPurchasePolicy, (partner_id, uin))
    if policy is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        row = CustomerPurchasePolicy(
            customer_uin=uin, partner_id=partner_id, policy=policy, tolerance=tolerance
        )
        row.updated_at = utcnow()
        session.add(row)
    elif (row.policy, row.tolerance) != (policy, tolerance):
        row.policy, row.tolerance, row.updated_at = policy, tolerance, utcnow()
    session.flush()
    return customer_policy(session, partner_id, uin)


def policies_of(
    session: Session, partner_id: int, uins: Sequence[int]
) -> dict[int, CustomerPolicy]:
    """The policies that apply to some of the partner's customers (a page of them), in
    two statements."""
    default = partner_default(session, partner_id)
    own = {
        row.customer_uin: row
        for row in session.execute(
            select(CustomerPurchasePolicy).where(
                CustomerPurchasePolicy.partner_id == partner_id,
                CustomerPurchasePolicy.customer_uin.in_(list(uins)),
            )
        ).scalars()
    }
    return {uin: _applied(uin, default, own.get(uin)) for uin in uins}


# --- The check -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What a policy says of one purchase."""

    answer: str  # allowed, refused
    reason: str  # a key of REASONS


def decide(*, policy: str, tolerance: int, available: int, amount: int) -> Verdict:
    """The rule: ``notify_only`` allows everything, ``block_all`` refuses everything, and
    ``block_at_limit`` refuses a purchase that would leave available credit below
    ``-tolerance`` (at the limit exactly is allowed)."""
    if policy == "notify_only":
        return Verdict("allowed", "not_restricted")
    if policy == "block_all":
        return Verdict("refused", "on_hold")
    if policy == "block_at_limit":
        if available - amount >= -tolerance:
            return Verdict("allowed", "within_limit")
        return Verdict("refused", "below_limit")
    raise ValueError(f"unknown purchase policy {policy!r}")


def decide_sql(
    *, policy: Any, tolerance: Any, available: Any, amount: Any
) -> tuple[ColumnElement[str], ColumnElement[str]]:
    """:func:`decide` in SQL (PostgreSQL's one-statement check, creditline.fast_purchase):
    the answer and the reason, both NULL for an unknown policy (which the decision's
    NOT NULL columns then refuse). tests/ledger/test_purchase_rule_sql.py holds the two
    equal."""
    within = available - amount >= -tolerance
    answer = case(
        (policy == "notify_only", "allowed"),
        (policy == "block_all", "refused"),
        (policy == "block_at_limit", case((within, "allowed"), else_="refused")),
    )
    reason = case(
        (policy == "notify_only", "not_restricted"),
        (policy == "block_all", "on_hold"),
        (policy == "block_at_limit", case((within, "within_limit"), else_="below_limit")),
    )
    return answer, reason


@dataclass(frozen=True)
class Decision:
    """One kept decision of the purchase check."""

    id: int
    partner_id: int
    customer_uin: int
    amount: int
    product: str
    policy: str
    tolerance: int
    #: Available credit when the check was made, before the purchase.
    available: int
    answer: str
    reason: str
    requested_by: str
    decided_at: datetime

    @property
    def available_after(self) -> int:
        """Available credit were the purchase made."""
        return self.available - self.amount

    @property
    def allowed(self) -> bool:
        return self.answer == "allowed"

    @property
    def message(self) -> str:
        """The decision in a sentence, amounts as people read them."""
        verb = "allowed" if self.allowed else "refused"
        if self.reason == "below_limit" or self.reason == "within_limit":
            relation = "below" if self.reason == "below_limit" else "not below"
            return (
                f"{verb}: available credit after the purchase would be "
                f"{money.to_display(self.available_after)}, {relation} the limit of "
                f"{money.to_display(-self.tolerance)} (available "
                f"{money.to_display(self.available)}, purchase {money.to_display(self.amount)}, "
                f"tolerance {money.to_display(self.tolerance)})"
            )
        return f"{verb}: {REASONS[self.reason]}"


def message_sql(decision: Any) -> ColumnElement[str]:
    """:attr:`Decision.message` in SQL, from ``decision``: the columns of a kept decision
    (e.g. the CTE of the INSERT that returns it). The verb is the answer itself."""
    display = json_sql.money_display
    text = functools.partial(literal, type_=String)
    after = decision.available - decision.amount
    limit = case((decision.reason == "below_limit", "below"), else_="not below")
    measured = (
        decision.answer
        + text(": available credit after the purchase would be ")
        + display(after)
        + text(", ")
        + limit
        + text(" the limit of ")
        + display(-decision.tolerance)
        + text(" (available ")
        + display(decision.available)
        + text(", purchase ")
        + display(decision.amount)
        + text(", tolerance ")
        + display(decision.tolerance)
        + text(")")
    )
    why = case(*((decision.reason == reason, text(said)) for reason, said in REASONS.items()))
    return case(
        (or_(decision.reason == "below_limit", decision.reason == "within_limit"), measured),
        else_=decision.answer + text(": ") + why,
    )


_TABLES = Base.metadata.tables
_CUSTOMERS = _TABLES[Customer.__tablename__]
_OWN = _TABLES[CustomerPurchasePolicy.__tablename__]
_DEFAULTS = _TABLES[PartnerPurchasePolicy.__tablename__]
_CHECKS = _TABLES[PurchaseCheck.__tablename__]
_LOOKUPS: dict[tuple[bool, int], Select[Any]] = {}
#: The decision's one INSERT, its id returned.
INSERT = insert(_CHECKS).returning(_CHECKS.c.id)


def _lookup(scoped: bool, require: Requirement | None) -> Select[Any]:
    """The customer's credit and the policy and tolerance that apply to it in one
    statement (built once per shape), with the caller's requirement (a live API key) as a
    column of its own. The policy: the customer's own, else the partner's default, else
    :data:`DEFAULT_POLICY`; the tolerance: the customer's own, else the partner's, else 0
    (as :func:`_applied` says of them). Unscoped (the platform), by the UIN alone: a UIN
    is one customer's (each customer takes a new account's)."""
    key = (scoped, 0 if require is None else id(require.condition))
    statement = _LOOKUPS.get(key)
    if statement is None:
        columns: list[Any] = [
            _CUSTOMERS.c.partner_id,
            _CUSTOMERS.c.total_credit,
            _CUSTOMERS.c.consumed,
            func.coalesce(_OWN.c.policy, _DEFAULTS.c.policy, DEFAULT_POLICY).label("policy"),
            func.coalesce(_OWN.c.tolerance, _DEFAULTS.c.tolerance, 0).label("tolerance"),
        ]
        if require is not None:
            columns.append(require.condition.label("confirmed"))
        statement = (
            select(*columns)
            .select_from(
                _CUSTOMERS.outerjoin(
                    _OWN,
                    (_OWN.c.partner_id == _CUSTOMERS.c.partner_id)
                    & (_OWN.c.customer_uin == _CUSTOMERS.c.uin),
                ).outerjoin(_DEFAULTS, _DEFAULTS.c.partner_id == _CUSTOMERS.c.partner_id)
            )
            .where(_CUSTOMERS.c.uin == bindparam("check_uin", type_=BigInteger))
        )
        if scoped:
            statement = statement.where(
                _CUSTOMERS.c.partner_id == bindparam("check_partner_id", type_=BigInteger)
            )
        _LOOKUPS[key] = statement
    return statement


def check_insert(*, scoped: bool, require: Requirement, items: Batch | None = None) -> Insert:
    """The whole check as one ``INSERT … SELECT`` (PostgreSQL's one-statement check,
    creditline.fast_purchase): the customer and its policy looked up (:func:`_lookup`,
    ``scoped``: by ``check_partner_id`` too), the rule applied (:func:`decide_sql`), the
    decision appended only where ``require`` holds, and returned whole. No row: no such
    customer, or the requirement does not hold (nothing kept). Parameters, beside the
    requirement's: ``check_uin``, ``check_partner_id`` (scoped), ``check_amount``,
    ``check_product``, ``check_requested_by``, ``check_decided_at`` — checked as
    :func:`check` checks them (:func:`checked_purchase`).

    ``items``: the same for several checks at once, of distinct customers, each read from
    its row of ``items.asked`` (db/batched.py)."""
    lookup = _lookup(scoped, require)
    if items is not None:
        lookup = items.each(lookup.add_columns(items.ordinal.label("n")))
    found = lookup.subquery("found")
    amount = bindparam("check_amount", type_=BigInteger)
    available = found.c.total_credit - found.c.consumed
    answer, reason = decide_sql(
        policy=found.c.policy, tolerance=found.c.tolerance, available=available, amount=amount
    )
    values = {
        "partner_id": found.c.partner_id,
        "customer_uin": bindparam("check_uin", type_=BigInteger),
        "amount": amount,
        "product": bindparam("check_product", type_=String),
        "policy": found.c.policy,
        "tolerance": found.c.tolerance,
        "available": available,
        "answer": answer,
        "reason": reason,
        "requested_by": bindparam("check_requested_by", type_=String),
        "decided_at": bindparam("check_decided_at", type_=_CHECKS.c.decided_at.type),
    }
    chosen = select(*values.values()).where(found.c.confirmed)
    if items is not None:
        chosen = items.each(chosen.select_from(found.join(items.asked, items.ordinal == found.c.n)))
    return insert(_CHECKS).from_select(list(values), chosen).returning(*_CHECKS.c)


def check_params(
    *,
    partner_id: int | None,
    customer_uin: int,
    amount: int,
    product: str,
    requested_by: str,
    decided_at: datetime,
) -> dict[str, Any]:
    """:func:`check_insert`'s parameters but its requirement's: the purchase checked
    (:func:`checked_purchase`: its refusal raised), the requester's name as a decision
    keeps it."""
    amount, product = checked_purchase(amount, product)
    return {
        "check_uin": customer_uin,
        "check_partner_id": partner_id,
        "check_amount": amount,
        "check_product": product,
        "check_requested_by": requested_by[:MAX_REQUESTED_BY],
        "check_decided_at": decided_at,
    }


def checked_purchase(amount: object, product: object) -> tuple[int, str]:
    """A purchase's amount (whole cents, more than 0, at most the largest amount) and its
    product name (:func:`check_product`), or the refusal of the first that is not one.
    Bad input is refused before anything is read."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(f"{amount!r} is not an amount", param="amount")
    if amount <= 0:
        raise InvalidAmount(
            f"a purchase must be more than 0.00, not {money.to_display(amount)}", param="amount"
        )
    if amount > money.MAX_CENTS:
        raise InvalidAmount(
            f"{money.to_display(amount)} is beyond the limit of "
            f"{money.to_display(money.MAX_CENTS)}",
            param="amount",
        )
    return amount, check_product(product)


def check_product(product: object) -> str:
    """A product name: text of at most :data:`MAX_PRODUCT` characters (may be empty)."""
    if not isinstance(product, str):
        raise InvalidInput(f"{product!r} is not a product name", param="product")
    # The rule of every name the ledger keeps: trimmed, bounded, no control characters.
    return _text(product, param="product", limit=MAX_PRODUCT)


def check(
    session: Session,
    *,
    partner_id: int | None,
    customer_uin: int,
    amount: int,
    product: str = "",
    requested_by: str,
    require: Requirement | None = None,
) -> Decision:
    """Decide whether the customer may make a purchase of ``amount`` cents, by the policy
    that applies to it, and keep the decision. ``partner_id`` None: any partner's customer
    (the platform's order pipeline); else another partner's customer is :class:`NotFound`.
    ``require``: the caller's own condition, read in the same statement (not holding:
    :class:`Unconfirmed`, nothing kept). Bad input is refused before anything is read."""
    amount, product = checked_purchase(amount, product)
    if partner_id is None:
        # The platform names the customer alone: its partner first, then the one-shard
        # statement below (None: no such customer, refused below as for anyone).
        partner_id = reports.partner_of(session, customer_uin)
    params: dict[str, Any] = {"check_uin": customer_uin, "check_partner_id": partner_id}
    if require is not None:
        params.update(require.params)
    found = None
    if partner_id is not None:
        found = session.execute(_lookup(True, require), params).mappings().first()
    if found is None:
        if require is not None and not session.scalar(
            select(require.condition), dict(require.params)
        ):
            raise Unconfirmed("the caller's requirement does not hold")
        raise NotFound(f"no customer {customer_uin}", param="customer_uin")
    if require is not None and not found["confirmed"]:
        raise Unconfirmed("the caller's requirement does not hold")
    policy, tolerance = found["policy"], found["tolerance"]
    available = found["total_credit"] - found["consumed"]
    verdict = decide(policy=policy, tolerance=tolerance, available=available, amount=amount)
    values = {
        "partner_id": found["partner_id"],
        "customer_uin": customer_uin,
        "amount": amount,
        "product": product,
        "policy": policy,
        "tolerance": tolerance,
        "available": available,
        "answer": verdict.answer,
        "reason": verdict.reason,
        "requested_by": requested_by[:MAX_REQUESTED_BY],
        "decided_at": utcnow(),
    }
    decision_id = session.execute(INSERT, values).scalar_one()
    return Decision(id=decision_id, **values)


def page(
    session: Session,
    *,
    partner_id: int | None,
    customer_uin: int | None = None,
    answer: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> tuple[list[Decision], bool]:
    """A page of decisions, newest first, and whether older ones follow (``before_id``
    pages back). ``partner_id`` None: every partner's (the platform)."""
    if answer is not None and answer not in ANSWERS:
        raise InvalidInput(f"{answer!r} is not an answer; use allowed or refused", param="answer")
    check_page_size(limit)
    query = select(_CHECKS).order_by(_CHECKS.c.id.desc()).limit(limit + 1)
    if partner_id is not None:
        query = query.where(_CHECKS.c.partner_id == partner_id)
    if customer_uin is not None:
        query = query.where(_CHECKS.c.customer_uin == customer_uin)
    if answer is not None:
        query = query.where(_CHECKS.c.answer == answer)
    if before_id is not None:
        query = query.where(_CHECKS.c.id < before_id)
    rows = [Decision(**row) for row in session.execute(query).mappings()]
    return rows[:limit], len(rows) > limit

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
path). Policies are set through the ORM, so the audit log sees them change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, insert, select
from sqlalchemy.orm import Session

from creditline import money
from creditline.clock import utcnow
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


_TABLES = Base.metadata.tables
_CUSTOMERS = _TABLES[Customer.__tablename__]
_OWN = _TABLES[CustomerPurchasePolicy.__tablename__]
_DEFAULTS = _TABLES[PartnerPurchasePolicy.__tablename__]
_CHECKS = _TABLES[PurchaseCheck.__tablename__]
_LOOKUPS: dict[tuple[bool, int], Select[Any]] = {}
#: The decision's one INSERT, its id returned.
INSERT = insert(_CHECKS).returning(_CHECKS.c.id)


def _lookup(scoped: bool, require: Requirement | None) -> Select[Any]:
    """The customer's credit and both policy rows in one statement (built once per shape),
    with the caller's requirement (a live API key) as a column of its own."""
    key = (scoped, 0 if require is None else id(require.condition))
    statement = _LOOKUPS.get(key)
    if statement is None:
        columns: list[Any] = [
            _CUSTOMERS.c.partner_id,
            _CUSTOMERS.c.total_credit,
            _CUSTOMERS.c.consumed,
            _OWN.c.policy.label("own_policy"),
            _OWN.c.tolerance.label("own_tolerance"),
            _DEFAULTS.c.policy.label("default_policy"),
            _DEFAULTS.c.tolerance.label("default_tolerance"),
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
            .where(_CUSTOMERS.c.uin == bindparam("check_uin"))
        )
        if scoped:
            statement = statement.where(_CUSTOMERS.c.partner_id == bindparam("check_partner_id"))
        _LOOKUPS[key] = statement
    return statement


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
    product = check_product(product)
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
    if found["own_policy"] is not None:
        policy = found["own_policy"]
        tolerance = found["own_tolerance"]
    else:
        policy = found["default_policy"] or DEFAULT_POLICY
        tolerance = None
    if tolerance is None:
        tolerance = found["default_tolerance"] or 0
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
        "requested_by": requested_by[:200],
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

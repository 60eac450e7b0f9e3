"""Allocating and withdrawing customer credit (DESIGN §2).

Allocate (amount > 0) needs amount <= the partner's pool remaining. Withdraw (amount < 0)
needs |amount| <= max(available, 0), and the amount returns to the pool. Both are guarded
single statements, so concurrent writers can never take a pool or a credit below zero, and
both lock the partner row before the customer row, the one order used everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import and_, select, true, update
from sqlalchemy.orm import Session

from creditline import audit
from creditline.db.tables import Alarm, AllocationRecord, Customer, Partner
from creditline.errors import (
    CreditlineError,
    InsufficientCredit,
    InsufficientPool,
    InvalidAmount,
    LineError,
)
from creditline.ledger import records
from creditline.ledger.accounts import PoolState, get_customer, get_partner
from creditline.ledger.alarms import CustomerCredit, evaluate
from creditline.money import MAX_CENTS, to_display


@dataclass(frozen=True)
class CreditChange:
    """The outcome of an allocation or withdrawal."""

    record: AllocationRecord
    #: The customer as the change left it, from the UPDATE's RETURNING (no read after);
    #: the session's one object for it, so a later change in the session updates it too.
    customer: Customer
    total_credit: int
    consumed: int
    pool: PoolState
    alarm: Alarm | None

    @property
    def available(self) -> int:
        return self.total_credit - self.consumed


def max_withdrawable(total_credit: int, consumed: int) -> int:
    """The most that can be withdrawn: the available credit, never below zero, and never
    more than the total credit (refunds beyond charges make available exceed it)."""
    return max(min(total_credit - consumed, total_credit), 0)


def _insufficient_credit(
    session: Session, partner_id: int, customer_uin: int, amount: int
) -> InsufficientCredit:
    current = session.execute(
        select(Customer.total_credit, Customer.consumed).where(
            Customer.partner_id == partner_id, Customer.uin == customer_uin
        )
    ).one()
    return InsufficientCredit(
        f"customer {customer_uin} has at most "
        f"{to_display(max_withdrawable(current.total_credit, current.consumed))} "
        f"withdrawable; cannot withdraw {to_display(-amount)}",
        param="amount",
    )


def allocate_credit(
    session: Session,
    *,
    partner_id: int,
    customer_uin: int,
    amount: int,
    origin: records.Origin,
) -> CreditChange:
    """Allocate ``amount`` cents to a customer of ``partner_id`` (negative: withdraw).

    Takes effect immediately; a refusal raises and changes nothing.
    """
    if amount == 0:
        raise InvalidAmount("amount must not be zero", param="amount")
    if abs(amount) > MAX_CENTS:
        raise InvalidAmount(
            f"amount is beyond the limit of {to_display(MAX_CENTS)}", param="amount"
        )
    origin = origin.checked()
    with session.begin_nested():
        # No scope read first: the guarded UPDATEs below find the customer only within
        # ``partner_id``, and only a refusal asks why (missing, or another partner's: both
        # NotFound). The savepoint undoes the pool's change when the customer's is refused.
        pool_row = session.execute(
            update(Partner)
            .where(
                Partner.id == partner_id,
                Partner.pool_total - Partner.pool_allocated >= amount,
                # A withdrawal larger than everything allocated must be refused here, not
                # by the CHECK constraint (which would surface as a database error).
                Partner.pool_allocated + amount >= 0,
            )
            .values(pool_allocated=Partner.pool_allocated + amount)
            .returning(*Partner.__table__.columns)
            .execution_options(synchronize_session=False, **audit.DERIVED)
        ).one_or_none()
        if pool_row is None:
            get_customer(session, partner_id, customer_uin)  # a missing customer is NotFound
            if amount < 0:
                # The customer's credit is part of what is allocated, so it holds less.
                raise _insufficient_credit(session, partner_id, customer_uin, amount)
            pool = get_partner(session, partner_id)
            raise InsufficientPool(
                f"the pool has {to_display(pool.pool_remaining)} remaining; "
                f"cannot allocate {to_display(amount)}",
                param="amount",
            )
        audit.saw_before(
            session,
            Partner,
            {**pool_row._mapping, "pool_allocated": pool_row.pool_allocated - amount},
        )
        customer = session.execute(
            update(Customer)
            .where(
                Customer.partner_id == partner_id,
                Customer.uin == customer_uin,
                # A withdrawal may take at most what is available (never below zero)
                # and never more than the total credit, which stays >= 0.
                and_(
                    Customer.total_credit - Customer.consumed >= -amount,
                    Customer.total_credit >= -amount,
                )
                if amount < 0
                else true(),
            )
            .values(total_credit=Customer.total_credit + amount)
            .returning(Customer)
            .execution_options(synchronize_session=False, populate_existing=True, **audit.DERIVED)
        ).scalar_one_or_none()
        if customer is None:
            get_customer(session, partner_id, customer_uin)  # a missing customer is NotFound
            raise _insufficient_credit(session, partner_id, customer_uin, amount)
        audit.saw_before(
            session,
            Customer,
            {
                **{
                    c.name: getattr(customer, c.key)
                    for c in Customer.__table__.columns
                    if c.computed is None  # never loaded (Customer.available_credit)
                },
                "total_credit": customer.total_credit - amount,
            },
        )
        total, consumed = customer.total_credit, customer.consumed
        record = records.append(
            session,
            partner_id=partner_id,
            kind="allocation" if amount > 0 else "withdrawal",
            customer_uin=customer_uin,
            change=amount,
            total_after=total,
            available_after=total - consumed,
            origin=origin,
        )
        alarm = evaluate(
            session,
            CustomerCredit(
                partner_id=partner_id,
                uin=customer_uin,
                name=customer.name,
                total_credit=total,
                consumed=consumed,
                thresholds=customer.thresholds,
                fired=list(customer.fired_thresholds),
            ),
            default=pool_row.thresholds,
            cause=record.kind,
        )
    return CreditChange(
        record=record,
        customer=customer,
        total_credit=total,
        consumed=consumed,
        pool=PoolState(partner_id, pool_row.pool_total, pool_row.pool_allocated),
        alarm=alarm,
    )


@dataclass(frozen=True)
class BatchItem:
    """One line of a batch allocation: a customer and a signed amount in cents."""

    line: int
    customer_uin: int
    amount: int
    remark: str = ""


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch did or would do: each accepted item's change, every refusal by line,
    and whether the batch was kept."""

    changes: dict[int, CreditChange]
    errors: list[LineError]
    applied: bool


def allocate_batch(
    session: Session,
    *,
    partner_id: int,
    items: Sequence[BatchItem],
    origin: records.Origin,
    apply: bool = True,
    inspect: Callable[[BatchItem, CreditChange], None] | None = None,
) -> BatchOutcome:
    """Allocate or withdraw for many customers of ``partner_id``, all or nothing.

    Items run in order inside one savepoint, so a withdrawal sees an allocation made
    earlier in the same batch. Every refused item is named; the savepoint is kept only when
    ``apply`` is true and no item was refused. A preview (``apply=False``) computes every
    outcome and changes nothing. ``inspect`` is called after each accepted item, while its
    effect is still visible, for adapters that show more than the change itself.
    """
    changes: dict[int, CreditChange] = {}
    errors: list[LineError] = []
    attempt = session.begin_nested()
    try:
        for item in items:
            try:
                change = allocate_credit(
                    session,
                    partner_id=partner_id,
                    customer_uin=item.customer_uin,
                    amount=item.amount,
                    origin=replace(origin, remark=item.remark),
                )
            except CreditlineError as exc:
                # The refused item changed nothing; go on so that every bad item is named.
                errors.append(LineError(item.line, exc.message, exc.param))
                continue
            changes[item.line] = change
            if inspect is not None:
                inspect(item, change)
    except BaseException:
        attempt.rollback()
        raise
    applied = apply and not errors
    if applied:
        attempt.commit()
    else:
        attempt.rollback()
    return BatchOutcome(changes, errors, applied)

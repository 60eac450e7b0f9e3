"""Allocating and withdrawing customer credit (DESIGN §2).

Allocate (amount > 0) needs amount <= the partner's pool remaining. Withdraw (amount < 0)
needs |amount| <= max(available, 0), and the amount returns to the pool. Both are guarded
single statements, so concurrent writers can never take a pool or a credit below zero, and
both lock the partner row before the customer row, the one order used everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select, true, update
from sqlalchemy.orm import Session

from creditline.db.tables import Alarm, AllocationRecord, Customer, Partner
from creditline.errors import InsufficientCredit, InsufficientPool, InvalidAmount
from creditline.ledger import records
from creditline.ledger.accounts import PoolState, get_customer, get_partner
from creditline.ledger.alarms import CustomerCredit, evaluate
from creditline.money import MAX_CENTS, to_text


@dataclass(frozen=True)
class CreditChange:
    """The outcome of an allocation or withdrawal."""

    record: AllocationRecord
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
        raise InvalidAmount("amount is beyond the limit of 1,000,000,000.00", param="amount")
    origin = origin.checked()
    with session.begin_nested():
        # Scope first: another partner's customer answers exactly as a missing one.
        get_customer(session, partner_id, customer_uin)
        pool_row = session.execute(
            update(Partner)
            .where(
                Partner.id == partner_id,
                Partner.pool_total - Partner.pool_allocated >= amount,
                # A withdrawal beyond what the pool handed out is beyond the customer's
                # credit too; refuse it here rather than trip the CHECK constraint.
                Partner.pool_allocated + amount >= 0,
            )
            .values(pool_allocated=Partner.pool_allocated + amount)
            .returning(Partner.pool_total, Partner.pool_allocated, Partner.thresholds)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if pool_row is None and amount > 0:
            pool = get_partner(session, partner_id)
            raise InsufficientPool(
                f"the pool has {to_text(pool.pool_remaining)} remaining; "
                f"cannot allocate {to_text(amount)}",
                param="amount",
            )
        customer_row = None
        if pool_row is not None:
            customer_row = session.execute(
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
                .returning(
                    Customer.total_credit,
                    Customer.consumed,
                    Customer.name,
                    Customer.thresholds,
                    Customer.fired_thresholds,
                )
                .execution_options(synchronize_session=False)
            ).one_or_none()
        if pool_row is None or customer_row is None:
            current = session.execute(
                select(Customer.total_credit, Customer.consumed).where(
                    Customer.partner_id == partner_id, Customer.uin == customer_uin
                )
            ).one()
            raise InsufficientCredit(
                f"customer {customer_uin} has at most "
                f"{to_text(max_withdrawable(current.total_credit, current.consumed))} "
                f"withdrawable; cannot withdraw {to_text(-amount)}",
                param="amount",
            )
        total, consumed = customer_row.total_credit, customer_row.consumed
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
                name=customer_row.name,
                total_credit=total,
                consumed=consumed,
                thresholds=customer_row.thresholds,
                fired=list(customer_row.fired_thresholds),
            ),
            default=pool_row.thresholds,
            cause=record.kind,
        )
    return CreditChange(
        record=record,
        total_credit=total,
        consumed=consumed,
        pool=PoolState(partner_id, pool_row.pool_total, pool_row.pool_allocated),
        alarm=alarm,
    )

"""Pools: the platform's grants to a partner, and a distributor's pool allocations to its
second-level resellers (DESIGN §2). A reduction goes down to the pool's remaining, never
below, and each giver takes back only what it gave: a sub-reseller's row keeps what its
distributor gave it, net (``pool_from_distributor``); the rest of its total is the
platform's. Every bound is a guarded single UPDATE; the parent row is always locked
before the child's."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from creditline.db.tables import AllocationRecord, Partner
from creditline.errors import InsufficientPool, InvalidAmount, InvalidInput, NotFound
from creditline.ledger import records
from creditline.ledger.accounts import PoolState, get_partner
from creditline.money import MAX_CENTS, to_display


@dataclass(frozen=True)
class PoolChange:
    """The outcome of a grant or pool allocation: the record and the changed pool."""

    record: AllocationRecord
    pool: PoolState


def _check_amount(amount: int) -> None:
    if amount == 0:
        raise InvalidAmount("amount must not be zero", param="amount")
    if abs(amount) > MAX_CENTS:
        raise InvalidAmount(
            f"amount is beyond the limit of {to_display(MAX_CENTS)}", param="amount"
        )


def _change_total(
    session: Session, partner_id: int, amount: int, *, by_distributor: bool
) -> PoolState | None:
    """Add ``amount`` to the pool's total, guarded so remaining never goes below zero and
    each giver takes back only what it gave: the distributor (``by_distributor``) its net
    pool allocations, the platform its net grants. None when the guard refuses."""
    given: ColumnElement[int] | InstrumentedAttribute[int]
    if by_distributor:
        given = Partner.pool_from_distributor + amount
        own_share = Partner.pool_from_distributor + amount >= 0
    else:
        given = Partner.pool_from_distributor
        own_share = Partner.pool_total - Partner.pool_from_distributor + amount >= 0
    row = session.execute(
        update(Partner)
        .where(
            Partner.id == partner_id,
            Partner.pool_total - Partner.pool_allocated + amount >= 0,
            own_share,
        )
        .values(pool_total=Partner.pool_total + amount, pool_from_distributor=given)
        .returning(Partner.pool_total, Partner.pool_allocated)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    return None if row is None else PoolState(partner_id, row.pool_total, row.pool_allocated)


def _refuse_reduction(
    session: Session, partner_id: int, amount: int, *, by_distributor: bool
) -> InsufficientPool:
    """Why a reduction was refused: the giver's own share, or the pool's remaining."""
    partner = get_partner(session, partner_id)
    if by_distributor:
        share = partner.pool_from_distributor
        who = f"its distributor {partner.parent_id} has given it"
    else:
        share = partner.pool_total - partner.pool_from_distributor
        who = "the platform has granted it"
    if share < -amount and share < partner.pool_remaining:
        return InsufficientPool(
            f"partner {partner_id}: {who} {to_display(share)} net; "
            f"{to_display(-amount)} cannot be taken back",
            param="amount",
        )
    return InsufficientPool(
        f"partner {partner_id} has {to_display(partner.pool_remaining)} remaining; "
        f"its pool cannot be reduced by {to_display(-amount)}",
        param="amount",
    )


def grant(session: Session, *, partner_id: int, amount: int, origin: records.Origin) -> PoolChange:
    """The platform grants ``amount`` cents to a partner's pool (negative: reduces it)."""
    _check_amount(amount)
    origin = origin.checked()
    with session.begin_nested():
        get_partner(session, partner_id)
        pool = _change_total(session, partner_id, amount, by_distributor=False)
        if pool is None:
            raise _refuse_reduction(session, partner_id, amount, by_distributor=False)
        record = records.append(
            session,
            partner_id=partner_id,
            kind="grant",
            change=amount,
            total_after=pool.total,
            available_after=pool.remaining,
            origin=origin,
        )
    return PoolChange(record, pool)


def allocate_pool(
    session: Session,
    *,
    distributor_id: int,
    sub_reseller_id: int,
    amount: int,
    origin: records.Origin,
) -> PoolChange:
    """A distributor moves ``amount`` cents of its pool to one of its second-level
    resellers (negative: takes back at most what it has given that sub-reseller, net, and
    at most what that pool has remaining)."""
    _check_amount(amount)
    origin = origin.checked()
    with session.begin_nested():
        distributor = get_partner(session, distributor_id)
        if distributor.kind != "distributor":
            raise InvalidInput(
                "only a distributor allocates pool to second-level resellers", param="partner"
            )
        try:
            sub_parent: int | None = get_partner(session, sub_reseller_id).parent_id
        except NotFound:
            sub_parent = None
        if sub_parent != distributor_id:
            # Someone else's partner answers exactly as a missing one.
            raise NotFound(f"no sub-reseller {sub_reseller_id}", param="sub_reseller")
        # The distributor's row first (parent before child); a take-back's bounds are the
        # sub-reseller's, checked by the guarded UPDATE of its row in the same savepoint.
        parent_row = session.execute(
            update(Partner)
            .where(
                Partner.id == distributor_id,
                Partner.pool_total - Partner.pool_allocated >= amount,
                Partner.pool_allocated + amount >= 0,
            )
            .values(pool_allocated=Partner.pool_allocated + amount)
            .returning(Partner.pool_total, Partner.pool_allocated)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if parent_row is None and amount > 0:
            raise InsufficientPool(
                f"the pool has {to_display(distributor.pool_remaining)} remaining; "
                f"cannot allocate {to_display(amount)}",
                param="amount",
            )
        pool = (
            None
            if parent_row is None
            else _change_total(session, sub_reseller_id, amount, by_distributor=True)
        )
        if pool is None:
            raise _refuse_reduction(session, sub_reseller_id, amount, by_distributor=True)
        record = records.append(
            session,
            partner_id=distributor_id,
            kind="pool_allocation",
            sub_partner_id=sub_reseller_id,
            change=amount,
            total_after=pool.total,
            available_after=pool.remaining,
            origin=origin,
        )
    return PoolChange(record, pool)

"""Plain listings of one partner's customers and records, beyond the core's customer
search (:mod:`creditline.ledger.customers`): customers by UIN (every one, or a page after
a UIN), numbered pages of UINs and of one customer's history (the Tencent-compatible
API's ``Page``/``PageSize``), and which customers have spent anything.

Every query is scoped by ``partner_id``, so another partner's customer is simply absent.
They only read; every change goes through :mod:`creditline.ledger`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from creditline.db.tables import AllocationRecord, Customer, UsageEvent

CUSTOMER_RECORD_KINDS = ("allocation", "withdrawal")


def _count(session: Session, query: Select[Any]) -> int:
    return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def all_customers(session: Session, partner_id: int) -> list[Customer]:
    """Every customer of the partner, by UIN."""
    rows = session.execute(
        select(Customer).where(Customer.partner_id == partner_id).order_by(Customer.uin)
    )
    return list(rows.scalars())


def customers_after(
    session: Session, partner_id: int, *, after: int | None, limit: int
) -> list[Customer]:
    """Up to ``limit`` of the partner's customers in UIN order, after the UIN ``after``."""
    query = select(Customer).where(Customer.partner_id == partner_id)
    if after is not None:
        query = query.where(Customer.uin > after)
    return list(session.execute(query.order_by(Customer.uin).limit(limit)).scalars())


def customer_uins_page(
    session: Session, partner_id: int, *, page: int, size: int
) -> tuple[list[int], int]:
    """One page of the partner's customer UINs in ascending order, and the total."""
    scope = Customer.partner_id == partner_id
    total = int(session.execute(select(func.count()).where(scope)).scalar_one())
    rows = session.execute(
        select(Customer.uin)
        .where(scope)
        .order_by(Customer.uin)
        .offset((page - 1) * size)
        .limit(size)
    )
    return [int(uin) for uin in rows.scalars()], total


def customer_history_page(
    session: Session, partner_id: int, customer_uin: int, *, page: int, size: int
) -> tuple[list[AllocationRecord], int]:
    """One page of a customer's allocations and withdrawals, newest first, and the total."""
    query = select(AllocationRecord).where(
        AllocationRecord.partner_id == partner_id,
        AllocationRecord.customer_uin == customer_uin,
        AllocationRecord.kind.in_(CUSTOMER_RECORD_KINDS),
    )
    total = _count(session, query)
    rows = session.execute(
        query.order_by(AllocationRecord.id.desc()).offset((page - 1) * size).limit(size)
    )
    return list(rows.scalars()), total


def customers_with_usage(session: Session, partner_id: int, uins: Sequence[int]) -> set[int]:
    """Which of the partner's ``uins`` have had any usage reported."""
    rows = session.execute(
        select(Customer.uin).where(
            Customer.partner_id == partner_id,
            Customer.uin.in_(list(uins)),
            exists().where(
                UsageEvent.partner_id == partner_id, UsageEvent.customer_uin == Customer.uin
            ),
        )
    )
    return {int(uin) for uin in rows.scalars()}

"""Reads the Tencent actions need that the ledger core does not offer as functions:
offset pages with totals (Tencent pages by number) and lookups by lists of UINs.

Every query is scoped by ``partner_id``, so another partner's customer is simply absent.
They only read; every change goes through :mod:`creditline.ledger`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, false, func, select
from sqlalchemy.orm import Session

from creditline.db.tables import AllocationRecord, Customer, UsageEvent

#: Fields QueryCustomersCredit may search by (Tencent's FilterType values).
FILTER_TYPES = ("ClientUin", "Name", "Remark", "Email")
CUSTOMER_RECORD_KINDS = ("allocation", "withdrawal")
#: UINs are BIGINT; a larger number is nobody's.
MAX_UIN = 2**63 - 1


@dataclass(frozen=True)
class CustomerTotals:
    """What a partner has handed to its customers: total credit and what is available."""

    total_credit: int
    available: int


def customer_totals(session: Session, partner_id: int) -> CustomerTotals:
    """Sums over the partner's customers."""
    row = session.execute(
        select(
            func.coalesce(func.sum(Customer.total_credit), 0),
            func.coalesce(func.sum(Customer.total_credit - Customer.consumed), 0),
        ).where(Customer.partner_id == partner_id)
    ).one()
    return CustomerTotals(int(row[0]), int(row[1]))


def _count(session: Session, query: Select[Any]) -> int:
    return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def customers_page(
    session: Session,
    partner_id: int,
    *,
    filter_type: str | None,
    filter_text: str | None,
    newest_first: bool,
    page: int,
    size: int,
) -> tuple[list[Customer], int]:
    """One page of the partner's customers ordered by association time, and the total."""
    query = select(Customer).where(Customer.partner_id == partner_id)
    if filter_type is not None and filter_text:
        if filter_type == "ClientUin":
            text = filter_text.strip()
            # Text that is no UIN matches no customer, rather than being an error.
            is_uin = text.isdigit() and int(text) <= MAX_UIN
            query = query.where(Customer.uin == int(text) if is_uin else false())
        else:
            column = {"Name": Customer.name, "Remark": Customer.remark, "Email": Customer.email}[
                filter_type
            ]
            query = query.where(func.lower(column).contains(filter_text.lower(), autoescape=True))
    total = _count(session, query)
    order = (
        (Customer.associated_at.desc(), Customer.uin.desc())
        if newest_first
        else (Customer.associated_at.asc(), Customer.uin.asc())
    )
    rows = session.execute(query.order_by(*order).offset((page - 1) * size).limit(size))
    return list(rows.scalars()), total


def customers_by_uin(session: Session, partner_id: int, uins: Sequence[int]) -> dict[int, Customer]:
    """The partner's customers among ``uins``; others (anyone else's, or none) are absent."""
    rows = session.execute(
        select(Customer).where(Customer.partner_id == partner_id, Customer.uin.in_(list(uins)))
    )
    return {customer.uin: customer for customer in rows.scalars()}


def all_customers(session: Session, partner_id: int) -> list[Customer]:
    """Every customer of the partner, by UIN."""
    rows = session.execute(
        select(Customer).where(Customer.partner_id == partner_id).order_by(Customer.uin)
    )
    return list(rows.scalars())


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

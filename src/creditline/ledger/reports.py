"""Platform reports: the vendor's view across every partner (the platform pages of the
console, the platform's REST endpoints, ``creditline partners list``).

These are the deliberate cross-partner reads: distributed by partner (Citus), each runs
on every shard. Everything a partner itself sees is scoped to it in the other modules.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditline.db.tables import Customer, Partner


def partners(
    session: Session, *, after: int | None = None, limit: int | None = None
) -> list[Partner]:
    """Partners by id: every one, or ``limit`` of them after the id ``after``."""
    query = select(Partner).order_by(Partner.id)
    if after is not None:
        query = query.where(Partner.id > after)
    if limit is not None:
        query = query.limit(limit)
    return list(session.execute(query).scalars())


def find_customer(session: Session, uin: int) -> Customer | None:
    """The customer ``uin``, whichever partner's it is: the platform's tools (the CLI, a
    customer key made by the platform) name a customer by its UIN alone."""
    return session.execute(
        select(Customer).where(Customer.uin == uin).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def partner_of(session: Session, uin: int) -> int | None:
    """The partner whose customer ``uin`` is, if any: the vendor's order pipeline names a
    customer by its UIN alone (on a distributed database, a look-up over every shard)."""
    return session.execute(
        select(Customer.partner_id).where(Customer.uin == uin)
    ).scalar_one_or_none()


def partner_count(session: Session) -> int:
    """How many partners there are."""
    return int(session.execute(select(func.count()).select_from(Partner)).scalar_one())


def partner_names(session: Session) -> dict[int, str]:
    """Every partner's name, by id."""
    return dict(session.execute(select(Partner.id, Partner.name)).tuples().all())


def customer_counts(session: Session) -> dict[int, int]:
    """How many customers each partner has, by partner id (partners with none absent)."""
    rows = session.execute(
        select(Customer.partner_id, func.count()).group_by(Customer.partner_id)
    ).tuples()
    return {int(partner_id): int(count) for partner_id, count in rows}

"""Small building blocks for ledger tests, so each scenario reads like documentation:
a few lines of setup, then the expected balances."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from creditline.db import transaction
from creditline.db.tables import Base
from creditline.errors import CreditlineError
from creditline.ledger import accounts, credit, pools, usage
from creditline.ledger.records import Origin

OPS = Origin(operator="ops@example.com", source="cli", remark="test")

_event_ids = count(1)


@dataclass(frozen=True)
class Reseller:
    """A partner and its customers, as ids."""

    id: int
    customers: list[int]

    @property
    def customer(self) -> int:
        return self.customers[0]


def reseller(
    engine: Engine, *, pool: int = 0, credits: tuple[int, ...] = (0,), kind: str = "reseller"
) -> Reseller:
    """A partner granted ``pool`` cents, with one customer per entry of ``credits``, each
    allocated that much (0: nothing allocated)."""
    with transaction(engine) as s:
        partner = accounts.create_partner(s, name="Acme Cloud", kind=kind)
        if pool:
            pools.grant(s, partner_id=partner.id, amount=pool, origin=OPS)
        uins = []
        for n, amount in enumerate(credits):
            customer = accounts.create_customer(s, partner_id=partner.id, name=f"Customer {n}")
            if amount:
                credit.allocate_credit(
                    s, partner_id=partner.id, customer_uin=customer.uin, amount=amount, origin=OPS
                )
            uins.append(customer.uin)
        return Reseller(partner.id, uins)


def charge(
    uin: int,
    list_amount: str,
    voucher_amount: str = "0",
    *,
    kind: str = "charge",
    event_id: str | None = None,
    occurred_at: str = "2026-03-01T10:00:00Z",
) -> dict[str, object]:
    """One raw usage record as the billing feed sends it (a fresh event id by default)."""
    return {
        "event_id": event_id or f"ev-{next(_event_ids)}",
        "customer_uin": str(uin),
        "product": "cvm",
        "list_amount": list_amount,
        "voucher_amount": voucher_amount,
        "occurred_at": occurred_at,
        "kind": kind,
    }


def post_usage(session: Session, *raws: Mapping[str, object]) -> usage.IngestResult:
    """Validate and ingest raw records, as every adapter does."""
    batch = usage.parse_batch(list(enumerate(raws, start=1)))
    return usage.ingest(session, batch)


def ingest(engine: Engine, *raws: Mapping[str, object]) -> usage.IngestResult:
    """Ingest raw records in their own transaction."""
    with transaction(engine) as s:
        return post_usage(s, *raws)


def allocate(engine: Engine, partner_id: int, uin: int, amount: int) -> credit.CreditChange:
    """Allocate (or, negative, withdraw) in its own transaction."""
    with transaction(engine) as s:
        return credit.allocate_credit(
            s, partner_id=partner_id, customer_uin=uin, amount=amount, origin=OPS
        )


def balance(engine: Engine, partner_id: int, uin: int) -> tuple[int, int, int]:
    """(total_credit, consumed, available) of a customer, read fresh."""
    with transaction(engine) as s:
        c = accounts.get_customer(s, partner_id, uin)
        return c.total_credit, c.consumed, c.available


def pool(engine: Engine, partner_id: int) -> tuple[int, int, int]:
    """(total, allocated, remaining) of a partner's pool, read fresh."""
    with transaction(engine) as s:
        p = accounts.pool_state(s, partner_id)
        return p.total, p.allocated, p.remaining


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


def assert_refused_changes_nothing(
    engine: Engine, operation: Callable[[Session], object], error: type[CreditlineError]
) -> CreditlineError:
    """Run ``operation`` in a transaction that goes on to commit after the refusal, and
    check that the refusal left every table exactly as it was (its savepoint undid it)."""
    before = snapshot(engine)
    with transaction(engine) as s, pytest.raises(error) as refused:
        operation(s)
    assert snapshot(engine) == before
    return refused.value


def empty_database(engine: Engine) -> None:
    """Delete every row, children first: a clean ledger without migrating again."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))

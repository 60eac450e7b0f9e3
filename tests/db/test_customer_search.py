"""``customer_search`` (migration 0019) holds exactly each customer's name, email and
remark, kept by triggers: on a new customer, a changed remark, a changed key, a deleted
customer; a credit change does not touch it."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text, update
from tests.ledger.scenario import OPS, reseller

from creditline.db import transaction
from creditline.db.tables import Customer, CustomerSearch
from creditline.ledger import accounts, credit, customers


def _searched(engine: Engine) -> set[tuple[object, ...]]:
    with engine.connect() as c:
        return set(c.execute(select(*CustomerSearch.__table__.c)).tuples())


def _customers(engine: Engine) -> set[tuple[object, ...]]:
    columns = Customer.__table__.c
    with engine.connect() as c:
        return set(
            c.execute(
                select(columns.partner_id, columns.uin, columns.name, columns.email, columns.remark)
            ).tuples()
        )


def test_the_search_table_follows_every_change_of_its_columns(engine: Engine) -> None:
    partner = reseller(engine, pool=10_000, credits=(0, 0))
    with transaction(engine) as s:
        made = accounts.create_customer(
            s, partner_id=partner.id, name="Delta Ltd", email="ops@delta.example"
        )
    assert _searched(engine) == _customers(engine) and len(_customers(engine)) == 3

    with transaction(engine) as s:
        accounts.set_remark(s, partner_id=partner.id, uin=made.uin, remark="key account")
        s.execute(
            update(Customer)
            .where(Customer.uin == partner.customers[0])
            .values(name="Renamed", email="new@example.com")
        )
    assert _searched(engine) == _customers(engine)
    with transaction(engine) as s:
        page = customers.search(s, partner.id, text="KEY ACC")
        assert [c.uin for c in page.rows] == [made.uin] and page.total == 1
        assert [c.name for c in customers.search(s, partner.id, text="renamed").rows] == ["Renamed"]

    with transaction(engine) as s:
        s.execute(text("DELETE FROM customers WHERE uin = :uin"), {"uin": partner.customers[1]})
    assert _searched(engine) == _customers(engine) and len(_customers(engine)) == 2


def test_a_credit_change_leaves_the_search_table_alone(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("asks PostgreSQL's row version (xmin)")
    partner = reseller(engine, pool=10_000, credits=(0,))
    with engine.connect() as c:
        before = c.execute(text("SELECT xmin::text FROM customer_search")).scalar_one()
    with transaction(engine) as s:
        credit.allocate_credit(
            s, partner_id=partner.id, customer_uin=partner.customer, amount=500, origin=OPS
        )
    with engine.connect() as c:
        assert c.execute(text("SELECT xmin::text FROM customer_search")).scalar_one() == before
    assert _searched(engine) == _customers(engine)

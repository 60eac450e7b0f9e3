"""Finding customers: one search serves every door (REST, console, Tencent API)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from tests.ledger.scenario import OPS, reseller

from creditline.db import transaction
from creditline.errors import InvalidInput
from creditline.ledger import accounts, credit, customers


@pytest.fixture
def shop(engine: Engine) -> tuple[int, dict[str, int], int]:
    """A partner with three customers, and another partner with one."""
    acme = reseller(engine, pool=100_000)
    other = reseller(engine)
    with transaction(engine) as s:
        made = {
            name: accounts.create_customer(
                s, partner_id=acme.id, name=name, email=email, remark=remark
            ).uin
            for name, email, remark in [
                ("Alpha Ltd", "ops@alpha.example", "key account"),
                ("Beta 100%", "billing@beta.example", ""),
                ("Gamma", "gamma@example.com", "ALPHA partner"),
            ]
        }
        credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=made["Gamma"], amount=5_000, origin=OPS
        )
    return acme.id, made, other.customer


def names(page: customers.CustomerPage) -> list[str]:
    return [c.name for c in page.rows]


def test_search_looks_in_name_remark_email_and_uin(engine: Engine, shop: tuple) -> None:
    partner, made, _ = shop
    with transaction(engine) as s:
        assert sorted(names(customers.search(s, partner, text="alpha"))) == ["Alpha Ltd", "Gamma"]
        assert names(customers.search(s, partner, text="alpha", field="name")) == ["Alpha Ltd"]
        assert names(customers.search(s, partner, text="BILLING@")) == ["Beta 100%"]
        assert names(customers.search(s, partner, text=str(made["Gamma"]))) == ["Gamma"]
        # Wildcards are literal: "%" finds only the name that has one.
        assert names(customers.search(s, partner, text="100%")) == ["Beta 100%"]
        assert customers.search(s, partner, text="not a uin", field="uin").total == 0


def test_another_partners_customer_is_absent(engine: Engine, shop: tuple) -> None:
    partner, _, theirs = shop
    with transaction(engine) as s:
        assert customers.search(s, partner, text=str(theirs)).total == 0
        assert customers.by_uins(s, partner, [theirs]) == {}


def test_sort_and_pages(engine: Engine, shop: tuple) -> None:
    partner, made, _ = shop
    with transaction(engine) as s:
        by_credit = customers.search(s, partner, sort="available_credit", descending=True)
        assert by_credit.rows[0].uin == made["Gamma"]
        first = customers.search(s, partner, sort="name", descending=False, limit=2)
        rest = customers.search(s, partner, sort="name", descending=False, offset=2, limit=2)
        # The scenario helper's own "Customer 0" is the partner's fourth customer.
        assert (names(first), names(rest), first.total) == (
            ["Alpha Ltd", "Beta 100%"],
            ["Customer 0", "Gamma"],
            4,
        )
        assert (first.has_more, rest.has_more) == (True, False)
        # Without the count: the same rows, whether more follow, and no total.
        uncounted = customers.search(
            s, partner, sort="name", descending=False, limit=3, count=False
        )
        assert (names(uncounted), uncounted.has_more, uncounted.total) == (
            ["Alpha Ltd", "Beta 100%", "Customer 0"],
            True,
            None,
        )
        with pytest.raises(ValueError):
            _ = uncounted.counted
        last = customers.search(s, partner, sort="name", offset=3, limit=1, count=False)
        assert (len(last.rows), last.has_more) == (1, False)
        with pytest.raises(InvalidInput):
            customers.search(s, partner, sort="password")


def test_totals(engine: Engine, shop: tuple) -> None:
    partner, _, _ = shop
    with transaction(engine) as s:
        totals = customers.totals(s, partner)
        assert (totals.count, totals.total_credit, totals.available) == (4, 5_000, 5_000)

"""Finding customers: one search serves every door (REST, console, Tencent API)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session
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


def _credit(s: Session, uin: int, total: int, consumed: int) -> None:
    s.execute(
        text("UPDATE customers SET total_credit = :t, consumed = :c WHERE uin = :u"),
        {"t": total, "c": consumed, "u": uin},
    )


def test_sort_by_utilization(engine: Engine) -> None:
    """Consumed / total credit, from the database's generated column; no credit sorts as
    the fullest once anything is consumed and as empty otherwise; ties break on the UIN."""
    partner = reseller(engine, credits=())
    with transaction(engine) as s:
        made = [
            accounts.create_customer(s, partner_id=partner.id, name=f"U{i}").uin for i in range(6)
        ]
        for uin, (total, consumed) in zip(
            made,
            [(1_000, 500), (1_000, 900), (0, 0), (0, 10), (2_000, 1_000), (3, 1)],
            strict=True,
        ):
            _credit(s, uin, total, consumed)
    # 1e18, 0.9, 0.5 twice (the larger UIN first, descending), 1/3, 0.
    fullest_first = [made[3], made[1], made[4], made[0], made[5], made[2]]
    with transaction(engine) as s:
        down = customers.search(s, partner.id, sort="utilization", descending=True, count=False)
        up = customers.search(s, partner.id, sort="utilization", descending=False, count=False)
        assert [c.uin for c in down.rows] == fullest_first
        assert [c.uin for c in up.rows] == fullest_first[::-1]
        # Python reads the credit; the generated column is never loaded into it.
        assert "utilization" not in down.rows[0].__dict__


def _statements(engine: Engine) -> tuple[list[str], Any]:
    seen: list[str] = []

    def remember(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    return seen, remember


@pytest.mark.parametrize("sort", ["available_credit", "utilization", "associated_at", "name"])
@pytest.mark.parametrize("descending", [True, False])
def test_a_page_is_the_same_walked_or_collected(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, sort: str, descending: bool
) -> None:
    """A search walks the sort order for its page, up to WALK_PER_ROW customers per row it
    needs; one that has not found its page by then (a rare search) collects every match
    and sorts them instead. Either way the page is the matches in sort order."""
    monkeypatch.setattr(customers, "WALK_PER_ROW", 2)
    monkeypatch.setattr(customers, "FEW_MATCHES", -1)  # always walk first (see below)
    partner = reseller(engine, credits=())
    with transaction(engine) as s:
        for i in range(40):
            # "rare" on every ninth customer and on the last two (which a walk from the
            # newest meets first); "broad" on two in three.
            uin = accounts.create_customer(
                s,
                partner_id=partner.id,
                name=f"Customer {i}" + (" broad" if i % 3 else ""),
                remark="rare" if i % 9 == 0 or i >= 38 else "",
                email=f"c{i}@example.com",
            ).uin
            _credit(s, uin, 1_000 + (i * 37) % 11, (i * 53) % 13)
    with transaction(engine) as s:
        everyone = customers.search(s, partner.id, sort=sort, descending=descending, limit=500)
    for word in ("rare", "broad"):
        matches = [c.uin for c in everyone.rows if word in c.name + c.remark]
        for offset, limit in ((0, 3), (3, 3), (6, 4), (len(matches) - 2, 5)):
            seen, remember = _statements(engine)
            try:
                with transaction(engine) as s:
                    page = customers.search(
                        s,
                        partner.id,
                        text=word,
                        sort=sort,
                        descending=descending,
                        offset=offset,
                        limit=limit,
                        count=False,
                    )
            finally:
                event.remove(engine, "before_cursor_execute", remember)
            assert [c.uin for c in page.rows] == matches[offset : offset + limit], (word, offset)
            assert page.has_more == (offset + limit < len(matches))
            # The walk finds the page and the row past it within its stretch, or gives way.
            stretch = [c.uin for c in everyone.rows[: 2 * (offset + limit + 1)]]
            walked = len(set(stretch) & set(matches)) >= offset + limit + 1
            searches = [x for x in seen if x.lstrip().upper().startswith(("SELECT", "WITH"))]
            assert len(searches) == (1 if walked else 2), (word, offset, searches)
            assert any("matches" in x for x in searches) == (not walked)


def test_few_expected_matches_are_collected_without_a_walk(engine: Engine) -> None:
    """On PostgreSQL a search the planner expects to match few customers (its estimate
    from the column statistics) goes straight to collecting them; SQLite, without such
    statistics, walks first."""
    partner = reseller(engine, credits=())
    with transaction(engine) as s:
        for i in range(30):
            accounts.create_customer(
                s, partner_id=partner.id, name=f"Customer {i}", remark="key" if i % 10 else ""
            )
    seen, remember = _statements(engine)
    try:
        with transaction(engine) as s:
            page = customers.search(s, partner.id, text="key", limit=5, count=False)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert len(page.rows) == 5 and page.has_more
    walked = any("walked" in x for x in seen)
    collected = any("matches" in x for x in seen)
    if engine.dialect.name == "postgresql":
        assert [x.split()[0] for x in seen if "customer" in x] == ["EXPLAIN", "WITH"]
        assert (walked, collected) == (False, True)
    else:
        assert (walked, collected) == (True, False)

"""``creditline demo``: a realistic, deterministic demo that verifies clean."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from creditline.db import transaction
from creditline.db.tables import Customer, Partner, UsageEvent
from creditline.demo import build_demo
from creditline.ledger.verify import verify


def test_demo_builds_what_it_says_and_verifies(cli: Any, engine: Engine) -> None:
    made = cli("demo", "--json").json()
    kinds = [p["kind"] for p in made["partners"]]
    assert kinds == ["distributor", "sub-reseller", "sub-reseller", "reseller"]
    distributor = made["partners"][0]
    assert [p["parent_id"] for p in made["partners"][1:3]] == [distributor["id"]] * 2
    assert made["customers"] == 200
    assert sum(p["customers"] for p in made["partners"]) == 200
    assert made["look_at"] == distributor["id"]
    # Every alarm level is present, and alarms were raised.
    assert set(made["levels"]) == {"below 75", "75", "90", "100+"}
    assert all(n > 0 for n in made["levels"].values())
    assert made["alarms"] > 0
    assert len(made["own_thresholds"]) >= 3
    assert cli("verify", "--json").json() == {"ok": True, "mismatches": []}

    with transaction(engine) as s:
        assert s.execute(select(func.count()).select_from(Partner)).scalar_one() == 4
        products = set(s.execute(select(UsageEvent.product).distinct()).scalars())
        assert {"cvm", "cos", "cdn", "tencentdb"} <= products
        assert (
            s.execute(select(func.count()).select_from(UsageEvent)).scalar_one()
            == made["usage_events"]
        )
        types = set(s.execute(select(Customer.type).distinct()).scalars())
        assert types == {"personal", "company"}
        # Sub-resellers' pools came from the distributor.
        subs = s.execute(select(Partner).where(Partner.kind == "sub-reseller")).scalars().all()
        assert all(p.pool_total > 0 for p in subs)

    # Once is enough: a second run is refused in one line, unless forced.
    again = cli("demo", expect=3)
    assert again.stderr.strip().splitlines() == [
        "error: the database already holds 4 partners; use --force to add the demo beside them"
    ]
    text = cli("demo", "--force", "--customers", 8).stdout
    assert "look at partner" in text
    assert cli("verify", "--json").json()["ok"] is True


def test_demo_is_deterministic(engine: Engine) -> None:
    def shape() -> list[tuple[str, str, int, int]]:
        with transaction(engine) as s:
            summary = build_demo(s, seed=7, customers=12)
            rows = s.execute(
                select(Customer.name, Customer.email, Customer.total_credit, Customer.consumed)
                .where(Customer.partner_id.in_([p.id for p in summary.partners]))
                .order_by(Customer.uin)
            ).all()
            return [tuple(r) for r in rows]

    assert shape() == shape()
    with transaction(engine) as s:
        assert verify(s) == []

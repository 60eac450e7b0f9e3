from __future__ import annotations

from sqlalchemy import Engine

from creditline.db import transaction
from creditline.ledger import accounts, credit, pools, usage
from creditline.ledger.records import Origin
from creditline.ledger.verify import verify


def test_grant_allocate_consume_alarm(engine: Engine) -> None:
    op = Origin(operator="ops@example.com", source="cli")
    with transaction(engine) as s:
        p = accounts.create_partner(s, name="Acme", kind="reseller")
        c = accounts.create_customer(s, partner_id=p.id, name="Cust")
        pools.grant(s, partner_id=p.id, amount=100_000, origin=op)
        change = credit.allocate_credit(
            s, partner_id=p.id, customer_uin=c.uin, amount=10_000, origin=op
        )
        assert change.total_credit == 10_000
        assert change.pool.remaining == 90_000
        batch = usage.parse_batch(
            [
                (
                    1,
                    {
                        "event_id": "e1",
                        "customer_uin": str(c.uin),
                        "product": "cvm",
                        "list_amount": "80.00",
                        "voucher_amount": "0",
                        "occurred_at": "2026-01-01T00:00:00Z",
                    },
                ),
                (
                    2,
                    {
                        "event_id": "e1",
                        "customer_uin": str(c.uin),
                        "product": "cvm",
                        "list_amount": "80.00",
                        "voucher_amount": "0",
                        "occurred_at": "2026-01-01T00:00:00Z",
                    },
                ),
            ]
        )
        result = usage.ingest(s, batch)
        assert (result.accepted, result.duplicates) == (1, 1)
        assert [a.threshold for a in result.alarms] == [75]
    with transaction(engine) as s:
        assert verify(s) == []


def test_partner_default_thresholds_reach_customers_without_their_own(engine: Engine) -> None:
    from creditline.ledger import alarms

    op = Origin(operator="ops", source="cli")
    with transaction(engine) as s:
        p = accounts.create_partner(s, name="Acme", kind="reseller")
        c = accounts.create_customer(s, partner_id=p.id, name="Cust")
        pools.grant(s, partner_id=p.id, amount=10_000, origin=op)
        credit.allocate_credit(s, partner_id=p.id, customer_uin=c.uin, amount=10_000, origin=op)
        usage.ingest(
            s,
            usage.parse_batch(
                [
                    (
                        1,
                        {
                            "event_id": "e",
                            "customer_uin": c.uin,
                            "product": "cvm",
                            "list_amount": "60.00",
                            "voucher_amount": "0",
                            "occurred_at": "2026-01-01T00:00:00",
                        },
                    )
                ]
            ),
        )
        alarms.set_thresholds(s, partner_id=p.id, thresholds=[50])
    with transaction(engine) as s:
        assert accounts.get_customer(s, p.id, c.uin).fired_thresholds == [50]
        assert verify(s) == []

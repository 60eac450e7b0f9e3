"""Every allocation, withdrawal, grant and pool allocation appends exactly one immutable
allocation record, with a ``credit.allocation_recorded`` outbox event beside it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from tests.ledger.scenario import charge, ingest, reseller

from creditline.db import transaction
from creditline.db.tables import AllocationRecord, OutboxEvent
from creditline.errors import CreditlineError
from creditline.ledger import accounts, credit, pools, records
from creditline.ledger.records import Origin

ORIGIN = Origin(
    operator="alice@acme.example",
    source="api",
    remark="  Q3 top-up  ",
    idempotency_key="key-123",
)


def _records_and_events(engine: Engine) -> tuple[list[AllocationRecord], list[OutboxEvent]]:
    with transaction(engine) as s:
        records = list(s.execute(select(AllocationRecord).order_by(AllocationRecord.id)).scalars())
        events = list(s.execute(select(OutboxEvent).order_by(OutboxEvent.id)).scalars())
        return records, events


def _one_new_record(
    engine: Engine, operation: Callable[[Session], object]
) -> tuple[AllocationRecord, OutboxEvent]:
    records_before, events_before = _records_and_events(engine)
    with transaction(engine) as s:
        operation(s)
    records, events = _records_and_events(engine)
    assert len(records) == len(records_before) + 1
    new_events = [e for e in events if e.id not in {b.id for b in events_before}]
    assert [e.type for e in new_events] == ["credit.allocation_recorded"]
    return records[-1], new_events[0]


def _check_fields(record: AllocationRecord, event: OutboxEvent) -> None:
    assert record.operator == "alice@acme.example"
    assert record.source == "api"
    assert record.remark == "Q3 top-up"
    assert record.idempotency_key == "key-123"
    assert record.created_at.tzinfo is not None
    assert event.partner_id == record.partner_id
    assert event.payload["id"] == record.id
    assert event.payload["operator"] == "alice@acme.example"
    assert event.payload["idempotency_key"] == "key-123"


def test_allocation_record(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00)
    record, event = _one_new_record(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customer, amount=300_00, origin=ORIGIN
        ),
    )
    _check_fields(record, event)
    assert (record.kind, record.partner_id, record.customer_uin) == (
        "allocation",
        acme.id,
        acme.customer,
    )
    assert (record.change, record.total_after, record.available_after) == (300_00, 300_00, 300_00)
    assert event.payload["change"] == "300.00"
    assert event.payload["total_after"] == "300.00"


def test_withdrawal_record_shows_available_after_usage(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(300_00,))
    ingest(engine, charge(acme.customer, "100.00"))
    record, event = _one_new_record(
        engine,
        lambda s: credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customer, amount=-50_00, origin=ORIGIN
        ),
    )
    _check_fields(record, event)
    assert (record.kind, record.change, record.total_after, record.available_after) == (
        "withdrawal",
        -50_00,
        250_00,
        150_00,
    )
    assert event.payload["change"] == "-50.00"


def test_grant_record(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(300_00,))
    record, event = _one_new_record(
        engine, lambda s: pools.grant(s, partner_id=acme.id, amount=-200_00, origin=ORIGIN)
    )
    _check_fields(record, event)
    assert (record.kind, record.partner_id, record.customer_uin, record.sub_partner_id) == (
        "grant",
        acme.id,
        None,
        None,
    )
    assert (record.change, record.total_after, record.available_after) == (-200_00, 800_00, 500_00)


def test_pool_allocation_record(engine: Engine) -> None:
    with transaction(engine) as s:
        dist = accounts.create_partner(s, name="Dist", kind="distributor").id
        sub = accounts.create_partner(s, name="Sub", kind="sub-reseller", parent_id=dist).id
        pools.grant(s, partner_id=dist, amount=1_000_00, origin=ORIGIN)
    record, event = _one_new_record(
        engine,
        lambda s: pools.allocate_pool(
            s, distributor_id=dist, sub_reseller_id=sub, amount=400_00, origin=ORIGIN
        ),
    )
    _check_fields(record, event)
    assert (record.kind, record.partner_id, record.sub_partner_id) == ("pool_allocation", dist, sub)
    assert (record.change, record.total_after, record.available_after) == (400_00, 400_00, 400_00)


@pytest.mark.parametrize("amount", [0, 10_000_00])
def test_refused_operation_appends_no_record(engine: Engine, amount: int) -> None:
    acme = reseller(engine, pool=1_000_00)
    with transaction(engine) as s:
        count = s.execute(select(func.count()).select_from(AllocationRecord)).scalar_one()
    with transaction(engine) as s, pytest.raises(CreditlineError, match=r"amount|pool"):
        credit.allocate_credit(
            s, partner_id=acme.id, customer_uin=acme.customer, amount=amount, origin=ORIGIN
        )
    with transaction(engine) as s:
        assert s.execute(select(func.count()).select_from(AllocationRecord)).scalar_one() == count


def test_csv_export_quotes_what_a_spreadsheet_would_run(engine: Engine) -> None:
    shop = reseller(engine, pool=10_000, credits=(0,))
    hostile = Origin(operator="=cmd|' /C calc'!A0", source="api", remark="@SUM(1+1)")
    with transaction(engine) as s:
        credit.allocate_credit(
            s, partner_id=shop.id, customer_uin=shop.customer, amount=500, origin=hostile
        )
    text = "".join(records.csv_chunks(engine, partner_id=shop.id, size=10))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(records.CSV_COLUMNS)
    newest = dict(zip(rows[0], rows[1], strict=True))
    assert newest["operator"] == "'=cmd|' /C calc'!A0"
    assert newest["remark"] == "'@SUM(1+1)"
    assert newest["change"] == "5.00"
    assert len(rows) == 3  # the header, the allocation, the grant


def test_operator_filter_matches_a_prefix_in_any_case(engine: Engine) -> None:
    shop = reseller(engine, pool=10_000, credits=(0,))
    with transaction(engine) as s:
        for operator in ("Finance@acme.example", "finance.bot@acme.example", "ops@acme.example"):
            credit.allocate_credit(
                s,
                partner_id=shop.id,
                customer_uin=shop.customer,
                amount=100,
                origin=Origin(operator=operator, source="api"),
            )

    def operators(text: str) -> list[str]:
        with transaction(engine) as s:
            rows, _ = records.page(s, partner_id=shop.id, where=records.RecordFilter(operator=text))
            return sorted(r.operator for r in rows)

    assert operators("finance") == ["Finance@acme.example", "finance.bot@acme.example"]
    assert operators("FINANCE@") == ["Finance@acme.example"]
    assert operators("ops@acme.example") == ["ops@acme.example"]
    # The middle of a name is no prefix, and LIKE's wildcards are plain characters.
    assert operators("acme") == []
    assert operators("%") == [] and operators("_inance") == []


def test_records_name_their_customer_or_sub_reseller_for_their_partner_only(
    engine: Engine,
) -> None:
    with transaction(engine) as s:
        dist = accounts.create_partner(s, name="Dist", kind="distributor")
        sub = accounts.create_partner(s, name="Sub Shop", kind="sub-reseller", parent_id=dist.id)
        pools.grant(s, partner_id=dist.id, amount=10_000, origin=ORIGIN)
        buyer = accounts.create_customer(s, partner_id=dist.id, name="=Buyer Ltd")
        credit.allocate_credit(
            s, partner_id=dist.id, customer_uin=buyer.uin, amount=1_000, origin=ORIGIN
        )
        pools.allocate_pool(
            s, distributor_id=dist.id, sub_reseller_id=sub.id, amount=2_000, origin=ORIGIN
        )
        dist_id, sub_id, uin = dist.id, sub.id, buyer.uin
    other = reseller(engine, pool=10_000, credits=(500,))
    with transaction(engine) as s:
        rows, _ = records.page(s, partner_id=dist_id)
        named = records.names(s, partner_id=dist_id, rows=rows)
        assert [(r.kind, named.of(r)) for r in rows] == [
            ("pool_allocation", "Sub Shop"),
            ("allocation", "=Buyer Ltd"),
            ("grant", ""),
        ]
        # The sub-reseller sees the pool allocation it received, under its own name.
        sub_rows, _ = records.page(s, partner_id=sub_id)
        assert [records.names(s, partner_id=sub_id, rows=sub_rows).of(r) for r in sub_rows] == [
            "Sub Shop"
        ]
        # Asked for by another partner, nobody's name is read.
        theirs = records.names(s, partner_id=other.id, rows=rows)
        assert [theirs.of(r) for r in rows] == ["", "", ""]
    text = "".join(records.csv_chunks(engine, partner_id=dist_id))
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [(line["customer_uin"], line["sub_partner_id"], line["name"]) for line in lines] == [
        ("", str(sub_id), "Sub Shop"),
        (str(uin), "", "'=Buyer Ltd"),
        ("", "", ""),
    ]

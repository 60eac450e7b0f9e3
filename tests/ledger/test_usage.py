"""Usage (DESIGN §2): list minus voucher counts against credit, refunds count negative,
partner discounts are irrelevant, duplicate event ids change nothing, and a batch with any
invalid record is refused whole with every invalid record named."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from tests.ledger.scenario import (
    assert_refused_changes_nothing,
    balance,
    charge,
    ingest,
    post_usage,
    reseller,
)

from creditline.db import transaction
from creditline.errors import InvalidBatch
from creditline.ledger import usage


def test_usage_counts_list_minus_voucher(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    ingest(engine, charge(acme.customer, "120.00", "20.00"), charge(acme.customer, "5.50"))
    assert balance(engine, acme.id, acme.customer) == (500_00, 105_50, 394_50)


def test_fully_vouchered_charge_counts_nothing(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    result = ingest(engine, charge(acme.customer, "80.00", "80.00"))
    assert result.accepted == 1
    assert balance(engine, acme.id, acme.customer) == (500_00, 0, 500_00)


def test_refund_counts_negative(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    ingest(engine, charge(acme.customer, "200.00"))
    ingest(engine, charge(acme.customer, "50.00", "10.00", kind="refund"))
    assert balance(engine, acme.id, acme.customer) == (500_00, 160_00, 340_00)


def test_partner_discounts_are_irrelevant(engine: Engine) -> None:
    # The feed reports list price; whatever discount the partner gets from the vendor or
    # gives its customer, the list amount minus voucher is what counts. A discount field
    # is not part of the record at all, and is refused rather than applied.
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    discounted = charge(acme.customer, "100.00") | {"discount": "0.30"}
    with pytest.raises(InvalidBatch, match="unknown field discount"):
        ingest(engine, discounted)
    ingest(engine, charge(acme.customer, "100.00"))
    assert balance(engine, acme.id, acme.customer) == (500_00, 100_00, 400_00)


def test_duplicate_event_id_across_batches_is_ignored(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    ingest(engine, charge(acme.customer, "30.00", event_id="bill-1"))
    again = ingest(
        engine,
        charge(acme.customer, "30.00", event_id="bill-1"),
        charge(acme.customer, "99.00", event_id="bill-1"),
        charge(acme.customer, "1.00", event_id="bill-2"),
    )
    assert (again.accepted, again.duplicates) == (1, 2)
    assert balance(engine, acme.id, acme.customer) == (500_00, 31_00, 469_00)


def test_duplicate_event_id_within_one_batch_is_ignored(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    result = ingest(
        engine,
        charge(acme.customer, "30.00", event_id="bill-1"),
        charge(acme.customer, "30.00", event_id="bill-1"),
    )
    assert (result.accepted, result.duplicates) == (1, 1)
    assert balance(engine, acme.id, acme.customer) == (500_00, 30_00, 470_00)


def test_an_event_id_is_unique_per_partner(engine: Engine) -> None:
    """Event ids are unique per partner (the key a distributed database can hold): two
    partners' customers may each have "bill-1", within one batch and across batches."""
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    rival = reseller(engine, pool=1_000_00, credits=(200_00,))
    result = ingest(
        engine,
        charge(acme.customer, "30.00", event_id="bill-1"),
        charge(rival.customer, "20.00", event_id="bill-1"),
    )
    assert (result.accepted, result.duplicates) == (2, 0)
    again = ingest(
        engine,
        charge(rival.customer, "20.00", event_id="bill-1"),
        charge(acme.customer, "5.00", event_id="bill-2"),
    )
    assert (again.accepted, again.duplicates) == (1, 1)
    assert balance(engine, acme.id, acme.customer)[1] == 35_00
    assert balance(engine, rival.id, rival.customer)[1] == 20_00


def test_usage_for_several_partners_in_one_batch(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    rival = reseller(engine, pool=1_000_00, credits=(200_00,))
    ingest(engine, charge(acme.customer, "10.00"), charge(rival.customer, "20.00"))
    assert balance(engine, acme.id, acme.customer)[1] == 10_00
    assert balance(engine, rival.id, rival.customer)[1] == 20_00


def test_batch_with_invalid_records_is_refused_whole_naming_every_one(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    good = charge(acme.customer, "10.00")
    batch = [
        good,
        charge(acme.customer, "1.234"),
        charge(acme.customer, "10.00"),
        charge(acme.customer, "5.00", "6.00"),
        {k: v for k, v in charge(acme.customer, "1.00").items() if k != "product"},
    ]
    refused = assert_refused_changes_nothing(engine, lambda s: post_usage(s, *batch), InvalidBatch)
    assert isinstance(refused, InvalidBatch)
    assert [e.line for e in refused.errors] == [2, 4, 5]
    assert "more than two decimal places" in refused.errors[0].message
    assert "above list_amount" in refused.errors[1].message
    assert "missing product" in refused.errors[2].message
    assert [d["line"] for d in refused.details()] == [2, 4, 5]
    assert balance(engine, acme.id, acme.customer) == (500_00, 0, 500_00)


def test_unknown_customers_are_all_named(engine: Engine) -> None:
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    batch = [charge(acme.customer, "1.00"), charge(999, "1.00"), charge(998, "2.00")]
    refused = assert_refused_changes_nothing(engine, lambda s: post_usage(s, *batch), InvalidBatch)
    assert isinstance(refused, InvalidBatch)
    assert [(e.line, e.message) for e in refused.errors] == [
        (2, "no customer 999"),
        (3, "no customer 998"),
    ]


def test_unknown_customer_named_beside_malformed_records(engine: Engine) -> None:
    # Every invalid record is named, whichever check finds it: with the session given,
    # parse_batch names unknown customers together with malformed records.
    acme = reseller(engine, pool=1_000_00, credits=(500_00,))
    raws = [charge(acme.customer, "1.001"), charge(999, "1.00"), charge(acme.customer, "1.00")]
    with transaction(engine) as s, pytest.raises(InvalidBatch) as refused:
        usage.parse_batch(list(enumerate(raws, start=1)), session=s)
    assert [e.line for e in refused.value.errors] == [1, 2]

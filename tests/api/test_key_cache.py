"""The credit writes authenticate from the key cache (no statement of their own) and
confirm in their own statement that the key is live: a key revoked after it was kept is
refused on its very next request, changes nothing and leaves no audit row."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from tests.api.conftest import World

from creditline import money
from creditline.auth import keys
from creditline.db import transaction
from creditline.db.tables import Alarm, AllocationRecord, AuditEvent, Customer, OutboxEvent


def _counts(engine: Engine) -> tuple[int, int]:
    with transaction(engine) as s:
        return (
            int(s.scalar(select(func.count()).select_from(AllocationRecord)) or 0),
            int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0),
        )


@pytest.mark.parametrize("idempotency_key", [None, "after-revocation"])
def test_a_kept_key_revoked_is_refused_on_its_next_request(
    client: TestClient, world: World, engine: Engine, idempotency_key: str | None
) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    extra = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
    first = client.post(path, json={"amount": "1.00"}, headers=world.h("a_operator"))
    assert first.status_code == 200, first.text
    secret_id = world.keys["a_operator"][0]
    assert keys.CACHE.get(engine, secret_id) is not None  # kept
    with transaction(engine) as s:
        keys.revoke(s, secret_id)
    before = _counts(engine)
    refused = client.post(path, json={"amount": "1.00"}, headers=world.h("a_operator", **extra))
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert _counts(engine) == before  # no record, no audit row
    assert keys.CACHE.get(engine, secret_id) is None  # forgotten
    again = client.post(path, json={"amount": "1.00"}, headers=world.h("a_operator", **extra))
    assert again.status_code == 401


def test_a_wrong_secret_for_a_kept_key_is_refused(client: TestClient, world: World) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    assert client.post(path, json={"amount": "1.00"}, headers=world.h("a_operator")).is_success
    secret_id = world.keys["a_operator"][0]
    forged = {"Authorization": f"Bearer {secret_id}:{'x' * 40}"}
    answer = client.post(path, json={"amount": "1.00"}, headers=forged)
    assert answer.status_code == 401


def test_an_allocation_that_raises_an_alarm_answers_and_records_it(
    client: TestClient, world: World, engine: Engine
) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    assert client.post(path, json={"amount": "1.00"}, headers=world.h("a_operator")).is_success
    with transaction(engine) as s:  # consumed beyond the credit, no threshold fired yet
        s.execute(
            update(Customer)
            .where(Customer.uin == world.a_customer)
            .values(consumed=Customer.total_credit + 100_000, fired_thresholds=[])
        )
    fast = client.app.state.fast_credit  # type: ignore[attr-defined]
    before = (fast.statements, getattr(fast, "round_trips", 0))
    answer = client.post(path, json={"amount": "1.00"}, headers=world.h("a_operator"))
    assert answer.status_code == 200, answer.text
    with transaction(engine) as s:
        alarm = s.scalars(select(Alarm).order_by(Alarm.id.desc())).first()
        assert alarm is not None and alarm.customer_uin == world.a_customer
        assert alarm.threshold == 100 and alarm.cause == "allocation"
        customer = s.get(Customer, (world.a, world.a_customer))
        assert customer is not None and customer.fired_thresholds == [75, 90, 100]
        events = [e.type for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]
    assert answer.json()["alarm_id"] == alarm.id
    assert events[-2:] == ["credit.allocation_recorded", "credit.threshold_reached"]
    # PostgreSQL: the fast path's one statement, which changes a customer only where the
    # alarm rule leaves its fired set as it is, refused itself whole; the ordinary path
    # raised the alarm. SQLite's fast path: BEGIN, the pool, the customer, the record, its
    # event, the alarm, its event, the fired set, the audit row, COMMIT.
    if engine.dialect.name == "postgresql":
        assert (fast.statements - before[0], fast.round_trips - before[1]) == (1, 1)
    else:
        assert fast.statements - before[0] == 10


def test_an_allocation_that_re_arms_thresholds_answers_on_the_fast_path(
    client: TestClient, world: World, engine: Engine
) -> None:
    path = f"/v1/customers/{world.a_customer}/allocate"
    assert client.post(path, json={"amount": "1.00"}, headers=world.h("a_operator")).is_success
    with transaction(engine) as s:  # 95 % used, 75 and 90 fired
        s.execute(
            update(Customer)
            .where(Customer.uin == world.a_customer)
            .values(consumed=Customer.total_credit * 95 // 100, fired_thresholds=[75, 90])
        )
        customer = s.get(Customer, (world.a, world.a_customer))
        assert customer is not None
        total = customer.total_credit
    fast = client.app.state.fast_credit  # type: ignore[attr-defined]
    answered = fast.answered
    # Enough to fall below 90 % but not below 75 %: 90 re-arms, no alarm.
    amount = money.to_text(total * 20 // 100)
    answer = client.post(path, json={"amount": amount}, headers=world.h("a_operator"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["alarm_id"] is None
    assert fast.answered == answered + 1  # on the fast path, on either engine
    with transaction(engine) as s:
        customer = s.get(Customer, (world.a, world.a_customer))
        assert customer is not None and customer.fired_thresholds == [75]

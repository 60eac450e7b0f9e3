"""Webhooks end to end: usage import -> alarm -> outbox -> worker -> signed POST received."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select
from tests.notify.support import OPERATOR, Receiver, consume, customer_with_credit, drain

from creditline.config import Settings
from creditline.db import transaction
from creditline.db.tables import Delivery
from creditline.ledger import credit
from creditline.notify import endpoints
from creditline.notify.deliveries import Backoff
from creditline.notify.outbox import ALLOCATION_RECORDED, THRESHOLD_REACHED
from creditline.notify.worker import Worker

# The receivers listen on 127.0.0.1: these tests opt in to private targets explicitly.
SETTINGS = Settings(
    smtp_host="", webhook_timeout_s=30.0, smtp_timeout_s=30.0, webhook_allow_private_targets=True
)


def add_endpoint(engine: Engine, partner_id: int, receiver: Receiver, *types: str) -> int:
    with transaction(engine) as s:
        endpoint = endpoints.add_endpoint(
            s,
            partner_id=partner_id,
            url=receiver.url,
            event_types=list(types) or None,
            allow_private_targets=True,
        )
        receiver.secrets.append(endpoints.secret_of(s, endpoint))
        return endpoint.id


def test_design_alarm_scenario_reaches_the_webhook_signed(
    engine: Engine, receiver: Receiver
) -> None:
    # DESIGN §3: credit 100.00. One import to 95.00 reaches 75 and 90 at once: one alarm,
    # naming 90. Then 105.00: 100. A refund back to 65.00 re-arms 75 and 90 silently;
    # usage to 95.00 again raises one alarm naming 90.
    partner_id, uin = customer_with_credit(engine, credit_cents=10_000, name="Blue Sky Ltd")
    add_endpoint(engine, partner_id, receiver, THRESHOLD_REACHED)
    worker = Worker(engine, SETTINGS)
    assert consume(engine, uin, "95.00") == [90]
    assert consume(engine, uin, "10.00") == [100]
    assert consume(engine, uin, "40.00", kind="refund") == []
    assert consume(engine, uin, "30.00") == [90]
    drain(worker)
    worker.close()

    assert receiver.bad_signatures == []
    bodies = [r.body for r in receiver.successes()]
    assert all(b is not None and set(b) == {"type", "timestamp", "data"} for b in bodies)
    # Deliveries run in parallel, so arrival order is not promised; alarm ids are.
    data = sorted((b["data"] for b in bodies if b is not None), key=lambda d: d["alarm_id"])
    assert [d["threshold"] for d in data] == [90, 100, 90]
    first = data[0]
    assert first["partner_id"] == partner_id
    assert first["customer_uin"] == uin
    assert first["customer_name"] == "Blue Sky Ltd"
    assert first["utilization_percent"] == "95.00"
    assert (first["total_credit"], first["consumed"], first["available_credit"]) == (
        "100.00",
        "95.00",
        "5.00",
    )
    assert first["occurred_at"]
    assert (data[1]["consumed"], data[1]["available_credit"]) == ("105.00", "-5.00")
    assert all(b is not None and b["type"] == THRESHOLD_REACHED for b in bodies)
    # One delivery per event and endpoint, each with its own stable webhook-id.
    assert len({r.webhook_id for r in receiver.successes()}) == 3


def test_allocation_records_go_to_subscribed_endpoints_only(
    engine: Engine, receiver: Receiver
) -> None:
    other = Receiver().start()
    stranger = Receiver().start()
    try:
        partner_id, uin = customer_with_credit(engine)
        stranger_id, _ = customer_with_credit(engine)
        # Events handed over before an endpoint existed are not sent to it.
        drain(Worker(engine, SETTINGS))
        add_endpoint(engine, partner_id, receiver, ALLOCATION_RECORDED)
        add_endpoint(engine, partner_id, other, THRESHOLD_REACHED)
        # Another partner's endpoint never sees this partner's events.
        add_endpoint(engine, stranger_id, stranger)
        consume(engine, uin, "80.00")
        with transaction(engine) as s:
            credit.allocate_credit(
                s, partner_id=partner_id, customer_uin=uin, amount=500, origin=OPERATOR
            )
        drain(Worker(engine, SETTINGS))
        got = [r.body for r in receiver.successes() if r.body]
        assert [b["type"] for b in got] == [ALLOCATION_RECORDED]
        assert got[0]["data"]["change"] == "5.00"
        assert got[0]["data"]["customer_uin"] == uin
        assert [r.body["data"]["threshold"] for r in other.successes() if r.body] == [75]
        assert stranger.received == []
        assert receiver.bad_signatures == other.bad_signatures == []
    finally:
        other.stop()
        stranger.stop()


def test_receiver_down_then_back_each_event_succeeds_once(
    engine: Engine, receiver: Receiver
) -> None:
    partner_id, uin = customer_with_credit(engine, credit_cents=10_000)
    add_endpoint(engine, partner_id, receiver, THRESHOLD_REACHED)
    receiver.fail_first = 7
    assert consume(engine, uin, "75.00") == [75]
    assert consume(engine, uin, "15.00") == [90]
    assert consume(engine, uin, "10.00") == [100]
    fast = Backoff(base=timedelta(milliseconds=5), cap=timedelta(milliseconds=40))
    worker = Worker(engine, SETTINGS, backoff=fast)
    drain(worker)
    worker.close()

    refused = [r for r in receiver.received if r.status == 503]
    assert len(refused) == 7
    ok = [r.webhook_id for r in receiver.successes()]
    assert sorted(ok) == sorted(set(ok)) and len(ok) == 3
    assert receiver.bad_signatures == []
    with transaction(engine) as s:
        rows = list(s.execute(select(Delivery)).scalars())
        assert {d.status for d in rows} == {"delivered"}
        assert sum(d.attempts for d in rows) == 10
        log = [
            a
            for d in rows
            for a in endpoints.delivery_log(s, partner_id=partner_id, delivery_id=d.id)
        ]
    assert sorted(a.status_code for a in log if not a.succeeded) == [503] * 7
    assert all(a.latency_ms >= 0 for a in log)
    assert all("503" in a.error for a in log if not a.succeeded)


def test_rotated_secret_signs_with_both_during_the_overlap(
    engine: Engine, receiver: Receiver
) -> None:
    partner_id, uin = customer_with_credit(engine)
    endpoint_id = add_endpoint(engine, partner_id, receiver, THRESHOLD_REACHED)
    old_secret = receiver.secrets[0]
    with transaction(engine) as s:
        rotated = endpoints.rotate_secret(
            s, partner_id=partner_id, endpoint_id=endpoint_id, overlap=timedelta(hours=1)
        )
        new_secret = endpoints.secret_of(s, rotated)
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    # A receiver still on the old secret verifies during the window...
    consume(engine, uin, "75.00")
    drain(Worker(engine, SETTINGS))
    assert len(receiver.successes()) == 1 and receiver.bad_signatures == []
    # ...and so does one already on the new secret.
    receiver.secrets[:] = [new_secret]
    consume(engine, uin, "15.00")
    drain(Worker(engine, SETTINGS))
    assert len(receiver.successes()) == 2 and receiver.bad_signatures == []
    # Once the window is over, only the new secret signs.
    receiver.secrets[:] = [old_secret]
    with transaction(engine) as s:
        endpoints.rotate_secret(
            s, partner_id=partner_id, endpoint_id=endpoint_id, overlap=timedelta(0)
        )
    consume(engine, uin, "10.00")
    worker = Worker(engine, SETTINGS)
    drain(worker, until=lambda: len(receiver.received) == 3)
    assert len(receiver.bad_signatures) == 1


def test_test_event_redelivery_and_log(engine: Engine, receiver: Receiver) -> None:
    partner_id, _ = customer_with_credit(engine)
    endpoint_id = add_endpoint(engine, partner_id, receiver, THRESHOLD_REACHED)
    with transaction(engine) as s:
        delivery_id = endpoints.send_test(s, partner_id=partner_id, endpoint_id=endpoint_id).id
    worker = Worker(engine, SETTINGS)
    assert worker.run_once(delivery_ids=[delivery_id]) == 1
    assert [r.body["type"] for r in receiver.successes() if r.body] == ["webhook.test"]
    with transaction(engine) as s:
        assert endpoints.redeliver(s, partner_id=partner_id, delivery_id=delivery_id).status == (
            "pending"
        )
    drain(worker)
    ids = [r.webhook_id for r in receiver.successes()]
    assert len(ids) == 2 and ids[0] == ids[1]  # the same webhook-id: receivers dedupe on it
    with transaction(engine) as s:
        log = endpoints.delivery_log(s, partner_id=partner_id, delivery_id=delivery_id)
        assert [(a.succeeded, a.status_code) for a in log] == [(True, 200), (True, 200)]
        delivery = endpoints.get_delivery(s, partner_id, delivery_id)
        assert (delivery.status, delivery.attempts) == ("delivered", 2)
    worker.close()

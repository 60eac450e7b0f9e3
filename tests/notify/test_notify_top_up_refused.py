"""A refused automatic top-up reaches the partner through every channel, as a threshold
alarm does: its message centre at once, its subscribed webhooks (signed) and its email
recipients after commit, through the same outbox; never the customer's own address."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import Engine
from tests.notify.support import Receiver, SmtpSink, consume, customer_with_credit, drain
from tests.notify.test_notify_webhooks import SETTINGS, add_endpoint

from creditline.config import Settings
from creditline.db import transaction
from creditline.ledger import top_ups
from creditline.notify import inbox, recipients
from creditline.notify.outbox import TOP_UP_REFUSED
from creditline.notify.worker import Worker


def _refusing_rule(engine: Engine, partner_id: int) -> None:
    # A ceiling at the customer's credit: every top-up is refused.
    with transaction(engine) as s:
        top_ups.set_partner_rule(
            s,
            partner_id=partner_id,
            rule=top_ups.check_rule(below=50_00, amount=20_00, monthly_cap=100_00, ceiling=100_00),
        )


def test_a_refused_top_up_reaches_the_webhook_and_the_message_centre(
    engine: Engine, receiver: Receiver
) -> None:
    partner_id, uin = customer_with_credit(engine, credit_cents=100_00, name="Blue Sky Ltd")
    _refusing_rule(engine, partner_id)
    add_endpoint(engine, partner_id, receiver, TOP_UP_REFUSED)
    consume(engine, uin, "60.00")
    consume(engine, uin, "1.00")  # refused again for the same reason: not again
    with transaction(engine) as s:
        notices, _ = inbox.notices_page(s, partner_id=partner_id, limit=10)
        assert [n.kind for n in notices] == ["top_up_refused"]
        assert "Blue Sky Ltd" in notices[0].message and "ceiling" in notices[0].message
    worker = Worker(engine, SETTINGS)
    drain(worker)
    worker.close()
    assert receiver.bad_signatures == []
    (body,) = [r.body for r in receiver.successes()]
    assert body is not None and body["type"] == TOP_UP_REFUSED
    data = body["data"]
    assert (data["customer_uin"], data["customer_name"]) == (uin, "Blue Sky Ltd")
    assert (data["reason"], data["rule_scope"], data["amount"]) == (
        "ceiling",
        "partner_default",
        "20.00",
    )
    assert data["rule"] == {
        "available_below": "50.00",
        "utilization_percent": None,
        "amount": "20.00",
        "monthly_cap": "100.00",
        "ceiling": "100.00",
    }
    assert (data["total_credit"], data["consumed"], data["available_credit"]) == (
        "100.00",
        "60.00",
        "40.00",
    )
    assert data["topped_up_this_month"] == "0.00" and data["month"] and data["occurred_at"]


def _plain(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_refused_top_up_is_emailed_to_the_partners_recipients_only(
    engine: Engine, smtp: SmtpSink
) -> None:
    partner_id, uin = customer_with_credit(
        engine, credit_cents=100_00, email="owner@blue.example", name="Blue Sky Ltd"
    )
    with transaction(engine) as s:
        recipients.update_email_settings(
            s, partner_id=partner_id, recipients=["finance@acme.example"], email_customer=True
        )
    _refusing_rule(engine, partner_id)
    settings = Settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="alarms@acme.example",
        public_url="https://console.acme.example/",
        smtp_timeout_s=30,
    )
    drain(Worker(engine, settings))
    consume(engine, uin, "60.00")  # no threshold reached (60 %): only the refusal
    drain(Worker(engine, settings))
    assert [tos for _, tos in smtp.envelopes] == [["finance@acme.example"]]
    message = smtp.messages[0]
    assert "Automatic top-up refused" in message["Subject"]
    plain = _plain(message)
    assert "ceiling" in plain and "20.00 USD" in plain and "40.00 USD" in plain
    assert f"https://console.acme.example/customers/{uin}" in plain

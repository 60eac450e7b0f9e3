"""A customer's own alarms (issue 17): off by default; the partner's setting or the
customer's own override sends them by email and into the customer's view, with the
partner's name and contact and the customer's own figures only; one per change, naming
the highest threshold, through the same outbox."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import Engine, select
from tests.notify.support import SmtpSink, consume, customer_with_credit, drain

from creditline.config import Settings
from creditline.db import transaction
from creditline.db.tables import CustomerAlarm
from creditline.ledger import customer_settings, customer_view
from creditline.ledger.accounts import create_customer
from creditline.notify.worker import Worker


def _settings(smtp: SmtpSink) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="alarms@acme.example",
        public_url="https://billing.acme.example/",
        smtp_timeout_s=30,
    )


def _text(message: EmailMessage) -> str:
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    return str(plain.get_content())


def _received(engine: Engine) -> list[tuple[int, int]]:
    with transaction(engine) as s:
        return [
            (a.customer_uin, a.alarm_id)
            for a in s.execute(select(CustomerAlarm).order_by(CustomerAlarm.id)).scalars()
        ]


def test_off_by_default(engine: Engine, smtp: SmtpSink) -> None:
    _, uin = customer_with_credit(engine, credit_cents=10_000, email="owner@blue.example")
    assert consume(engine, uin, "95.00") == [90]
    drain(Worker(engine, _settings(smtp)))
    assert smtp.messages == [] and _received(engine) == []


def test_the_partner_setting_sends_each_alarm_to_its_customer(
    engine: Engine, smtp: SmtpSink
) -> None:
    partner_id, uin = customer_with_credit(
        engine, credit_cents=10_000, email="owner@blue.example", name="Blue Sky"
    )
    with transaction(engine) as s:
        other = create_customer(s, partner_id=partner_id, name="Other Co", email="o@x.example")
        customer_settings.update_customer_settings(
            s, partner_id=partner_id, customer_alarms=True, contact="help@acme.example"
        )
        # The other customer is set otherwise: it receives nothing.
        customer_settings.set_customer_alarms(
            s, partner_id=partner_id, customer_uin=other.uin, enabled=False
        )
    worker = Worker(engine, _settings(smtp))
    drain(worker)
    # One change reaches 75 and 90: one alarm, naming 90.
    assert consume(engine, uin, "95.00") == [90]
    consume(engine, other.uin, "5.00")
    drain(worker)
    assert [tos for _, tos in smtp.envelopes] == [["owner@blue.example"]]
    message = smtp.messages[0]
    assert message["Subject"] == "Your credit with Acme Cloud: 90% threshold reached"
    text = _text(message)
    for part in ("Blue Sky", "95.00 USD", "100.00 USD", "5.00 USD", "help@acme.example"):
        assert part in text, (part, text)
    # Nothing of the partner's: not its pool, not its console, not another customer.
    assert "pool" not in text.lower() and "/customers/" not in text and "Other Co" not in text
    assert [u for u, _ in _received(engine)] == [uin]
    with transaction(engine) as s:
        seen = customer_view.received_alarms(s, partner_id=partner_id, customer_uin=uin)
        assert [(a.threshold, a.thresholds_reached) for a in seen] == [(90, [75, 90])]
        assert customer_view.received_alarms(s, partner_id=partner_id, customer_uin=other.uin) == []


def test_a_customer_override_sends_with_the_partner_setting_off(
    engine: Engine, smtp: SmtpSink
) -> None:
    partner_id, uin = customer_with_credit(engine, credit_cents=10_000, email="")
    with transaction(engine) as s:
        customer_settings.set_customer_alarms(
            s, partner_id=partner_id, customer_uin=uin, enabled=True
        )
    consume(engine, uin, "80.00")
    drain(Worker(engine, _settings(smtp)))
    # No address: no email, but the alarm is in the customer's view.
    assert smtp.messages == [] and [u for u, _ in _received(engine)] == [uin]

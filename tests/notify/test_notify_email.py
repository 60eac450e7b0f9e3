"""Alarm emails through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import Engine
from tests.notify.support import SmtpSink, consume, customer_with_credit, drain

from creditline.config import Settings
from creditline.db import transaction
from creditline.notify import recipients
from creditline.notify.deliveries import Backoff
from creditline.notify.worker import Worker


def _parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def test_alarm_email_reaches_recipients_and_the_customer(engine: Engine, smtp: SmtpSink) -> None:
    partner_id, uin = customer_with_credit(
        engine, credit_cents=20_000, email="owner@blue.example", name="Blue <Sky> & Co"
    )
    with transaction(engine) as s:
        recipients.update_email_settings(
            s,
            partner_id=partner_id,
            recipients=["finance@acme.example", "ops@acme.example"],
            email_customer=True,
        )
    settings = Settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="alarms@acme.example",
        public_url="https://console.acme.example/",
        smtp_timeout_s=30,
    )
    drain(Worker(engine, settings))  # the grant and allocation: no email for those
    assert smtp.messages == []
    assert consume(engine, uin, "185.50") == [90]
    drain(Worker(engine, settings))

    assert sorted(to for _, tos in smtp.envelopes for to in tos) == [
        "finance@acme.example",
        "ops@acme.example",
        "owner@blue.example",
    ]
    assert {frm for frm, _ in smtp.envelopes} == {"alarms@acme.example"}
    message = smtp.messages[0]
    assert "90% threshold" in message["Subject"]
    assert "92.75%" in message["Subject"]
    plain, html = _parts(message)
    for text in (plain, html):
        assert f"{uin}" in text
        assert "90%" in text
        assert "200.00 USD" in text  # total credit
        assert "185.50 USD" in text  # consumed
        assert "14.50 USD" in text  # available
        assert f"https://console.acme.example/customers/{uin}" in text
    assert "Blue <Sky> & Co" in plain
    assert "Blue &lt;Sky&gt; &amp; Co" in html  # escaped in HTML


def test_no_email_when_the_partner_has_no_recipients(engine: Engine, smtp: SmtpSink) -> None:
    partner_id, uin = customer_with_credit(engine, email="owner@blue.example")
    settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp.port)
    consume(engine, uin, "80.00")
    drain(Worker(engine, settings))
    assert smtp.messages == []
    with transaction(engine) as s:
        assert recipients.email_settings(s, partner_id).recipients == []


def test_smtp_down_is_retried(engine: Engine, smtp: SmtpSink) -> None:
    partner_id, uin = customer_with_credit(engine)
    with transaction(engine) as s:
        recipients.update_email_settings(s, partner_id=partner_id, add=["fin@acme.example"])
    port = smtp.port
    smtp.stop()
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_s=30)
    fast = Backoff(base=timedelta(milliseconds=5), cap=timedelta(milliseconds=20))
    worker = Worker(engine, settings, backoff=fast)
    consume(engine, uin, "80.00")
    worker.run_once()
    worker.run_once()
    assert smtp.messages == []
    back = SmtpSink(port).start()
    try:
        drain(worker)
        assert len(back.messages) == 1
    finally:
        back.stop()

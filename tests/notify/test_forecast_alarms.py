"""Forecast alarms through every channel: the message centre, email to the partner's
recipients, and signed webhooks, from the same outbox as threshold alarms."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import Engine
from tests.notify.support import Receiver, SmtpSink, customer_with_credit, drain
from tests.notify.test_notify_webhooks import SETTINGS, add_endpoint

from creditline.config import Settings
from creditline.db import transaction
from creditline.ledger import forecast, usage
from creditline.notify import inbox, recipients
from creditline.notify.outbox import FORECAST_EXHAUSTION, THRESHOLD_REACHED
from creditline.notify.worker import Worker


def _fortnight(engine: Engine, uin: int, amount: str) -> None:
    """Usage on each of the last 14 days: a burn rate of ``amount`` a day."""
    today = forecast.today()
    records = [
        usage.parse_record(
            {
                "event_id": f"fc-{uin}-{n}",
                "customer_uin": uin,
                "product": "cvm",
                "list_amount": amount,
                "voucher_amount": "0",
                "occurred_at": f"{(today - timedelta(days=n)).isoformat()}T06:00:00Z",
            }
        )
        for n in range(1, 15)
    ]
    with transaction(engine) as s:
        usage.ingest(s, records)


def test_forecast_alarm_reaches_the_webhook_signed_and_the_message_centre(
    engine: Engine, receiver: Receiver
) -> None:
    # 2,000.00 of credit, 14 days of 100.00: 600.00 left, 6 days at 100 a day.
    partner_id, uin = customer_with_credit(engine, credit_cents=2_000_00, name="Blue Sky Ltd")
    add_endpoint(engine, partner_id, receiver, FORECAST_EXHAUSTION)
    _fortnight(engine, uin, "100.00")
    worker = Worker(engine, SETTINGS)
    drain(worker)
    worker.close()
    assert receiver.bad_signatures == []
    bodies = [r.body for r in receiver.successes()]
    assert len(bodies) == 1 and bodies[0] is not None
    assert bodies[0]["type"] == FORECAST_EXHAUSTION
    data = bodies[0]["data"]
    today = forecast.today()
    assert data == {
        "partner_id": partner_id,
        "customer_uin": uin,
        "customer_name": "Blue Sky Ltd",
        "window_days": 7,
        "burn_rate": "100.00",
        "runs_out_on": (today + timedelta(days=6)).isoformat(),
        "days_left": 6,
        "total_credit": "2000.00",
        "consumed": "1400.00",
        "available_credit": "600.00",
        "cause": "usage",
        "occurred_at": data["occurred_at"],
    }
    with transaction(engine) as s:
        notices, _ = inbox.notices_page(s, partner_id=partner_id, limit=10)
        texts = [n.message for n in notices if n.kind == "forecast_exhaustion"]
    assert len(texts) == 1 and "Blue Sky Ltd" in texts[0] and "in 6 days" in texts[0], texts


def test_a_threshold_only_endpoint_gets_no_forecast_alarm(
    engine: Engine, receiver: Receiver
) -> None:
    partner_id, uin = customer_with_credit(engine, credit_cents=2_000_00)
    add_endpoint(engine, partner_id, receiver, THRESHOLD_REACHED)
    _fortnight(engine, uin, "100.00")
    worker = Worker(engine, SETTINGS)
    drain(worker)
    worker.close()
    assert receiver.successes() == []


def test_forecast_alarm_email(engine: Engine, smtp: SmtpSink) -> None:
    partner_id, uin = customer_with_credit(
        engine, credit_cents=2_000_00, email="owner@blue.example", name="Blue <Sky>"
    )
    with transaction(engine) as s:
        recipients.update_email_settings(
            s, partner_id=partner_id, recipients=["finance@acme.example"], email_customer=False
        )
    settings = Settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="alarms@acme.example",
        public_url="https://console.acme.example/",
        smtp_timeout_s=30,
    )
    _fortnight(engine, uin, "100.00")
    drain(Worker(engine, settings))
    assert [tos for _, tos in smtp.envelopes] == [["finance@acme.example"]]
    message: EmailMessage = smtp.messages[0]
    runs_out = (forecast.today() + timedelta(days=6)).isoformat()
    assert message["Subject"].strip() == (
        f"Forecast alarm: Blue <Sky> ({uin}) runs out of credit on {runs_out}"
    )
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    for text in (plain.get_content(), html.get_content()):
        assert runs_out in text and "100.00 USD a day" in text and "600.00 USD" in text
        assert f"https://console.acme.example/customers/{uin}" in text
    assert "Blue &lt;Sky&gt;" in html.get_content()

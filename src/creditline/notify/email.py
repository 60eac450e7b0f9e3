"""The email channel: an alarm (a threshold reached, a top-up refused) as a plain-text and
HTML message through SMTP."""

from __future__ import annotations

import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from creditline.config import Settings
from creditline.notify.deliveries import Job, Outcome
from creditline.notify.outbox import FORECAST_EXHAUSTION, THRESHOLD_REACHED, TOP_UP_REFUSED

_templates = Environment(
    loader=PackageLoader("creditline.notify", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def is_configured(settings: Settings) -> bool:
    """Whether an SMTP server is set; without one, no email deliveries are made."""
    return bool(settings.smtp_host)


def customer_link(settings: Settings, customer_uin: int) -> str:
    """The customer's page in the web console."""
    return f"{settings.public_url.rstrip('/')}/customers/{customer_uin}"


def compose(job: Job, settings: Settings) -> EmailMessage:
    """The alarm email for ``job``: which customer, which threshold, total credit,
    consumed, available, and a link to the customer in the console."""
    if job.event_type == FORECAST_EXHAUSTION and job.email is not None and job.sender is None:
        return _compose_forecast(job, settings)
    if job.event_type not in (THRESHOLD_REACHED, TOP_UP_REFUSED) or job.email is None:
        raise ValueError(f"no email for a {job.event_type} event")
    data: dict[str, Any] = dict(job.payload)
    if job.event_type == TOP_UP_REFUSED:
        return _compose_top_up_refused(job, settings, data)
    if job.sender is not None:
        return _compose_for_customer(job, settings, data)
    context = {
        **data,
        "link": customer_link(settings, int(data["customer_uin"])),
        "currency": "USD",
    }
    utilization = data.get("utilization_percent")
    used = f"{utilization}% of its credit" if utilization is not None else "credit it does not have"
    return _message(
        job,
        settings,
        subject=(
            f"Credit alarm: {data['customer_name']} ({data['customer_uin']}) has used {used} "
            f"- {data['threshold']}% threshold reached"
        ),
        template="threshold_reached",
        context=context,
    )


def _compose_forecast(job: Job, settings: Settings) -> EmailMessage:
    """The forecast alarm email: which customer, when it runs out at what burn rate, its
    credit, and a link to the customer in the console."""
    assert job.email is not None
    data: dict[str, Any] = dict(job.payload)
    context = {
        **data,
        "link": customer_link(settings, int(data["customer_uin"])),
        "currency": "USD",
    }
    return _message(
        job,
        settings,
        subject=(
            f"Forecast alarm: {data['customer_name']} ({data['customer_uin']}) runs out of credit "
            f"on {data['runs_out_on']}"
        ),
        template="forecast_exhaustion",
        context=context,
    )


#: Why a top-up was refused, as the email says it.
_REFUSED_BECAUSE = {
    "pool_short": "your pool has less remaining than the top-up's amount",
    "monthly_cap": "the rule's monthly cap is reached",
    "ceiling": "the top-up would take the customer's total credit above the rule's ceiling",
}


def _compose_top_up_refused(job: Job, settings: Settings, data: dict[str, Any]) -> EmailMessage:
    """The partner's email of a refused automatic top-up."""
    assert job.email is not None
    context = {
        **data,
        "because": _REFUSED_BECAUSE.get(str(data["reason"]), str(data["reason"])),
        "link": customer_link(settings, int(data["customer_uin"])),
        "currency": "USD",
    }
    return _message(
        job,
        settings,
        subject=(
            f"Automatic top-up refused: {data['customer_name']} ({data['customer_uin']}) "
            f"- {data['amount']} USD not allocated"
        ),
        template="top_up_refused",
        context=context,
    )


def _compose_for_customer(job: Job, settings: Settings, data: dict[str, Any]) -> EmailMessage:
    """A customer's own alarm: its figures, its partner's name and contact, a link to its
    view; nothing of the partner's pool or other customers."""
    assert job.sender is not None and job.email is not None
    context = {
        "threshold": data["threshold"],
        "utilization_percent": data.get("utilization_percent"),
        "total_credit": data["total_credit"],
        "consumed": data["consumed"],
        "available_credit": data["available_credit"],
        "occurred_at": data["occurred_at"],
        "customer_name": data["customer_name"],
        "customer_uin": data["customer_uin"],
        "partner_name": job.sender.partner_name,
        "contact": job.sender.contact,
        "link": f"{settings.public_url.rstrip('/')}/",
        "currency": "USD",
    }
    return _message(
        job,
        settings,
        subject=(
            f"Your credit with {job.sender.partner_name}: {data['threshold']}% threshold reached"
        ),
        template="customer_threshold_reached",
        context=context,
    )


def _message(
    job: Job, settings: Settings, *, subject: str, template: str, context: dict[str, Any]
) -> EmailMessage:
    """An email of ``job``: its headers, and ``template`` (text and HTML) with ``context``."""
    assert job.email is not None
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.smtp_from
    message["To"] = job.email
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=job.message_id)
    message["X-Creditline-Event"] = job.message_id
    message.set_content(_templates.get_template(f"{template}.txt").render(context))
    message.add_alternative(
        _templates.get_template(f"{template}.html").render(context), subtype="html"
    )
    return message


def deliver(job: Job, settings: Settings) -> Outcome:
    """Send the alarm email; an SMTP or network failure is retried."""
    if not is_configured(settings):
        return Outcome(False, 0, error="no SMTP server is configured")
    message = compose(job, settings)
    started = time.monotonic()
    try:
        _send(message, settings)
    except (smtplib.SMTPException, OSError) as exc:
        latency = int((time.monotonic() - started) * 1000)
        code = getattr(exc, "smtp_code", None)
        return Outcome(
            False,
            latency,
            status_code=code if isinstance(code, int) else None,
            error=f"{exc.__class__.__name__}: {exc}",
        )
    return Outcome(True, int((time.monotonic() - started) * 1000), status_code=250)


def _send(message: EmailMessage, settings: Settings) -> None:
    timeout = settings.smtp_timeout_s
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.smtp_security == "tls":
        client = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=context
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        if settings.smtp_security == "starttls":
            client.starttls(context=context)
        if settings.smtp_user:
            client.login(settings.smtp_user, settings.smtp_password)
        client.send_message(message)

"""A customer's own threshold alarms (issue 17): while its partner lets it receive them
(the partner's setting, or the customer's own override), each alarm of the customer is
put in the customer's view and emailed to the customer's address, with the partner's
name and contact and the customer's own figures only — never the partner's pool or
another customer.

They leave through the same outbox as the partner's alarms: when the worker hands a
``credit.threshold_reached`` event over to its deliveries, it also writes the customer's
copy (``customer_alarms``) and a customer email delivery (target ``customer:<address>``).
So it is the same alarm — one per change, naming the highest threshold reached — and
whether the customer receives it is decided by the settings at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from creditline.db.tables import Customer, CustomerAlarm, Partner
from creditline.ledger import customer_settings

#: The target prefix of a customer's own alarm email.
TARGET = "customer:"


@dataclass(frozen=True)
class Sender:
    """Who a customer's alarm comes from: its partner, and how to reach it."""

    partner_name: str
    contact: str


def hand_over(
    session: Session,
    partner_id: int,
    payload: dict[str, Any],
    common: dict[str, Any],
    *,
    email_enabled: bool,
) -> list[dict[str, Any]]:
    """For one ``credit.threshold_reached`` event (its partner and payload): the customer's
    copy of its alarm, if the customer receives its alarms; returns the email delivery rows
    to add (none without an address)."""
    uin = int(payload["customer_uin"])
    customer = session.execute(
        select(Customer.email).where(Customer.partner_id == partner_id, Customer.uin == uin)
    ).one_or_none()
    if customer is None or not customer_settings.receives_alarms(
        session, partner_id=partner_id, customer_uin=uin
    ):
        return []
    alarm_id = int(payload["alarm_id"])
    already = session.execute(
        select(CustomerAlarm.id).where(
            CustomerAlarm.partner_id == partner_id, CustomerAlarm.alarm_id == alarm_id
        )
    ).first()
    if already is None:
        session.add(
            CustomerAlarm(
                partner_id=partner_id,
                customer_uin=uin,
                alarm_id=alarm_id,
                created_at=common["created_at"],
            )
        )
        session.flush()
    address = customer.email
    if not (email_enabled and address):
        return []
    return [
        common
        | {
            "channel": "email",
            "target": f"{TARGET}{address.lower()}",
            "endpoint_id": None,
            "email": address,
        }
    ]


def sender(session: Session, partner_id: int) -> Sender:
    """The partner's name and contact, as a customer's alarm names them."""
    name = session.execute(select(Partner.name).where(Partner.id == partner_id)).scalar_one()
    return Sender(name, customer_settings.customer_settings(session, partner_id).contact)


def mark_read(session: Session, *, partner_id: int, customer_uin: int, now: datetime) -> int:
    """The customer has seen its alarms: mark them read; returns how many were unread."""
    result = session.execute(
        update(CustomerAlarm)
        .where(
            CustomerAlarm.partner_id == partner_id,
            CustomerAlarm.customer_uin == customer_uin,
            CustomerAlarm.read_at.is_(None),
        )
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

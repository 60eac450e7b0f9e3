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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from creditline.db.tables import (
    Customer,
    CustomerAlarm,
    CustomerAlarmSetting,
    CustomerViewSettings,
    Partner,
)
from creditline.ledger import customer_settings
from creditline.ledger.customer_settings import CustomerSettings

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
    return hand_over_many(session, [(partner_id, payload, common)], email_enabled=email_enabled)[0]


def hand_over_many(
    session: Session,
    events: Sequence[tuple[int, dict[str, Any], dict[str, Any]]],
    *,
    email_enabled: bool,
) -> list[list[dict[str, Any]]]:
    """:func:`hand_over` for each of ``events`` ((partner, payload, common), in order): the
    same copies, written in the same order, and each event's email delivery rows; by four
    reads whatever their number (the customers' addresses, their own settings, their
    partners' settings, the copies already made), not four per alarm."""
    if not events:
        return []
    keys = sorted({(partner_id, int(payload["customer_uin"])) for partner_id, payload, _ in events})
    addresses = {
        (partner_id, uin): email
        for partner_id, uin, email in session.execute(
            select(Customer.partner_id, Customer.uin, Customer.email).where(
                tuple_(Customer.partner_id, Customer.uin).in_(keys)
            )
        ).tuples()
    }
    found = sorted(addresses)
    own = (
        {
            (partner_id, uin): enabled
            for partner_id, uin, enabled in session.execute(
                select(
                    CustomerAlarmSetting.partner_id,
                    CustomerAlarmSetting.customer_uin,
                    CustomerAlarmSetting.enabled,
                ).where(
                    tuple_(CustomerAlarmSetting.partner_id, CustomerAlarmSetting.customer_uin).in_(
                        found
                    )
                )
            ).tuples()
        }
        if found
        else {}
    )
    partner_ids = sorted({partner_id for partner_id, _ in found})
    defaults = (
        dict(
            session.execute(
                select(CustomerViewSettings.partner_id, CustomerViewSettings.customer_alarms).where(
                    CustomerViewSettings.partner_id.in_(partner_ids)
                )
            )
            .tuples()
            .all()
        )
        if partner_ids
        else {}
    )
    alarms = sorted({(partner_id, int(payload["alarm_id"])) for partner_id, payload, _ in events})
    made = set(
        session.execute(
            select(CustomerAlarm.partner_id, CustomerAlarm.alarm_id).where(
                tuple_(CustomerAlarm.partner_id, CustomerAlarm.alarm_id).in_(alarms)
            )
        ).tuples()
    )
    result: list[list[dict[str, Any]]] = []
    added = False
    for partner_id, payload, common in events:
        uin = int(payload["customer_uin"])
        receives = own.get((partner_id, uin))
        if receives is None:
            receives = defaults.get(partner_id, CustomerSettings().customer_alarms)
        if (partner_id, uin) not in addresses or not receives:
            result.append([])
            continue
        alarm_id = int(payload["alarm_id"])
        if (partner_id, alarm_id) not in made:
            made.add((partner_id, alarm_id))
            session.add(
                CustomerAlarm(
                    partner_id=partner_id,
                    customer_uin=uin,
                    alarm_id=alarm_id,
                    created_at=common["created_at"],
                )
            )
            added = True
        address = addresses[(partner_id, uin)]
        if not (email_enabled and address):
            result.append([])
            continue
        result.append(
            [
                common
                | {
                    "channel": "email",
                    "target": f"{TARGET}{address.lower()}",
                    "endpoint_id": None,
                    "email": address,
                }
            ]
        )
    if added:
        session.flush()
    return result


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

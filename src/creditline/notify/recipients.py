"""Per-partner email settings for alarms: the recipient list, and whether the customer's
own address is emailed too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import NotificationSettings
from creditline.errors import InvalidInput
from creditline.ledger.accounts import get_partner, lock_partner

MAX_RECIPIENTS = 20


@dataclass(frozen=True)
class EmailSettings:
    """Who is emailed when one of the partner's customers reaches a threshold."""

    partner_id: int
    recipients: list[str]
    email_customer: bool


def _address(value: str) -> str:
    address = value.strip()
    local, at, domain = address.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(address) > 320
        or any(c.isspace() or ord(c) < 32 or c in '<>,;"' for c in address)
    ):
        raise InvalidInput(f"{value!r} is not an email address", param="recipients")
    return address


def email_settings(session: Session, partner_id: int) -> EmailSettings:
    """The partner's settings (no recipients and no customer email until set)."""
    get_partner(session, partner_id)
    row = session.execute(
        select(NotificationSettings).where(NotificationSettings.partner_id == partner_id)
    ).scalar_one_or_none()
    if row is None:
        return EmailSettings(partner_id, [], False)
    return EmailSettings(partner_id, list(row.email_recipients), row.email_customer)


def update_email_settings(
    session: Session,
    *,
    partner_id: int,
    recipients: Sequence[str] | None = None,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    email_customer: bool | None = None,
) -> EmailSettings:
    """Replace the recipient list (``recipients``), or add and remove addresses, and/or set
    the customer switch. Addresses are kept in the order given, without repeats."""
    # The list is read, changed and written back: lock the partner's row first, so two
    # changes at once apply one after the other (none lost, the row inserted once).
    lock_partner(session, partner_id)
    current = email_settings(session, partner_id)
    listed = list(current.recipients) if recipients is None else [_address(r) for r in recipients]
    listed += [_address(a) for a in add]
    dropped = {_address(r).lower() for r in remove}
    unique: dict[str, str] = {}
    for address in listed:
        if address.lower() not in dropped:
            unique.setdefault(address.lower(), address)
    if len(unique) > MAX_RECIPIENTS:
        raise InvalidInput(f"at most {MAX_RECIPIENTS} recipients", param="recipients")
    values = EmailSettings(
        partner_id,
        list(unique.values()),
        current.email_customer if email_customer is None else email_customer,
    )
    with session.begin_nested():
        row = session.get(NotificationSettings, partner_id)
        if row is None:
            row = NotificationSettings(partner_id=partner_id)
            session.add(row)
        row.email_recipients = values.recipients
        row.email_customer = values.email_customer
        row.updated_at = utcnow()
        session.flush()
    return values

"""What a partner shows and sends to its customers (issue 17): the time zone its
statements cut calendar months in, whether a customer's allocation history shows remarks
or amounts only, whether customers receive their own threshold alarms (off by default,
each customer may be set otherwise), and the contact named to customers with them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import (
    Alarm,
    AllocationRecord,
    CustomerAlarmSetting,
    CustomerViewSettings,
    UsageEvent,
)
from creditline.errors import InvalidInput
from creditline.ledger.accounts import get_customer, get_partner

DEFAULT_TIME_ZONE = "UTC"
MAX_CONTACT = 320


@dataclass(frozen=True)
class CustomerSettings:
    """A partner's settings for its customers, defaults filled in."""

    time_zone: str = DEFAULT_TIME_ZONE
    show_remarks: bool = False
    customer_alarms: bool = False
    contact: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def validate_time_zone(name: str) -> str:
    """An IANA time zone name as stored (``UTC``, ``Asia/Singapore``); anything else is
    refused."""
    value = name.strip()
    if value != "UTC" and value not in available_timezones():
        raise InvalidInput(
            f"{name!r} is not a time zone name such as UTC or Asia/Singapore", param="time_zone"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{name!r} is not a known time zone", param="time_zone") from None
    return value


def customer_settings(session: Session, partner_id: int) -> CustomerSettings:
    """The partner's settings for its customers (the defaults until it sets any)."""
    row = session.get(CustomerViewSettings, partner_id)
    if row is None:
        return CustomerSettings()
    return CustomerSettings(
        time_zone=row.time_zone,
        show_remarks=row.show_remarks,
        customer_alarms=row.customer_alarms,
        contact=row.contact,
    )


def _month_start(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return datetime(local.year, local.month, 1, tzinfo=zone).astimezone(UTC)


def _recorded_before(session: Session, partner_id: int, moment: datetime) -> bool:
    """Whether anything a customer's statement shows (an allocation or withdrawal, usage,
    an alarm) was recorded before ``moment``."""
    for query in (
        select(AllocationRecord.id).where(
            AllocationRecord.partner_id == partner_id,
            AllocationRecord.customer_uin.is_not(None),
            AllocationRecord.created_at < moment,
        ),
        select(UsageEvent.id).where(
            UsageEvent.partner_id == partner_id, UsageEvent.ingested_at < moment
        ),
        select(Alarm.id).where(Alarm.partner_id == partner_id, Alarm.created_at < moment),
    ):
        if session.execute(query.limit(1)).first() is not None:
            return True
    return False


def update_customer_settings(
    session: Session,
    *,
    partner_id: int,
    time_zone: str | None = None,
    show_remarks: bool | None = None,
    customer_alarms: bool | None = None,
    contact: str | None = None,
) -> CustomerSettings:
    """Change the given settings (None: keep); every value is checked before any is
    written.

    A statement of a closed month never changes, and the time zone cuts every month: a new
    time zone is refused once anything a statement shows (an allocation or withdrawal,
    usage, an alarm) was recorded before the current month began in the zone in force,
    since closed months with changes in them would be cut anew."""
    get_partner(session, partner_id)
    zone = None if time_zone is None else validate_time_zone(time_zone)
    current = customer_settings(session, partner_id).time_zone
    began = _month_start(utcnow(), ZoneInfo(current))
    if zone is not None and zone != current and _recorded_before(session, partner_id, began):
        raise InvalidInput(
            f"the statements' time zone stays {current}: months with changes in them "
            "have closed, and their statements never change",
            param="time_zone",
        )
    if contact is not None:
        contact = contact.strip()
        if len(contact) > MAX_CONTACT:
            raise InvalidInput(f"contact is longer than {MAX_CONTACT} characters", param="contact")
    row = session.get(CustomerViewSettings, partner_id)
    if row is None:
        row = CustomerViewSettings(
            partner_id=partner_id,
            time_zone=DEFAULT_TIME_ZONE,
            show_remarks=False,
            customer_alarms=False,
            contact="",
            updated_at=utcnow(),
        )
        session.add(row)
    if zone is not None:
        row.time_zone = zone
    if show_remarks is not None:
        row.show_remarks = show_remarks
    if customer_alarms is not None:
        row.customer_alarms = customer_alarms
    if contact is not None:
        row.contact = contact
    row.updated_at = utcnow()
    session.flush()
    return customer_settings(session, partner_id)


def customer_alarm_override(session: Session, *, partner_id: int, customer_uin: int) -> bool | None:
    """The customer's own answer to "does it receive its alarms"; None: the partner's.
    Another partner's customer is missing."""
    get_customer(session, partner_id, customer_uin)
    return session.execute(
        select(CustomerAlarmSetting.enabled).where(
            CustomerAlarmSetting.partner_id == partner_id,
            CustomerAlarmSetting.customer_uin == customer_uin,
        )
    ).scalar_one_or_none()


def set_customer_alarms(
    session: Session, *, partner_id: int, customer_uin: int, enabled: bool | None
) -> bool:
    """Set whether this customer receives its own alarms (None: as its partner's setting
    says); returns whether it now does."""
    get_customer(session, partner_id, customer_uin)
    session.execute(
        delete(CustomerAlarmSetting).where(
            CustomerAlarmSetting.partner_id == partner_id,
            CustomerAlarmSetting.customer_uin == customer_uin,
        )
    )
    if enabled is not None:
        session.add(
            CustomerAlarmSetting(
                partner_id=partner_id,
                customer_uin=customer_uin,
                enabled=enabled,
                updated_at=utcnow(),
            )
        )
    session.flush()
    return receives_alarms(session, partner_id=partner_id, customer_uin=customer_uin)


def receives_alarms(session: Session, *, partner_id: int, customer_uin: int) -> bool:
    """Whether the customer receives its own threshold alarms now."""
    own = customer_alarm_override(session, partner_id=partner_id, customer_uin=customer_uin)
    if own is not None:
        return own
    return customer_settings(session, partner_id).customer_alarms

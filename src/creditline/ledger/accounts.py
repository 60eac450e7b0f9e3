"""Partners and customers: accounts whose ids (UINs) come from one number space."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import Account, Customer, Partner
from creditline.errors import InvalidInput, NotFound
from creditline.ledger import reports

PARTNER_KINDS = ("distributor", "reseller", "sub-reseller")
CUSTOMER_TYPES = ("personal", "company")
#: Identity verification: 0 none, 1 personal, 2 company.
IDENTITY_STATUSES = (0, 1, 2)


@dataclass(frozen=True)
class PoolState:
    """A partner's pool after an operation."""

    partner_id: int
    total: int
    allocated: int

    @property
    def remaining(self) -> int:
        return self.total - self.allocated


def _new_uin(session: Session, kind: str, at: datetime) -> int:
    return session.execute(
        insert(Account).values(kind=kind, created_at=at).returning(Account.uin)
    ).scalar_one()


def _text(value: str, *, param: str, limit: int, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{param} must not be empty", param=param)
    if len(value) > limit:
        raise InvalidInput(f"{param} is longer than {limit} characters", param=param)
    if any(ord(c) < 32 and c not in "\t" for c in value):
        raise InvalidInput(f"{param} must not contain control characters", param=param)
    return value


def create_partner(
    session: Session, *, name: str, kind: str, parent_id: int | None = None
) -> Partner:
    """Create a partner with an empty pool. A sub-reseller names its parent distributor."""
    name = _text(name, param="name", limit=200, required=True)
    if kind not in PARTNER_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(PARTNER_KINDS)}", param="kind")
    if kind == "sub-reseller":
        if parent_id is None:
            raise InvalidInput("a sub-reseller needs its parent distributor", param="parent")
        parent = session.get(Partner, parent_id)
        if parent is None:
            raise NotFound(f"no partner {parent_id}", param="parent")
        if parent.kind != "distributor":
            raise InvalidInput(f"partner {parent_id} is not a distributor", param="parent")
    elif parent_id is not None:
        raise InvalidInput("only a sub-reseller has a parent distributor", param="parent")
    now = utcnow()
    with session.begin_nested():
        uin = _new_uin(session, "partner", now)
        partner = Partner(
            id=uin,
            name=name,
            kind=kind,
            parent_id=parent_id,
            created_at=now,
            pool_total=0,
            pool_allocated=0,
            pool_from_distributor=0,
            thresholds=[75, 90, 100],
        )
        session.add(partner)
        session.flush()
    return partner


def create_customer(
    session: Session,
    *,
    partner_id: int,
    name: str,
    type: str = "personal",
    email: str = "",
    mobile: str = "",
    remark: str = "",
    identity_status: int = 0,
    associated_at: datetime | None = None,
) -> Customer:
    """Associate a new customer with ``partner_id``; it starts with no credit."""
    get_partner(session, partner_id)
    name = _text(name, param="name", limit=200, required=True)
    email = _text(email, param="email", limit=320)
    if email and ("@" not in email or " " in email):
        raise InvalidInput(f"{email!r} is not an email address", param="email")
    mobile = _text(mobile, param="mobile", limit=40)
    remark = _text(remark, param="remark", limit=500)
    if type not in CUSTOMER_TYPES:
        raise InvalidInput(f"type must be one of {', '.join(CUSTOMER_TYPES)}", param="type")
    if identity_status not in IDENTITY_STATUSES:
        raise InvalidInput("identity_status must be 0, 1 or 2", param="identity_status")
    now = utcnow()
    with session.begin_nested():
        uin = _new_uin(session, "customer", now)
        customer = Customer(
            uin=uin,
            partner_id=partner_id,
            name=name,
            type=type,
            email=email,
            mobile=mobile,
            remark=remark,
            identity_status=identity_status,
            associated_at=associated_at or now,
            total_credit=0,
            consumed=0,
            thresholds=None,
            fired_thresholds=[],
        )
        session.add(customer)
        session.flush()
    return customer


def get_partner(session: Session, partner_id: int) -> Partner:
    """The partner, or :class:`NotFound`."""
    partner = session.get(Partner, partner_id, populate_existing=True)
    if partner is None:
        raise NotFound(f"no partner {partner_id}", param="partner")
    return partner


def sub_resellers(session: Session, distributor_id: int) -> list[Partner]:
    """The distributor's second-level resellers, by id."""
    return list(
        session.execute(
            select(Partner).where(Partner.parent_id == distributor_id).order_by(Partner.id)
        ).scalars()
    )


def get_sub_reseller(session: Session, distributor_id: int, sub_id: int) -> Partner:
    """The distributor's second-level reseller ``sub_id``; another distributor's, or any
    other partner, is :class:`NotFound`, exactly as a missing one."""
    sub = session.execute(
        select(Partner)
        .where(Partner.id == sub_id, Partner.parent_id == distributor_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if sub is None:
        raise NotFound(f"no sub-reseller {sub_id}", param="sub_reseller_id")
    return sub


def lock_partner(session: Session, partner_id: int) -> None:
    """Lock the partner's row until the transaction ends, so that counting the partner's
    rows (its admins, its webhook endpoints) and the write that depends on the count are
    one step: a concurrent writer waits here and then counts what this one did. Writers
    that change only other tables take no conflicting lock (``FOR NO KEY UPDATE``). On
    SQLite, whose writers run one at a time (``BEGIN IMMEDIATE``), there is nothing to do.
    """
    found = session.execute(
        select(Partner.id).where(Partner.id == partner_id).with_for_update(key_share=True)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no partner {partner_id}", param="partner")


def get_customer(session: Session, partner_id: int | None, uin: int) -> Customer:
    """The customer ``uin`` of ``partner_id`` (any partner's when None, for platform tools).

    Another partner's customer is :class:`NotFound`, exactly as a missing one.
    """
    if partner_id is None:
        customer = reports.find_customer(session, uin)
    else:
        customer = session.execute(
            select(Customer)
            .where(Customer.uin == uin, Customer.partner_id == partner_id)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    if customer is None:
        raise NotFound(f"no customer {uin}", param="customer_uin")
    return customer


def set_remark(session: Session, *, partner_id: int, uin: int, remark: str) -> Customer:
    """Change a customer's remark."""
    customer = get_customer(session, partner_id, uin)
    customer.remark = _text(remark, param="remark", limit=500)
    session.flush()
    return customer


def pool_state(session: Session, partner_id: int) -> PoolState:
    """The partner's pool as it stands."""
    partner = get_partner(session, partner_id)
    return PoolState(partner.id, partner.pool_total, partner.pool_allocated)

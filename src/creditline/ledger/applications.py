"""Credit applications: a partner asks for more pool, and whoever fills its pool decides.

A reseller's or distributor's application goes to the platform, whose approval is a grant;
a second-level reseller's goes to its distributor, whose approval is a pool allocation
from the distributor's own pool. A decision is final; an approval that the rules of money
refuse (the distributor's pool is short) changes nothing and leaves the application pending.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from creditline.clock import utcnow
from creditline.db.tables import CreditApplication
from creditline.errors import CreditlineError, InvalidAmount, InvalidInput, NotFound
from creditline.ledger import pools, records
from creditline.ledger.accounts import get_partner
from creditline.money import MAX_CENTS

STATUSES = ("pending", "approved", "rejected")


class AlreadyDecided(CreditlineError):
    code = "application_already_decided"
    kind = "conflict"


def _note(text: str, param: str) -> str:
    text = text.strip()
    if len(text) > 500 or any(ord(c) < 32 and c != "\t" for c in text):
        raise InvalidInput(f"{param} must be at most 500 printable characters", param=param)
    return text


def apply(
    session: Session, *, partner_id: int, amount: int, reason: str, requested_by: str
) -> CreditApplication:
    """File an application for ``amount`` cents more pool."""
    if amount <= 0 or amount > MAX_CENTS:
        raise InvalidAmount("an application asks for a positive amount", param="amount")
    partner = get_partner(session, partner_id)
    application = CreditApplication(
        partner_id=partner_id,
        decider_id=partner.parent_id,
        amount=amount,
        reason=_note(reason, "reason"),
        status="pending",
        requested_by=requested_by,
        created_at=utcnow(),
        decision_note="",
    )
    with session.begin_nested():
        session.add(application)
        session.flush()
    return application


def get(
    session: Session, application_id: int, *, partner_id: int | None, decider_id: int | None
) -> CreditApplication:
    """One application, seen by its applicant (``partner_id``), by its deciding distributor
    (``decider_id``), or by the platform (both None). Anyone else: :class:`NotFound`."""
    query = select(CreditApplication).where(CreditApplication.id == application_id)
    if partner_id is not None:
        query = query.where(CreditApplication.partner_id == partner_id)
    if decider_id is not None:
        query = query.where(CreditApplication.decider_id == decider_id)
    found = session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no credit application {application_id}", param="application_id")
    return found


def listing(
    session: Session,
    *,
    partner_id: int | None = None,
    decider_id: int | None = None,
    platform: bool = False,
    status: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[CreditApplication], bool]:
    """Applications, newest first, and whether more follow: a partner's own, the ones a
    distributor decides, or (``platform``) the ones the platform decides."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", param="status")
    query = select(CreditApplication)
    if partner_id is not None:
        query = query.where(CreditApplication.partner_id == partner_id)
    elif decider_id is not None:
        query = query.where(CreditApplication.decider_id == decider_id)
    elif platform:
        query = query.where(CreditApplication.decider_id.is_(None))
    if status is not None:
        query = query.where(CreditApplication.status == status)
    if before_id is not None:
        query = query.where(CreditApplication.id < before_id)
    rows = list(
        session.execute(query.order_by(CreditApplication.id.desc()).limit(limit + 1)).scalars()
    )
    return rows[:limit], len(rows) > limit


def _claim(
    session: Session, application: CreditApplication, status: str, decided_by: str, note: str
) -> None:
    # Guarded on 'pending' so two deciders racing cannot both decide.
    claimed = session.execute(
        update(CreditApplication)
        .where(CreditApplication.id == application.id, CreditApplication.status == "pending")
        .values(status=status, decided_by=decided_by, decided_at=utcnow(), decision_note=note)
        .returning(CreditApplication.id)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if claimed is None:
        raise AlreadyDecided(f"credit application {application.id} is already decided")


def approve(
    session: Session,
    application_id: int,
    *,
    decider_id: int | None,
    origin: records.Origin,
    note: str = "",
) -> CreditApplication:
    """Approve: the platform (``decider_id`` None) grants, a distributor allocates pool."""
    note = _note(note, "note")
    with session.begin_nested():
        application = get(session, application_id, partner_id=None, decider_id=decider_id)
        if decider_id is None and application.decider_id is not None:
            # Only the platform's own applications are the platform's to approve.
            raise NotFound(f"no credit application {application_id}", param="application_id")
        _claim(session, application, "approved", origin.operator, note)
        remark = origin.remark or f"credit application {application.id}"
        origin = records.Origin(origin.operator, origin.source, remark, origin.idempotency_key)
        if application.decider_id is None:
            change = pools.grant(
                session, partner_id=application.partner_id, amount=application.amount, origin=origin
            )
        else:
            change = pools.allocate_pool(
                session,
                distributor_id=application.decider_id,
                sub_reseller_id=application.partner_id,
                amount=application.amount,
                origin=origin,
            )
        session.execute(
            update(CreditApplication)
            .where(CreditApplication.id == application.id)
            .values(record_id=change.record.id)
            .execution_options(synchronize_session=False)
        )
    return get(session, application_id, partner_id=None, decider_id=None)


def reject(
    session: Session, application_id: int, *, decider_id: int | None, decided_by: str, note: str
) -> CreditApplication:
    """Reject: nothing changes but the application's status."""
    note = _note(note, "note")
    with session.begin_nested():
        application = get(session, application_id, partner_id=None, decider_id=decider_id)
        if decider_id is None and application.decider_id is not None:
            raise NotFound(f"no credit application {application_id}", param="application_id")
        _claim(session, application, "rejected", decided_by, note)
    return get(session, application_id, partner_id=None, decider_id=None)

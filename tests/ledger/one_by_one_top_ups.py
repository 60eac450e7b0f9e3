"""The automatic top-ups of a usage batch made one after another, as the ledger made them
before they were set-based (issue 16.5): each top-up an allocation of its own
(:func:`creditline.ledger.credit.allocate_credit`), each month and each refusal an upsert of
its own, each alarmed refusal's event and notice written on their own. Kept as the
reference that ``tests/ledger/test_top_ups_set_based.py`` holds the set-based
:func:`creditline.ledger.top_ups.after_usage` equal to: same arguments, same answer, same
rows written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from creditline import money
from creditline.clock import utcnow
from creditline.db.tables import Partner, PartnerNotice, TopUpMonth
from creditline.ledger import records
from creditline.ledger.credit import CreditChange, allocate_credit
from creditline.ledger.outbox import TOP_UP_REFUSED
from creditline.ledger.outbox import enqueue as enqueue_event
from creditline.ledger.top_ups import (
    OPERATORS,
    REASONS,
    Applied,
    TopUp,
    month_of,
    refused_payload,
)

_months = TopUpMonth.metadata.tables[TopUpMonth.__tablename__]


def _upsert(session: Session) -> Any:
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(_months)


def _add_to_month(
    session: Session, *, partner_id: int, uin: int, month: str, amount: int, cap: int
) -> int | None:
    statement = _upsert(session).values(
        partner_id=partner_id,
        customer_uin=uin,
        month=month,
        topped_up=amount,
        top_ups=1,
        cap=cap,
        refused=None,
        updated_at=utcnow(),
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["partner_id", "customer_uin", "month"],
        set_={
            "topped_up": _months.c.topped_up + excluded.topped_up,
            "top_ups": _months.c.top_ups + 1,
            "cap": excluded.cap,
            "refused": None,
            "updated_at": excluded.updated_at,
        },
        where=_months.c.topped_up + excluded.topped_up <= excluded.cap,
    ).returning(_months.c.topped_up)
    return session.execute(statement).scalar_one_or_none()


def _note_refusal(
    session: Session, *, partner_id: int, uin: int, month: str, reason: str, cap: int
) -> bool:
    statement = _upsert(session).values(
        partner_id=partner_id,
        customer_uin=uin,
        month=month,
        topped_up=0,
        top_ups=0,
        cap=cap,
        refused=reason,
        updated_at=utcnow(),
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["partner_id", "customer_uin", "month"],
        set_={"refused": excluded.refused, "updated_at": excluded.updated_at},
        where=(_months.c.refused.is_(None)) | (_months.c.refused != excluded.refused),
    ).returning(literal(1))
    return session.execute(statement).scalar_one_or_none() is not None


def _month_totals(
    session: Session, wanted: Sequence[tuple[int, int]], month: str
) -> dict[tuple[int, int], int]:
    by_partner: dict[int, list[int]] = defaultdict(list)
    for partner_id, uin in wanted:
        by_partner[partner_id].append(uin)
    found: dict[tuple[int, int], int] = {}
    for partner_id, uins in sorted(by_partner.items()):
        for uin, total in session.execute(
            select(TopUpMonth.customer_uin, TopUpMonth.topped_up).where(
                TopUpMonth.partner_id == partner_id,
                TopUpMonth.customer_uin.in_(sorted(uins)),
                TopUpMonth.month == month,
            )
        ).tuples():
            found[(partner_id, uin)] = total
    return found


def _alarm(session: Session, row: Any, applied: Applied, *, reason: str, month: str) -> None:
    pool = session.execute(
        select(Partner.pool_total - Partner.pool_allocated).where(Partner.id == row.partner_id)
    ).scalar_one()
    topped_up = (
        session.execute(
            select(TopUpMonth.topped_up).where(
                TopUpMonth.partner_id == row.partner_id,
                TopUpMonth.customer_uin == row.uin,
                TopUpMonth.month == month,
            )
        ).scalar_one_or_none()
        or 0
    )
    now = utcnow()
    payload = refused_payload(
        row,
        applied,
        reason=reason,
        month=month,
        topped_up=topped_up,
        pool_remaining=pool,
        at=now,
    )
    enqueue_event(session, partner_id=row.partner_id, type=TOP_UP_REFUSED, payload=payload)
    session.execute(
        insert(PartnerNotice).values(
            partner_id=row.partner_id,
            kind="top_up_refused",
            message=(
                f"Automatic top-up of {money.to_display(applied.rule.amount)} for "
                f"{row.name} ({row.uin}) refused: {REASONS[reason]}."
            ),
            created_at=now,
        )
    )


def after_usage(
    session: Session,
    changed: Sequence[Any],
    raised: Mapping[int, int],
    rules: Mapping[int, Applied],
) -> list[TopUp]:
    """The top-ups of a usage batch, one allocation after another."""
    triggered = sorted(
        (
            row
            for row in changed
            if raised.get(row.uin, 0) > 0
            and row.uin in rules
            and rules[row.uin].rule.holds(total_credit=row.total_credit, consumed=row.consumed)
        ),
        key=lambda row: (row.partner_id, row.uin),
    )
    if not triggered:
        return []
    month = month_of(utcnow())
    totals = _month_totals(session, [(row.partner_id, row.uin) for row in triggered], month)
    remaining = {
        partner_id: session.execute(
            select(Partner.pool_total - Partner.pool_allocated).where(Partner.id == partner_id)
        ).scalar_one()
        for partner_id in sorted({row.partner_id for row in triggered})
    }
    made: list[TopUp] = []
    for row in triggered:
        applied = rules[row.uin]
        rule = applied.rule
        reason: str | None = None
        change: CreditChange | None = None
        if rule.ceiling is not None and row.total_credit + rule.amount > rule.ceiling:
            reason = "ceiling"
        elif totals.get((row.partner_id, row.uin), 0) + rule.amount > rule.monthly_cap:
            reason = "monthly_cap"
        elif rule.amount > remaining[row.partner_id]:
            reason = "pool_short"
        else:
            change = allocate_credit(
                session,
                partner_id=row.partner_id,
                customer_uin=row.uin,
                amount=rule.amount,
                origin=records.Origin(
                    operator=OPERATORS[applied.scope],
                    source="rule",
                    remark=rule.describe(total_credit=row.total_credit, consumed=row.consumed),
                ),
            )
            remaining[row.partner_id] -= rule.amount
            month = month_of(change.record.created_at)
            assert (
                _add_to_month(
                    session,
                    partner_id=row.partner_id,
                    uin=row.uin,
                    month=month,
                    amount=rule.amount,
                    cap=rule.monthly_cap,
                )
                is not None
            )
        if change is not None:
            made.append(TopUp(row.partner_id, row.uin, applied.scope, rule, month, change=change))
            continue
        assert reason is not None
        alarmed = _note_refusal(
            session,
            partner_id=row.partner_id,
            uin=row.uin,
            month=month,
            reason=reason,
            cap=rule.monthly_cap,
        )
        if alarmed:
            _alarm(session, row, applied, reason=reason, month=month)
        made.append(
            TopUp(
                row.partner_id,
                row.uin,
                applied.scope,
                rule,
                month,
                refused=reason,
                alarmed=alarmed,
            )
        )
    return made

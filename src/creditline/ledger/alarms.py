"""Alarm thresholds and the firing rule of DESIGN §3.

A threshold ``t`` is reached when ``consumed >= t% x total_credit`` (and, with no credit at
all, as soon as anything is consumed). After any change, the thresholds reached but not yet
fired raise **one** alarm naming the highest of them, and all of them count as fired; a
fired threshold no longer reached re-arms silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from creditline import money
from creditline.clock import utcnow
from creditline.db.tables import Alarm, Customer, Partner
from creditline.errors import InvalidInput
from creditline.ledger.accounts import get_customer, get_partner
from creditline.ledger.outbox import INSERT as INSERT_EVENT
from creditline.ledger.outbox import THRESHOLD_REACHED
from creditline.ledger.outbox import event as outbox_event

DEFAULT_THRESHOLDS = (75, 90, 100)
MAX_THRESHOLDS = 10


def validate_thresholds(values: Iterable[object]) -> list[int]:
    """A threshold list as stored: distinct integers 1-1000, at most 10, ascending."""
    result: set[int] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"threshold {value!r} is not a whole percent", param="thresholds")
        if not 1 <= value <= 1000:
            raise InvalidInput(f"threshold {value} is outside 1-1000", param="thresholds")
        result.add(value)
    if not result:
        raise InvalidInput("at least one threshold is needed", param="thresholds")
    if len(result) > MAX_THRESHOLDS:
        raise InvalidInput(f"at most {MAX_THRESHOLDS} thresholds", param="thresholds")
    return sorted(result)


def is_reached(threshold: int, *, total_credit: int, consumed: int) -> bool:
    """Whether ``consumed`` has reached ``threshold`` percent of ``total_credit``."""
    return consumed > 0 and consumed * 100 >= threshold * total_credit


def reached(thresholds: Sequence[int], *, total_credit: int, consumed: int) -> list[int]:
    """The thresholds of the list that are reached, ascending."""
    return [
        t for t in sorted(thresholds) if is_reached(t, total_credit=total_credit, consumed=consumed)
    ]


def fired_after_sql(
    *, thresholds: Any, total_credit: Any, consumed: Any, fired: Any
) -> ColumnElement[Any]:
    """In SQL (PostgreSQL, migration 0018): the fired list the firing rule leaves a
    customer with ``total_credit`` and ``consumed``, the effective list ``thresholds`` and
    the fired list ``fired`` when it raises no alarm (as :func:`decide` sets it: the
    reached thresholds, ascending), or NULL when it raises one."""
    return func.creditline_fired_after(thresholds, total_credit, consumed, fired, type_=JSON)


def utilization_basis_points(*, total_credit: int, consumed: int) -> int | None:
    """Consumed as hundredths of a percent of total credit; None when there is no credit."""
    if total_credit <= 0:
        return None
    return consumed * 10_000 // total_credit


@dataclass(frozen=True)
class CustomerCredit:
    """What the alarm rule needs of a customer, read in the statement that changed it."""

    partner_id: int
    uin: int
    name: str
    total_credit: int
    consumed: int
    thresholds: list[int] | None
    fired: list[int]


def next_fired(credit: CustomerCredit, *, default: Sequence[int]) -> list[int]:
    """The fired set the firing rule leaves ``credit`` with (ascending)."""
    effective = credit.thresholds if credit.thresholds is not None else list(default)
    return sorted(
        set(reached(effective, total_credit=credit.total_credit, consumed=credit.consumed))
    )


def settled(
    thresholds: Sequence[int], fired: Sequence[int], *, total_credit: int, consumed: int
) -> bool:
    """Whether the firing rule changes nothing for a customer with these values (the list
    that applies to it, its fired list): :func:`decide` returns None exactly when the
    fired set is the set of thresholds reached. For a batch of many customers, asked
    before the rule's own objects are made for each."""
    if consumed <= 0:
        return not fired
    bound = consumed * 100
    return {t for t in thresholds if bound >= t * total_credit} == set(fired)


@dataclass(frozen=True)
class Decision:
    """What the firing rule does to a customer: its new fired set, and the alarm to raise
    (its columns, id aside), if one fires."""

    fired: list[int]
    alarm: dict[str, Any] | None


def decide(
    credit: CustomerCredit, *, default: Sequence[int], cause: str, now: datetime
) -> Decision | None:
    """The firing rule applied to ``credit`` (already changed); None: nothing changes."""
    now_reached = next_fired(credit, default=default)
    fired = set(credit.fired)
    if now_reached == sorted(fired):
        return None
    new = [t for t in now_reached if t not in fired]
    if not new:
        return Decision(now_reached, None)
    return Decision(
        now_reached,
        {
            "partner_id": credit.partner_id,
            "customer_uin": credit.uin,
            "threshold": max(new),
            "thresholds_reached": new,
            "total_credit": credit.total_credit,
            "consumed": credit.consumed,
            "cause": cause,
            "created_at": now,
        },
    )


_ALARM_COLUMNS = (
    "partner_id",
    "customer_uin",
    "threshold",
    "thresholds_reached",
    "total_credit",
    "consumed",
    "cause",
    "created_at",
)
#: The alarm's INSERT, parameters ``alarm_<column>`` (:func:`alarm_params`).
_INSERT_ALARM_VALUES = insert(Alarm.metadata.tables[Alarm.__tablename__]).values(
    {c: bindparam(f"alarm_{c}", type_=Alarm.__table__.c[c].type) for c in _ALARM_COLUMNS}
)
INSERT_ALARM = _INSERT_ALARM_VALUES.returning(Alarm.__table__.c.id)
#: The same INSERT for many alarms at once: their ids in the order of the parameters.
INSERT_ALARMS = _INSERT_ALARM_VALUES.returning(Alarm.__table__.c.id, sort_by_parameter_order=True)
_customers = Customer.metadata.tables[Customer.__tablename__]
_WHERE = (
    _customers.c.partner_id == bindparam("fired_partner_id", type_=_customers.c.partner_id.type),
    _customers.c.uin == bindparam("fired_uin", type_=_customers.c.uin.type),
)
#: The new fired set (:func:`fired_params`); with an alarm, its threshold and time too.
UPDATE_FIRED = (
    update(_customers)
    .where(*_WHERE)
    .values(fired_thresholds=bindparam("fired_set", type_=_customers.c.fired_thresholds.type))
)
UPDATE_FIRED_ALARMED = (
    update(_customers)
    .where(*_WHERE)
    .values(
        fired_thresholds=bindparam("fired_set", type_=_customers.c.fired_thresholds.type),
        last_alarm_threshold=bindparam(
            "fired_threshold", type_=_customers.c.last_alarm_threshold.type
        ),
        last_alarm_at=bindparam("fired_at", type_=_customers.c.last_alarm_at.type),
    )
)


def alarm_params(decision: Decision) -> dict[str, Any]:
    """The parameters of :data:`INSERT_ALARM`."""
    assert decision.alarm is not None
    return {f"alarm_{k}": v for k, v in decision.alarm.items()}


def fired_params(credit: CustomerCredit, decision: Decision) -> dict[str, Any]:
    """The parameters of :data:`UPDATE_FIRED` (or, with an alarm, UPDATE_FIRED_ALARMED)."""
    params: dict[str, Any] = {
        "fired_partner_id": credit.partner_id,
        "fired_uin": credit.uin,
        "fired_set": decision.fired,
    }
    if decision.alarm is not None:
        params["fired_threshold"] = decision.alarm["threshold"]
        params["fired_at"] = decision.alarm["created_at"]
    return params


def evaluate(
    session: Session, credit: CustomerCredit, *, default: Sequence[int], cause: str
) -> Alarm | None:
    """Apply the firing rule to ``credit`` (already changed, row still locked by this
    transaction); write the new fired set, and the alarm and its outbox event if one fires."""
    alarms = evaluate_many(session, [(credit, default, cause)])
    return alarms[0] if alarms else None


def evaluate_many(
    session: Session, changed: Sequence[tuple[CustomerCredit, Sequence[int], str]]
) -> list[Alarm]:
    """:func:`evaluate` for many customers at once (a usage batch), each given with its
    default list and the cause: the firing rule for each, then one statement for each kind
    of write with every customer's parameters (the alarms' INSERT, their outbox events,
    the new fired sets). The alarms raised, in the order of ``changed``."""
    now = utcnow()
    decided = [
        (credit, decision)
        for credit, default, cause in changed
        if (decision := decide(credit, default=default, cause=cause, now=now)) is not None
    ]
    alarming = [(credit, decision) for credit, decision in decided if decision.alarm is not None]
    alarms: list[Alarm] = []
    if alarming:
        many = len(alarming) > 1
        params = [alarm_params(decision) for _, decision in alarming]
        ids = session.execute(
            INSERT_ALARMS if many else INSERT_ALARM, params if many else params[0]
        ).scalars()
        for (_, decision), alarm_id in zip(alarming, ids, strict=True):
            assert decision.alarm is not None
            alarms.append(Alarm(id=alarm_id, **decision.alarm))
        events = [
            outbox_event(
                partner_id=credit.partner_id,
                type=THRESHOLD_REACHED,
                payload=threshold_payload(alarm, customer_name=credit.name),
            )
            for (credit, _), alarm in zip(alarming, alarms, strict=True)
        ]
        session.execute(INSERT_EVENT, events if many else events[0])
    for statement, group in (
        (UPDATE_FIRED, [fired_params(c, d) for c, d in decided if d.alarm is None]),
        (UPDATE_FIRED_ALARMED, [fired_params(c, d) for c, d in alarming]),
    ):
        if group:
            session.execute(statement, group if len(group) > 1 else group[0])
    return alarms


def threshold_payload(alarm: Alarm, *, customer_name: str) -> dict[str, object]:
    """The ``credit.threshold_reached`` event data (amounts as decimal strings)."""
    bp = utilization_basis_points(total_credit=alarm.total_credit, consumed=alarm.consumed)
    return {
        "alarm_id": alarm.id,
        "partner_id": alarm.partner_id,
        "customer_uin": alarm.customer_uin,
        "customer_name": customer_name,
        "threshold": alarm.threshold,
        "thresholds_reached": list(alarm.thresholds_reached),
        "utilization_percent": None if bp is None else money.to_text(bp),
        "total_credit": money.to_text(alarm.total_credit),
        "consumed": money.to_text(alarm.consumed),
        "available_credit": money.to_text(alarm.total_credit - alarm.consumed),
        "cause": alarm.cause,
        "occurred_at": alarm.created_at.isoformat(),
    }


def set_thresholds(
    session: Session,
    *,
    partner_id: int,
    thresholds: Sequence[object] | None,
    customer_uin: int | None = None,
) -> list[int]:
    """Set the partner's default list, or one customer's own list (None: back to the
    default). The fired set is recomputed silently against the new list: changing a list
    re-arms what is no longer reached but raises no alarm of its own."""
    partner = get_partner(session, partner_id)
    if thresholds is None and customer_uin is None:
        raise InvalidInput("the partner's default list cannot be removed", param="thresholds")
    values = None if thresholds is None else validate_thresholds(thresholds)
    with session.begin_nested():
        # Lock order everywhere: the partner row before any customer row.
        if customer_uin is None:
            assert values is not None
            session.execute(
                update(Partner)
                .where(Partner.id == partner_id)
                .values(thresholds=values)
                .execution_options(synchronize_session=False)
            )
            default = values
            targets = select(Customer).where(
                Customer.partner_id == partner_id, Customer.thresholds.is_(None)
            )
        else:
            default = list(partner.thresholds)
            get_customer(session, partner_id, customer_uin)
            targets = select(Customer).where(
                Customer.partner_id == partner_id, Customer.uin == customer_uin
            )
        rows = session.execute(
            targets.order_by(Customer.uin)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
        for customer in rows:
            if customer_uin is not None:
                customer.thresholds = values
            effective = customer.thresholds if customer.thresholds is not None else default
            customer.fired_thresholds = reached(
                effective, total_credit=customer.total_credit, consumed=customer.consumed
            )
        session.flush()
    return values if values is not None else default


def effective_thresholds(session: Session, *, partner_id: int, customer_uin: int) -> list[int]:
    """The list that applies to the customer: its own, or its partner's default."""
    customer = get_customer(session, partner_id, customer_uin)
    if customer.thresholds is not None:
        return list(customer.thresholds)
    return list(
        session.execute(select(Partner.thresholds).where(Partner.id == partner_id)).scalar_one()
    )


def levels(session: Session, *, partner_id: int) -> Counter[int]:
    """How many of the partner's customers stand at each alarm level: the highest
    threshold a customer has fired (and not re-armed), 0 for none."""
    found: Counter[int] = Counter()
    for fired in session.execute(
        select(Customer.fired_thresholds).where(Customer.partner_id == partner_id)
    ).scalars():
        found[max(fired) if fired else 0] += 1
    return found


def recent(
    session: Session, *, partner_id: int, customer_uin: int | None = None, limit: int
) -> list[tuple[Alarm, str]]:
    """The partner's latest alarms (of one customer, given ``customer_uin``), newest
    first, each with its customer's name."""
    query = (
        select(Alarm, Customer.name)
        .join(
            Customer,
            (Customer.uin == Alarm.customer_uin) & (Customer.partner_id == Alarm.partner_id),
        )
        .where(Alarm.partner_id == partner_id)
    )
    if customer_uin is not None:
        query = query.where(Alarm.customer_uin == customer_uin)
    rows = session.execute(query.order_by(Alarm.id.desc()).limit(limit)).tuples()
    return [(alarm, name) for alarm, name in rows]

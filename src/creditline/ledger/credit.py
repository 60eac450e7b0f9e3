"""Allocating and withdrawing customer credit (DESIGN §2).

Allocate (amount > 0) needs amount <= the partner's pool remaining. Withdraw (amount < 0)
needs |amount| <= max(available, 0), and the amount returns to the pool. Both are guarded
single statements, so concurrent writers can never take a pool or a credit below zero, and
both lock the partner row before the customer row, the one order used everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Executable,
    Update,
    and_,
    bindparam,
    cast,
    exists,
    insert,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from creditline.clock import utcnow
from creditline.db.batched import Batch
from creditline.db.tables import Alarm, AllocationRecord, Customer, Partner
from creditline.errors import (
    CreditlineError,
    InsufficientCredit,
    InsufficientPool,
    InvalidAmount,
    LineError,
)
from creditline.ledger import records
from creditline.ledger.accounts import PoolState, get_customer, get_partner
from creditline.ledger.alarms import CustomerCredit, evaluate
from creditline.ledger.changes import RETURNED, RowChange
from creditline.money import MAX_CENTS, to_display


class Unconfirmed(CreditlineError):
    """The caller's own condition (``require``) did not hold: nothing changed. Only the
    caller knows what the condition meant (e.g. a key revoked, a request already done)."""

    code = "unconfirmed"
    kind = "conflict"


@dataclass(frozen=True)
class CreditChange:
    """The outcome of an allocation or withdrawal."""

    record: AllocationRecord
    #: The customer as the change left it, from the UPDATE's RETURNING (no read after).
    customer: Customer
    total_credit: int
    consumed: int
    pool: PoolState
    alarm: Alarm | None
    #: The pool's and the customer's rows before and after (from the same RETURNING).
    changes: tuple[RowChange, ...] = field(default=())

    @property
    def available(self) -> int:
        return self.total_credit - self.consumed


@dataclass(frozen=True)
class Requirement:
    """A condition of the caller's, checked in the same statement as the pool's guard
    (e.g. "this API key is not revoked"): SQL built once, with its parameters."""

    condition: ColumnElement[bool]
    params: Mapping[str, Any]


def max_withdrawable(total_credit: int, consumed: int) -> int:
    """The most that can be withdrawn: the available credit, never below zero, and never
    more than the total credit (refunds beyond charges make available exceed it)."""
    return max(min(total_credit - consumed, total_credit), 0)


# The rules, each one statement, with the same guards on every engine. Parameters:
_PARTNER = bindparam("credit_partner_id", type_=BigInteger)
#: The partner of a rule's statement, for a statement built around them (fast_write).
PARTNER = _PARTNER
_UIN = bindparam("credit_customer_uin", type_=BigInteger)
_AMOUNT = bindparam("credit_amount", type_=BigInteger)


def _pool_update(require: Requirement | None) -> Update:
    """The pool gives an allocation (at most its remaining) or takes a withdrawal back (at
    most what it has allocated: a larger one is refused here, not by the CHECK
    constraint, which would surface as a database error)."""
    statement = (
        update(Partner)
        .where(
            Partner.id == _PARTNER,
            Partner.pool_total - Partner.pool_allocated >= _AMOUNT,
            Partner.pool_allocated + _AMOUNT >= 0,
        )
        .values(pool_allocated=Partner.pool_allocated + _AMOUNT)
        .returning(*Partner.__table__.columns)
    )
    if require is not None:
        statement = statement.where(require.condition)
    return statement


def customer_guard() -> tuple[ColumnElement[bool], ...]:
    """The customer's guard (parameters ``credit_partner_id``, ``credit_customer_uin``,
    ``credit_amount``): its row, and for a withdrawal at most what is available (never
    below zero) and never more than the total credit, which stays >= 0."""
    return (
        Customer.partner_id == _PARTNER,
        Customer.uin == _UIN,
        or_(
            _AMOUNT > 0,
            and_(
                Customer.total_credit - Customer.consumed >= -_AMOUNT,
                Customer.total_credit >= -_AMOUNT,
            ),
        ),
    )


def _customer_update() -> Update:
    """The customer's credit: an allocation always; a withdrawal at most what is
    available (never below zero) and never more than the total credit, which stays >= 0."""
    return (
        update(Customer)
        .where(*customer_guard())
        .values(total_credit=Customer.total_credit + _AMOUNT)
        .returning(*Customer.__table__.columns)
    )


_RECORD_COLUMNS = (
    "partner_id",
    "kind",
    "customer_uin",
    "sub_partner_id",
    "operator",
    "change",
    "total_after",
    "available_after",
    "remark",
    "source",
    "idempotency_key",
    "created_at",
)


def combined_ctes(
    require: Requirement | None,
    *,
    customer_also: Callable[[CTE], ColumnElement[bool]] | None = None,
    customer_sets: Callable[[CTE], dict[str, Any]] | None = None,
    items: Batch | None = None,
) -> tuple[CTE, CTE, CTE]:
    """The pool's and the customer's guarded UPDATEs and the record's INSERT as
    data-modifying CTEs ``pool``, ``customer`` and ``record`` (each returning its whole
    row): the customer's UPDATE runs only once the pool's has (partner row locked first, as
    everywhere), the record only for a changed customer. ``customer_also``: a further
    condition of the customer's UPDATE, ``customer_sets`` further columns it sets, each
    given the ``pool`` CTE (whose row is the customer's partner's: ``pool.c.id ==
    Customer.partner_id``).

    ``items``: the same for several allocations at once, each read from its row of
    ``items.asked`` (db/batched.py), of distinct partners; ``pool`` and ``customer`` also
    return the item's ordinal (``n``), the record its customer's key."""
    each: Callable[[Any], Any] = (lambda found: found) if items is None else items.each
    pool_update = _pool_update(require)
    if items is not None:
        pool_update = pool_update.returning(items.ordinal)
    pool = each(pool_update).cte("pool")
    customer_update = _customer_update().where(
        exists(select(pool.c.id).where(pool.c.id == Customer.partner_id))
    )
    if customer_also is not None:
        customer_update = customer_update.where(customer_also(pool))
    if customer_sets is not None:
        customer_update = customer_update.values(customer_sets(pool))
    if items is not None:
        customer_update = customer_update.returning(items.ordinal)
    customer = each(customer_update).cte("customer")
    changed: Any = customer
    if items is not None:
        changed = customer.join(items.asked, items.ordinal == customer.c.n)
    record = (
        insert(AllocationRecord)
        .from_select(
            list(_RECORD_COLUMNS),
            each(
                select(
                    customer.c.partner_id,
                    bindparam("credit_kind"),
                    customer.c.uin,
                    cast(null(), BigInteger),
                    bindparam("credit_operator"),
                    _AMOUNT,
                    customer.c.total_credit,
                    customer.c.total_credit - customer.c.consumed,
                    bindparam("credit_remark"),
                    bindparam("credit_source"),
                    bindparam("credit_idempotency_key"),
                    bindparam("credit_created_at", type_=AllocationRecord.created_at.type),
                ).select_from(changed)
            ),
        )
        .returning(*AllocationRecord.__table__.columns)
        .cte("record")
    )
    return pool, customer, record


def _combined(require: Requirement | None) -> Executable:
    """On PostgreSQL the same two guarded UPDATEs and the record's INSERT as one
    statement (:func:`combined_ctes`)."""
    pool, customer, record = combined_ctes(require)
    return select(
        *(c.label(f"p_{c.name}") for c in pool.c),
        *(c.label(f"c_{c.name}") for c in customer.c),
        record.c.id.label("record_id"),
    ).select_from(pool.outerjoin(customer, true()).outerjoin(record, true()))


#: Statements by (engine, requirement): SQLAlchemy compiles each once and caches it.
_statements: dict[tuple[str, int], Executable] = {}


def _statement(
    kind: str, require: Requirement | None, build: Callable[[], Executable]
) -> Executable:
    key = (kind, id(require.condition) if require is not None else 0)
    found = _statements.get(key)
    if found is None:
        if len(_statements) > 64:  # conditions are meant to be built once; never grow
            _statements.clear()
        found = _statements[key] = build().execution_options(synchronize_session=False, **RETURNED)
    return found


def _insufficient_credit(
    session: Session, partner_id: int, customer_uin: int, amount: int
) -> InsufficientCredit:
    current = session.execute(
        select(Customer.total_credit, Customer.consumed).where(
            Customer.partner_id == partner_id, Customer.uin == customer_uin
        )
    ).one()
    return InsufficientCredit(
        f"customer {customer_uin} has at most "
        f"{to_display(max_withdrawable(current.total_credit, current.consumed))} "
        f"withdrawable; cannot withdraw {to_display(-amount)}",
        param="amount",
    )


def _refusal(
    session: Session,
    *,
    partner_id: int,
    customer_uin: int,
    amount: int,
    pool_changed: bool,
    require: Requirement | None,
) -> CreditlineError:
    """Why the guarded statements changed nothing (read only on this path)."""
    if pool_changed:
        # The customer refused after the pool gave: give it back. The partner row is
        # locked by this transaction, so this undoes exactly that change.
        session.execute(
            update(Partner)
            .where(Partner.id == partner_id)
            .values(pool_allocated=Partner.pool_allocated - amount)
            .execution_options(synchronize_session=False, **RETURNED)
        )
    elif require is not None and not session.scalar(
        select(require.condition), dict(require.params)
    ):
        return Unconfirmed("the caller's condition does not hold")
    get_customer(session, partner_id, customer_uin)  # a missing customer is NotFound
    if amount < 0:
        # The customer's credit is part of what is allocated, so it holds less.
        return _insufficient_credit(session, partner_id, customer_uin, amount)
    if pool_changed:
        raise AssertionError("an allocation is never refused by the customer's guard")
    pool = get_partner(session, partner_id)
    return InsufficientPool(
        f"the pool has {to_display(pool.pool_remaining)} remaining; "
        f"cannot allocate {to_display(amount)}",
        param="amount",
    )


def _split(row: Mapping[Any, Any], prefix: str) -> dict[str, Any]:
    cut = len(prefix)
    return {k[cut:]: v for k, v in row.items() if k.startswith(prefix)}


def customer_object(session: Session, row: Mapping[str, Any]) -> Customer:
    """The customer as changed: the session's own object brought up to date when it holds
    one, or a new one (not added to the session) from the row."""
    held = session.identity_map.get(identity_key(Customer, row["uin"]))
    if isinstance(held, Customer):
        for name, value in row.items():
            set_committed_value(held, name, value)
        return held
    return Customer(**row)


def combined_statement(require: Requirement | None) -> Executable:
    """PostgreSQL's one statement of an allocation or withdrawal (see :func:`_combined`),
    built once per requirement; its parameters: :func:`combined_params`."""
    return _statement("combined", require, lambda: _combined(require))


def pool_statement(require: Requirement | None) -> Executable:
    """The pool's guarded UPDATE (SQLite's first statement), built once per requirement;
    parameters ``credit_partner_id``, ``credit_amount`` and the requirement's."""
    return _statement("pool", require, lambda: _pool_update(require))


def customer_statement() -> Executable:
    """The customer's guarded UPDATE (SQLite's second statement), built once; parameters
    ``credit_partner_id``, ``credit_customer_uin``, ``credit_amount``."""
    return _statement("customer", None, _customer_update)


_records = AllocationRecord.metadata.tables[AllocationRecord.__tablename__]
#: The record's INSERT (SQLite's third statement), parameters ``record_<column>``
#: (:func:`record_params`).
_RECORD_VALUES = insert(_records).values(
    {c: bindparam(f"record_{c}", type_=_records.c[c].type) for c in _RECORD_COLUMNS}
)
RECORD_INSERT = _RECORD_VALUES.returning(_records.c.id)
#: The same INSERT for many customers' records at once (automatic top-ups), by engine: one
#: statement returning each record's id with its customer, the ids numbered in the order
#: of the parameters. On PostgreSQL SQLAlchemy's ``sort_by_parameter_order`` makes sure of
#: it (``INSERT ... SELECT ... ORDER BY``); on SQLite it would send one INSERT per row, and
#: its one writer numbers the rows of one INSERT in order anyway.
RECORD_INSERTS = {
    "postgresql": _RECORD_VALUES.returning(
        _records.c.id, _records.c.customer_uin, sort_by_parameter_order=True
    ),
    "sqlite": _RECORD_VALUES.returning(_records.c.id, _records.c.customer_uin),
}


def record_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of :data:`RECORD_INSERT` for ``values`` (:func:`record_values_of`)."""
    return {f"record_{name}": values[name] for name in _RECORD_COLUMNS}


def combined_params(
    *,
    partner_id: int,
    customer_uin: int,
    amount: int,
    origin: records.Origin,
    created_at: datetime,
    require: Requirement | None,
) -> dict[str, Any]:
    """The parameters of :func:`combined_statement` (``origin`` already checked)."""
    params: dict[str, Any] = {
        "credit_partner_id": partner_id,
        "credit_customer_uin": customer_uin,
        "credit_amount": amount,
        "credit_kind": "allocation" if amount > 0 else "withdrawal",
        "credit_operator": origin.operator,
        "credit_remark": origin.remark,
        "credit_source": origin.source,
        "credit_idempotency_key": origin.idempotency_key,
        "credit_created_at": created_at,
    }
    if require is not None:
        params.update(require.params)
    return params


def combined_outcome(
    row: Mapping[Any, Any] | None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int | None]:
    """The pool's row after, the customer's row after and the record's id from a row of
    :func:`combined_statement` (None where the guards refused)."""
    if row is None:
        return None, None, None
    pool_after = _split(row, "p_")
    after = None if row["c_uin"] is None else _split(row, "c_")
    return pool_after, after, row["record_id"]


def check(amount: int, origin: records.Origin) -> records.Origin:
    """Refuse what no statement needs to see: a zero amount, one beyond the limit, or a
    bad origin (the origin as recorded)."""
    if amount == 0:
        raise InvalidAmount("amount must not be zero", param="amount")
    if abs(amount) > MAX_CENTS:
        raise InvalidAmount(
            f"amount is beyond the limit of {to_display(MAX_CENTS)}", param="amount"
        )
    return origin.checked()


def credit_of(partner_id: int, after: Mapping[str, Any]) -> CustomerCredit:
    """What the alarm rule needs of the customer's row after the change."""
    return CustomerCredit(
        partner_id=partner_id,
        uin=after["uin"],
        name=after["name"],
        total_credit=after["total_credit"],
        consumed=after["consumed"],
        thresholds=after["thresholds"],
        fired=list(after["fired_thresholds"]),
    )


def change_of(
    *,
    partner_id: int,
    amount: int,
    record: AllocationRecord,
    pool_after: Mapping[str, Any],
    after: Mapping[str, Any],
    customer: Customer,
    alarm: Alarm | None,
) -> CreditChange:
    """The outcome, with the rows before (the rows after less the amount) and after."""
    pool_before = {**pool_after, "pool_allocated": pool_after["pool_allocated"] - amount}
    before = {**after, "total_credit": after["total_credit"] - amount}
    return CreditChange(
        record=record,
        customer=customer,
        total_credit=after["total_credit"],
        consumed=after["consumed"],
        pool=PoolState(partner_id, pool_after["pool_total"], pool_after["pool_allocated"]),
        alarm=alarm,
        changes=(
            RowChange(Partner.__tablename__, pool_before, dict(pool_after)),
            RowChange(Customer.__tablename__, before, dict(after)),
        ),
    )


def allocate_credit(
    session: Session,
    *,
    partner_id: int,
    customer_uin: int,
    amount: int,
    origin: records.Origin,
    require: Requirement | None = None,
) -> CreditChange:
    """Allocate ``amount`` cents to a customer of ``partner_id`` (negative: withdraw).

    Takes effect immediately; a refusal raises, and the caller's transaction (or
    savepoint) must then be rolled back: the refusal is found after the guarded statements
    ran. ``require``: the caller's own condition, checked in the pool's statement; when it
    does not hold nothing changes and :class:`Unconfirmed` is raised.

    On PostgreSQL the guarded UPDATEs and the record are one statement; on SQLite the same
    statements run one after the other in-process. The outbox event follows the record.
    """
    origin = check(amount, origin)
    kind = kind_of(amount)
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        params = combined_params(
            partner_id=partner_id,
            customer_uin=customer_uin,
            amount=amount,
            origin=origin,
            created_at=now,
            require=require,
        )
        found = session.execute(combined_statement(require), params).mappings().one_or_none()
        pool_after, after, record_id = combined_outcome(found)
    else:
        params = {
            "credit_partner_id": partner_id,
            "credit_customer_uin": customer_uin,
            "credit_amount": amount,
            **(require.params if require is not None else {}),
        }
        pool_row = session.execute(pool_statement(require), params).one_or_none()
        pool_after = None if pool_row is None else dict(pool_row._mapping)
        after = None
        if pool_after is not None:
            changed = session.execute(customer_statement(), params).one_or_none()
            after = None if changed is None else dict(changed._mapping)
        record_id = None
    if pool_after is None or after is None:
        raise _refusal(
            session,
            partner_id=partner_id,
            customer_uin=customer_uin,
            amount=amount,
            pool_changed=pool_after is not None,
            require=require,
        )
    values = record_values_of(
        partner_id=partner_id,
        customer_uin=customer_uin,
        amount=amount,
        after=after,
        origin=origin,
        created_at=now,
    )
    if record_id is None:
        record_id = session.execute(RECORD_INSERT, record_params(values)).scalar_one()
    record = records.appended(session, record_id, values)
    alarm = evaluate(
        session, credit_of(partner_id, after), default=pool_after["thresholds"], cause=kind
    )
    return change_of(
        partner_id=partner_id,
        amount=amount,
        record=record,
        pool_after=pool_after,
        after=after,
        customer=customer_object(session, after),
        alarm=alarm,
    )


def kind_of(amount: int) -> str:
    """The record kind of a change of credit: an allocation or a withdrawal."""
    return "allocation" if amount > 0 else "withdrawal"


def record_values_of(
    *,
    partner_id: int,
    customer_uin: int,
    amount: int,
    after: Mapping[str, Any],
    origin: records.Origin,
    created_at: datetime,
) -> dict[str, Any]:
    """The allocation record of a change of ``amount`` whose customer row is ``after``."""
    total, consumed = after["total_credit"], after["consumed"]
    return records.record_values(
        partner_id=partner_id,
        kind=kind_of(amount),
        customer_uin=customer_uin,
        change=amount,
        total_after=total,
        available_after=total - consumed,
        origin=origin,
        created_at=created_at,
    )


@dataclass(frozen=True)
class BatchItem:
    """One line of a batch allocation: a customer and a signed amount in cents."""

    line: int
    customer_uin: int
    amount: int
    remark: str = ""


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch did or would do: each accepted item's change, every refusal by line,
    and whether the batch was kept."""

    changes: dict[int, CreditChange]
    errors: list[LineError]
    applied: bool


def allocate_batch(
    session: Session,
    *,
    partner_id: int,
    items: Sequence[BatchItem],
    origin: records.Origin,
    apply: bool = True,
    inspect: Callable[[BatchItem, CreditChange], None] | None = None,
) -> BatchOutcome:
    """Allocate or withdraw for many customers of ``partner_id``, all or nothing.

    Items run in order inside one savepoint, so a withdrawal sees an allocation made
    earlier in the same batch. Every refused item is named; the savepoint is kept only when
    ``apply`` is true and no item was refused. A preview (``apply=False``) computes every
    outcome and changes nothing. ``inspect`` is called after each accepted item, while its
    effect is still visible, for adapters that show more than the change itself.
    """
    changes: dict[int, CreditChange] = {}
    errors: list[LineError] = []
    attempt = session.begin_nested()
    try:
        for item in items:
            one = session.begin_nested()
            try:
                change = allocate_credit(
                    session,
                    partner_id=partner_id,
                    customer_uin=item.customer_uin,
                    amount=item.amount,
                    origin=replace(origin, remark=item.remark),
                )
            except CreditlineError as exc:
                # The refused item is undone; go on so that every bad item is named.
                one.rollback()
                errors.append(LineError(item.line, exc.message, exc.param))
                continue
            except BaseException:
                one.rollback()
                raise
            one.commit()
            changes[item.line] = change
            if inspect is not None:
                inspect(item, change)
    except BaseException:
        attempt.rollback()
        raise
    applied = apply and not errors
    if applied:
        attempt.commit()
    else:
        attempt.rollback()
    return BatchOutcome(changes, errors, applied)

"""Allocation records: the immutable ledger of every grant, pool allocation, allocation
and withdrawal, and the queries that page through it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Engine, Select, bindparam, func, insert, or_, select
from sqlalchemy.orm import Session

from creditline import money
from creditline.clock import utcnow
from creditline.db import json_sql, read_transaction
from creditline.db.tables import AllocationRecord, Customer, Partner
from creditline.errors import InvalidInput, NotFound
from creditline.ledger.outbox import ALLOCATION_RECORDED, enqueue
from creditline.limits import MAX_PAGE_SIZE, check_page_size

RECORD_KINDS = ("grant", "pool_allocation", "allocation", "withdrawal")
SOURCES = ("console", "api", "tc3", "cli", "bulk", "demo", "rule")


@dataclass(frozen=True)
class Origin:
    """Who asked for a change and through which door; carried onto its record."""

    operator: str
    source: str
    remark: str = ""
    idempotency_key: str | None = None

    def checked(self) -> Origin:
        if self.source not in SOURCES:
            raise InvalidInput(f"unknown source {self.source!r}", param="source")
        operator = self.operator.strip()
        if not operator or len(operator) > 200:
            raise InvalidInput("operator must be 1-200 characters", param="operator")
        remark = self.remark.strip()
        if len(remark) > 500:
            raise InvalidInput("remark is longer than 500 characters", param="remark")
        if any(ord(c) < 32 and c != "\t" for c in remark):
            raise InvalidInput("remark must not contain control characters", param="remark")
        if self.idempotency_key is not None and len(self.idempotency_key) > 255:
            raise InvalidInput("idempotency key is longer than 255 characters")
        return Origin(operator, self.source, remark, self.idempotency_key)


def record_values(
    *,
    partner_id: int,
    kind: str,
    change: int,
    total_after: int,
    available_after: int,
    origin: Origin,
    customer_uin: int | None = None,
    sub_partner_id: int | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The columns of one record (its id aside), as :func:`append` inserts them."""
    return {
        "partner_id": partner_id,
        "kind": kind,
        "customer_uin": customer_uin,
        "sub_partner_id": sub_partner_id,
        "operator": origin.operator,
        "change": change,
        "total_after": total_after,
        "available_after": available_after,
        "remark": origin.remark,
        "source": origin.source,
        "idempotency_key": origin.idempotency_key,
        "created_at": created_at or utcnow(),
    }


def append(
    session: Session,
    *,
    partner_id: int,
    kind: str,
    change: int,
    total_after: int,
    available_after: int,
    origin: Origin,
    customer_uin: int | None = None,
    sub_partner_id: int | None = None,
) -> AllocationRecord:
    """Append one record and its ``credit.allocation_recorded`` outbox event."""
    values = record_values(
        partner_id=partner_id,
        kind=kind,
        change=change,
        total_after=total_after,
        available_after=available_after,
        origin=origin,
        customer_uin=customer_uin,
        sub_partner_id=sub_partner_id,
    )
    record_id = session.execute(
        insert(AllocationRecord).values(**values).returning(AllocationRecord.id)
    ).scalar_one()
    return appended(session, record_id, values)


def appended(session: Session, record_id: int, values: dict[str, Any]) -> AllocationRecord:
    """The record inserted as ``record_id`` with ``values``, once its outbox event is
    written (for a record inserted by a statement of the caller's)."""
    record = AllocationRecord(id=record_id, **values)
    enqueue(
        session, partner_id=record.partner_id, type=ALLOCATION_RECORDED, payload=as_payload(record)
    )
    return record


def as_payload(record: RecordRow) -> dict[str, Any]:
    """A record as event data and API answers: amounts as decimal strings."""
    return {
        "id": record.id,
        "partner_id": record.partner_id,
        "kind": record.kind,
        "customer_uin": record.customer_uin,
        "sub_partner_id": record.sub_partner_id,
        "operator": record.operator,
        "change": money.to_text(record.change),
        "total_after": money.to_text(record.total_after),
        "available_after": money.to_text(record.available_after),
        "remark": record.remark,
        "source": record.source,
        "idempotency_key": record.idempotency_key,
        "created_at": record.created_at.isoformat(),
    }


def payload_sql(record: Any, *, created_at: Any) -> ColumnElement[Any]:
    """:func:`as_payload` built by PostgreSQL from ``record`` (a record's columns, e.g. a
    CTE returning its row), its time written by the caller (``created_at``: the text)."""
    return func.json_build_object(
        "id", record.id,
        "partner_id", record.partner_id,
        "kind", record.kind,
        "customer_uin", record.customer_uin,
        "sub_partner_id", record.sub_partner_id,
        "operator", record.operator,
        "change", json_sql.money_text(record.change),
        "total_after", json_sql.money_text(record.total_after),
        "available_after", json_sql.money_text(record.available_after),
        "remark", record.remark,
        "source", record.source,
        "idempotency_key", record.idempotency_key,
        "created_at", created_at,
    )  # fmt: skip


class RecordRow(Protocol):
    """An allocation record as a page reads it: a Core row with the record's columns
    (reading a page of them as ORM objects costs more than the page's query), or the
    record itself."""

    @property
    def id(self) -> int: ...
    @property
    def partner_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def customer_uin(self) -> int | None: ...
    @property
    def sub_partner_id(self) -> int | None: ...
    @property
    def operator(self) -> str: ...
    @property
    def change(self) -> int: ...
    @property
    def total_after(self) -> int: ...
    @property
    def available_after(self) -> int: ...
    @property
    def remark(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...


#: A page's columns: every column of the record, under its own name.
_COLUMNS = tuple(AllocationRecord.__table__.c)


@dataclass(frozen=True)
class RecordFilter:
    """What a records page is narrowed to; every field optional."""

    customer_uin: int | None = None
    #: Matches operators that start with it, in any case ("Finance@" finds finance@...).
    operator: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(session: Session, partner_id: int, where: RecordFilter) -> Select[Any]:
    if where.kind is not None and where.kind not in RECORD_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(RECORD_KINDS)}", param="kind")
    scope = AllocationRecord.partner_id == partner_id
    # A second-level reseller also sees the pool allocations its distributor made to it
    # (recorded once, under the distributor).
    if where.kind in (None, "pool_allocation") and _has_parent(session, partner_id):
        scope = or_(scope, AllocationRecord.sub_partner_id == partner_id)
    query = select(*_COLUMNS).where(scope)
    if where.customer_uin is not None:
        query = query.where(AllocationRecord.customer_uin == where.customer_uin)
    if where.operator:
        prefix = where.operator.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(AllocationRecord.operator.ilike(prefix + "%", escape="\\"))
    if where.kind is not None:
        query = query.where(AllocationRecord.kind == where.kind)
    if where.since is not None:
        query = query.where(AllocationRecord.created_at >= where.since)
    if where.until is not None:
        query = query.where(AllocationRecord.created_at < where.until)
    return query


#: The partner's distributor, if it has one (a Core statement: a page is read often).
_PARENT = select(Partner.parent_id).where(Partner.id == bindparam("partner_id"))


def _has_parent(session: Session, partner_id: int) -> bool:
    """Whether the partner is a second-level reseller; :class:`NotFound` if there is no
    such partner."""
    found = session.execute(_PARENT, {"partner_id": partner_id}).first()
    if found is None:
        raise NotFound(f"no partner {partner_id}", param="partner")
    return found.parent_id is not None


def page(
    session: Session,
    *,
    partner_id: int,
    where: RecordFilter = RecordFilter(),
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[RecordRow], bool]:
    """A page of the partner's records, newest first, and whether more follow.

    Keyset pagination on the record id: pass the last id of one page as ``before_id`` for
    the next, so a page costs the same at record 5,000,000 as at record 1.
    """
    check_page_size(limit)
    query = _filtered(session, partner_id, where)
    if before_id is not None:
        query = query.where(AllocationRecord.id < before_id)
    found = session.execute(query.order_by(AllocationRecord.id.desc()).limit(limit + 1))
    rows = cast(list[RecordRow], found.all())
    return rows[:limit], len(rows) > limit


@dataclass(frozen=True)
class Names:
    """The names of the customers and sub-resellers some records of one partner name."""

    customers: dict[int, str]
    partners: dict[int, str]

    def of(self, record: RecordRow) -> str:
        """The name of the record's customer, or of its sub-reseller ("" for the pool)."""
        if record.customer_uin is not None:
            return self.customers.get(record.customer_uin, "")
        if record.sub_partner_id is not None:
            return self.partners.get(record.sub_partner_id, "")
        return ""


def names(session: Session, *, partner_id: int, rows: Sequence[RecordRow]) -> Names:
    """Who the records name, as seen by ``partner_id``: its own customers, and the
    sub-resellers of its pool allocations (its own, or for a sub-reseller itself). One
    query each, whatever the number of records; nobody else's name is ever read."""
    uins = {r.customer_uin for r in rows if r.customer_uin is not None}
    subs = {r.sub_partner_id for r in rows if r.sub_partner_id is not None}
    customers: dict[int, str] = {}
    partners: dict[int, str] = {}
    if uins:
        customers = dict(
            session.execute(
                select(Customer.uin, Customer.name).where(
                    Customer.partner_id == partner_id, Customer.uin.in_(uins)
                )
            )
            .tuples()
            .all()
        )
    if subs:
        partners = dict(
            session.execute(
                select(Partner.id, Partner.name).where(
                    Partner.id.in_(subs),
                    or_(Partner.id == partner_id, Partner.parent_id == partner_id),
                )
            )
            .tuples()
            .all()
        )
    return Names(customers, partners)


def pages(
    engine: Engine, *, partner_id: int, where: RecordFilter = RecordFilter(), chunk: int = 500
) -> Iterator[tuple[list[RecordRow], Names]]:
    """Every matching record, newest first, for an export: keyset pages with the names
    they mention, **each page read in a short read transaction of its own** that ends
    before it is handed on. So a consumer that stops part-way (a client that disconnects)
    leaves no transaction or lock behind, and a long export never holds one. Records are
    immutable and new ones have higher ids, so paging down from the first page's newest
    record lists the records as they were when the export began (a record committed during
    the export is not in it)."""
    before: int | None = None
    while True:
        with read_transaction(engine) as session:
            rows, more = page(
                session,
                partner_id=partner_id,
                where=where,
                limit=min(chunk, MAX_PAGE_SIZE),
                before_id=before,
            )
            named = names(session, partner_id=partner_id, rows=rows)
        yield rows, named
        if not more:
            return
        before = rows[-1].id


#: The columns of a records CSV export, the same from every door.
CSV_COLUMNS = (
    "id",
    "created_at",
    "kind",
    "customer_uin",
    "sub_partner_id",
    "name",
    "operator",
    "change",
    "total_after",
    "available_after",
    "remark",
    "source",
)


def _cell(text: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ (or a tab/CR) as a formula; free
    # text (operator, remark) is quoted so an export can never carry one.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_chunks(
    engine: Engine, *, partner_id: int, where: RecordFilter = RecordFilter(), size: int = 64_000
) -> Iterator[str]:
    """The matching records as CSV text (header first, newest record first), yielded in
    chunks of about ``size`` characters so a large export streams. Read as :func:`pages`
    reads: no transaction is open while a chunk is handed on."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for rows, named in pages(engine, partner_id=partner_id, where=where):
        for r in rows:
            writer.writerow(_csv_row(r, named.of(r)))
            if buffer.tell() >= size:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _csv_row(r: RecordRow, name: str) -> tuple[object, ...]:
    return (
        r.id,
        r.created_at.isoformat(),
        r.kind,
        r.customer_uin or "",
        r.sub_partner_id or "",
        _cell(name),
        _cell(r.operator),
        money.to_text(r.change),
        money.to_text(r.total_after),
        money.to_text(r.available_after),
        _cell(r.remark),
        r.source,
    )

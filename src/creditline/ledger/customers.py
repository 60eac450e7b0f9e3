"""Finding a partner's customers: search, sort and pages, shared by the REST API, the
console, the Tencent-compatible API and the CLI, so every door lists the same customers
in the same order. Every query is scoped by ``partner_id``: another partner's customer is
simply absent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, case, false, func, or_, select
from sqlalchemy.orm import Session

from creditline.db.tables import MAX_BIGINT, Customer
from creditline.errors import InvalidInput

MAX_UIN = MAX_BIGINT
#: What a search may look in: everything, or one field (the Tencent API's FilterType).
SEARCH_FIELDS = ("any", "uin", "name", "remark", "email")
MAX_PAGE_SIZE = 500


def _utilization() -> ColumnElement[Any]:
    # No credit at all sorts as the fullest once anything is consumed: it has passed every
    # threshold.
    return case(
        (Customer.total_credit == 0, case((Customer.consumed > 0, 1e18), else_=0.0)),
        else_=Customer.consumed * 1.0 / Customer.total_credit,
    )


#: Sort keys and the column (or expression) each orders by; ties break on the UIN.
SORT_KEYS: dict[str, Any] = {
    "associated_at": Customer.associated_at,
    "uin": Customer.uin,
    "name": Customer.name,
    "total_credit": Customer.total_credit,
    "consumed": Customer.consumed,
    "available_credit": Customer.available_credit,
    "utilization": _utilization(),
}


@dataclass(frozen=True)
class CustomerPage:
    """One page of customers, whether more follow it, and (when counted) how many match
    in all."""

    rows: list[Customer]
    total: int | None
    has_more: bool

    @property
    def counted(self) -> int:
        """``total``, of a page searched with ``count=True``."""
        if self.total is None:
            raise ValueError("this page was searched without counting its matches")
        return self.total


@dataclass(frozen=True)
class CustomerTotals:
    """What a partner has handed to its customers: how many, their total credit and what
    of it is available."""

    count: int
    total_credit: int
    available: int


def _matching(text: str, field: str) -> ColumnElement[bool] | None:
    text = text.strip()
    if not text:
        return None
    if field not in SEARCH_FIELDS:
        raise InvalidInput(f"search field must be one of {', '.join(SEARCH_FIELDS)}")
    is_uin = text.isascii() and text.isdigit() and int(text) <= MAX_UIN
    if field == "uin":
        # Text that is no UIN matches no customer, rather than being an error.
        return Customer.uin == int(text) if is_uin else false()
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    columns = {"name": Customer.name, "remark": Customer.remark, "email": Customer.email}
    if field != "any":
        return columns[field].ilike(pattern, escape="\\")
    terms: list[ColumnElement[bool]] = [
        column.ilike(pattern, escape="\\") for column in columns.values()
    ]
    if is_uin:
        terms.append(Customer.uin == int(text))
    return or_(*terms)


def search(
    session: Session,
    partner_id: int,
    *,
    text: str = "",
    field: str = "any",
    sort: str = "associated_at",
    descending: bool = True,
    offset: int = 0,
    limit: int = 20,
    count: bool = True,
) -> CustomerPage:
    """The partner's customers whose UIN is ``text`` or whose name, remark or email
    contains it (case-insensitive; ``field`` narrows it to one), sorted and paged.

    ``count=False`` leaves ``total`` unknown (None): the page's rows come from an index
    in sort order and cost the same at any size, while counting every match of a broad
    search reads all of them (a scan of the partner's customers; docs/benchmarks.md)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page size must be 1-{MAX_PAGE_SIZE}", param="limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", param="offset")
    rows_query, count_query = search_queries(
        partner_id, text=text, field=field, sort=sort, descending=descending
    )
    # One row past the page tells whether another page follows, without a count.
    rows = list(session.execute(rows_query.offset(offset).limit(limit + 1)).scalars())
    has_more = len(rows) > limit
    total = int(session.execute(count_query).scalar_one()) if count else None
    return CustomerPage(rows[:limit], total, has_more)


def search_queries(
    partner_id: int,
    *,
    text: str = "",
    field: str = "any",
    sort: str = "associated_at",
    descending: bool = True,
) -> tuple[Select[tuple[Customer]], Select[tuple[int]]]:
    """The statements behind :func:`search`: the ordered rows (not yet paged) and the count
    of all matches (exposed so their query plans can be examined)."""
    if sort not in SORT_KEYS:
        raise InvalidInput(f"sort must be one of {', '.join(SORT_KEYS)}", param="sort")
    where = [Customer.partner_id == partner_id]
    matched = _matching(text, field)
    if matched is not None:
        where.append(matched)
    key = SORT_KEYS[sort]
    order = [key.desc(), Customer.uin.desc()] if descending else [key.asc(), Customer.uin.asc()]
    count = select(func.count()).select_from(Customer).where(*where)
    return select(Customer).where(*where).order_by(*order), count


def by_uins(session: Session, partner_id: int, uins: Sequence[int]) -> dict[int, Customer]:
    """The partner's customers among ``uins``; others (anyone else's, or none) are absent."""
    rows = session.execute(
        select(Customer).where(Customer.partner_id == partner_id, Customer.uin.in_(list(uins)))
    )
    return {customer.uin: customer for customer in rows.scalars()}


def totals(session: Session, partner_id: int) -> CustomerTotals:
    """Sums over the partner's customers."""
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Customer.total_credit), 0),
            func.coalesce(func.sum(Customer.total_credit - Customer.consumed), 0),
        ).where(Customer.partner_id == partner_id)
    ).one()
    return CustomerTotals(int(row[0]), int(row[1]), int(row[2]))

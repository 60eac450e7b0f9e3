"""Finding a partner's customers: search, sort and pages, shared by the REST API, the
console, the Tencent-compatible API and the CLI, so every door lists the same customers
in the same order. Every query is scoped by ``partner_id``: another partner's customer is
simply absent."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Dialect,
    Integer,
    Select,
    String,
    bindparam,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Compiled
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.visitors import InternalTraversal

from creditline.db.tables import Customer, CustomerSearch
from creditline.errors import InvalidInput
from creditline.limits import MAX_UIN, check_page_size

#: What a search may look in: everything, or one field (the Tencent API's FilterType).
SEARCH_FIELDS = ("any", "uin", "name", "remark", "email")


#: Sort keys and the column (or expression) each orders by; ties break on the UIN.
SORT_KEYS: dict[str, Any] = {
    "associated_at": Customer.associated_at,
    "uin": Customer.uin,
    "name": Customer.name,
    "total_credit": Customer.total_credit,
    "consumed": Customer.consumed,
    "available_credit": Customer.available_credit,
    # consumed / total credit, kept by the database (db.tables.UTILIZATION_SQL) so that it
    # has an index like available_credit.
    "utilization": Customer.utilization,
    # The projected day of exhaustion, kept by the database (db.tables.RUNS_OUT_SQL) and
    # indexed; customers without a projection (too little history, not consuming) never
    # run out: last in ascending order, first in descending.
    "runs_out": Customer.runs_out_day,
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


#: A search first walks the partner's customers in sort order (an index) and keeps the
#: matches, but at most this many customers per row it must find (the page, the rows
#: before it and one past it). A search that has not found its page by then is rare in
#: that stretch: it collects all its matches instead (on PostgreSQL through the trigram
#: index) and sorts them. See :func:`search`.
WALK_PER_ROW = 15
#: On PostgreSQL, a search the planner expects to match at most this many of the partner's
#: customers skips the walk: collecting and sorting that many costs a few milliseconds,
#: while a walk for them would read WALK_PER_ROW customers per row in vain.
FEW_MATCHES = 2_000


# The parameters of the search statements, which are built once per shape (sort, order,
# field, and whether the text is a UIN) and run with these values.
_PARTNER = bindparam("search_partner_id", type_=BigInteger)
_PATTERN = bindparam("search_pattern", type_=String)
_UIN = bindparam("search_uin", type_=BigInteger)
_OFFSET = bindparam("search_offset", type_=Integer)
_LIMIT = bindparam("search_limit", type_=Integer)
_WALKED = bindparam("search_walked", type_=Integer)


def _form(partner_id: int, text: str, field: str) -> tuple[str, dict[str, Any]]:
    """What kind of search ``text`` makes in ``field`` (the shape of its statements) and
    the values of their parameters: "all" (no text), "text", "text_or_uin" (text that is
    also a UIN, searched in every field), "uin" or "no_uin" (the UIN field, given a UIN or
    text that is none)."""
    if field not in SEARCH_FIELDS:
        raise InvalidInput(f"search field must be one of {', '.join(SEARCH_FIELDS)}")
    values: dict[str, Any] = {"search_partner_id": partner_id}
    text = text.strip()
    if not text:
        return "all", values
    is_uin = text.isascii() and text.isdigit() and int(text) <= MAX_UIN
    if is_uin:
        values["search_uin"] = int(text)
    if field == "uin":
        # Text that is no UIN matches no customer, rather than being an error.
        return ("uin" if is_uin else "no_uin"), values
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    values["search_pattern"] = "%" + escaped + "%"
    return ("text_or_uin" if is_uin and field == "any" else "text"), values


def _matching(columns: Any, field: str, form: str) -> ColumnElement[bool] | None:
    if form == "all":
        return None
    if field == "uin":
        return columns.uin == _UIN if form == "uin" else false()
    searched = {"name": columns.name, "remark": columns.remark, "email": columns.email}
    if field != "any":
        return searched[field].ilike(_PATTERN, escape="\\")
    terms: list[ColumnElement[bool]] = [
        column.ilike(_PATTERN, escape="\\") for column in searched.values()
    ]
    if form == "text_or_uin":
        terms.append(columns.uin == _UIN)
    return or_(*terms)


class _among(ColumnElement[bool]):
    """``column`` among the values ``query`` selects: on PostgreSQL ``column =
    ANY(ARRAY(query))``, which finds each customer by its key (the matches collected from
    ``customer_search``, then their rows, one index probe each), where ``IN (query)`` was
    planned as a hash join over a scan of every customer of the partner (30 ms for 1,000
    matches among 100,000, against 3 ms); ``column IN (query)`` elsewhere."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition as it is, never ``(…) = 1``
    _traverse_internals = [  # noqa: RUF012  (SQLAlchemy's own declaration, a list)
        ("column", InternalTraversal.dp_clauseelement),
        ("query", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], query: Select[Any]) -> None:
        self.column = column
        self.query = query


@compiles(_among)
def _among_anywhere(element: _among, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.query), **kw)


@compiles(_among, "postgresql")
def _among_postgresql(element: _among, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} = ANY(ARRAY({compiler.process(element.query, **kw)}))"


def _order(columns: Any, sort: str, descending: bool) -> list[ColumnElement[Any]]:
    key = columns[SORT_KEYS[sort].key]
    if sort == "runs_out":
        # Spelled out for SQLite (NULLs first in ascending order); PostgreSQL's index order.
        if descending:
            return [key.desc().nulls_first(), columns.uin.desc()]
        return [key.asc().nulls_last(), columns.uin.asc()]
    if descending:
        return [key.desc(), columns.uin.desc()]
    return [key.asc(), columns.uin.asc()]


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
    search reads all of them (a scan of the partner's customers; docs/benchmarks.md).

    A search reads its page one of two ways, both exact: walking the sort order and
    keeping the matches, which stops at the page and suits a broad search; or, when that
    walk has not found the page within ``WALK_PER_ROW`` customers per row, collecting
    every match and sorting them, which suits a rare one (few matches, found through the
    trigram index on PostgreSQL). On PostgreSQL a search the planner expects to match at
    most ``FEW_MATCHES`` customers collects straight away; any other tries the walk
    first. The planner's own choice would walk even for a rare search: it estimates the
    number of matches well, but prices ``ILIKE`` on three columns like one comparison of
    numbers and assumes the matches lie evenly along the sort order.

    The statements are built once per shape and run with this search's values."""
    check_page_size(limit)
    if offset < 0:
        raise InvalidInput("offset must not be negative", param="offset")
    queries, values = _queries(
        partner_id,
        text=text,
        field=field,
        sort=sort,
        descending=descending,
        offset=offset,
        limit=limit + 1,  # one row past the page tells whether another page follows
    )
    rows: list[Customer] = []
    if queries.walk is not None and not _few_expected(session, queries.matches, values):
        rows = list(session.execute(queries.walk, values).scalars())
    if len(rows) <= limit:
        # A short page: the walk may have stopped before the end of the matches.
        rows = list(session.execute(queries.collect, values).scalars())
    has_more = len(rows) > limit
    total = int(session.execute(queries.count, values).scalar_one()) if count else None
    return CustomerPage(rows[:limit], total, has_more)


def _few_expected(session: Session, matches: Select[tuple[int]], values: dict[str, Any]) -> bool:
    """Whether PostgreSQL's planner expects at most FEW_MATCHES rows of ``matches`` (its
    estimate from the column statistics, e.g. the share of ``remark`` that is "key
    account"); False on SQLite, which keeps no such statistics."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return False
    compiled = _compiled(matches, connection.dialect)
    plan = connection.exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + str(compiled), compiled.construct_params(values)
    ).scalar_one()
    return bool(plan[0]["Plan"]["Plan Rows"] <= FEW_MATCHES)


@functools.lru_cache(maxsize=256)
def _compiled(statement: Select[tuple[int]], dialect: Dialect) -> Compiled:
    """``statement`` compiled once for ``dialect`` (it is built once per shape)."""
    return statement.compile(dialect=dialect)


@dataclass(frozen=True)
class SearchQueries:
    """The statements behind one page of :func:`search` (exposed so that their query
    plans can be examined)."""

    #: The first ``WALK_PER_ROW * (offset + limit)`` customers in sort order, filtered and
    #: paged; None when there is no text to search (``collect`` is then the same walk).
    walk: Select[tuple[Customer]] | None
    #: Every match, sorted and paged.
    collect: Select[tuple[Customer]]
    #: How many match in all.
    count: Select[tuple[int]]
    #: The matches' UINs, unsorted (whose number the planner estimates).
    matches: Select[tuple[int]]
    #: The values of their parameters (from :func:`search_queries`; the statements are
    #: built once per shape of search).
    values: dict[str, Any] = field(default_factory=dict)


def search_queries(
    partner_id: int,
    *,
    text: str = "",
    field: str = "any",
    sort: str = "associated_at",
    descending: bool = True,
    offset: int = 0,
    limit: int = 21,
) -> SearchQueries:
    """The statements :func:`search` runs for rows ``offset`` to ``offset + limit``, with
    the values of their parameters (for EXPLAIN)."""
    queries, values = _queries(
        partner_id,
        text=text,
        field=field,
        sort=sort,
        descending=descending,
        offset=offset,
        limit=limit,
    )
    return SearchQueries(queries.walk, queries.collect, queries.count, queries.matches, values)


def _queries(
    partner_id: int,
    *,
    text: str,
    field: str,
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[SearchQueries, dict[str, Any]]:
    """The statements of this search's shape, and its values."""
    if sort not in SORT_KEYS:
        raise InvalidInput(f"sort must be one of {', '.join(SORT_KEYS)}", param="sort")
    form, values = _form(partner_id, text, field)
    values.update(
        search_offset=offset,
        search_limit=limit,
        search_walked=WALK_PER_ROW * (offset + limit),
    )
    return _statements(sort, descending, field, form), values


@functools.lru_cache(maxsize=256)
def _statements(sort: str, descending: bool, field: str, form: str) -> SearchQueries:
    """The statements of one shape of search, with parameters for its values (see
    :func:`_form`)."""
    table = Customer.__table__.c
    order = _order(table, sort, descending)
    mine = table.partner_id == _PARTNER
    matched = _matching(table, field, form)
    if matched is None:
        everyone = select(Customer).where(mine).order_by(*order).offset(_OFFSET).limit(_LIMIT)
        return SearchQueries(
            None,
            everyone,
            select(func.count()).select_from(Customer).where(mine),
            select(table.uin).where(mine),
        )
    if field != "uin":
        # The text is looked for where its index is: in CustomerSearch (migration 0019).
        searched = CustomerSearch.__table__.c
        found = _matching(searched, field, form)
        assert found is not None  # the same search as ``matched``
        uins = select(searched.uin).where(searched.partner_id == _PARTNER, found)
        count = select(func.count()).select_from(uins.subquery())
        matched = _among(table.uin, uins)
    else:
        uins = select(table.uin).where(mine, matched)
        count = select(func.count()).select_from(Customer).where(mine, matched)
    # Every match's sort key first (MATERIALIZED: planned on its own, so without walking
    # the sort order's index), then the page of them in sort order, then its customers:
    # only the page's rows are read whole.
    key = table[SORT_KEYS[sort].key]
    matches = (
        select(*dict.fromkeys([key, table.uin]))
        .where(mine, matched)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    page = (
        select(matches)
        .order_by(*_order(matches.c, sort, descending))
        .offset(_OFFSET)
        .limit(_LIMIT)
        .subquery("page")
    )
    collect = (
        select(Customer)
        .join(page, Customer.uin == page.c.uin)
        .where(mine)
        .order_by(*_order(page.c, sort, descending))
    )
    if field == "uin":  # one customer at most, by its key: nothing to walk
        return SearchQueries(None, collect, count, uins)
    window = select(*table).where(mine).order_by(*order).limit(_WALKED).subquery("walked")
    walked_matches = _matching(window.c, field, form)
    assert walked_matches is not None  # the same search as ``matched``
    walk = (
        select(aliased(Customer, window))
        .where(walked_matches)
        .order_by(*_order(window.c, sort, descending))
        .offset(_OFFSET)
        .limit(_LIMIT)
    )
    return SearchQueries(walk, collect, count, uins)


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

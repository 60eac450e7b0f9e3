"""The one-shard judge: does a statement read or write one partner's rows only?

Distributed by ``partner_id`` (Citus), a statement runs on one shard when every
distributed table it names is pinned to one partner: its distribution column equal to a
value (``WHERE t.partner_id = %(p)s``, an ``IN`` of one value, the inserted rows'
``partner_id``) or to the column of another table so pinned (``ON a.partner_id =
b.partner_id``), in the same query or an enclosing one (CTEs, subqueries, derived tables),
and every such value is the same. Only equalities that must hold (the ANDs of a WHERE or a
JOIN's ON) count; an OR or a NOT pins nothing.

The statement is parsed by sqlglot (its PostgreSQL dialect) and judged once per text;
what a text leaves to its parameters (two placeholders that must carry one partner) is
checked on each execution. A deliberate cross-partner statement is allowed by the code
that issues it: :data:`ALLOWED` names functions (or whole modules), each with its reason.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import FrameType
from typing import Any

import sqlglot
from sqlalchemy import UniqueConstraint
from sqlglot import exp
from sqlglot.errors import SqlglotError

from creditline.db.distribution import TABLE_CLASS
from creditline.db.tables import Base

#: Code allowed to run statements across partners (by module, or module.function), and why.
ALLOWED: dict[str, str] = {
    "creditline.db.migrations": "migrations change every partner's rows by design",
    "creditline.db.migrate": "the schema's revision, read by every command",
    "alembic": "migrations change every partner's rows by design",
    "creditline.ledger.verify": "verify checks every partner's books at once",
    "creditline.ledger.reports": "platform reports: the vendor's view across partners",
    "creditline.notify.deliveries.expand": (
        "the delivery worker hands over new outbox events of any partner (SKIP LOCKED)"
    ),
    "creditline.notify.deliveries.has_work": (
        "the delivery worker's idle poll: is anything of any partner to hand over or due"
    ),
    "creditline.ledger.purchases.page": "the platform's log of purchase decisions, all partners",
    "creditline.ledger.purchases.check": (
        "a platform key's idempotent check: its idempotency row is the platform's (partner 0),"
        " the customer another partner's; one statement reads both (two shards)"
    ),
    "creditline.api.fast.FastCredit.write_many": (
        "the allocations in flight together, of distinct partners, in one statement: on one"
        " PostgreSQL server only; on Citus the fast path makes no batches (docs/scaling.md)"
    ),
    "creditline.api.fast.FastCredit._check_by_uin": (
        "the platform's purchase check names the customer by UIN alone: one statement finds"
        " it on its partner's shard and keeps the decision there (a partner's check is"
        " scoped: tests/api/test_fast_path_equal.py)"
    ),
    "creditline.notify.deliveries.claim": (
        "the delivery worker claims due deliveries of any partner (SKIP LOCKED)"
    ),
    "creditline.ledger.usage.ingest": (
        "the vendor's billing feed: one batch spans partners (customers found by UIN, "
        "rows inserted and consumption added on each of their shards)"
    ),
    "creditline.ledger.usage.parse_batch": "the billing feed's unknown customers, by UIN",
    "creditline.usage_file._check": "a usage file of the billing feed: customers by UIN",
    "creditline.audit.list_events": "the platform admins' audit log, across partners",
    "creditline.demo.build_demo": "the demo builds a whole partner network at once",
    # A distributor's network spans shards: its sub-resellers are partners of their own.
    "creditline.ledger.accounts.sub_resellers": "a distributor lists its sub-resellers",
    "creditline.ledger.records.names": "a distributor names the sub-resellers it allocated to",
    # The platform and a distributor decide applications across their applicants' shards,
    # naming an application by its id alone.
    "creditline.ledger.applications.listing": "the platform's or a distributor's queue",
    "creditline.ledger.applications.approve": "a decider approves an application by its id",
    "creditline.ledger.applications.reject": "a decider rejects an application by its id",
    "creditline.ledger.applications.get": "a decider reads an application by its id",
    # Recorded once, under the distributor: a mirror row on the sub-reseller's shard would
    # make these one-shard reads (a change of schema, not of query).
    "creditline.ledger.records.page": (
        "a sub-reseller's records include its distributor's pool allocations to it"
    ),
    "creditline.ledger.history.pool_changes": (
        "a sub-reseller's pool chart includes its distributor's pool allocations to it"
    ),
}

#: Why a statement issued by test code itself (no creditline function on the stack) is
#: not judged: fixtures empty every table, and tests look at the whole database to check
#: that a refusal changed nothing. Only the product's statements must stay on one shard.
TEST_CODE = "a test's own setup, cleanup or inspection"

TESTS = Path(__file__).resolve().parent
# sqlglot warns of each statement it keeps as an opaque command (CREATE EXTENSION, ...).
logging.getLogger("sqlglot").setLevel(logging.ERROR)

#: Query nodes: each owns the tables and conditions written directly in it.
_QUERIES = (exp.Select, exp.Update, exp.Delete, exp.Insert)
_Key = tuple[Any, ...]


def _columns() -> dict[str, set[str]]:
    return {name: set(table.columns.keys()) for name, table in Base.metadata.tables.items()}


def _distribution_columns() -> dict[str, str]:
    """Each distributed table's distribution column: ``partner_id``, or for the table the
    ``partner_id`` columns refer to (``partners``), the column they refer to (``id``)."""
    referred: dict[str, str] = {}
    for table in Base.metadata.tables.values():
        column = table.columns.get("partner_id")
        if column is None:
            continue
        for key in column.foreign_keys:
            referred[key.column.table.name] = key.column.name
    found: dict[str, str] = {}
    for name, table in Base.metadata.tables.items():
        if TABLE_CLASS.get(name) != "distributed":
            continue
        if "partner_id" in table.columns:
            found[name] = "partner_id"
        elif name in referred:
            found[name] = referred[name]
    return found


COLUMNS = _columns()
DISTRIBUTED = _distribution_columns()
#: Distributed tables whose primary key does not yet hold their distribution column.
UNKEYED = {
    name
    for name, column in DISTRIBUTED.items()
    if column not in {c.name for c in Base.metadata.tables[name].primary_key.columns}
}
#: Why the ORM's flush of such a table is not judged: it updates or deletes a row by its
#: primary key alone, which names one partner's row once the key holds ``partner_id``
#: (the ORM then filters by it); until then the key cannot say which shard.
ORM_BY_PRIMARY_KEY = "the ORM's flush by a primary key that does not yet hold partner_id"
#: Distributed tables with a unique key that does not yet hold their distribution column
#: (``idempotent_requests(api_key_id, key)``, ``usage_events(event_id)``, ...): a row is
#: found by that key alone until the key holds ``partner_id``; from then on every lookup
#: by it is judged like any other.
UNIQUE_UNKEYED = {
    name
    for name, column in DISTRIBUTED.items()
    for constraint in Base.metadata.tables[name].constraints
    if isinstance(constraint, UniqueConstraint) and column not in constraint.columns
} | {
    name
    for name, column in DISTRIBUTED.items()
    for key in Base.metadata.tables[name].columns
    if key.unique and key.name != column
}


@dataclass(frozen=True)
class Verdict:
    """What a statement's text says: its problems (none: one shard, given its
    parameters), and the placeholders that must all carry the one partner."""

    problems: tuple[str, ...] = ()
    placeholders: frozenset[str] = frozenset()
    tables: frozenset[str] = frozenset()
    #: The distributed tables not pinned to a partner.
    unpinned: frozenset[str] = frozenset()

    def problems_with(self, parameters: Any) -> list[str]:
        """The problems of one execution with ``parameters`` (a mapping, or a sequence
        of them for an executemany)."""
        found = list(self.problems)
        if found or len(self.placeholders) == 0:
            return found
        rows: Iterable[Any] = (
            [parameters] if isinstance(parameters, Mapping) else (parameters or [])
        )
        values: set[Any] = set()
        for row in rows:
            if not isinstance(row, Mapping):
                return ["positional parameters: the partner cannot be told"]
            for name in self.placeholders:
                values.add(row.get(name))
        if len(values) > 1:
            found.append(f"several partners in one statement: {sorted(values, key=repr)}")
        return found


@dataclass
class _Classes:
    """Union-find over columns and values known to be equal."""

    parent: dict[_Key, _Key] = field(default_factory=dict)

    def find(self, key: _Key) -> _Key:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: _Key, b: _Key) -> None:
        self.parent[self.find(a)] = self.find(b)

    def members(self, key: _Key) -> list[_Key]:
        root = self.find(key)
        return [k for k in list(self.parent) if self.find(k) == root]


def _query_of(node: exp.Expression) -> exp.Expression | None:
    """The nearest query (SELECT, UPDATE, DELETE, INSERT) that ``node`` is written in."""
    parent = node.parent
    while parent is not None and not isinstance(parent, _QUERIES):
        parent = parent.parent
    return parent


def _owned(query: exp.Expression, kind: type[exp.Expression]) -> Iterator[exp.Expression]:
    """The nodes of ``kind`` written directly in ``query`` (not in a query inside it)."""
    for node in query.find_all(kind):
        if node is not query and _query_of(node) is query:
            yield node


def _conjuncts(condition: exp.Expression | None) -> Iterator[exp.Expression]:
    if condition is None:
        return
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        yield from _conjuncts(condition.left)
        yield from _conjuncts(condition.right)
    else:
        yield condition


#: The value of a column in a query that matches no row.
NOWHERE: _Key = ("literal", "no row")


def _never(conjunct: exp.Expression) -> bool:
    """Whether a condition is false for every row: ``false``, or ``1 != 1``."""
    if isinstance(conjunct, exp.Boolean):
        return not conjunct.this
    if isinstance(conjunct, exp.NEQ):
        left, right = _unwrap(conjunct.left), _unwrap(conjunct.right)
        return isinstance(left, exp.Literal) and left == right
    return False


def _unwrap(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren | exp.Cast | exp.Alias):
        node = node.this
    return node


class _Statement:
    def __init__(self, tree: exp.Expression) -> None:
        self.tree = tree
        self.classes = _Classes()
        self.ctes: dict[str, exp.Expression] = {
            cte.alias_or_name: cte.this for cte in tree.find_all(exp.CTE)
        }

    # --- what a name in a query stands for ---

    def _sources(self, query: exp.Expression) -> dict[str, exp.Expression]:
        """The tables and derived tables of ``query``, by the name its columns use."""
        found: dict[str, exp.Expression] = {}
        for table in _owned(query, exp.Table):
            found[table.alias_or_name] = table
            found.setdefault(table.name, table)
        for sub in _owned(query, exp.Subquery):
            if sub.alias:
                found[sub.alias] = sub
        return found

    def _source_columns(self, source: exp.Expression) -> set[str]:
        inner = self._inner(source)
        if inner is not None:
            return {e.alias_or_name for e in self._projections(inner)}
        return COLUMNS.get(source.name, set()) if isinstance(source, exp.Table) else set()

    def _inner(self, source: exp.Expression) -> exp.Expression | None:
        """The query behind a derived table or a CTE's name; None for a stored table."""
        if isinstance(source, exp.Subquery):
            return source.this
        if isinstance(source, exp.Table) and not source.db and source.name in self.ctes:
            return self.ctes[source.name]
        return None

    @staticmethod
    def _projections(query: exp.Expression) -> list[exp.Expression]:
        if isinstance(query, exp.SetOperation):
            return _Statement._projections(query.left)
        if isinstance(query, exp.Select):
            return list(query.expressions)
        returning = query.args.get("returning")
        return list(returning.expressions) if returning is not None else []

    def _resolve(self, column: exp.Column) -> _Key | None:
        """The key of the stored column (or derived column) that ``column`` names."""
        name = column.name
        query = _query_of(column)
        while query is not None:
            sources = self._sources(query)
            if column.table:
                source = sources.get(column.table)
            else:
                having = [s for s in set(sources.values()) if name in self._source_columns(s)]
                source = having[0] if len(having) == 1 else None
                if len(having) > 1:
                    return None  # ambiguous: PostgreSQL would refuse it anyway
            if source is not None:
                return self._column_key(source, name)
            query = _query_of(query)
        return None

    def _column_key(self, source: exp.Expression, name: str) -> _Key:
        key: _Key = ("column", id(source), name)
        inner = self._inner(source)
        if inner is not None and ("linked", key) not in self.classes.parent:
            self.classes.parent[("linked", key)] = ("linked", key)
            queries = [inner.left, inner.right] if isinstance(inner, exp.SetOperation) else [inner]
            for query in queries:
                for projection in self._projections(query):
                    if projection.alias_or_name == name:
                        self._equal(key, projection)
        return key

    def _operand(self, node: exp.Expression) -> _Key | None:
        node = _unwrap(node)
        if isinstance(node, exp.Placeholder):
            return ("placeholder", node.name or f"@{id(node)}")
        if isinstance(node, exp.Literal):
            return ("literal", node.sql())
        if isinstance(node, exp.Column):
            return self._resolve(node)
        return None

    def _equal(self, key: _Key, node: exp.Expression) -> None:
        other = self._operand(node)
        if other is not None:
            self.classes.union(key, other)

    # --- the equalities every row must meet ---

    def _collect(self) -> None:
        for query in self.tree.find_all(*_QUERIES):
            conditions = [query.args.get("where")]
            conditions += [join.args.get("on") for join in _owned(query, exp.Join)]
            for condition in conditions:
                if condition is None:
                    continue
                body = condition.this if isinstance(condition, exp.Where) else condition
                for conjunct in _conjuncts(body):
                    self._condition(conjunct)
            if isinstance(query, exp.Insert):
                self._inserted(query)

    def _condition(self, conjunct: exp.Expression) -> None:
        if _never(conjunct):
            # No row can match (SQLAlchemy's empty IN): the query reads no shard at all.
            query = _query_of(conjunct)
            for table in _owned(query, exp.Table) if query is not None else ():
                self.classes.union(("column", id(table), DISTRIBUTED.get(table.name)), NOWHERE)
        elif isinstance(conjunct, exp.EQ):
            left = self._operand(conjunct.left)
            if left is not None:
                self._equal(left, conjunct.right)
        elif isinstance(conjunct, exp.In) and not conjunct.args.get("query"):
            left = self._operand(conjunct.this)
            if left is not None:
                for value in conjunct.expressions:
                    self._equal(left, value)

    def _inserted(self, insert: exp.Insert) -> None:
        target = insert.this
        names: list[str] = []
        if isinstance(target, exp.Schema):
            names = [c.name for c in target.expressions]
            target = target.this
        if not isinstance(target, exp.Table) or target.name not in DISTRIBUTED:
            return
        column = DISTRIBUTED[target.name]
        if column not in names:
            return
        index = names.index(column)
        key = ("column", id(target), column)
        source = _unwrap(insert.expression) if insert.expression is not None else None
        if isinstance(source, exp.Values):
            for row in source.expressions:
                values = row.expressions if isinstance(row, exp.Tuple) else [row]
                if index < len(values):
                    self._equal(key, values[index])
        elif source is not None:
            projections = self._projections(source)
            if index < len(projections):
                self._equal(key, projections[index])

    # --- the verdict ---

    def verdict(self) -> Verdict:
        self._collect()
        problems: list[str] = []
        values: set[_Key] = set()
        tables: set[str] = set()
        unpinned: set[str] = set()
        for table in self.tree.find_all(exp.Table):
            if self._inner(table) is not None or table.name not in DISTRIBUTED:
                continue
            tables.add(table.name)
            key = ("column", id(table), DISTRIBUTED[table.name])
            pinned = [k for k in self.classes.members(key) if k[0] in ("placeholder", "literal")]
            if not pinned:
                unpinned.add(table.name)
                shown = f"{table.name} AS {table.alias}" if table.alias else table.name
                problems.append(f"{shown} is not filtered by one {DISTRIBUTED[table.name]}")
            values.update(pinned)
        values.discard(NOWHERE)
        literals = {k for k in values if k[0] == "literal"}
        placeholders = frozenset(k[1] for k in values if k[0] == "placeholder")
        if len(literals) > 1 or (literals and placeholders):
            problems.append("several partners in one statement")
        return Verdict(tuple(problems), placeholders, frozenset(tables), frozenset(unpinned))


@lru_cache(maxsize=4096)
def judge(sql: str) -> Verdict:
    """The verdict on one statement's text (PostgreSQL, psycopg's ``%(name)s``)."""
    try:
        trees = sqlglot.parse(sql, dialect="postgres")
    except SqlglotError as exc:
        if any(name in sql for name in DISTRIBUTED):
            return Verdict((f"cannot be parsed: {str(exc).splitlines()[0]}",))
        return Verdict()
    problems: list[str] = []
    placeholders: set[str] = set()
    tables: set[str] = set()
    unpinned: set[str] = set()
    for tree in trees:
        if tree is None:
            continue
        found = _Statement(tree).verdict()
        problems += found.problems
        placeholders |= found.placeholders
        tables |= found.tables
        unpinned |= found.unpinned
    return Verdict(tuple(problems), frozenset(placeholders), frozenset(tables), frozenset(unpinned))


def _in_orm_flush(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_globals.get("__name__") == "sqlalchemy.orm.persistence":
            return True
        frame = frame.f_back
    return False


def _module_of(frame: FrameType) -> str:
    # pytest imports a conftest.py by its bare name; name test code by its path instead.
    path = Path(frame.f_code.co_filename)
    if path.is_relative_to(TESTS):
        return ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)
    return str(frame.f_globals.get("__name__", ""))


def allowed_by(frame: FrameType | None) -> str | None:
    """The reason of the :data:`ALLOWED` entry that code on the stack from ``frame``
    falls under; None when none does."""
    while frame is not None:
        module = _module_of(frame)
        where = f"{module}.{frame.f_code.co_qualname}"
        for entry, reason in ALLOWED.items():
            if where == entry or where.startswith(entry + "."):
                return reason
        frame = frame.f_back
    return None


def _issuer(frame: FrameType | None) -> str | None:
    """The creditline functions on the stack (innermost first, at most three): who issued
    the statement; None when there is none (the statement is the test's own)."""
    chain: list[str] = []
    while frame is not None and len(chain) < 3:
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith("creditline."):
            chain.append(f"{module}.{frame.f_code.co_qualname}")
        frame = frame.f_back
    return " < ".join(chain) or None


@dataclass
class Offence:
    sql: str
    problems: Sequence[str]
    issuer: str

    def __str__(self) -> str:
        statement = " ".join(self.sql.split())
        return f"{'; '.join(self.problems)} (from {self.issuer})\n    {statement}"


def offence(sql: str, parameters: Any) -> Offence | None:
    """The offence of one execution of ``sql``, or None when it stays on one shard or
    is issued by allowed code (the caller's stack is looked at only for offenders)."""
    verdict = judge(sql)
    problems = verdict.problems_with(parameters)
    if not problems or allowed_by(sys._getframe(1)) is not None:
        return None
    if verdict.tables <= UNKEYED and _in_orm_flush(sys._getframe(1)):
        return None  # ORM_BY_PRIMARY_KEY
    if (
        verdict.unpinned
        and verdict.unpinned <= UNIQUE_UNKEYED
        and len(verdict.problems) == len(verdict.unpinned)
    ):
        return None  # UNIQUE_UNKEYED: found by its unique key, pending partner_id in it
    issuer = _issuer(sys._getframe(1))
    if issuer is None:
        return None  # TEST_CODE
    return Offence(sql, problems, issuer)

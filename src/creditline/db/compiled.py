"""Statements compiled once, run as the driver's own SQL.

SQLAlchemy caches each statement's compiled form, except where it cannot key the
statement: a dialect's own INSERT (PostgreSQL's and SQLite's ``ON CONFLICT``) is compiled
again on every execution (sqlalchemy#10445) — about 2 ms of CPU for a rate limit's lease,
more than the statement's whole round trip. :func:`execute` compiles such a statement once
per dialect and runs its text through the driver; the fast paths keep theirs the same way
(:func:`compile_for`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class Compiled:
    """A statement compiled for one dialect: its text, and how to give it its values."""

    sql: str
    #: The parameters' names in the order of the text's placeholders (a positional
    #: driver's, SQLite's ``?``); empty for a driver of named placeholders (psycopg's).
    names: tuple[str, ...]
    #: SQLAlchemy's own conversions of each parameter (JSON values, time zones).
    processors: Mapping[str, Callable[[Any], Any]]
    #: The statement's own constants (its literal values), by parameter name.
    constants: Mapping[str, Any]
    #: The returned columns' names and conversions (SQLAlchemy's, as the ORM applies them).
    columns: tuple[str, ...]
    results: tuple[Callable[[Any], Any] | None, ...]

    def named(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value, converted, by name."""
        merged = {**self.constants, **values}
        return {
            name: (self.processors[name](value) if name in self.processors else value)
            for name, value in merged.items()
        }

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The values as the driver takes them: in placeholder order, or by name."""
        given = self.named(values)
        if not self.names:
            return given
        return tuple(given[name] for name in self.names)

    def converted(self, found: Sequence[Any]) -> tuple[Any, ...]:
        """A returned row, converted as SQLAlchemy would, in column order."""
        return tuple(
            value if convert is None or value is None else convert(value)
            for convert, value in zip(self.results, found, strict=True)
        )

    def row(self, found: Sequence[Any]) -> dict[str, Any]:
        """A returned row, converted as SQLAlchemy would, by column name."""
        return dict(zip(self.columns, self.converted(found), strict=True))


def compile_for(dialect: Dialect, statement: Executable) -> Compiled:
    """``statement`` compiled for ``dialect``."""
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    return Compiled(
        sql=str(compiled),
        names=tuple(compiled.positiontup or ()),
        processors=dict(getattr(compiled, "_bind_processors", {})),
        constants={
            name: value
            for name, value in compiled.params.items()
            if compiled.binds[name].value is not None
        },
        columns=tuple(column[0] for column in compiled._result_columns),
        results=tuple(_result_processor(dialect, column[3]) for column in compiled._result_columns),
    )


def _result_processor(dialect: Dialect, type_: Any) -> Callable[[Any], Any] | None:
    """SQLAlchemy's conversion of a returned column of ``type_``, where it has one without
    the driver's type code (which only a cursor's description gives): SQLite's, for one.
    psycopg's numeric types need that code, and psycopg returns them converted."""
    try:
        processor: Callable[[Any], Any] | None = type_._cached_result_processor(dialect, None)
    except TypeError:
        return None
    return processor


#: The execution option :func:`execute` sets: whether the statement returns rows (a
#: pipelined transaction sends one that does not with the next one: db/engine.py).
RETURNS_ROWS = "creditline.returns_rows"
#: Statements compiled by :func:`execute`, by the statement (built once, kept for the
#: process's life: a module's constant) and the dialect's class.
_COMPILED: dict[tuple[Executable, type[Dialect]], Compiled] = {}
_LOCK = threading.Lock()


def _connection(bind: Connection | Session) -> Connection:
    if isinstance(bind, Session):
        bind.flush()
        return bind.connection()
    return bind


def _compiled(connection: Connection, statement: Executable) -> Compiled:
    key = (statement, type(connection.dialect))
    found = _COMPILED.get(key)
    if found is None:
        with _LOCK:
            found = _COMPILED.setdefault(key, compile_for(connection.dialect, statement))
    return found


def _run(connection: Connection, compiled: Compiled, values: Mapping[str, Any]) -> Any:
    return connection.exec_driver_sql(
        compiled.sql,
        compiled.params(values),
        execution_options={RETURNS_ROWS: bool(compiled.columns)},
    )


def execute(
    bind: Connection | Session, statement: Executable, values: Mapping[str, Any]
) -> CursorResult[Any]:
    """Run ``statement`` (a module's constant, built once) with ``values`` on ``bind`` (a
    session's: in its transaction, after what it has pending), compiled only the first
    time for its dialect. Its rows come back as the driver gives them (:func:`fetch_all`
    converts them)."""
    connection = _connection(bind)
    result: CursorResult[Any] = _run(connection, _compiled(connection, statement), values)
    return result


def execute_many(
    bind: Connection | Session, statement: Executable, values: Sequence[Mapping[str, Any]]
) -> None:
    """Run ``statement`` once for each of ``values``, in order, its rows not wanted (a
    ``SELECT ... FOR UPDATE`` run for its locks, one partner's at a time): one call to the
    driver's ``executemany``, whose statements a pipelined transaction sends with the next
    statement that has rows to read (db/engine.py). Each is still its own statement."""
    if not values:
        return
    connection = _connection(bind)
    compiled = _compiled(connection, statement)
    connection.exec_driver_sql(
        compiled.sql,
        [compiled.params(v) for v in values],
        execution_options={RETURNS_ROWS: False},
    )


def driver_rows(result: CursorResult[Any]) -> Sequence[Any]:
    """Every row of ``result`` (of :func:`execute`) as the driver's own tuples, read from its
    cursor and unconverted, and the result closed: a few hundred rows read through
    SQLAlchemy's result cost about a microsecond a row more."""
    rows = result.cursor.fetchall()
    result.close()
    return rows


def fetch_all(
    bind: Connection | Session, statement: Executable, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """:func:`execute`, and every row it returns, converted as SQLAlchemy would."""
    connection = _connection(bind)
    compiled = _compiled(connection, statement)
    return [compiled.converted(row) for row in _run(connection, compiled, values).all()]

"""One statement for several items (PostgreSQL): a statement written for one item's
parameters, run for many by reading each of those parameters from the item's row of
``asked`` — the items' values sent as one JSON text, a row per item — instead of from the
parameter itself. The rule's statement stays the one its module owns; only where
its values come from changes (api/fast.py batches the allocations in flight this way)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    CTE,
    JSON,
    BigInteger,
    DateTime,
    String,
    Text,
    TypeDecorator,
    bindparam,
    cast,
    column,
    func,
    select,
)
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import NullType, TypeEngine

T = TypeVar("T")

#: The column of ``asked`` that numbers the items, from 1, in the order they were given.
ORDINAL = "n"


def _stored(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """The type an array of already converted values of ``type_`` is sent as."""
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, NullType | String):
        return Text()  # never cut to a length: the column it goes to refuses what is too long
    if isinstance(type_, DateTime):
        return DateTime(timezone=True)
    return type_


@dataclass(frozen=True)
class Batch:
    """The items of one statement: ``asked``, a row per item (column :data:`ORDINAL` and
    one per parameter of :attr:`names`), sent as the one parameter :data:`ITEMS`."""

    asked: CTE
    names: tuple[str, ...]

    def each(self, element: T) -> T:
        """``element`` (an expression or a statement) with every parameter an item gives
        read from the item's row of :attr:`asked` (the CTEs it names are kept as they
        are: each is rewritten once, where it is built)."""

        def swap(found: Any) -> Any:
            if isinstance(found, CTE):
                return found
            if isinstance(found, BindParameter) and not found.unique and found.key in self.names:
                return self.asked.c[found.key]
            return None

        found: T = visitors.replacement_traverse(element, {}, swap)  # type: ignore[call-overload]
        return found

    @property
    def ordinal(self) -> Any:
        return self.asked.c[ORDINAL]

    def params(self, items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """The statement's parameter for ``items`` (each its parameters by name, already
        converted as the one-item statement converts them): one JSON text, an object per
        item (psycopg would dump an array per parameter element by element, in Python)."""
        rows = [{name: item[name] for name in self.names} for item in items]
        for ordinal, row in enumerate(rows, 1):
            row[ORDINAL] = ordinal
        return {ITEMS: json.dumps(rows, default=_json_value, separators=(",", ":"))}


#: The parameter of a batched statement: its items, as JSON text (:meth:`Batch.params`).
ITEMS = "batch_items"


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a batch's value")


def batch(types: Mapping[str, TypeEngine[Any]]) -> Batch:
    """The :class:`Batch` of items giving the parameters ``types`` (name → type): their
    rows are ``json_to_recordset`` of the one parameter :data:`ITEMS`."""
    names = tuple(types)
    columns = [column(name, _stored(t)) for name, t in types.items()]
    rows = func.json_to_recordset(cast(bindparam(ITEMS, type_=Text), JSON)).table_valued(
        *columns, column(ORDINAL, BigInteger)
    )
    asked = select(rows.render_derived(name="items", with_types=True)).cte("asked")
    return Batch(asked, names)


def item_parameters(statement: Any, dialect: Any) -> dict[str, TypeEngine[Any]]:
    """The named parameters of ``statement`` (an item's), by name, with their types."""
    compiled = statement.compile(dialect=dialect)
    return {
        bound.key: bound.type
        for bound in compiled.binds.values()
        if not bound.unique and bound.key != ITEMS
    }

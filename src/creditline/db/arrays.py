"""Arrays sent to PostgreSQL as one text parameter (``{1,2,3}``) and cast by the statement.

psycopg dumps a Python list element by element, in Python (about half a microsecond an
element); a usage batch sends a few thousand elements this way. The text of a list of
integers is built by ``str.join`` at C speed, and PostgreSQL reads it as fast as the
dumped list. One statement text whatever the list's length, as with a list parameter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Text, bindparam, cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine


def param(
    name: str, item: TypeEngine[Any] | type[TypeEngine[Any]] = BigInteger
) -> ColumnElement[Any]:
    """In SQL: the parameter ``name`` (an array's text, see :func:`ints`, :func:`texts`)
    as an array of ``item``."""
    return cast(bindparam(name, type_=Text), ARRAY(item))


def ints(values: Iterable[int]) -> str:
    """An array of integers as PostgreSQL reads it from text."""
    return "{" + ",".join(map(str, values)) + "}"


def texts(values: Sequence[str]) -> str:
    """An array of texts as PostgreSQL reads it from text: each element quoted (so spaces,
    commas, braces and the word NULL stay what they are), backslashes and quotes escaped."""
    if not values:
        return "{}"
    joined = "".join(values)
    if "\\" in joined or '"' in joined:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'

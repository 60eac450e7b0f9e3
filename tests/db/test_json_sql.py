"""The SQL twins of the JSON creditline writes in Python (PostgreSQL's one-statement
allocation and purchase check build their answers, events and audit rows with them): each
pair writes the same text for every value. PostgreSQL only: SQLite's fast path builds them
in Python."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Engine, bindparam, select

from creditline import money
from creditline.db import json_sql, make_engine
from creditline.db.tables import UTCDateTime

BIGINT = st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)


@pytest.fixture(scope="module")
def pg(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@settings(max_examples=300, deadline=None)
@given(cents=st.one_of(BIGINT, st.integers(min_value=-1000, max_value=1000)))
def test_money_text_writes_what_to_text_writes(pg: Engine, cents: int) -> None:
    query = select(json_sql.money_text(bindparam("c", type_=BigInteger)))
    with pg.connect() as connection:
        assert connection.scalar(query, {"c": cents}) == money.to_text(cents)


@settings(max_examples=300, deadline=None)
@given(cents=st.one_of(BIGINT, st.integers(min_value=-100_000_000, max_value=100_000_000)))
def test_money_display_writes_what_to_display_writes(pg: Engine, cents: int) -> None:
    query = select(json_sql.money_display(bindparam("c", type_=BigInteger)))
    with pg.connect() as connection:
        assert connection.scalar(query, {"c": cents}) == money.to_display(cents)


@settings(max_examples=200, deadline=None)
@given(at=st.one_of(TIMES, TIMES.map(lambda t: t.replace(microsecond=0))))
def test_time_text_writes_what_python_writes(pg: Engine, at: datetime) -> None:
    given_at = bindparam("t", type_=UTCDateTime())
    styles: dict[json_sql.TimeStyle, str] = {
        "iso": at.isoformat(),
        "z": at.isoformat().replace("+00:00", "Z"),
        "str": str(at),
    }
    with pg.connect() as connection:
        for style, written in styles.items():
            assert connection.scalar(select(json_sql.time_text(given_at, style)), {"t": at}) == (
                written
            ), style


def test_a_null_time_stays_null(pg: Engine) -> None:
    with pg.connect() as connection:
        found = connection.scalar(
            select(json_sql.time_text(bindparam("t", type_=UTCDateTime()), "iso")), {"t": None}
        )
    assert found is None

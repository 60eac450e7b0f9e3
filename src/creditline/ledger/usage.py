"""Usage from the vendor's billing feed (DESIGN §2).

Each charge counts ``list_amount - voucher_amount`` against its customer's credit (a refund
counts negative); partner discounts never change what is counted. An event id seen before
is a duplicate and changes nothing. A batch with any invalid record is refused whole, with
every invalid record named. Ingestion takes the same few statements whatever the batch's
size (see :func:`ingest`): its events sent as arrays (SQLite: staged by ``executemany``)
and moved by one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, the customers with new
events locked in ascending UIN order (so concurrent batches cannot deadlock; the pools of
partners with top-up rules locked before them, as every allocation does), one upsert of
the customers' daily totals, one ``UPDATE`` that adds each customer's net consumption, the
forecasts' writes (:mod:`creditline.ledger.forecast`: a read of the daily totals and one
``UPDATE``, only for customers whose forecast is stale or whose alarm state moves) and
the alarm rule's writes for all of its customers at once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    any_,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

from creditline import money
from creditline.clock import utcnow
from creditline.db import arrays, compiled
from creditline.db.tables import Alarm, Customer, Partner, UsageEvent
from creditline.errors import CreditlineError, InvalidBatch, InvalidInput, LineError
from creditline.ledger import forecast
from creditline.ledger.alarms import CustomerCredit, evaluate_many, settled
from creditline.ledger.top_ups import TopUp, after_usage, lock_pools, rules_for

USAGE_KINDS = ("charge", "refund")
FIELDS = (
    "event_id",
    "customer_uin",
    "product",
    "list_amount",
    "voucher_amount",
    "occurred_at",
    "kind",
)
REQUIRED = FIELDS[:-1]
MAX_BATCH = 10_000


class UsageRecord(msgspec.Struct, frozen=True):
    """One validated charge or refund. (A frozen msgspec struct: a batch makes a thousand,
    which a dataclass makes about fourteen times slower.)"""

    event_id: str
    customer_uin: int
    product: str
    list_amount: int
    voucher_amount: int
    occurred_at: datetime
    kind: str = "charge"

    @property
    def counted(self) -> int:
        """What counts against credit: list minus voucher, negative for a refund."""
        net = self.list_amount - self.voucher_amount
        return -net if self.kind == "refund" else net


@dataclass(frozen=True)
class IngestResult:
    """What a batch did: events counted, duplicates ignored, and any alarms it raised."""

    accepted: int
    duplicates: int
    alarms: list[Alarm] = field(default_factory=list)
    #: The automatic top-ups the batch triggered, made or refused (ledger.top_ups).
    top_ups: list[TopUp] = field(default_factory=list)


def parse_time(value: object) -> datetime:
    """An ISO 8601 time **with** its UTC offset (``2026-01-03T10:00:00Z``,
    ``...+08:00``), as UTC. A time without an offset is refused: which zone it meant
    cannot be known, and guessing would move usage across a day or a month."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
    else:
        raise ValueError(f"{value!r} is not an ISO 8601 time")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; write the zone, e.g. 2026-01-03T10:00:00Z")
    return parsed.astimezone(UTC)


def _amount(raw: object, name: str, *, strict: bool) -> int:
    if isinstance(raw, str):
        return money.parse_amount(raw, param=name)
    if strict:
        raise ValueError(f'{name} must be decimal text such as "12.50", not {raw!r}')
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return money.from_float(raw, param=name)
    raise ValueError(f"{name} {raw!r} is not an amount")


def uin_value(raw: object, *, strict: bool) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"customer_uin {raw!r} is not a UIN")
    if isinstance(raw, int):
        value = raw
    elif strict:
        # JSON: the schema says integer; "100000000002" and 100000000002.0 are not one.
        raise ValueError(f"customer_uin must be a JSON integer, not {raw!r}")
    elif isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        value = int(raw.strip())
    else:
        raise ValueError(f"customer_uin {raw!r} is not a UIN")
    if not 0 < value < 2**63:
        raise ValueError(f"customer_uin {raw!r} is not a UIN")
    return value


def text_value(raw: object, name: str, longest: int) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > longest:
        raise ValueError(f"{name} must be text of 1-{longest} characters")
    return raw.strip()


def check_record(
    raw: Mapping[str, object], *, strict: bool = False
) -> UsageRecord | list[tuple[str | None, str]]:
    """Validate one raw record: the record, or **every** fault found in it as (field,
    message) pairs.

    ``strict``: the record is JSON (a REST body, a JSON Lines line): each value must have
    the JSON type the schema gives — ``customer_uin`` an integer, amounts and
    ``occurred_at`` strings — with no conversion between types, and ``voucher_amount``
    may be left out (0). Otherwise the values come from a text format (CSV), where every
    value is text. Either way unknown fields are refused, and a time needs its offset.
    """
    faults: list[tuple[str | None, str]] = []
    optional = ("kind", "voucher_amount") if strict else ("kind",)
    unknown = sorted(str(name) for name in raw if name not in FIELDS)
    if unknown:
        faults.append((unknown[0], f"unknown field {', '.join(unknown)}"))
    if strict:
        nulls = [name for name in FIELDS if name in raw and raw[name] is None]
        faults.extend((name, f"{name} must not be null") for name in nulls)
        missing = [n for n in FIELDS if n not in raw and n not in optional]
    else:
        missing = [n for n in FIELDS if raw.get(n) in (None, "") and n not in optional]
    faults.extend((name, f"missing {name}") for name in missing)
    skip = set(missing) | {name for name in FIELDS if raw.get(name) is None}

    values: dict[str, Any] = {}

    def check(name: str, parse: Any) -> None:
        if name in skip:
            return
        try:
            values[name] = parse(raw[name])
        except CreditlineError as exc:
            faults.append((name, exc.message))
        except ValueError as exc:
            faults.append((name, str(exc)))

    check("event_id", lambda v: text_value(v, "event_id", 128))
    check("customer_uin", lambda v: uin_value(v, strict=strict))
    check("product", lambda v: text_value(v, "product", 100))
    check("list_amount", lambda v: _amount(v, "list_amount", strict=strict))
    if "voucher_amount" not in raw or (not strict and raw["voucher_amount"] in (None, "")):
        if "voucher_amount" not in missing:
            values["voucher_amount"] = 0
    else:
        check("voucher_amount", lambda v: _amount(v, "voucher_amount", strict=strict))
    check("occurred_at", lambda v: parse_time(v) if isinstance(v, str) else _not_time(v))
    kind = raw.get("kind")
    if kind is None or (kind == "" and not strict):
        values["kind"] = "charge"
    elif kind not in USAGE_KINDS:
        faults.append(("kind", f"kind must be charge or refund, not {kind!r}"))
    else:
        values["kind"] = kind
    list_amount, voucher_amount = values.get("list_amount"), values.get("voucher_amount")
    if list_amount is not None and voucher_amount is not None and voucher_amount > list_amount:
        faults.append(
            (
                "voucher_amount",
                f"voucher_amount {money.to_display(voucher_amount)} is above list_amount "
                f"{money.to_display(list_amount)}",
            )
        )
    if faults:
        return faults
    return UsageRecord(**values)


def _not_time(value: object) -> datetime:
    raise ValueError(f"occurred_at must be an ISO 8601 time as text, not {value!r}")


def parse_record(raw: Mapping[str, object], *, strict: bool = False) -> UsageRecord:
    """Validate one raw record; raises ``ValueError`` naming its first fault (use
    :func:`check_record` or :func:`parse_batch` for all of them)."""
    checked = check_record(raw, strict=strict)
    if isinstance(checked, UsageRecord):
        return checked
    field_name, message = checked[0]
    raise InvalidInput(message, param=field_name)


@dataclass(frozen=True)
class Checked:
    """A batch as read: its valid records with their numbers (1-based: the position in a
    REST batch, the line in a file), and every fault of the others."""

    records: list[UsageRecord]
    lines: list[int]
    faults: list[LineError]


def check_batch(
    raws: Sequence[tuple[int, Mapping[str, object] | UsageRecord]], *, strict: bool = False
) -> Checked:
    """Validate (number, raw) pairs, keeping every fault of every bad record with its
    number and field. A pair may hold a record already validated (decoded by the compiled
    schema, :mod:`creditline.ledger.usage_json`). ``strict``: see :func:`check_record`."""
    records: list[UsageRecord] = []
    lines: list[int] = []
    faults: list[LineError] = []
    for line, raw in raws:
        checked = raw if isinstance(raw, UsageRecord) else check_record(raw, strict=strict)
        if isinstance(checked, UsageRecord):
            records.append(checked)
            lines.append(line)
        else:
            faults.extend(LineError(line, message, name) for name, message in checked)
    return Checked(records, lines, faults)


def parse_batch(
    raws: Sequence[tuple[int, Mapping[str, object] | UsageRecord]],
    *,
    what: str = "record",
    session: Session | None = None,
    strict: bool = False,
) -> list[UsageRecord]:
    """Validate a whole batch of (number, raw) pairs; every fault of every bad record is
    named at once, each with its record's number (1-based: the position in a REST batch,
    the line in a file) and field.

    With ``session``, records naming an unknown customer are named in the same refusal
    as malformed ones (otherwise :func:`ingest` names them, but only once the rest parse).
    ``strict``: the records are JSON (see :func:`check_record`).
    """
    checked = check_batch(raws, strict=strict)
    errors = list(checked.faults)
    if session is not None and checked.records:
        owners = _owners(session, {r.customer_uin for r in checked.records})
        errors.extend(_unknown(checked.records, checked.lines, owners))
    if errors:
        errors.sort(key=lambda e: e.line)
        raise InvalidBatch(errors, what=what)
    return checked.records


#: The unique key an event id is seen by: ``INSERT ... ON CONFLICT (these) DO NOTHING``,
#: and the key repeats inside one batch are found by. Columns of ``usage_events``.
CONFLICT_TARGET = ("partner_id", "event_id")

_events = UsageEvent.metadata.tables[UsageEvent.__tablename__]
#: What a batch writes of each event, in this order (``ingested_at`` is the statement's).
_STAGED = (
    "event_id",
    "partner_id",
    "customer_uin",
    "product",
    "kind",
    "list_amount",
    "voucher_amount",
    "counted",
    "occurred_at",
)
assert CONFLICT_TARGET == ("partner_id", "event_id")  # _staged finds repeats by these


class _Counted(NamedTuple):
    """What a batch's new events of one customer and one UTC day (a day number) add up
    to, as inserted: their sum of ``counted``, how many they are, and whether any of
    them is a refund that counts."""

    partner_id: int
    uin: int
    day: int
    counted: int
    events: int
    refund: bool


# --- PostgreSQL: the events and the staging in one statement ------------------------------

#: The batch's events as arrays (each one text parameter, :mod:`creditline.db.arrays`),
#: joined as a table: no staging table, no ``COPY``, no second statement to empty it.
_ROWS = (
    func.unnest(
        arrays.param("e_event_ids", String),
        arrays.param("e_partner_ids"),
        arrays.param("e_customer_uins"),
        arrays.param("e_products", String),
        arrays.param("e_kinds", String),
        arrays.param("e_list_amounts"),
        arrays.param("e_voucher_amounts"),
        arrays.param("e_counted"),
        arrays.param("e_occurred_at", DateTime(timezone=True)),
    )
    .table_valued(
        column("event_id", String),
        column("partner_id", BigInteger),
        column("customer_uin", BigInteger),
        column("product", String),
        column("kind", String),
        column("list_amount", BigInteger),
        column("voucher_amount", BigInteger),
        column("counted", BigInteger),
        column("occurred_at", DateTime(timezone=True)),
    )
    .render_derived(name="s")
)
#: The events not seen before, inserted in key order (concurrent batches sharing event
#: ids take the unique index's entries in one order and cannot deadlock on each other);
#: each returns its customer, amount, kind and UTC day.
_pg_inserted = (
    postgresql.insert(_events)
    .from_select(
        [*_STAGED, "ingested_at"],
        select(
            *(_ROWS.c[name] for name in _STAGED),
            bindparam("ingested_at", type_=_events.c.ingested_at.type),
        ).order_by(*(_ROWS.c[name] for name in CONFLICT_TARGET)),
    )
    .on_conflict_do_nothing(index_elements=list(CONFLICT_TARGET))
    .returning(
        _events.c.partner_id,
        _events.c.customer_uin,
        _events.c.counted,
        _events.c.kind,
        cast(func.timezone("UTC", _events.c.occurred_at), Date).label("day"),
    )
    .cte("inserted")
)
#: Their sums per customer and UTC day.
_pg_days = (
    select(
        _pg_inserted.c.partner_id,
        _pg_inserted.c.customer_uin,
        _pg_inserted.c.day,
        cast(func.sum(_pg_inserted.c.counted), BigInteger).label("counted"),
        func.count().label("events"),
        func.bool_or((_pg_inserted.c.kind == "refund") & (_pg_inserted.c.counted != 0)).label(
            "refund"
        ),
    )
    .group_by(_pg_inserted.c.partner_id, _pg_inserted.c.customer_uin, _pg_inserted.c.day)
    .cte("days")
)
#: PostgreSQL: the batch's new events inserted and what they add up to per customer and
#: day returned: one statement, one round trip. (The daily totals are added once the
#: batch holds its customers' locks, by :func:`forecast.add_daily`: an upsert here would
#: wait for the daily rows of a concurrent batch until it commits, and batches would
#: queue for their events' INSERT too, not for the consumption alone.)
_COUNT_PG = select(
    _pg_days.c.partner_id,
    _pg_days.c.customer_uin,
    _pg_days.c.day,
    _pg_days.c.counted,
    _pg_days.c.events,
    _pg_days.c.refund,
)


def _count_pg(session: Session, columns: Sequence[Sequence[Any]]) -> list[_Counted]:
    """Insert the staged events (PostgreSQL; ``columns`` in the order of _STAGED); what the
    new ones add up to per customer and day."""
    times: dict[datetime, str] = {}
    for when in columns[8]:
        if when not in times:
            times[when] = when.isoformat()
    found = compiled.execute(
        session,
        _COUNT_PG,
        {
            "e_event_ids": arrays.texts(columns[0]),
            "e_partner_ids": arrays.ints(columns[1]),
            "e_customer_uins": arrays.ints(columns[2]),
            "e_products": arrays.texts(columns[3]),
            "e_kinds": arrays.texts(columns[4]),
            "e_list_amounts": arrays.ints(columns[5]),
            "e_voucher_amounts": arrays.ints(columns[6]),
            "e_counted": arrays.ints(columns[7]),
            "e_occurred_at": arrays.texts([times[when] for when in columns[8]]),
            "ingested_at": utcnow(),
        },
    )
    number = forecast.day_number
    return [
        _Counted(partner_id, uin, number(day), counted, events, refund)
        for partner_id, uin, day, counted, events, refund in compiled.driver_rows(found)
    ]


# --- SQLite: staged by executemany, moved by one INSERT ... SELECT ------------------------

#: The batch's events before they are inserted: a temporary table of the connection
#: (filled by ``executemany``), emptied after use.
_staging = Table(
    "usage_staging",
    MetaData(),
    *(Column(name, _events.c[name].type) for name in _STAGED),
    prefixes=["TEMPORARY"],
)
_CREATE_STAGING = CreateTable(_staging, if_not_exists=True)
_FILL_STAGING = insert(_staging)
_EMPTY_STAGING = delete(_staging)
#: ``INSERT INTO usage_events SELECT ... FROM usage_staging ORDER BY <key> ON CONFLICT
#: (<key>) DO NOTHING RETURNING``: the staged events not seen before, in key order.
_INSERT_EVENTS_SQLITE = (
    sqlite.insert(_events)
    .from_select(
        [*_STAGED, "ingested_at"],
        select(
            *(_staging.c[name] for name in _STAGED),
            bindparam("ingested_at", type_=_events.c.ingested_at.type),
        ).order_by(*(_staging.c[name] for name in CONFLICT_TARGET)),
    )
    .on_conflict_do_nothing(index_elements=list(CONFLICT_TARGET))
    .returning(_events.c.customer_uin, _events.c.counted, _events.c.kind, _events.c.occurred_at)
)


def _count_sqlite(
    session: Session, rows: Sequence[tuple[Any, ...]], owners: Mapping[int, int]
) -> list[_Counted]:
    """:func:`_count_pg` on SQLite: the rows staged, moved, the staging emptied, and the
    sums made here."""
    session.execute(_CREATE_STAGING)
    session.execute(_FILL_STAGING, [dict(zip(_STAGED, row, strict=True)) for row in rows])
    inserted = compiled.fetch_all(session, _INSERT_EVENTS_SQLITE, {"ingested_at": utcnow()})
    session.execute(_EMPTY_STAGING)
    sums: dict[tuple[int, int, int], list[Any]] = {}
    for uin, counted, kind, when in inserted:
        key = (owners[uin], uin, forecast.day_number_of(when))
        found = sums.get(key)
        if found is None:
            found = sums[key] = [0, 0, False]
        found[0] += counted
        found[1] += 1
        found[2] |= kind == "refund" and counted != 0
    return [_Counted(*key, *found) for key, found in sums.items()]


_customers = Customer.metadata.tables[Customer.__tablename__]
_partners = Partner.metadata.tables[Partner.__tablename__]
#: The customers of a batch with their owner (see _owners).
_OWNERS = select(_customers.c.uin, _customers.c.partner_id)
#: PostgreSQL: the batch's customers by ``uin = ANY(:uins)``, and one partner's of them
#: locked in UIN order (see _owners and _lock).
_OWNERS_PG = _OWNERS.where(_customers.c.uin == any_(arrays.param("uins"))).order_by(
    _customers.c.uin
)
_LOCK_PG = (
    select(_customers.c.uin)
    .where(
        _customers.c.partner_id == bindparam("partner_id", type_=BigInteger),
        _customers.c.uin == any_(arrays.param("uins")),
    )
    .order_by(_customers.c.uin)
    .with_for_update(key_share=True)
)
#: The partners' default threshold lists and forecast alarm windows.
_DEFAULTS = select(_partners.c.id, _partners.c.thresholds, _partners.c.forecast_days)
_DEFAULTS_PG = _DEFAULTS.where(_partners.c.id == any_(arrays.param("partner_ids")))
_CHANGED = tuple(
    dict.fromkeys(
        (
            _customers.c.uin,
            _customers.c.partner_id,
            _customers.c.total_credit,
            _customers.c.consumed,
            _customers.c.name,
            _customers.c.thresholds,
            _customers.c.fired_thresholds,
            *forecast.COLUMNS,
        )
    )
)


class _Changed(NamedTuple):
    """A customer as the consumption's update returned it (the columns of _CHANGED): a
    plain named tuple, whose fields are read far faster than a result row's."""

    uin: int
    partner_id: int
    total_credit: int
    consumed: int
    name: str
    thresholds: list[int] | None
    fired_thresholds: list[int]
    # The forecast's (creditline.ledger.forecast.COLUMNS).
    burn_rate: int | None
    forecast_day: int | None
    usage_since: int | None
    forecast_days: int | None
    forecast_fired: bool
    forecast_alarm_day: int | None


assert _Changed._fields == tuple(column.name for column in _CHANGED)
#: PostgreSQL: every customer's net consumption added by one statement, the amounts as
#: three arrays joined as a table (compiled once, whatever the batch's size). The JSON
#: lists come back as their text, read once per distinct text (see _lists).
_DELTAS = (
    func.unnest(arrays.param("uins"), arrays.param("partner_ids"), arrays.param("deltas"))
    .table_valued("uin", "partner_id", "delta")
    .render_derived(name="d")
)
_ADD_CONSUMED_PG = (
    update(_customers)
    .where(_customers.c.uin == _DELTAS.c.uin, _customers.c.partner_id == _DELTAS.c.partner_id)
    .values(consumed=_customers.c.consumed + _DELTAS.c.delta)
    .returning(
        *(
            cast(c, Text).label(c.name) if c.name in ("thresholds", "fired_thresholds") else c
            for c in _CHANGED
        )
    )
)
_THRESHOLDS = _Changed._fields.index("thresholds")
_FIRED = _Changed._fields.index("fired_thresholds")


def _owners(session: Session, uins: set[int]) -> dict[int, int]:
    """Each known customer of ``uins``, and its partner."""
    ordered = sorted(uins)
    if session.get_bind().dialect.name == "postgresql":
        # The UINs as one array: one statement text whatever the batch's customers, so it
        # is compiled, parsed and planned once (an IN list of hundreds of values was
        # rendered, parsed and planned anew on every execution).
        found = compiled.execute(session, _OWNERS_PG, {"uins": arrays.ints(ordered)})
        return dict(compiled.driver_rows(found))
    query = _OWNERS.where(_customers.c.uin.in_(ordered)).order_by(_customers.c.uin)
    return dict(session.execute(query).tuples().all())


def _lock(session: Session, owners: Mapping[int, int]) -> None:
    """PostgreSQL: lock the customers of ``owners`` (UIN -> partner), partner by partner in
    ascending order and each partner's in ascending UIN order (``FOR NO KEY UPDATE``, the
    lock an UPDATE of them takes), before their consumption is added, so concurrent
    batches queue in one order and cannot deadlock, whatever order their statements visit
    rows in. (A plain ``FOR UPDATE`` would also wait on the foreign-key share locks that
    other batches' inserts hold.) One locking statement per partner: each stays on its
    partner's shard, where a distributed database can lock rows (docs/scaling.md). SQLite
    has one writer at a time and no row locks."""
    by_partner: dict[int, list[int]] = defaultdict(list)
    for uin in sorted(owners):
        by_partner[owners[uin]].append(uin)
    compiled.execute_many(
        session,
        _LOCK_PG,
        [
            {"partner_id": partner_id, "uins": arrays.ints(by_partner[partner_id])}
            for partner_id in sorted(by_partner)
        ],
    )


def _unknown(
    records: Sequence[UsageRecord], lines: Sequence[int], owners: Mapping[int, object]
) -> list[LineError]:
    return [
        LineError(line, f"no customer {r.customer_uin}", "customer_uin")
        for line, r in zip(lines, records, strict=True)
        if r.customer_uin not in owners
    ]


def _lists(found: Any) -> list[_Changed]:
    """The customers the PostgreSQL update returned, their JSON lists read from their text
    (a batch's customers share a few lists: each distinct text is read once; the lists are
    not changed by their readers)."""
    read: dict[str | None, Any] = {None: None}
    changed = []
    make = _Changed._make
    for row in compiled.driver_rows(found):
        values = list(row)
        for at in (_THRESHOLDS, _FIRED):
            text = values[at]
            value = read.get(text, read)
            if value is read:
                value = read[text] = json.loads(text)
            values[at] = value
        changed.append(make(values))
    return changed


def _add_consumed(
    session: Session, delta: Mapping[int, int], owners: Mapping[int, int]
) -> list[_Changed]:
    """Add each customer's net consumption by one statement; the rows as changed."""
    ordered = sorted(delta)
    if not ordered:
        return []
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "uins": arrays.ints(ordered),
            "partner_ids": arrays.ints(owners[uin] for uin in ordered),
            "deltas": arrays.ints(delta[uin] for uin in ordered),
        }
        return _lists(compiled.execute(session, _ADD_CONSUMED_PG, params))
    shift = case({uin: literal(delta[uin], BigInteger) for uin in ordered}, value=_customers.c.uin)
    return list(
        map(
            _Changed._make,
            session.execute(
                update(_customers)
                .where(
                    _customers.c.uin.in_(ordered),
                    _customers.c.partner_id.in_({owners[uin] for uin in ordered}),
                )
                .values(consumed=_customers.c.consumed + shift)
                .returning(*_CHANGED)
            ),
        )
    )


def _defaults(session: Session, partner_ids: Sequence[int]) -> list[tuple[int, Any, int]]:
    """Each partner's default threshold list and forecast alarm window."""
    if not partner_ids:
        return []
    if session.get_bind().dialect.name == "postgresql":
        found = compiled.execute(
            session, _DEFAULTS_PG, {"partner_ids": arrays.ints(partner_ids)}
        ).all()
    else:
        found = session.execute(_DEFAULTS.where(_partners.c.id.in_(partner_ids))).all()
    return [(partner_id, thresholds, window) for partner_id, thresholds, window in found]


def _staged(
    batch: Sequence[UsageRecord], uins: list[int], owners: Mapping[int, int]
) -> list[list[Any]]:
    """The batch's events as columns, in the order of _STAGED. Repeats inside the batch
    (its unique key, CONFLICT_TARGET) are duplicates too: the first occurrence stands."""
    partner_ids = [owners[uin] for uin in uins]
    event_ids = [r.event_id for r in batch]
    if len(set(zip(partner_ids, event_ids, strict=True))) < len(batch):
        first: dict[tuple[Any, Any], UsageRecord] = {}
        for partner_id, r in zip(partner_ids, batch, strict=True):
            first.setdefault((partner_id, r.event_id), r)
        batch = list(first.values())
        uins = [r.customer_uin for r in batch]
        partner_ids = [owners[uin] for uin in uins]
        event_ids = [r.event_id for r in batch]
    return [
        event_ids,
        partner_ids,
        uins,
        [r.product for r in batch],
        [r.kind for r in batch],
        [r.list_amount for r in batch],
        [r.voucher_amount for r in batch],
        [r.counted for r in batch],
        [r.occurred_at for r in batch],
    ]


def ingest(
    session: Session,
    batch: Sequence[UsageRecord],
    *,
    lines: Sequence[int] | None = None,
    faults: Sequence[LineError] = (),
    what: str = "record",
) -> IngestResult:
    """Count a validated batch against its customers' credit and apply the alarm rule.

    Refused whole (:class:`InvalidBatch`) if any record names an unknown customer, or if
    ``faults`` holds any (the batch's other bad records, named in the same refusal).
    ``lines`` gives each record's line number for those messages (default: 1-based index);
    ``what`` names a line in them ("record", "line").

    The statements, whatever the batch's size: the batch's customers read; on PostgreSQL
    the events inserted by one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING``
    from arrays, which returns their sums per customer and day (SQLite: staged by
    ``executemany``, moved, the staging emptied); the partners' defaults read; the
    customers with new events locked in UIN order (one statement per partner,
    PostgreSQL); the daily totals' upsert; their consumption added by one ``UPDATE ...
    RETURNING``; then, when thresholds move, the alarm rule's writes
    (:func:`creditline.ledger.alarms.evaluate_many`).
    """
    if not batch and not faults:
        return IngestResult(0, 0)
    if len(batch) > MAX_BATCH:
        raise InvalidBatch([LineError(MAX_BATCH + 1, f"a batch holds at most {MAX_BATCH} records")])
    numbers = list(lines) if lines is not None else list(range(1, len(batch) + 1))
    postgres = session.get_bind().dialect.name == "postgresql"
    with session.begin_nested():
        uins = [r.customer_uin for r in batch]
        owners = _owners(session, set(uins))
        unknown = _unknown(batch, numbers, owners) if len(owners) < len(set(uins)) else []
        if unknown or faults:
            raise InvalidBatch(sorted([*faults, *unknown], key=lambda e: e.line), what=what)
        # The top-up rules as the batch begins: a partner whose customers may be topped up
        # has its pool locked before its customers (below, once the events are in), the
        # order of every allocation.
        rules = rules_for(session, owners)
        columns = _staged(batch, uins, owners)
        counted = (
            _count_pg(session, columns)
            if postgres
            else _count_sqlite(session, list(zip(*columns, strict=True)), owners)
        )
        delta: dict[int, int] = defaultdict(int)
        refunds: dict[int, bool] = defaultdict(bool)
        days: dict[int, set[int]] = defaultdict(set)
        accepted = 0
        for sums in counted:
            delta[sums.uin] += sums.counted
            refunds[sums.uin] |= sums.refund
            days[sums.uin].add(sums.day)
            accepted += sums.events
        # The partners' defaults (settings, not balances) read before any lock is taken:
        # one round trip less while the batch holds its customers.
        found = _defaults(session, sorted({owners[uin] for uin in delta}))
        defaults = {partner_id: thresholds for partner_id, thresholds, _ in found}
        if postgres:
            # Locked only now, the events in: concurrent batches queue on these rows for
            # the consumption's update alone, not for the events' INSERT too (the INSERT
            # takes no lock an UPDATE of a customer or a pool waits for; a batch holding
            # these locks inserts no more events, so no batch waits on another's in a
            # cycle). The pools first (of the partners whose customers may be topped up;
            # a top-up reads their remaining under these locks), then the customers (the
            # lock statements go with the UPDATE: no round trip).
            lock_pools(session, sorted({owners[uin] for uin in rules if uin in delta}))
            _lock(session, {uin: owners[uin] for uin in delta})
        # The daily totals, once the customers are locked: no batch waits on another's
        # daily rows before it holds the customers' locks (sent with the UPDATE below).
        forecast.add_daily(
            session, {(sums.partner_id, sums.uin, sums.day): sums.counted for sums in counted}
        )
        changed = sorted(_add_consumed(session, delta, owners), key=lambda row: row.uin)
        forecast.update_forecasts(
            session,
            changed,
            new_days=days,
            defaults={partner_id: window for partner_id, _, window in found},
            cause={
                row.uin: "refund" if delta[row.uin] < 0 and refunds[row.uin] else "usage"
                for row in changed
            },
        )
        # The alarm rule's objects only for the customers whose fired set it changes
        # (alarms.settled: exactly those decide() does not pass over).
        alarms = evaluate_many(
            session,
            [
                (
                    CustomerCredit(
                        partner_id=row.partner_id,
                        uin=row.uin,
                        name=row.name,
                        total_credit=row.total_credit,
                        consumed=row.consumed,
                        thresholds=row.thresholds,
                        fired=list(row.fired_thresholds),
                    ),
                    defaults[row.partner_id],
                    "refund" if delta[row.uin] < 0 and refunds[row.uin] else "usage",
                )
                for row in changed
                if not settled(
                    row.thresholds if row.thresholds is not None else defaults[row.partner_id],
                    row.fired_thresholds,
                    total_credit=row.total_credit,
                    consumed=row.consumed,
                )
            ],
        )
        made = after_usage(session, changed, delta, rules) if rules else []
    return IngestResult(
        accepted=accepted,
        duplicates=len(batch) - accepted,
        alarms=alarms,
        top_ups=made,
    )

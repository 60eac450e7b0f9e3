"""Usage from the vendor's billing feed (DESIGN §2).

Each charge counts ``list_amount - voucher_amount`` against its customer's credit (a refund
counts negative); partner discounts never change what is counted. An event id seen before
is a duplicate and changes nothing. A batch with any invalid record is refused whole, with
every invalid record named. Ingestion is one ``INSERT ... ON CONFLICT DO NOTHING`` for the
batch and one ``UPDATE`` that adds each customer's net consumption (on PostgreSQL after
locking the batch's customers in ascending UIN order, so concurrent batches cannot
deadlock).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, case, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from creditline import money
from creditline.clock import utcnow
from creditline.db.tables import Alarm, Customer, Partner, UsageEvent
from creditline.errors import CreditlineError, InvalidBatch, InvalidInput, LineError
from creditline.ledger.alarms import CustomerCredit, evaluate

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


@dataclass(frozen=True)
class UsageRecord:
    """One validated charge or refund."""

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


def _uin(raw: object, *, strict: bool) -> int:
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


def _text(raw: object, name: str, longest: int) -> str:
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

    check("event_id", lambda v: _text(v, "event_id", 128))
    check("customer_uin", lambda v: _uin(v, strict=strict))
    check("product", lambda v: _text(v, "product", 100))
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


def parse_batch(
    raws: Sequence[tuple[int, Mapping[str, object]]],
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
    errors: list[LineError] = []
    parsed: list[tuple[int, UsageRecord]] = []
    for line, raw in raws:
        checked = check_record(raw, strict=strict)
        if isinstance(checked, UsageRecord):
            parsed.append((line, checked))
        else:
            errors.extend(LineError(line, message, name) for name, message in checked)
    if session is not None and parsed:
        uins = {r.customer_uin for _, r in parsed}
        known = set(session.execute(select(Customer.uin).where(Customer.uin.in_(uins))).scalars())
        errors.extend(
            LineError(line, f"no customer {r.customer_uin}", "customer_uin")
            for line, r in parsed
            if r.customer_uin not in known
        )
    if errors:
        errors.sort(key=lambda e: e.line)
        raise InvalidBatch(errors, what=what)
    return [r for _, r in parsed]


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(UsageEvent)


def ingest(
    session: Session, batch: Sequence[UsageRecord], *, lines: Sequence[int] | None = None
) -> IngestResult:
    """Count a validated batch against its customers' credit and apply the alarm rule.

    Refused whole (:class:`InvalidBatch`) if any record names an unknown customer.
    ``lines`` gives each record's line number for those messages (default: 1-based index).
    """
    if not batch:
        return IngestResult(0, 0)
    if len(batch) > MAX_BATCH:
        raise InvalidBatch([LineError(MAX_BATCH + 1, f"a batch holds at most {MAX_BATCH} records")])
    numbers = list(lines) if lines is not None else list(range(1, len(batch) + 1))
    uins = sorted({r.customer_uin for r in batch})
    owners = dict(
        session.execute(select(Customer.uin, Customer.partner_id).where(Customer.uin.in_(uins)))
        .tuples()
        .all()
    )
    unknown = [
        LineError(numbers[i], f"no customer {r.customer_uin}", "customer_uin")
        for i, r in enumerate(batch)
        if r.customer_uin not in owners
    ]
    if unknown:
        raise InvalidBatch(unknown)

    # Repeats inside the batch (the same partner's event id) are duplicates too: the
    # first occurrence stands.
    first: dict[tuple[int, str], UsageRecord] = {}
    for record in batch:
        first.setdefault((owners[record.customer_uin], record.event_id), record)
    now = utcnow()
    rows = [
        {
            "event_id": r.event_id,
            "partner_id": owners[r.customer_uin],
            "customer_uin": r.customer_uin,
            "product": r.product,
            "kind": r.kind,
            "list_amount": r.list_amount,
            "voucher_amount": r.voucher_amount,
            "counted": r.counted,
            "occurred_at": r.occurred_at,
            "ingested_at": now,
        }
        # The unique key's order (partner, event id): concurrent batches sharing event
        # ids then take its entries in one order and cannot deadlock on each other.
        for _, r in sorted(first.items(), key=lambda item: item[0])
    ]
    alarms: list[Alarm] = []
    with session.begin_nested():
        inserted = session.execute(
            _insert(session)
            .on_conflict_do_nothing(index_elements=["partner_id", "event_id"])
            .returning(UsageEvent.customer_uin, UsageEvent.counted, UsageEvent.kind),
            rows,
        ).all()
        delta: dict[int, int] = defaultdict(int)
        refunds: dict[int, bool] = defaultdict(bool)
        for uin, counted, kind in inserted:
            delta[uin] += counted
            refunds[uin] |= kind == "refund" and counted != 0
        partner_ids = sorted({owners[uin] for uin in delta})
        defaults = dict(
            session.execute(
                select(Partner.id, Partner.thresholds).where(Partner.id.in_(partner_ids))
            )
            .tuples()
            .all()
        )
        ordered = sorted(delta)
        changed: dict[int, Row[Any]] = {}
        if ordered:
            if session.get_bind().dialect.name == "postgresql":
                # Lock the batch's customers in UIN order first: concurrent batches queue
                # in one order and cannot deadlock, whatever order the UPDATE visits. The
                # lock is the UPDATE's own (FOR NO KEY UPDATE): a plain FOR UPDATE would
                # also wait on the foreign-key share locks other batches' inserts hold.
                session.execute(
                    select(Customer.uin)
                    .where(Customer.uin.in_(ordered))
                    .order_by(Customer.uin)
                    .with_for_update(key_share=True)
                )
            # One statement for every customer of the batch (not one per customer): at
            # 1,000 events over hundreds of customers the round trips were the cost.
            shift = case(
                {uin: literal(delta[uin], BigInteger) for uin in ordered}, value=Customer.uin
            )
            changed = {
                row.uin: row
                for row in session.execute(
                    update(Customer)
                    .where(Customer.uin.in_(ordered), Customer.partner_id.in_(partner_ids))
                    .values(consumed=Customer.consumed + shift)
                    .returning(
                        Customer.uin,
                        Customer.total_credit,
                        Customer.consumed,
                        Customer.name,
                        Customer.thresholds,
                        Customer.fired_thresholds,
                    )
                    .execution_options(synchronize_session=False)
                )
            }
        for uin in ordered:
            row = changed[uin]
            alarm = evaluate(
                session,
                CustomerCredit(
                    partner_id=owners[uin],
                    uin=uin,
                    name=row.name,
                    total_credit=row.total_credit,
                    consumed=row.consumed,
                    thresholds=row.thresholds,
                    fired=list(row.fired_thresholds),
                ),
                default=defaults[owners[uin]],
                cause="refund" if delta[uin] < 0 and refunds[uin] else "usage",
            )
            if alarm is not None:
                alarms.append(alarm)
    return IngestResult(
        accepted=len(inserted), duplicates=len(batch) - len(inserted), alarms=alarms
    )

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
from creditline.errors import CreditlineError, InvalidBatch, LineError
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
    """An ISO 8601 time; one without an offset is taken as UTC."""
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
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _amount(raw: object, name: str) -> int:
    if isinstance(raw, str):
        return money.parse_amount(raw, param=name)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return money.from_float(raw, param=name)
    raise ValueError(f"{name} {raw!r} is not an amount")


def _uin(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"customer_uin {raw!r} is not a UIN")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        value = int(raw.strip())
    else:
        raise ValueError(f"customer_uin {raw!r} is not a UIN")
    if not 0 < value < 2**63:
        raise ValueError(f"customer_uin {raw!r} is not a UIN")
    return value


def parse_record(raw: Mapping[str, object]) -> UsageRecord:
    """Validate one raw record (text or JSON values); raises ``ValueError`` or
    :class:`CreditlineError` naming the field at fault."""
    missing = [name for name in REQUIRED if raw.get(name) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {', '.join(unknown)}")
    event_id = raw["event_id"]
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 128:
        raise ValueError("event_id must be text of 1-128 characters")
    product = raw["product"]
    if not isinstance(product, str) or not product.strip() or len(product) > 100:
        raise ValueError("product must be text of 1-100 characters")
    kind = raw.get("kind") or "charge"
    if kind not in USAGE_KINDS:
        raise ValueError(f"kind must be charge or refund, not {kind!r}")
    list_amount = _amount(raw["list_amount"], "list_amount")
    voucher_amount = _amount(raw["voucher_amount"], "voucher_amount")
    if voucher_amount > list_amount:
        raise ValueError(
            f"voucher_amount {money.to_display(voucher_amount)} is above list_amount "
            f"{money.to_display(list_amount)}"
        )
    return UsageRecord(
        event_id=event_id.strip(),
        customer_uin=_uin(raw["customer_uin"]),
        product=product.strip(),
        list_amount=list_amount,
        voucher_amount=voucher_amount,
        occurred_at=parse_time(raw["occurred_at"]),
        kind=str(kind),
    )


def parse_batch(
    raws: Sequence[tuple[int, Mapping[str, object]]],
    *,
    what: str = "record",
    session: Session | None = None,
) -> list[UsageRecord]:
    """Validate a whole batch of (line, raw) pairs; every bad record is named at once.

    With ``session``, records naming an unknown customer are named in the same refusal
    as malformed ones (otherwise :func:`ingest` names them, but only once the rest parse).
    """
    errors: list[LineError] = []
    parsed: list[tuple[int, UsageRecord]] = []
    for line, raw in raws:
        try:
            parsed.append((line, parse_record(raw)))
        except CreditlineError as exc:
            errors.append(LineError(line, exc.message, exc.param))
        except ValueError as exc:
            errors.append(LineError(line, str(exc)))
    if session is not None and parsed:
        uins = {r.customer_uin for _, r in parsed}
        known = set(session.execute(select(Customer.uin).where(Customer.uin.in_(uins))).scalars())
        errors.extend(
            LineError(line, f"no customer {r.customer_uin}", "customer_uin")
            for line, r in parsed
            if r.customer_uin not in known
        )
        errors.sort(key=lambda e: e.line)
    if errors:
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

    # Repeats inside the batch are duplicates too: the first occurrence stands.
    first: dict[str, UsageRecord] = {}
    for record in batch:
        first.setdefault(record.event_id, record)
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
        # Event-id order: concurrent batches sharing event ids then take the unique
        # index's entries in one order and cannot deadlock on each other.
        for r in sorted(first.values(), key=lambda r: r.event_id)
    ]
    alarms: list[Alarm] = []
    with session.begin_nested():
        inserted = session.execute(
            _insert(session)
            .on_conflict_do_nothing(index_elements=["event_id"])
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

"""Usage records as JSON — a REST batch's body, a JSON Lines file's line — decoded by a
compiled schema.

msgspec decodes a whole body in one pass and checks its JSON types on the way (objects
with exactly the schema's fields, ``customer_uin`` an integer, the other values strings,
``kind`` one of its two words): nothing is converted between types, as the strict rules
of :func:`creditline.ledger.usage.check_record` require. The values are then checked by
the ledger's own rules (:func:`~creditline.ledger.usage.text_value`,
:func:`~creditline.ledger.usage.uin_value`, :func:`creditline.money.parse_amount`,
:func:`~creditline.ledger.usage.parse_time`, a voucher within its list price), each distinct
amount or time text once.

That is the path of a good batch. A body it does not accept whole is read again the plain
way (``json`` and :func:`~creditline.ledger.usage.check_record` on every record), which
names every fault of every record with its 1-based number: a refusal says exactly what it
said before this module existed, and the fast path can only be stricter, never looser.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

import msgspec

from creditline import money
from creditline.errors import CreditlineError, InvalidBatch, InvalidInput, LineError
from creditline.ledger import usage


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    event_id: str
    customer_uin: int
    product: str
    list_amount: str
    occurred_at: str
    voucher_amount: str = "0"
    kind: Literal["charge", "refund"] = "charge"


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    records: list[_Record]


_BODY = msgspec.json.Decoder(_Body)
_LINE = msgspec.json.Decoder(_Record)


def _validated(decoded: list[_Record]) -> list[usage.UsageRecord] | None:
    """The records by the ledger's rules, or None at the first fault (the plain reader then
    names them all)."""
    amounts: dict[str, int] = {}
    times: dict[str, datetime] = {}
    records = []
    try:
        for r in decoded:
            list_amount = amounts.get(r.list_amount)
            if list_amount is None:
                list_amount = amounts[r.list_amount] = money.parse_amount(r.list_amount)
            voucher_amount = amounts.get(r.voucher_amount)
            if voucher_amount is None:
                voucher_amount = amounts[r.voucher_amount] = money.parse_amount(r.voucher_amount)
            if voucher_amount > list_amount:
                return None
            occurred_at = times.get(r.occurred_at)
            if occurred_at is None:
                occurred_at = times[r.occurred_at] = usage.parse_time(r.occurred_at)
            records.append(
                usage.UsageRecord(
                    event_id=usage.text_value(r.event_id, "event_id", 128),
                    customer_uin=usage.uin_value(r.customer_uin, strict=True),
                    product=usage.text_value(r.product, "product", 100),
                    list_amount=list_amount,
                    voucher_amount=voucher_amount,
                    occurred_at=occurred_at,
                    kind=r.kind,
                )
            )
    except (CreditlineError, ValueError):
        return None
    return records


def _plain_records(body: bytes) -> list[tuple[int, dict[str, object]]]:
    """The body's records numbered from 1, read the plain way; its shape refused with the
    field named."""
    try:
        value = json.loads(body)
    except ValueError:
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object with records")
    unknown = sorted(name for name in value if name != "records")
    if unknown:
        raise InvalidInput(f"unknown field {', '.join(unknown)}", param=unknown[0])
    records = value.get("records")
    if not isinstance(records, list):
        raise InvalidInput("records must be a list of usage records", param="records")
    if not 1 <= len(records) <= usage.MAX_BATCH:
        raise InvalidInput(f"records must hold 1-{usage.MAX_BATCH} records", param="records")
    not_objects = [
        LineError(n, "a record must be a JSON object")
        for n, record in enumerate(records, start=1)
        if not isinstance(record, dict)
    ]
    if not_objects:
        raise InvalidBatch(not_objects)
    return list(enumerate(records, start=1))


def decode_batch(body: bytes) -> usage.Checked:
    """A REST batch body (``{"records": [...]}``): its valid records numbered from 1 and the
    faults of the others (for :func:`creditline.ledger.usage.ingest`, which adds unknown
    customers to them). A body of the wrong shape is refused at once (``InvalidInput``
    naming the field, or ``InvalidBatch`` naming the records that are not objects)."""
    try:
        decoded = _BODY.decode(body).records
    except msgspec.MsgspecError:
        decoded = None
    if decoded is not None and 1 <= len(decoded) <= usage.MAX_BATCH:
        records = _validated(decoded)
        if records is not None:
            return usage.Checked(records, list(range(1, len(records) + 1)), [])
    return usage.check_batch(_plain_records(body), strict=True)


def decode_line(content: str) -> usage.UsageRecord | None:
    """One JSON Lines line as a valid record, or None when the compiled schema or the rules
    do not accept it (the caller reads it the plain way, which names its faults)."""
    try:
        decoded = _LINE.decode(content)
    except msgspec.MsgspecError:
        return None
    records = _validated([decoded])
    return None if records is None else records[0]

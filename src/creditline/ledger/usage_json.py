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
from typing import Annotated, Literal

import msgspec

from creditline import money
from creditline.errors import CreditlineError, InvalidBatch, InvalidInput, LineError
from creditline.ledger import usage

#: The lengths and range the ledger's rules allow (usage.text_value, usage.uin_value),
#: checked as the body is decoded; whether a text is blank once stripped is asked after.
_EventId = Annotated[str, msgspec.Meta(max_length=128)]
_Product = Annotated[str, msgspec.Meta(max_length=100)]
_Uin = Annotated[int, msgspec.Meta(gt=0, le=2**63 - 1)]


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    event_id: _EventId
    customer_uin: _Uin
    product: _Product
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
    names them all). Each distinct amount or time text is read once."""
    # usage.text_value: stripped, and not blank (its length was checked by the decoder).
    event_ids = [r.event_id.strip() for r in decoded]
    products = [r.product.strip() for r in decoded]
    if not (all(event_ids) and all(products)):
        return None
    try:
        amounts = {
            text: money.parse_amount(text)
            for text in {r.list_amount for r in decoded} | {r.voucher_amount for r in decoded}
        }
        times = {text: usage.parse_time(text) for text in {r.occurred_at for r in decoded}}
    except (CreditlineError, ValueError):
        return None
    make = usage.UsageRecord
    records = []
    for r, event_id, product in zip(decoded, event_ids, products, strict=True):
        list_amount = amounts[r.list_amount]
        voucher_amount = amounts[r.voucher_amount]
        if voucher_amount > list_amount:
            return None
        records.append(
            make(
                event_id,
                r.customer_uin,
                product,
                list_amount,
                voucher_amount,
                times[r.occurred_at],
                r.kind,
            )
        )
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

"""Usage files from the vendor's billing feed: CSV or JSON Lines, imported whole or not at all.

CSV has the header ``event_id,customer_uin,product,list_amount,voucher_amount,occurred_at``
and an optional ``kind`` column (``charge`` when absent or empty); the header is line 1.
JSON Lines carries one object per line with the same keys, typed as the REST body is
(``customer_uin`` a JSON integer, amounts and times JSON strings; no conversion between
types; ``voucher_amount`` may be left out), and is decoded by the REST body's compiled
schema (:mod:`creditline.ledger.usage_json`). Amounts are decimal text ("12.50"); times are
ISO 8601 with their UTC offset (``Z`` or ``+08:00``), a time without one is refused.

A file is read twice and never held in memory: the first pass checks every line (its
shape, its values with the ledger's own rules, and that its customer exists) and names
every bad line at once; only a clean file is read again and counted, in batches of at most
:data:`creditline.ledger.usage.MAX_BATCH`, inside the caller's one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditline.db.tables import Alarm, Customer
from creditline.errors import InvalidBatch, InvalidInput, LineError
from creditline.ledger import usage, usage_json

FORMATS = ("csv", "jsonl")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

#: Called as the file is read: (phase "checking" or "importing", bytes read, file size).
Progress = Callable[[str, int, int], None]

RawLine = tuple[int, Mapping[str, object] | usage.UsageRecord | LineError]


@dataclass(frozen=True)
class ImportResult:
    """What an imported file did."""

    records: int
    accepted: int
    duplicates: int
    alarms: list[Alarm] = field(default_factory=list)


def file_format(path: Path, given: str | None = None) -> str:
    """The format named, or the one the file's extension says."""
    if given is not None:
        if given not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", param="format")
        return given
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(
            f"cannot tell the format of {path.name} from its extension; give --format csv "
            "or --format jsonl",
            param="format",
        )
    return found


def _csv_lines(text: io.TextIOBase) -> Iterator[RawLine]:
    reader = csv.reader(text)
    try:
        header_row = next(reader)
    except StopIteration:
        yield 1, LineError(1, "the file is empty; expected a header line")
        return
    header = [name.strip() for name in header_row]
    problems = []
    missing = [name for name in usage.REQUIRED if name not in header]
    if missing:
        problems.append(f"missing column {', '.join(missing)}")
    unknown = [name for name in header if name not in usage.FIELDS]
    if unknown:
        problems.append(f"unknown column {', '.join(unknown)}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        problems.append(f"repeated column {', '.join(repeated)}")
    if problems:
        yield 1, LineError(1, "; ".join(problems))
    # A record may span lines (quoted newlines): it is named by the line it starts on.
    end = reader.line_num
    for row in reader:
        line, end = end + 1, reader.line_num
        if not row or row == [""]:
            continue
        if len(row) != len(header):
            yield line, LineError(line, f"expected {len(header)} columns, found {len(row)}")
        elif not problems:
            yield line, dict(zip(header, row, strict=True))


def _jsonl_lines(text: io.TextIOBase) -> Iterator[RawLine]:
    for line, content in enumerate(text, start=1):
        if not content.strip():
            continue
        record = usage_json.decode_line(content)
        if record is not None:
            yield line, record
            continue
        # Not accepted whole: read the plain way, which names every fault of the line.
        try:
            value = json.loads(content)
        except json.JSONDecodeError as exc:
            yield line, LineError(line, f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        except ValueError:
            # An integer of more digits than Python reads (4,300): no field takes one.
            yield line, LineError(line, "a number in it is too long to be any field's")
            continue
        if not isinstance(value, dict):
            yield line, LineError(line, "not a JSON object")
            continue
        yield line, value


def _read(
    raw: BinaryIO, fmt: str, size: int, phase: str, progress: Progress | None
) -> Iterator[RawLine]:
    # newline="" hands line endings to the csv module, which needs them for quoted fields.
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    lines = _csv_lines(text) if fmt == "csv" else _jsonl_lines(text)
    try:
        for count, item in enumerate(lines, start=1):
            yield item
            if progress is not None and count % 1000 == 0:
                progress(phase, raw.tell(), size)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the file is not UTF-8 text: {exc.reason}", param="file") from None
    except csv.Error as exc:
        raise InvalidInput(f"the file is not readable CSV: {exc}", param="file") from None
    finally:
        if progress is not None:
            progress(phase, size, size)
        text.detach()


def _chunks(lines: Iterator[RawLine], errors: list[LineError]) -> Iterator[list[RawLine]]:
    """Good lines in chunks of at most MAX_BATCH; bad ones go to ``errors``."""
    chunk: list[RawLine] = []
    for line, raw in lines:
        if isinstance(raw, LineError):
            errors.append(raw)
            continue
        chunk.append((line, raw))
        if len(chunk) == usage.MAX_BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check(session: Session, path: Path, fmt: str, size: int, progress: Progress | None) -> int:
    """First pass: every bad line of the file, or the number of records."""
    errors: list[LineError] = []
    known: set[int] = set()
    records = 0
    strict = fmt == "jsonl"  # JSON values keep their JSON types; CSV values are all text
    with path.open("rb") as raw:
        for chunk in _chunks(_read(raw, fmt, size, "checking", progress), errors):
            pairs = [(line, value) for line, value in chunk if not isinstance(value, LineError)]
            checked = usage.check_batch(pairs, strict=strict)
            errors.extend(checked.faults)
            records += len(pairs)
            wanted = {r.customer_uin for r in checked.records} - known
            if wanted:
                known |= set(
                    session.execute(select(Customer.uin).where(Customer.uin.in_(wanted))).scalars()
                )
            errors.extend(
                LineError(line, f"no customer {r.customer_uin}", "customer_uin")
                for line, r in zip(checked.lines, checked.records, strict=True)
                if r.customer_uin not in known
            )
    if errors:
        raise InvalidBatch(sorted(errors, key=lambda e: e.line), what="line")
    return records


def import_file(
    session: Session, path: Path, fmt: str | None = None, *, progress: Progress | None = None
) -> ImportResult:
    """Count every charge and refund of a usage file against its customers' credit, inside
    the caller's transaction. A file with any bad line is refused whole
    (:class:`InvalidBatch`, every bad line named) and nothing is counted."""
    fmt = file_format(path, fmt)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", param="file") from None
    records = _check(session, path, fmt, size, progress)
    accepted = duplicates = 0
    alarms: list[Alarm] = []
    errors: list[LineError] = []
    with path.open("rb") as raw:
        for chunk in _chunks(_read(raw, fmt, size, "importing", progress), errors):
            # Checked already; parsed again rather than held, so memory stays one batch.
            pairs = [(line, value) for line, value in chunk if not isinstance(value, LineError)]
            batch = usage.parse_batch(pairs, what="line", strict=fmt == "jsonl")
            result = usage.ingest(session, batch, lines=[line for line, _ in pairs])
            accepted += result.accepted
            duplicates += result.duplicates
            alarms.extend(result.alarms)
    if errors:  # the file changed between the two readings
        raise InvalidBatch(errors, what="line")
    return ImportResult(records=records, accepted=accepted, duplicates=duplicates, alarms=alarms)
